//! The alerts, each a wrapped sentence behind a `!`; as many pages as they need.

use super::draw::{self, BODY, SMALL};
use crate::format;
use crate::frame::{Frame, WIDTH};
use crate::status::PanelStatus;

/// Text lines below the header.
const LINES: usize = 5;
const LINE_H: i32 = 10;

/// The wrapped lines of each page; the first line of an alert carries its `!`.
pub(super) fn pages(status: &PanelStatus) -> Vec<Vec<(bool, String)>> {
    let cols = draw::columns(WIDTH - 8, SMALL);
    let mut pages: Vec<Vec<(bool, String)>> = Vec::new();
    let mut page: Vec<(bool, String)> = Vec::new();
    for alert in &status.alerts {
        // At most one full page per alert: an engine-worded text must not flood the panel.
        let lines: Vec<String> = format::wrap(&alert.text(), cols)
            .into_iter()
            .take(LINES)
            .collect();
        if page.len() + lines.len() > LINES && !page.is_empty() {
            pages.push(std::mem::take(&mut page));
        }
        for (i, line) in lines.into_iter().enumerate() {
            page.push((i == 0, line));
        }
    }
    if !page.is_empty() {
        pages.push(page);
    }
    pages
}

pub(super) fn render(
    frame: &mut Frame,
    status: &PanelStatus,
    page: usize,
    position: Option<(usize, usize)>,
) {
    let pages = pages(status);
    if pages.is_empty() {
        draw::header(frame, "ALERTS", position);
        draw::text(frame, "All clear.", 0, 18, BODY);
        draw::text(frame, "Nothing needs you.", 0, 32, BODY);
        return;
    }
    let page = page % pages.len();
    let title = if pages.len() > 1 {
        format!("ALERTS ({}) p{}", status.alerts.len(), page + 1)
    } else {
        format!("ALERTS ({})", status.alerts.len())
    };
    draw::header(frame, &title, position);
    for (i, (first, line)) in pages[page].iter().enumerate() {
        let y = 14 + LINE_H * i as i32;
        if *first {
            draw::text_inverted(frame, "!", 1, y, SMALL);
        }
        draw::text(frame, line, 8, y, SMALL);
    }
}
