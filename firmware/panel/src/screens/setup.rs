//! The pairing code, large, while the box waits for its owner's phone.

use super::draw::{self, BODY, HUGE, SMALL, TINY};
use crate::format;
use crate::frame::{Frame, WIDTH};
use crate::status::PanelStatus;

pub(super) fn render(frame: &mut Frame, status: &PanelStatus, position: Option<(usize, usize)>) {
    draw::header(frame, "SETUP", position);
    let Some(setup) = &status.setup else {
        draw::text(frame, "Setup is done.", 0, 18, BODY);
        return;
    };
    draw::text(frame, "Pairing code:", 0, 14, BODY);
    let code = format::truncate(&setup.pairing_code, draw::columns(WIDTH, HUGE));
    draw::text_centered(frame, &code, 26, HUGE);
    let hint = match &status.network {
        Some(net) => format!(
            "Open {}",
            net.admin_url
                .strip_prefix("http://")
                .unwrap_or(&net.admin_url)
        ),
        None => "Open the admin page".to_owned(),
    };
    if draw::text_width(&hint, SMALL) <= WIDTH {
        draw::text(frame, &hint, 0, 55, SMALL);
    } else {
        draw::text(
            frame,
            &format::truncate(&hint, draw::columns(WIDTH, TINY)),
            0,
            57,
            TINY,
        );
    }
}
