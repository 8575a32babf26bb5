//! Log setup: human-readable on a terminal, journald-friendly under systemd.
//!
//! Under systemd (`JOURNAL_STREAM` set) the journal adds its own timestamps
//! and colour codes would show up as garbage, so both are left out.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Checks a log filter without installing it, so a bad `log` key is a
/// config error at start rather than silence.
pub fn parse_filter(filter: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(filter).map_err(|e| format!("config key `log`: {filter:?} is not a log filter ({e})"))
}

/// Installs the global subscriber. `RUST_LOG`, when set and valid, wins
/// over the configured filter.
pub fn init(filter: EnvFilter) {
    let filter = EnvFilter::try_from_default_env().unwrap_or(filter);
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().with_ansi(false).init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}
