//! Bunker's front panel: a 128×64 OLED, buttons and a status LED.
//!
//! A glance at the box tells whether it is fine. The daemon hands the panel a [`PanelStatus`]
//! snapshot whenever the engine's figures change; the screens are pure functions of that
//! snapshot ([`screens::render`]), so they are pinned by golden PNGs and look the same on the
//! OLED, in the simulator and in the web page's panel mirror.
//!
//! ```
//! use std::time::Duration;
//! use bunker_panel::{screens::{render, Screen, View}, spawn, BoxState, PanelConfig,
//!                    PanelStatus, SimPanel};
//!
//! let status = PanelStatus { state: BoxState::Healthy, peers: 7, ..Default::default() };
//! let frame = render(&View::of(Screen::Status), &status);
//! assert!(frame.lit_count() > 0);
//!
//! // The loop on its own thread, here on the simulator; on the box `hardware::spawn_hardware`.
//! let sim = SimPanel::new(None);
//! let panel = spawn(PanelConfig::default(), status, Box::new(sim.display()),
//!                   Some(Box::new(sim.led())), |action| println!("{action:?}")).unwrap();
//! panel.press(0, Duration::from_millis(100)).unwrap(); // short press: next screen
//! panel.stop();
//! ```
//!
//! Layers, each testable alone: [`status`] (the snapshot) → [`screens`] (pure rendering into a
//! [`Frame`]) ; [`buttons`], [`led`] and [`ui`] (pure state machines clocked by the caller) →
//! [`runner`] (the thread that owns the outputs) → [`display`] (the SSD1306 over any
//! embedded-hal I2C), [`hardware`] (rppal) or [`sim`] (PNG). [`fake_ssd1306`] decodes the
//! controller's I2C stream so the hardware path is tested without hardware.
#![deny(missing_docs)]

pub mod buttons;
pub mod display;
pub mod fake_ssd1306;
pub mod format;
pub mod frame;
#[cfg(feature = "hardware")]
pub mod hardware;
pub mod led;
pub mod qr;
pub mod runner;
pub mod screens;
pub mod sim;
pub mod status;
pub mod ui;

pub use frame::Frame;
pub use runner::{spawn, PanelHandle};
pub use sim::SimPanel;
pub use status::{
    Alert, BoxState, DiskStatus, NetworkInfo, PanelStatus, RecoveryPhase, RecoveryProgress,
    SetupInfo,
};
pub use ui::{Panel, PanelAction, PanelConfig, ScreenPower};
