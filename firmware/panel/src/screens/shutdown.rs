//! Safe shutdown: how to do it, the confirmation, and "wait for the LED".

use super::draw::{self, BODY, SMALL};
use super::ShutdownStage;
use crate::frame::Frame;
use crate::status::PanelStatus;

pub(super) fn render(
    frame: &mut Frame,
    status: &PanelStatus,
    stage: ShutdownStage,
    position: Option<(usize, usize)>,
) {
    if status.shutting_down {
        draw::header(frame, "SHUTDOWN", None);
        draw::text(frame, "Shutting down...", 0, 16, BODY);
        // The LED goes out when the daemon has stopped (its data is safe); the OS needs a few
        // more seconds to unmount.
        draw::text(frame, "Unplug 10 s after", 0, 32, BODY);
        draw::text(frame, "the light goes out.", 0, 43, BODY);
        return;
    }
    draw::header(frame, "SHUTDOWN", position);
    match stage {
        ShutdownStage::Idle => {
            draw::text(frame, "Hold the button to", 0, 15, BODY);
            draw::text(frame, "shut down safely.", 0, 26, BODY);
            draw::text(frame, "Press: next screen", 0, 48, SMALL);
        }
        ShutdownStage::Confirming => {
            draw::text_inverted(frame, "Shut down now?", 2, 16, BODY);
            draw::text(frame, "Hold again: yes", 0, 34, BODY);
            draw::text(frame, "Press: cancel", 0, 46, BODY);
        }
    }
}
