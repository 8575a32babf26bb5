//! The network screen's QR code read back by a real decoder, as a phone camera would.

mod support;

use bunker_panel::screens::{render, Screen, View};
use bunker_panel::{Frame, NetworkInfo};
use support::fixtures;

/// Decodes the QR codes in a frame, seen at `scale` camera pixels per panel pixel.
fn scan(frame: &Frame, scale: u32) -> Vec<String> {
    let (w, h) = (128 * scale as usize, 64 * scale as usize);
    // A margin of dark panel border around the glass, as the camera sees it.
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| {
        if frame.pixel(x as u32 / scale, y as u32 / scale) {
            255
        } else {
            0
        }
    });
    img.detect_grids()
        .into_iter()
        .filter_map(|g| g.decode().ok().map(|(_, content)| content))
        .collect()
}

fn assert_opens(url: &str, ip: &str) {
    let mut status = fixtures::healthy();
    status.network = Some(NetworkInfo {
        ip: ip.to_owned(),
        admin_url: url.to_owned(),
    });
    let frame = render(&View::of(Screen::Network), &status);
    let found = scan(&frame, 4);
    assert_eq!(
        found.len(),
        1,
        "{url}: expected one readable code, got {found:?}\n{frame:?}"
    );
    // Scheme and host are case-insensitive; a path keeps its case (checked in qr.rs).
    assert!(
        found[0].eq_ignore_ascii_case(url),
        "{url}: code reads {:?}",
        found[0]
    );
}

#[test]
fn phone_reads_the_admin_url_off_the_network_screen() {
    assert_opens("http://192.168.1.23:8080/", "192.168.1.23");
    assert_opens("http://192.168.100.200:8080/", "192.168.100.200");
    assert_opens("http://bunker.local/", "10.0.0.7");
}

#[test]
fn url_with_a_path_keeps_its_case() {
    let url = "http://192.168.1.23:8080/pair?c=Xy7";
    let mut status = fixtures::healthy();
    status.network = Some(NetworkInfo {
        ip: "192.168.1.23".into(),
        admin_url: url.into(),
    });
    let found = scan(&render(&View::of(Screen::Network), &status), 4);
    assert_eq!(found, vec![url.to_owned()]);
}
