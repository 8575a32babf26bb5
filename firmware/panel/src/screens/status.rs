//! The first screen: the state in one word, then peers, stored, hosted, audits and sats.

use super::draw::{self, BIG, BODY};
use crate::format;
use crate::frame::{Frame, WIDTH};
use crate::status::PanelStatus;

pub(super) fn render(frame: &mut Frame, status: &PanelStatus) {
    let right = WIDTH as i32;
    let word = status.state.word();
    draw::text(frame, word, 0, 0, BIG);
    let word_end = draw::text_width(word, BIG) as i32;

    // Alerts get an inverted "!N" beside the state word; the peer count keeps the right edge
    // and drops its unit when the row is too full for both.
    let mark = (!status.alerts.is_empty()).then(|| format!("!{}", status.alerts.len()));
    let mark_w = mark
        .as_deref()
        .map_or(0, |m| draw::text_width(m, BODY) as i32 + 5);
    let mut peers = match status.peers {
        1 => "1 peer".to_owned(),
        n => format!("{n} peers"),
    };
    if word_end + mark_w + draw::text_width(&peers, BODY) as i32 + 2 > right {
        peers = format!("{}p", status.peers);
    }
    draw::text_right(frame, &peers, right, 3, BODY);
    if let Some(mark) = mark {
        draw::text_inverted(frame, &mark, word_end + 3, 3, BODY);
    }

    let audits = match status.audit_success {
        Some(f) => format::percent(f),
        None => "none yet".to_owned(),
    };
    let rows = [
        ("Stored", format::bytes(status.stored_bytes)),
        ("Hosted", format::bytes(status.hosted_bytes)),
        ("Audits", audits),
        ("Sats", format::grouped(status.sats)),
    ];
    for (i, (label, value)) in rows.iter().enumerate() {
        let y = 19 + 11 * i as i32;
        draw::text(frame, label, 0, y, BODY);
        draw::text_right(frame, value, right, y, BODY);
    }
}
