//! The screens: each a pure function of the status snapshot and the view state to a frame.
//!
//! Pure so that a golden PNG pins every pixel, and so that the simulator, the web mirror and the
//! OLED show the same thing for the same snapshot.

mod alerts;
mod disks;
pub(crate) mod draw;
mod network;
mod recovery;
mod setup;
mod shutdown;
mod status;

use crate::frame::Frame;
use crate::status::PanelStatus;

/// One of the panel's screens, in the order a short press walks through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Screen {
    /// State word and the main figures.
    Status,
    /// Pairing code, while the box is being set up.
    Setup,
    /// Recovery progress, while a recovery runs.
    Recovery,
    /// Alerts, or "all clear".
    Alerts,
    /// IP, admin URL and its QR code.
    Network,
    /// One bar per disk.
    Disks,
    /// Safe shutdown.
    Shutdown,
}

impl Screen {
    /// Every screen in walking order.
    pub const ALL: [Screen; 7] = [
        Screen::Status,
        Screen::Setup,
        Screen::Recovery,
        Screen::Alerts,
        Screen::Network,
        Screen::Disks,
        Screen::Shutdown,
    ];

    /// Whether the screen has anything to show for this snapshot (setup and recovery only
    /// while they run), i.e. whether a short press stops on it.
    pub fn is_shown(self, status: &PanelStatus) -> bool {
        match self {
            Screen::Setup => status.setup.is_some(),
            Screen::Recovery => status.recovery.is_some(),
            _ => true,
        }
    }

    /// The screens a short press walks through for this snapshot.
    pub fn cycle(status: &PanelStatus) -> Vec<Screen> {
        Screen::ALL
            .into_iter()
            .filter(|s| s.is_shown(status))
            .collect()
    }

    /// Lower-case name, used for file names of golden images and by the local API.
    pub fn name(self) -> &'static str {
        match self {
            Screen::Status => "status",
            Screen::Setup => "setup",
            Screen::Recovery => "recovery",
            Screen::Alerts => "alerts",
            Screen::Network => "network",
            Screen::Disks => "disks",
            Screen::Shutdown => "shutdown",
        }
    }

    /// The screen called `name` (as [`Screen::name`] spells it), for the local API and tools.
    pub fn from_name(name: &str) -> Result<Screen, UnknownScreen> {
        Screen::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| UnknownScreen(name.chars().take(40).collect()))
    }

    /// Number of pages the screen has for this snapshot (a long press turns them).
    pub fn pages(self, status: &PanelStatus) -> usize {
        match self {
            Screen::Alerts => alerts::pages(status).len().max(1),
            Screen::Disks => disks::pages(status),
            _ => 1,
        }
    }
}

/// A screen name that is not one of [`Screen::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no panel screen is called {0:?}; screens are status, setup, recovery, alerts, network, disks, shutdown")]
pub struct UnknownScreen(pub String);

/// What the panel shows besides the snapshot: which screen, which page, shutdown stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// The screen on display.
    pub screen: Screen,
    /// Page within the screen; taken modulo the page count, so it never points past the end.
    pub page: usize,
    /// Where the shutdown dialogue stands.
    pub shutdown: ShutdownStage,
}

impl View {
    /// The first page of `screen`, with no dialogue open.
    pub fn of(screen: Screen) -> View {
        View {
            screen,
            page: 0,
            shutdown: ShutdownStage::Idle,
        }
    }
}

/// The two steps of a safe shutdown from the panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShutdownStage {
    /// The screen explains how to shut down.
    #[default]
    Idle,
    /// A long press asked to shut down; a second long press confirms, a short press cancels.
    Confirming,
}

/// Renders `view` for `status`.
pub fn render(view: &View, status: &PanelStatus) -> Frame {
    let mut frame = Frame::new();
    // While stopping, the shutdown screen is the only truthful one.
    let screen = if status.shutting_down {
        Screen::Shutdown
    } else {
        view.screen
    };
    let cycle = Screen::cycle(status);
    let position = cycle
        .iter()
        .position(|s| *s == screen)
        .map(|i| (i, cycle.len()));
    match screen {
        Screen::Status => status::render(&mut frame, status),
        Screen::Setup => setup::render(&mut frame, status, position),
        Screen::Recovery => recovery::render(&mut frame, status, position),
        Screen::Alerts => alerts::render(&mut frame, status, view.page, position),
        Screen::Network => network::render(&mut frame, status, position),
        Screen::Disks => disks::render(&mut frame, status, view.page, position),
        Screen::Shutdown => shutdown::render(&mut frame, status, view.shutdown, position),
    }
    frame
}
