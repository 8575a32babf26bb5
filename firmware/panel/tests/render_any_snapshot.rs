//! Whatever the engine puts in a snapshot (huge numbers, NaN, long or odd Unicode text, a page
//! index far past the end), every screen renders something readable and nothing panics.

use bunker_panel::screens::{render, Screen, ShutdownStage, View};
use bunker_panel::{
    Alert, BoxState, DiskStatus, NetworkInfo, PanelStatus, RecoveryPhase, RecoveryProgress,
    SetupInfo,
};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,60}", "[a-z0-9:/.]{0,300}", Just(String::new())]
}

fn state() -> impl Strategy<Value = BoxState> {
    prop_oneof![
        Just(BoxState::Starting),
        Just(BoxState::Healthy),
        Just(BoxState::Warning),
        Just(BoxState::Offline),
        Just(BoxState::Setup),
        Just(BoxState::Recovering),
        Just(BoxState::Stopping),
    ]
}

fn alert() -> impl Strategy<Value = Alert> {
    prop_oneof![
        text().prop_map(|disk| Alert::DiskMissing { disk }),
        (text(), any::<u8>()).prop_map(|(disk, percent)| Alert::DiskFull { disk, percent }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(failed, total)| Alert::AuditsFailing { failed, total }),
        Just(Alert::LightningOffline),
        (any::<u32>(), any::<u32>())
            .prop_map(|(copies, wanted)| Alert::ManifestNotReplicated { copies, wanted }),
        text().prop_map(Alert::Other),
    ]
}

fn status() -> impl Strategy<Value = PanelStatus> {
    let disk = (text(), any::<u64>(), any::<u64>(), any::<bool>()).prop_map(
        |(name, used_bytes, capacity_bytes, missing)| DiskStatus {
            name,
            used_bytes,
            capacity_bytes,
            missing,
        },
    );
    let recovery =
        (any::<u64>(), any::<u64>(), any::<u64>(), any::<u64>()).prop_map(|(a, b, c, d)| {
            RecoveryProgress {
                phase: RecoveryPhase::RestoringFiles,
                files_done: a,
                files_total: b,
                bytes_done: c,
                bytes_total: d,
            }
        });
    (
        (
            state(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<Option<f64>>(),
            any::<u64>(),
        ),
        proptest::option::of(
            (text(), text()).prop_map(|(ip, admin_url)| NetworkInfo { ip, admin_url }),
        ),
        proptest::collection::vec(disk, 0..10),
        proptest::collection::vec(alert(), 0..12),
        proptest::option::of(text().prop_map(|pairing_code| SetupInfo { pairing_code })),
        proptest::option::of(recovery),
        any::<bool>(),
    )
        .prop_map(
            |(
                (state, peers, stored, hosted, audit, sats),
                network,
                disks,
                alerts,
                setup,
                recovery,
                stopping,
            )| {
                PanelStatus {
                    state,
                    peers,
                    stored_bytes: stored,
                    hosted_bytes: hosted,
                    audit_success: audit,
                    sats,
                    network,
                    disks,
                    alerts,
                    setup,
                    recovery,
                    shutting_down: stopping,
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn every_screen_renders_any_snapshot(status in status(), page in any::<usize>(), confirming in any::<bool>()) {
        for screen in Screen::ALL {
            let shutdown = if confirming { ShutdownStage::Confirming } else { ShutdownStage::Idle };
            let frame = render(&View { screen, page, shutdown }, &status);
            prop_assert!(frame.lit_count() > 20, "{:?} rendered blank", screen);
        }
    }
}
