//! Bunker's front panel: a 128×64 OLED, buttons and a status LED.
//!
//! A glance at the box tells whether it is fine. The daemon hands the panel a [`PanelStatus`]
//! snapshot whenever the engine's figures change; the screens are pure functions of that
//! snapshot ([`screens::render`]), so they are pinned by golden PNGs and look the same on the
//! OLED, in the simulator and in the web page's panel mirror.
//!
//! ```
//! use bunker_panel::{screens::{render, Screen, View}, BoxState, PanelStatus};
//!
//! let status = PanelStatus { state: BoxState::Healthy, peers: 7, ..Default::default() };
//! let frame = render(&View::of(Screen::Status), &status);
//! assert!(frame.lit_count() > 0);
//! ```
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
