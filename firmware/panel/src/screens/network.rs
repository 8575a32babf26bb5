//! IP address and admin URL, with the URL as a QR code on the right half.

use embedded_graphics::prelude::Point;

use super::draw::{self, BODY, SMALL, TINY};
use crate::format;
use crate::frame::{Frame, HEIGHT, WIDTH};
use crate::qr::QrImage;
use crate::status::PanelStatus;

pub(super) fn render(frame: &mut Frame, status: &PanelStatus, position: Option<(usize, usize)>) {
    let Some(net) = &status.network else {
        draw::header(frame, "NETWORK", position);
        draw::text(frame, "No address yet.", 0, 16, BODY);
        draw::text(frame, "Check the network", 0, 30, BODY);
        draw::text(frame, "cable or router.", 0, 41, BODY);
        return;
    };
    let qr = QrImage::for_url(&net.admin_url, HEIGHT).ok();
    let Some(qr) = qr else {
        // A URL too long for a QR code still gets shown as text over the full width.
        draw::header(frame, "NETWORK", position);
        draw::text(frame, &net.ip, 0, 14, BODY);
        for (i, line) in format::wrap(&net.admin_url, draw::columns(WIDTH, SMALL))
            .iter()
            .take(4)
            .enumerate()
        {
            draw::text(frame, line, 0, 27 + 9 * i as i32, SMALL);
        }
        return;
    };
    let side = qr.side_px();
    let qr_x = (WIDTH - side) as i32;
    qr.draw(frame, Point::new(qr_x, ((HEIGHT - side) / 2) as i32));

    // The text column left of the code; no position marker, the QR code owns the right edge.
    let col_w = (qr_x - 3).max(0) as u32;
    draw::text(frame, "NETWORK", 0, 0, BODY);
    let mut y = 14;
    for line in ip_lines(&net.ip, col_w) {
        let font = if draw::text_width(&line, BODY) <= col_w {
            BODY
        } else {
            TINY
        };
        draw::text(frame, &line, 0, y, font);
        y += font.character_size.height as i32 + 1;
    }
    y += 4;
    draw::text(frame, "Scan, or open", 0, y, TINY);
    y += 8;
    // When the URL only adds a port to the address shown above, say just that.
    let url = net
        .admin_url
        .strip_prefix("http://")
        .unwrap_or(&net.admin_url);
    let rest = url
        .strip_prefix(net.ip.as_str())
        .map(|r| r.trim_end_matches('/'));
    match rest.and_then(|r| r.strip_prefix(':')) {
        Some(port) if !port.is_empty() && port.chars().all(|c| c.is_ascii_digit()) => {
            draw::text(frame, &format!("port {port}"), 0, y, BODY);
        }
        _ => {
            for line in format::wrap(url, draw::columns(col_w, TINY)) {
                if y + 6 > HEIGHT as i32 {
                    break;
                }
                draw::text(frame, &line, 0, y, TINY);
                y += 7;
            }
        }
    }
}

/// The address in as few lines of the body font as it takes: an IPv4 address too wide for one
/// line breaks after its second dot; anything else wraps in the tiny font.
fn ip_lines(ip: &str, col_w: u32) -> Vec<String> {
    if draw::text_width(ip, BODY) <= col_w {
        return vec![ip.to_owned()];
    }
    let dots: Vec<usize> = ip.match_indices('.').map(|(i, _)| i).collect();
    if dots.len() == 3 {
        let (a, b) = ip.split_at(dots[1] + 1);
        if draw::text_width(a, BODY) <= col_w && draw::text_width(b, BODY) <= col_w {
            return vec![a.to_owned(), b.to_owned()];
        }
    }
    format::wrap(ip, draw::columns(col_w, TINY))
        .into_iter()
        .take(4)
        .collect()
}
