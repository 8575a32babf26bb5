//! The panel loop: one OS thread that owns the display and the LED, sleeps until something is
//! due, and never makes the engine wait.
//!
//! A thread rather than an async task because the I2C and GPIO calls block (a full frame is
//! ~25 ms of bus time at 400 kHz); the engine's runtime never runs them. The engine side only
//! stores the newest snapshot and pokes a bounded channel, both non-blocking: when the loop is
//! slow, snapshots coalesce to the newest, which is all the screen needs.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::display::{PanelDisplay, StatusLed};
use crate::status::PanelStatus;
use crate::ui::{Panel, PanelAction, PanelConfig, ScreenPower};

/// Pending inputs the loop may lag behind by before new ones are refused.
const INBOX: usize = 256;
/// The loop wakes at least this often even with nothing due, so a lost wake-up costs at most
/// this much.
const MAX_SLEEP: Duration = Duration::from_secs(30);
/// After a failed display write, wait this long before trying again (a missing panel must not
/// make the loop spin on bus errors).
const DISPLAY_RETRY: Duration = Duration::from_secs(5);
/// The longest simulated press accepted from the local API.
pub const MAX_SIMULATED_HOLD: Duration = Duration::from_secs(10);
/// Released time between two simulated presses; well above the debounce time.
const PRESS_GAP: Duration = Duration::from_millis(100);

enum Input {
    Status,
    Edge {
        button: usize,
        pressed: bool,
        at: Instant,
    },
    Stop,
}

/// Why a button event from outside was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanelInputError {
    /// The panel has fewer buttons.
    #[error("button {button} does not exist; the panel has {buttons}")]
    NoSuchButton {
        /// Index asked for.
        button: usize,
        /// Buttons fitted.
        buttons: usize,
    },
    /// A simulated press longer than [`MAX_SIMULATED_HOLD`].
    #[error("a press of {hold:?} is longer than the {max:?} allowed")]
    HoldTooLong {
        /// Requested hold.
        hold: Duration,
        /// The cap.
        max: Duration,
    },
    /// The loop is 256 inputs behind.
    #[error("the panel is busy; button event dropped")]
    Busy,
    /// The loop has stopped.
    #[error("the panel has stopped")]
    Stopped,
}

/// Starting the panel thread failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The OS refused a thread.
    #[error("starting the panel thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Sends edges of one button into the loop; cheap to clone into a GPIO interrupt callback.
#[derive(Debug, Clone)]
pub struct EdgeSender {
    inbox: SyncSender<Input>,
    button: usize,
}

impl EdgeSender {
    /// Reports a raw level change seen now (`pressed` = contact closed).
    pub fn send(&self, pressed: bool) -> Result<(), PanelInputError> {
        send(
            &self.inbox,
            Input::Edge {
                button: self.button,
                pressed,
                at: Instant::now(),
            },
        )
    }
}

fn send(inbox: &SyncSender<Input>, input: Input) -> Result<(), PanelInputError> {
    inbox.try_send(input).map_err(|e| match e {
        TrySendError::Full(_) => PanelInputError::Busy,
        TrySendError::Disconnected(_) => PanelInputError::Stopped,
    })
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Input::Status => f.write_str("Status"),
            Input::Edge {
                button, pressed, ..
            } => write!(f, "Edge({button}, {pressed})"),
            Input::Stop => f.write_str("Stop"),
        }
    }
}

/// The engine's side of a running panel. Dropping it stops the loop.
pub struct PanelHandle {
    inbox: SyncSender<Input>,
    latest: Arc<Mutex<Option<PanelStatus>>>,
    buttons: usize,
    /// Earliest start of the next simulated press.
    next_press: Mutex<Option<Instant>>,
    thread: Option<JoinHandle<()>>,
    /// Things that must live as long as the loop (GPIO pins whose interrupts feed it).
    guards: Vec<Box<dyn Send>>,
}

impl std::fmt::Debug for PanelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PanelHandle")
            .field("buttons", &self.buttons)
            .finish_non_exhaustive()
    }
}

impl PanelHandle {
    /// Hands the panel a new snapshot. Never blocks; snapshots not yet drawn are replaced.
    pub fn set_status(&self, status: PanelStatus) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = Some(status);
        // A full inbox already holds a wake-up; the loop reads the newest snapshot then.
        let _ = self.inbox.try_send(Input::Status);
    }

    /// A sender for the raw edges of button `button` (for GPIO interrupts).
    pub fn edge_sender(&self, button: usize) -> Result<EdgeSender, PanelInputError> {
        self.check_button(button)?;
        Ok(EdgeSender {
            inbox: self.inbox.clone(),
            button,
        })
    }

    /// A raw edge of `button` seen now.
    pub fn button_edge(&self, button: usize, pressed: bool) -> Result<(), PanelInputError> {
        self.edge_sender(button)?.send(pressed)
    }

    /// A whole press of `button` held for `hold`, as the simulator's buttons and the local API
    /// send it: a down edge now and an up edge `hold` later (timestamps, not a wait: the loop's
    /// debouncer classifies it at once).
    pub fn press(&self, button: usize, hold: Duration) -> Result<(), PanelInputError> {
        self.check_button(button)?;
        if hold > MAX_SIMULATED_HOLD {
            return Err(PanelInputError::HoldTooLong {
                hold,
                max: MAX_SIMULATED_HOLD,
            });
        }
        // Presses sent back to back must not overlap in time, or the debouncer would rightly
        // see one long bouncy press: each starts a gap after the previous one ended.
        let at = {
            let mut next = self.next_press.lock().unwrap_or_else(|p| p.into_inner());
            let at = next.map_or_else(Instant::now, |n| n.max(Instant::now()));
            *next = Some(at + hold + PRESS_GAP);
            at
        };
        send(
            &self.inbox,
            Input::Edge {
                button,
                pressed: true,
                at,
            },
        )?;
        send(
            &self.inbox,
            Input::Edge {
                button,
                pressed: false,
                at: at + hold,
            },
        )
    }

    /// Keeps `guard` alive as long as the panel runs.
    pub fn keep(&mut self, guard: Box<dyn Send>) {
        self.guards.push(guard);
    }

    /// Stops the loop and waits for it (the display keeps its last frame).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        // Interrupt callbacks first, so nothing feeds a stopping loop.
        self.guards.clear();
        let _ = self.inbox.try_send(Input::Stop);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the panel thread panicked");
            }
        }
    }

    fn check_button(&self, button: usize) -> Result<(), PanelInputError> {
        if button >= self.buttons {
            return Err(PanelInputError::NoSuchButton {
                button,
                buttons: self.buttons,
            });
        }
        Ok(())
    }
}

