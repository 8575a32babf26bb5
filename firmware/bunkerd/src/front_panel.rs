//! The daemon's side of the front panel: picks the backend, keeps the
//! screens fed with what the box really knows (a restore from the words
//! included: its own screen, the LED, an alert if it fails), and turns a shutdown
//! confirmed on the panel into a clean stop.
//!
//! The panel runs on its own thread (bunker-panel); nothing here blocks the
//! async runtime: status updates are a non-blocking send.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bunker_panel::hardware::{spawn_hardware, HardwareConfig};
use bunker_panel::{
    Alert, BoxState, DiskStatus, NetworkInfo, PanelAction, PanelConfig, PanelHandle, PanelStatus, RecoveryPhase,
    RecoveryProgress, SetupInfo, SimPanel,
};
use bunker_web::PanelControl;

use crate::config::{PanelBackend, PanelSettings};

/// How often the panel's snapshot is refreshed from the daemon's state.
pub const REFRESH: Duration = Duration::from_secs(2);
/// Scale of the simulator's PNG (128×64 → 512×256).
pub const PNG_SCALE: u32 = 4;
/// File name of the simulator's picture in the data directory.
pub const PNG_FILE: &str = "panel.png";

/// Why the panel could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PanelError {
    /// `panel.backend = "hardware"` and the hardware did not answer.
    #[error("panel.backend is \"hardware\" but the panel did not answer: {0}")]
    Hardware(#[from] bunker_panel::hardware::HardwareError),
    /// The panel thread could not start.
    #[error("cannot start the panel: {0}")]
    Spawn(#[from] bunker_panel::runner::SpawnError),
}

/// A running front panel. Dropping it stops the panel's thread.
pub struct FrontPanel {
    // PanelHandle is Send but not Sync (it keeps the hardware's pin guards);
    // its calls only queue a message, so the lock is never held for long.
    handle: Mutex<PanelHandle>,
    sim: Option<SimPanel>,
}

impl FrontPanel {
    /// Starts the panel `settings` ask for; `None` for `backend = "off"`.
    /// `on_shutdown` runs (on the panel's thread) when the owner confirms a
    /// shutdown on the panel.
    pub fn start(
        settings: &PanelSettings,
        data_dir: &Path,
        on_shutdown: impl Fn() + Send + 'static,
    ) -> Result<Option<FrontPanel>, PanelError> {
        let on_action = move |action: PanelAction| match action {
            PanelAction::Shutdown => on_shutdown(),
            #[allow(unreachable_patterns)]
            _ => {}
        };
        let hardware = HardwareConfig {
            i2c_bus: settings.i2c_bus,
            i2c_address: settings.i2c_address,
            button_pins: settings.buttons.clone(),
            led_pin: (settings.led_pin != 0).then_some(settings.led_pin),
        };
        let config = PanelConfig { buttons: settings.buttons.len().max(1), ..PanelConfig::default() };
        match settings.backend {
            PanelBackend::Off => Ok(None),
            PanelBackend::Hardware => {
                let handle = spawn_hardware(&hardware, config, PanelStatus::default(), on_action)?;
                tracing::info!(bus = settings.i2c_bus, address = settings.i2c_address, "front panel: OLED and buttons");
                Ok(Some(FrontPanel { handle: Mutex::new(handle), sim: None }))
            }
            PanelBackend::Auto => {
                // `spawn_hardware` takes the callback by value; keep a way to
                // build a second one for the fallback.
                let on_action = Arc::new(Mutex::new(on_action));
                let first = on_action.clone();
                match spawn_hardware(&hardware, config.clone(), PanelStatus::default(), move |a| {
                    (first.lock().unwrap_or_else(|p| p.into_inner()))(a)
                }) {
                    Ok(handle) => {
                        tracing::info!(bus = settings.i2c_bus, address = settings.i2c_address, "front panel: OLED and buttons");
                        Ok(Some(FrontPanel { handle: Mutex::new(handle), sim: None }))
                    }
                    Err(e) => {
                        let png = data_dir.join(PNG_FILE);
                        tracing::info!(reason = %e, png = %png.display(), "no front panel hardware; running the panel simulator");
                        let config = PanelConfig { buttons: 2, ..config };
                        Self::simulator(config, png, move |a| (on_action.lock().unwrap_or_else(|p| p.into_inner()))(a)).map(Some)
                    }
                }
            }
            PanelBackend::Simulator => {
                let png = data_dir.join(PNG_FILE);
                tracing::info!(png = %png.display(), "front panel: simulator");
                Self::simulator(PanelConfig { buttons: 2, ..config }, png, on_action).map(Some)
            }
        }
    }

    fn simulator(
        config: PanelConfig,
        png: PathBuf,
        on_action: impl FnMut(PanelAction) + Send + 'static,
    ) -> Result<FrontPanel, PanelError> {
        let sim = SimPanel::new(Some(png));
        let handle =
            bunker_panel::spawn(config, PanelStatus::default(), Box::new(sim.display()), Some(Box::new(sim.led())), on_action)?;
        Ok(FrontPanel { handle: Mutex::new(handle), sim: Some(sim) })
    }

    fn handle(&self) -> std::sync::MutexGuard<'_, PanelHandle> {
        self.handle.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shows `status` (never blocks).
    pub fn show(&self, status: PanelStatus) {
        self.handle().set_status(status);
    }

}

impl PanelControl for FrontPanel {
    fn png(&self) -> Result<Vec<u8>, String> {
        match &self.sim {
            Some(sim) => sim.png(PNG_SCALE).map_err(|e| format!("cannot encode the panel picture: {e}")),
            None => Err("the panel is real hardware: its screen cannot be read back".to_string()),
        }
    }

    fn press(&self, button: usize, hold: Duration) -> Result<(), String> {
        self.handle().press(button, hold).map_err(|e| e.to_string())
    }
}

/// Where a restore from the 24 words stands, for the panel: its progress
/// while it runs (and a while after it is done), or a failure to report.
#[derive(Debug, Clone, Default)]
pub struct PanelRecovery {
    /// Progress of a running (or just finished) restore.
    pub progress: Option<RecoveryProgress>,
    /// Why the last restore failed, in a few words.
    pub failed: Option<String>,
}

/// What the box knows, as the panel shows it: `engine` is the engine's
/// status and Lightning balance (sat) when it answered; without it peers,
/// stored and hosted bytes show as zero.
#[allow(clippy::needless_update)]
pub fn snapshot(
    pairing_code: Option<String>,
    web_addr: SocketAddr,
    disk_snapshot: &crate::disk_watch::DiskSnapshot,
    engine: Option<&(bunker_node::views::NodeStatus, Option<u64>)>,
    recovery: PanelRecovery,
    stopping: bool,
) -> PanelStatus {
    let ip = lan_ipv4();
    let url_host = match web_addr.ip() {
        a if a.is_unspecified() => ip.map(IpAddr::V4).unwrap_or(IpAddr::from([127, 0, 0, 1])),
        a => a,
    };
    let disks = disk_snapshot
        .disks
        .iter()
        .map(|d| DiskStatus {
            name: d.label.clone(),
            used_bytes: d.capacity.total_bytes.saturating_sub(d.capacity.free_bytes),
            capacity_bytes: d.capacity.total_bytes,
            missing: d.state == bunker_disks::DiskState::Missing,
        })
        .collect();
    let mut alerts: Vec<Alert> = disk_snapshot.alerts.iter().map(|a| Alert::Other(a.short.clone())).collect();
    if let Some(why) = recovery.failed {
        alerts.insert(0, Alert::Other(why));
    }
    let recovering = recovery.progress.as_ref().is_some_and(|p| p.phase != RecoveryPhase::Done);
    let state = if stopping {
        BoxState::Stopping
    } else if recovering {
        BoxState::Recovering
    } else if pairing_code.is_some() {
        BoxState::Setup
    } else {
        BoxState::Healthy
    };
    let (peers, stored_bytes, hosted_bytes, audit_success, sats) = match engine {
        Some((st, sats)) => (
            st.connected_peers,
            st.stored_bytes,
            st.hosted_bytes,
            (st.audits_total_24h > 0).then(|| st.audits_passed_24h as f64 / st.audits_total_24h as f64),
            sats.unwrap_or(0),
        ),
        None => (0, 0, 0, None, 0),
    };
    PanelStatus {
        state,
        peers,
        stored_bytes,
        hosted_bytes,
        audit_success,
        sats,
        network: Some(NetworkInfo {
            ip: ip.map_or_else(|| "no network".to_string(), |ip| ip.to_string()),
            admin_url: format!("http://{}/", SocketAddr::new(url_host, web_addr.port())),
        }),
        disks,
        alerts,
        setup: pairing_code.map(|code| SetupInfo { pairing_code: code }),
        recovery: recovery.progress,
        shutting_down: stopping,
        // Fields the panel adds later start at their defaults.
        ..PanelStatus::default()
    }
}

/// The first IPv4 address of an interface that is up and not loopback:
/// what a phone on the LAN would type.
fn lan_ipv4() -> Option<std::net::Ipv4Addr> {
    use nix::net::if_::InterfaceFlags;
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if !a.flags.contains(InterfaceFlags::IFF_UP) || a.flags.contains(InterfaceFlags::IFF_LOOPBACK) {
            continue;
        }
        if let Some(sin) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
            return Some(sin.ip());
        }
    }
    None
}
