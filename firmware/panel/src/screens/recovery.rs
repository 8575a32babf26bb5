//! Recovery progress: the step, a bar, files and bytes.

use super::draw::{self, BODY, SMALL};
use crate::format;
use crate::frame::{Frame, WIDTH};
use crate::status::PanelStatus;

pub(super) fn render(frame: &mut Frame, status: &PanelStatus, position: Option<(usize, usize)>) {
    draw::header(frame, "RECOVERY", position);
    let Some(rec) = &status.recovery else {
        draw::text(frame, "No recovery running.", 0, 18, BODY);
        return;
    };
    draw::text(frame, rec.phase.label(), 0, 14, BODY);
    match rec.per_mille() {
        Some(pm) => {
            draw::bar(frame, 0, 27, WIDTH - 28, 10, pm);
            draw::text_right(frame, &format!("{}%", pm / 10), WIDTH as i32, 28, BODY);
        }
        None => {
            draw::outline(frame, 0, 27, WIDTH - 28, 10);
            draw::text_right(frame, "...", WIDTH as i32, 28, BODY);
        }
    }
    let files = if rec.files_total > 0 {
        format!(
            "{} of {} files",
            format::grouped(rec.files_done),
            format::grouped(rec.files_total)
        )
    } else {
        format!("{} files", format::grouped(rec.files_done))
    };
    draw::text(
        frame,
        &format::truncate(&files, draw::columns(WIDTH, SMALL)),
        0,
        42,
        SMALL,
    );
    let bytes = if rec.bytes_total > 0 {
        format!(
            "{} of {}",
            format::bytes(rec.bytes_done),
            format::bytes(rec.bytes_total)
        )
    } else {
        format::bytes(rec.bytes_done)
    };
    draw::text(frame, &bytes, 0, 53, SMALL);
}