impl Drop for PanelHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Starts the panel loop on its own thread with `display` and, if fitted, `led`. `on_action`
/// runs on the panel thread: hand the action to the engine (e.g. through a channel), do not
/// shut down from inside it.
pub fn spawn(
    config: PanelConfig,
    status: PanelStatus,
    display: Box<dyn PanelDisplay>,
    led: Option<Box<dyn StatusLed>>,
    on_action: impl FnMut(PanelAction) + Send + 'static,
) -> Result<PanelHandle, SpawnError> {
    let (inbox, rx) = sync_channel(INBOX);
    let latest = Arc::new(Mutex::new(None));
    let buttons = config.buttons.max(1);
    let shared = latest.clone();
    let thread = std::thread::Builder::new()
        .name("bunker-panel".into())
        .spawn(move || {
            let mut lp = Loop {
                origin: Instant::now(),
                display,
                led,
                on_action: Box::new(on_action),
                shown_rev: None,
                shown_power: None,
                led_on: None,
                display_retry_at: None,
                display_failed: false,
            };
            lp.run(config, status, rx, shared);
        })?;
    Ok(PanelHandle {
        inbox,
        latest,
        buttons,
        next_press: Mutex::new(None),
        thread: Some(thread),
        guards: Vec::new(),
    })
}

struct Loop {
    origin: Instant,
    display: Box<dyn PanelDisplay>,
    led: Option<Box<dyn StatusLed>>,
    on_action: Box<dyn FnMut(PanelAction) + Send>,
    shown_rev: Option<u64>,
    shown_power: Option<ScreenPower>,
    led_on: Option<bool>,
    display_retry_at: Option<Duration>,
    display_failed: bool,
}

impl Loop {
    fn since(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.origin)
    }

    fn run(
        &mut self,
        config: PanelConfig,
        status: PanelStatus,
        rx: Receiver<Input>,
        latest: Arc<Mutex<Option<PanelStatus>>>,
    ) {
        let mut panel = Panel::new(config, status, Duration::ZERO);
        loop {
            let now = self.since(Instant::now());
            for action in panel.tick(now) {
                (self.on_action)(action);
            }
            self.update_outputs(&panel, now);
            let led_next = panel.led(now).1;
            let due = [panel.next_deadline(now), led_next, self.display_retry_at]
                .into_iter()
                .flatten()
                .min();
            let wait = due.map_or(MAX_SLEEP, |d| d.saturating_sub(now).min(MAX_SLEEP));
            match rx.recv_timeout(wait) {
                Ok(Input::Status) => {
                    let newest = latest.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(s) = newest {
                        panel.set_status(s, self.since(Instant::now()));
                    }
                }
                Ok(Input::Edge {
                    button,
                    pressed,
                    at,
                }) => {
                    for action in panel.button_edge(button, pressed, self.since(at)) {
                        (self.on_action)(action);
                    }
                }
                Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        if let Some(led) = &mut self.led {
            let _ = led.set(false);
        }
        // A stopped daemon must not leave stale figures on the glass; but "shutting down" stays
        // up until the power goes.
        if !panel.status().shutting_down {
            let _ = self.display.set_power(ScreenPower::Off);
        }
    }

    fn update_outputs(&mut self, panel: &Panel, now: Duration) {
        let power = panel.power(now);
        let retry_due = self.display_retry_at.is_none_or(|t| now >= t);
        if retry_due {
            // Draw before lighting up, so a waking screen never flashes the stale frame; while
            // the screen is off, nothing is drawn at all.
            let mut result = Ok(());
            if power != ScreenPower::Off && self.shown_rev != Some(panel.revision()) {
                result = self.display.show(&panel.frame());
                if result.is_ok() {
                    self.shown_rev = Some(panel.revision());
                }
            }
            if result.is_ok() && self.shown_power != Some(power) {
                result = self.display.set_power(power);
                if result.is_ok() {
                    self.shown_power = Some(power);
                }
            }
            match result {
                Ok(()) => {
                    if self.display_failed {
                        tracing::info!("panel display works again");
                    }
                    self.display_failed = false;
                    self.display_retry_at = None;
                }
                Err(e) => {
                    if !self.display_failed {
                        tracing::warn!(error = %e, "panel display failed; retrying every {:?}", DISPLAY_RETRY);
                    }
                    self.display_failed = true;
                    self.display_retry_at = Some(now + DISPLAY_RETRY);
                }
            }
        }
        let (on, _) = panel.led(now);
        if self.led_on != Some(on) {
            if let Some(led) = &mut self.led {
                match led.set(on) {
                    Ok(()) => self.led_on = Some(on),
                    Err(e) => {
                        // Logged once: an LED that cannot be set will not start working.
                        tracing::warn!(error = %e, "status LED failed; running without it");
                        self.led = None;
                    }
                }
            }
        }
    }
}
