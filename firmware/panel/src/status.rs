//! The snapshot the engine hands to the panel.
//!
//! The panel never asks the engine anything: the daemon fills a [`PanelStatus`] from the engine's
//! figures whenever they change and passes it on. Everything here is plain data so the screens
//! stay pure functions and so a test can build any situation the box can be in. It is also serde
//! data (snake_case JSON), so the sandbox and the local API can feed the simulator a snapshot.

use serde::{Deserialize, Serialize};

/// Everything the screens show, as of one moment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PanelStatus {
    /// The one-word summary on the first screen.
    pub state: BoxState,
    /// Peers currently connected.
    pub peers: u32,
    /// Bytes of the owner's own files kept by this box (locally and on peers).
    pub stored_bytes: u64,
    /// Bytes this box keeps for other boxes.
    pub hosted_bytes: u64,
    /// Fraction of recent audits that passed, `0.0..=1.0`; `None` before the first audit.
    pub audit_success: Option<f64>,
    /// Lightning balance in satoshis.
    pub sats: u64,
    /// How a phone reaches the admin page; `None` while the box has no address.
    pub network: Option<NetworkInfo>,
    /// Data disks, in the order the admin page lists them.
    pub disks: Vec<DiskStatus>,
    /// Things the owner should act on, most important first.
    pub alerts: Vec<Alert>,
    /// Set while the box waits to be paired with the owner's phone.
    pub setup: Option<SetupInfo>,
    /// Set while a recovery from the 24 words is running.
    pub recovery: Option<RecoveryProgress>,
    /// Set once the daemon has accepted a shutdown request and is stopping.
    pub shutting_down: bool,
}

impl PanelStatus {
    /// The LED and the screen treat the box as unhealthy when this is true.
    pub fn has_alerts(&self) -> bool {
        !self.alerts.is_empty()
    }
}

/// The box's state in one word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum BoxState {
    /// The daemon is starting; figures are not in yet.
    #[default]
    Starting,
    /// All is well.
    Healthy,
    /// Working, but something needs attention (see the alerts).
    Warning,
    /// No peers reachable: files are safe locally but not replicated.
    Offline,
    /// Waiting for the owner to finish setup from a phone.
    Setup,
    /// Restoring from the 24 words.
    Recovering,
    /// Shutting down.
    Stopping,
}

impl BoxState {
    /// The word shown on the status screen (at most 8 letters so it fits in the large font).
    pub fn word(self) -> &'static str {
        match self {
            BoxState::Starting => "STARTING",
            BoxState::Healthy => "HEALTHY",
            BoxState::Warning => "WARNING",
            BoxState::Offline => "OFFLINE",
            BoxState::Setup => "SETUP",
            BoxState::Recovering => "RECOVERY",
            BoxState::Stopping => "STOPPING",
        }
    }
}

/// How the admin page is reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkInfo {
    /// The box's LAN address as text (IPv4 or IPv6).
    pub ip: String,
    /// The admin page's URL, e.g. `http://192.168.1.23:8080/`; encoded in the QR code.
    pub admin_url: String,
}

/// One data disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskStatus {
    /// Short label, e.g. `sda` or the filesystem label.
    pub name: String,
    /// Bytes in use.
    pub used_bytes: u64,
    /// Bytes in total; 0 when unknown (a missing disk).
    pub capacity_bytes: u64,
    /// The disk is configured but not attached or not answering.
    pub missing: bool,
}

impl DiskStatus {
    /// Fill in per mille, `None` when the capacity is unknown. Saturates at 1000 so a
    /// filesystem that reports more used than total space still draws a full bar.
    pub fn fill_per_mille(&self) -> Option<u32> {
        if self.capacity_bytes == 0 {
            return None;
        }
        let pm = (u128::from(self.used_bytes) * 1000) / u128::from(self.capacity_bytes);
        Some(pm.min(1000) as u32)
    }
}

/// Something the owner should know about. Short texts: the panel has 25 columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Alert {
    /// A configured disk is not there.
    DiskMissing {
        /// Its label.
        disk: String,
    },
    /// A disk is (nearly) full.
    DiskFull {
        /// Its label.
        disk: String,
        /// Fill in percent.
        percent: u8,
    },
    /// Audits of our replicas are failing.
    AuditsFailing {
        /// Failed audits in the recent window.
        failed: u32,
        /// Audits in the recent window.
        total: u32,
    },
    /// The Lightning node is not running or has no usable channel.
    LightningOffline,
    /// The manifest snapshot is on fewer peers than wanted.
    ManifestNotReplicated {
        /// Peers holding the newest snapshot.
        copies: u32,
        /// Peers wanted.
        wanted: u32,
    },
    /// Any other condition, already worded by the engine.
    Other(String),
}

