//! Alerts: what the OLED and the admin page tell the owner about disks and
//! power. One place for the words, so both screens say the same thing.

/// How urgent an alert is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Works, but not as it should (data on the SD card, a disk full).
    Warning,
    /// Data is at risk or unreachable (disk missing, failing, undervoltage).
    Critical,
}

/// One alert.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alert {
    /// How urgent.
    pub severity: Severity,
    /// At most [`Alert::SHORT_MAX`] characters: one line of the 128×64 OLED.
    pub short: String,
    /// The full sentence for the admin page: what happened and what to do.
    pub text: String,
    /// The disk it is about ([`crate::DataDisk::id`]), if any.
    pub disk: Option<String>,
}

impl Alert {
    /// Characters in one OLED line (6×8 font on 128 pixels).
    pub const SHORT_MAX: usize = 21;

    pub(crate) fn new(
        severity: Severity,
        short: &str,
        text: String,
        disk: Option<String>,
    ) -> Alert {
        debug_assert!(short.chars().count() <= Alert::SHORT_MAX, "{short}");
        Alert {
            severity,
            short: short.to_string(),
            text,
            disk,
        }
    }
}
