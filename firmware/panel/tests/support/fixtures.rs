//! Representative snapshots shared by the golden-image tests, the hardware-path test and the
//! bench: one per situation the box can be in.

use bunker_panel::screens::{Screen, ShutdownStage, View};
use bunker_panel::{
    Alert, BoxState, DiskStatus, NetworkInfo, PanelStatus, RecoveryPhase, RecoveryProgress,
    SetupInfo,
};

const GB: u64 = 1_000_000_000;

pub fn disk(name: &str, used_gb: u64, cap_gb: u64) -> DiskStatus {
    DiskStatus {
        name: name.to_owned(),
        used_bytes: used_gb * GB,
        capacity_bytes: cap_gb * GB,
        missing: false,
    }
}

pub fn lan() -> Option<NetworkInfo> {
    Some(NetworkInfo {
        ip: "192.168.1.23".to_owned(),
        admin_url: "http://192.168.1.23:8080/".to_owned(),
    })
}

pub fn healthy() -> PanelStatus {
    PanelStatus {
        state: BoxState::Healthy,
        peers: 12,
        stored_bytes: 1_234 * GB,
        hosted_bytes: 340 * GB,
        audit_success: Some(0.992),
        sats: 12_345,
        network: lan(),
        disks: vec![disk("sda", 1_200, 2_000), disk("sdb", 450, 4_000)],
        ..Default::default()
    }
}

pub fn warning() -> PanelStatus {
    let mut missing = disk("backup", 0, 0);
    missing.missing = true;
    PanelStatus {
        state: BoxState::Warning,
        peers: 3,
        stored_bytes: 870 * GB,
        hosted_bytes: 12 * GB,
        audit_success: Some(0.71),
        sats: 1_002_003,
        network: Some(NetworkInfo {
            ip: "192.168.100.200".to_owned(),
            admin_url: "http://192.168.100.200:8080/".to_owned(),
        }),
        disks: vec![disk("sda", 1_960, 2_000), missing, disk("sdc", 0, 500)],
        alerts: vec![
            Alert::DiskMissing {
                disk: "backup".to_owned(),
            },
            Alert::DiskFull {
                disk: "sda".to_owned(),
                percent: 98,
            },
            Alert::AuditsFailing {
                failed: 4,
                total: 14,
            },
            Alert::LightningOffline,
            Alert::ManifestNotReplicated {
                copies: 2,
                wanted: 5,
            },
            Alert::Other("Peer 12D3KooWQx offered storage at 3x the usual price".to_owned()),
        ],
        ..Default::default()
    }
}

pub fn offline() -> PanelStatus {
    PanelStatus {
        state: BoxState::Offline,
        peers: 0,
        audit_success: None,
        network: None,
        disks: vec![],
        ..Default::default()
    }
}

pub fn setup() -> PanelStatus {
    PanelStatus {
        state: BoxState::Setup,
        network: lan(),
        setup: Some(SetupInfo {
            pairing_code: "482-913".to_owned(),
        }),
        ..Default::default()
    }
}

pub fn recovery() -> PanelStatus {
    PanelStatus {
        state: BoxState::Recovering,
        peers: 6,
        network: lan(),
        disks: vec![disk("sda", 420, 2_000)],
        recovery: Some(RecoveryProgress {
            phase: RecoveryPhase::RestoringFiles,
            files_done: 312,
            files_total: 1_024,
            bytes_done: 1_200 * GB / 1000 * 1000,
            bytes_total: 4_000 * GB,
        }),
        ..Default::default()
    }
}

pub fn many_disks() -> PanelStatus {
    let mut s = healthy();
    s.disks = (0..6)
        .map(|i| {
            disk(
                &format!("sd{}", (b'a' + i) as char),
                100 * u64::from(i),
                1_000,
            )
        })
        .collect();
    s
}

pub fn stopping() -> PanelStatus {
    let mut s = healthy();
    s.state = BoxState::Stopping;
    s.shutting_down = true;
    s
}

/// Every (name, snapshot, view) the golden images pin.
pub fn cases() -> Vec<(String, PanelStatus, View)> {
    let mut out = Vec::new();
    let mut add = |case: &str, status: &PanelStatus, view: View| {
        let mut name = format!("{case}-{}", view.screen.name());
        if view.page > 0 {
            name.push_str(&format!("-p{}", view.page + 1));
        }
        if view.shutdown == ShutdownStage::Confirming {
            name.push_str("-confirm");
        }
        out.push((name, status.clone(), view));
    };
    let healthy = healthy();
    for screen in [
        Screen::Status,
        Screen::Network,
        Screen::Disks,
        Screen::Alerts,
        Screen::Shutdown,
    ] {
        add("healthy", &healthy, View::of(screen));
    }
    let warning = warning();
    for screen in [
        Screen::Status,
        Screen::Network,
        Screen::Disks,
        Screen::Alerts,
    ] {
        add("warning", &warning, View::of(screen));
    }
    add(
        "warning",
        &warning,
        View {
            page: 1,
            ..View::of(Screen::Alerts)
        },
    );
    let offline = offline();
    for screen in [Screen::Status, Screen::Network, Screen::Disks] {
        add("offline", &offline, View::of(screen));
    }
    add("setup", &setup(), View::of(Screen::Setup));
    add("setup", &setup(), View::of(Screen::Status));
    add("recovery", &recovery(), View::of(Screen::Recovery));
    add("recovery", &recovery(), View::of(Screen::Status));
    add("many", &many_disks(), View::of(Screen::Disks));
    add(
        "many",
        &many_disks(),
        View {
            page: 1,
            ..View::of(Screen::Disks)
        },
    );
    add(
        "healthy",
        &healthy,
        View {
            shutdown: ShutdownStage::Confirming,
            ..View::of(Screen::Shutdown)
        },
    );
    add("stopping", &stopping(), View::of(Screen::Status));
    out
}
