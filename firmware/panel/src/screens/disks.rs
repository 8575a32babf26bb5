//! One bar per data disk, missing disks flagged; four disks a page.

use super::draw::{self, BODY, SMALL};
use crate::format;
use crate::frame::{Frame, WIDTH};
use crate::status::PanelStatus;

const PER_PAGE: usize = 4;

pub(super) fn pages(status: &PanelStatus) -> usize {
    status.disks.len().div_ceil(PER_PAGE).max(1)
}

pub(super) fn render(
    frame: &mut Frame,
    status: &PanelStatus,
    page: usize,
    position: Option<(usize, usize)>,
) {
    let n_pages = pages(status);
    let page = page % n_pages;
    let title = if n_pages > 1 {
        format!("DISKS p{}", page + 1)
    } else {
        "DISKS".to_owned()
    };
    draw::header(frame, &title, position);
    if status.disks.is_empty() {
        draw::text(frame, "No data disk.", 0, 16, BODY);
        draw::text(frame, "Plug in a USB disk", 0, 30, BODY);
        draw::text(frame, "to store files.", 0, 41, BODY);
        return;
    }
    let (bar_x, bar_w) = (29, 74u32);
    for (i, disk) in status
        .disks
        .iter()
        .skip(page * PER_PAGE)
        .take(PER_PAGE)
        .enumerate()
    {
        let y = 14 + 13 * i as i32;
        draw::text(frame, &format::truncate(&disk.name, 5), 0, y + 1, SMALL);
        if disk.missing {
            draw::fill(frame, bar_x, y, bar_w, 10, true);
            let label = "MISSING";
            let x = bar_x + (bar_w as i32 - draw::text_width(label, SMALL) as i32) / 2;
            // Dark text on the lit bar.
            let style = embedded_graphics::mono_font::MonoTextStyle::new(
                SMALL,
                embedded_graphics::pixelcolor::BinaryColor::Off,
            );
            use embedded_graphics::prelude::*;
            let _ = embedded_graphics::text::Text::with_baseline(
                label,
                Point::new(x, y + 1),
                style,
                embedded_graphics::text::Baseline::Top,
            )
            .draw(frame);
            draw::text_right(frame, "!", WIDTH as i32, y + 1, SMALL);
            continue;
        }
        match disk.fill_per_mille() {
            Some(pm) => {
                draw::bar(frame, bar_x, y, bar_w, 10, pm);
                draw::text_right(frame, &format!("{}%", pm / 10), WIDTH as i32, y + 1, SMALL);
            }
            None => {
                draw::outline(frame, bar_x, y, bar_w, 10);
                draw::text_right(frame, "?", WIDTH as i32, y + 1, SMALL);
            }
        }
    }
}