impl Alert {
    /// The alert as a short sentence for the alerts screen.
    pub fn text(&self) -> String {
        match self {
            Alert::DiskMissing { disk } => format!("Disk {disk} missing"),
            Alert::DiskFull { disk, percent } => format!("Disk {disk} full ({percent}%)"),
            Alert::AuditsFailing { failed, total } => {
                format!("Audits failing: {failed} of {total}")
            }
            Alert::LightningOffline => "Lightning offline".to_owned(),
            Alert::ManifestNotReplicated { copies, wanted } => {
                format!("Manifest on {copies} of {wanted} peers")
            }
            Alert::Other(text) => text.clone(),
        }
    }
}

/// What the setup screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetupInfo {
    /// The code the owner types on the phone to pair it with this box.
    pub pairing_code: String,
}

/// Where a recovery stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryProgress {
    /// The step running now.
    pub phase: RecoveryPhase,
    /// Files restored so far.
    pub files_done: u64,
    /// Files to restore; 0 while not known yet.
    pub files_total: u64,
    /// Bytes restored so far.
    pub bytes_done: u64,
    /// Bytes to restore; 0 while not known yet.
    pub bytes_total: u64,
}

impl RecoveryProgress {
    /// Progress in per mille by bytes (files when bytes are unknown); `None` while unknown.
    pub fn per_mille(&self) -> Option<u32> {
        let (done, total) = if self.bytes_total > 0 {
            (self.bytes_done, self.bytes_total)
        } else {
            (self.files_done, self.files_total)
        };
        if total == 0 {
            return None;
        }
        Some(((u128::from(done) * 1000) / u128::from(total)).min(1000) as u32)
    }
}

/// The steps of a recovery (DESIGN §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RecoveryPhase {
    /// Looking up who holds the manifest (DHT, known peers, recovery kit).
    FindingManifest,
    /// Downloading and decrypting the newest manifest snapshot.
    FetchingManifest,
    /// Fetching files back from hosts.
    RestoringFiles,
    /// No holder found: the forwarded last-resort search is running.
    LastResortSearch,
    /// Everything is back.
    Done,
}

impl RecoveryPhase {
    /// Short label for the recovery screen (at most 21 characters).
    pub fn label(self) -> &'static str {
        match self {
            RecoveryPhase::FindingManifest => "Finding manifest",
            RecoveryPhase::FetchingManifest => "Fetching manifest",
            RecoveryPhase::RestoringFiles => "Restoring files",
            RecoveryPhase::LastResortSearch => "Searching peers",
            RecoveryPhase::Done => "Recovery complete",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_and_partial_snapshots() {
        let status = PanelStatus {
            state: BoxState::Warning,
            peers: 3,
            disks: vec![DiskStatus {
                name: "sda".into(),
                used_bytes: 5,
                capacity_bytes: 10,
                missing: false,
            }],
            alerts: vec![Alert::LightningOffline, Alert::Other("x".into())],
            ..Default::default()
        };
        let json = serde_json::to_string(&status).unwrap();
        assert_eq!(serde_json::from_str::<PanelStatus>(&json).unwrap(), status);
        // Missing fields take their defaults, so a script can send just what it cares about.
        let partial: PanelStatus = serde_json::from_str(
            r#"{"state":"healthy","alerts":[{"kind":"disk_missing","detail":{"disk":"sdb"}}]}"#,
        )
        .unwrap();
        assert_eq!(partial.state, BoxState::Healthy);
        assert_eq!(
            partial.alerts,
            vec![Alert::DiskMissing { disk: "sdb".into() }]
        );
    }

    #[test]
    fn bad_json_names_what_is_wrong() {
        let err = serde_json::from_str::<PanelStatus>(r#"{"state":"exploding"}"#).unwrap_err();
        assert!(err.to_string().contains("exploding"), "{err}");
        let err = serde_json::from_str::<PanelStatus>(r#"{"peer":3}"#).unwrap_err();
        assert!(err.to_string().contains("peer"), "{err}");
    }
}
