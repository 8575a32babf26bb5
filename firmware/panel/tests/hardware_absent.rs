//! Without a Raspberry Pi's I2C and GPIO (a development machine, CI, a box without a panel),
//! starting the hardware backend is one clear error, not a panic or a hang.
#![cfg(feature = "hardware")]

use std::time::{Duration, Instant};

use bunker_panel::hardware::{spawn_hardware, HardwareConfig, HardwareError};
use bunker_panel::{PanelConfig, PanelStatus};

#[test]
fn missing_panel_hardware_is_one_clear_error() {
    if std::path::Path::new("/dev/i2c-1").exists() {
        eprintln!("skipped: this machine has /dev/i2c-1, the hardware may really be there");
        return;
    }
    let t = Instant::now();
    let err = spawn_hardware(
        &HardwareConfig::default(),
        PanelConfig::default(),
        PanelStatus::default(),
        |_| {},
    )
    .unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(err, HardwareError::I2cBus { bus: 1, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("I2C bus 1"), "{msg}");
}

#[test]
fn a_panel_without_buttons_is_refused() {
    let hw = HardwareConfig {
        button_pins: vec![],
        ..Default::default()
    };
    let err =
        spawn_hardware(&hw, PanelConfig::default(), PanelStatus::default(), |_| {}).unwrap_err();
    assert!(matches!(err, HardwareError::NoButtons));
}
