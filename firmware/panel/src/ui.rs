//! The panel's behaviour: which screen is up, what the buttons do, when the screen dims.
//!
//! Pure and clocked from outside, like [`crate::buttons`]: the loop (or a test) feeds snapshots,
//! button edges and the time, and reads back the view, the screen power, the LED and the
//! actions for the daemon. Rules:
//! - Short press: next screen (a second button, if fitted, goes back). Long press: select
//!   (turn the page of alerts and disks; on the shutdown screen, ask to shut down, and a second
//!   long press confirms, a short press or 10 s without one cancels).
//! - A press that wakes a sleeping screen only wakes it.
//! - A press is bound to the screen it started on: if the screen changes while the button is
//!   held (an alert arrived, setup finished), the press does nothing on the new screen.
//! - OLED care: dim after 1 min, off after 5 min without a button; a button or a new alert
//!   wakes it. While shutting down it stays on.

use std::time::Duration;

use crate::buttons::{Button, ButtonEvent, ButtonTiming};
use crate::frame::Frame;
use crate::led::LedPattern;
use crate::screens::{render, Screen, ShutdownStage, View};
use crate::status::PanelStatus;

/// Timings and button count.
#[derive(Debug, Clone)]
pub struct PanelConfig {
    /// Debounce and long-press time.
    pub timing: ButtonTiming,
    /// Buttons fitted: the first walks forward; a second, if present, walks back.
    pub buttons: usize,
    /// Idle time before the screen dims.
    pub dim_after: Duration,
    /// Idle time before the screen turns off (OLED pixels wear with hours lit).
    pub sleep_after: Duration,
    /// How long the shutdown question waits for its confirmation.
    pub confirm_timeout: Duration,
}

impl Default for PanelConfig {
    fn default() -> Self {
        Self {
            timing: ButtonTiming::default(),
            buttons: 1,
            dim_after: Duration::from_secs(60),
            sleep_after: Duration::from_secs(300),
            confirm_timeout: Duration::from_secs(10),
        }
    }
}

/// How bright the screen is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScreenPower {
    /// Normal brightness.
    On,
    /// Lowest contrast.
    Dim,
    /// Display off (RAM kept).
    Off,
}

/// Something the daemon must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PanelAction {
    /// The owner confirmed a safe shutdown on the panel.
    Shutdown,
}

#[derive(Debug, Clone, Copy)]
struct Press {
    /// The screen epoch when the press began.
    epoch: u64,
    /// The press woke the screen and must do nothing else.
    wake_only: bool,
}

/// The panel's state machine.
#[derive(Debug)]
pub struct Panel {
    config: PanelConfig,
    status: PanelStatus,
    view: View,
    buttons: Vec<(Button, Option<Press>)>,
    last_activity: Duration,
    /// Bumped on every screen change; a press remembers the epoch it started in.
    screen_epoch: u64,
    confirm_since: Option<Duration>,
    /// Bumped whenever what the screen shows may have changed.
    revision: u64,
}

impl Panel {
    /// A panel showing the status screen, lit, as of `now`.
    pub fn new(config: PanelConfig, status: PanelStatus, now: Duration) -> Self {
        let buttons = (0..config.buttons.max(1))
            .map(|_| (Button::new(config.timing), None))
            .collect();
        let mut panel = Self {
            config,
            status,
            view: View::of(Screen::Status),
            buttons,
            last_activity: now,
            screen_epoch: 0,
            confirm_since: None,
            revision: 0,
        };
        panel.fit_view();
        panel
    }

    /// The snapshot on display.
    pub fn status(&self) -> &PanelStatus {
        &self.status
    }

    /// The screen, page and dialogue on display.
    pub fn view(&self) -> View {
        self.view
    }

    /// Changes whenever the rendered frame may change; the loop renders only then.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The frame for the current view and snapshot.
    pub fn frame(&self) -> Frame {
        render(&self.view, &self.status)
    }

    /// Screen brightness at `now`.
    pub fn power(&self, now: Duration) -> ScreenPower {
        if self.status.shutting_down {
            return ScreenPower::On;
        }
        let idle = now.saturating_sub(self.last_activity);
        if idle >= self.config.sleep_after {
            ScreenPower::Off
        } else if idle >= self.config.dim_after {
            ScreenPower::Dim
        } else {
            ScreenPower::On
        }
    }

    /// LED level at `now` and when it next changes.
    pub fn led(&self, now: Duration) -> (bool, Option<Duration>) {
        LedPattern::for_status(&self.status).at(now)
    }

    /// Takes a new snapshot. A new alert wakes the screen and brings up the alerts screen
    /// (unless the owner is answering the shutdown question).
    pub fn set_status(&mut self, status: PanelStatus, now: Duration) {
        let new_alert = status
            .alerts
            .iter()
            .any(|a| !self.status.alerts.contains(a));
        self.status = status;
        self.revision += 1;
        if new_alert {
            self.last_activity = self.last_activity.max(now);
            if self.view.shutdown != ShutdownStage::Confirming {
                self.go_to(Screen::Alerts);
                // Even if the alerts screen was already up, what is under the owner's finger
                // changed: a press in progress must not act on news it did not see.
                self.screen_epoch += 1;
            }
        }
        self.fit_view();
    }

    /// Feeds a raw edge of button `index` (out-of-range indexes are ignored).
    pub fn button_edge(&mut self, index: usize, pressed: bool, at: Duration) -> Vec<PanelAction> {
        if index >= self.buttons.len() {
            tracing::debug!(index, "edge for a button the panel does not have");
            return Vec::new();
        }
        // Let every button's own time pass to `at` first, so that events
        // come out in the order they happened: a press that begins after
        // another button's release must see the screen that release made
        // (back-to-back presses from the local API arrive with future times).
        let mut actions = self.tick(at);
        let Some((button, _)) = self.buttons.get_mut(index) else { return actions };
        let events = button.edge(pressed, at);
        for ev in events {
            self.on_event(index, ev, at, &mut actions);
        }
        actions
    }

    /// Lets time pass to `now`: long presses, dialogue time-out.
    pub fn tick(&mut self, now: Duration) -> Vec<PanelAction> {
        let mut actions = Vec::new();
        for index in 0..self.buttons.len() {
            let events = self.buttons[index].0.poll(now);
            for ev in events {
                self.on_event(index, ev, now, &mut actions);
            }
        }
        if let Some(since) = self.confirm_since {
            if now >= since + self.config.confirm_timeout {
                self.cancel_confirm();
            }
        }
        actions
    }

    /// The next time [`Panel::tick`] has something to do, or the screen power changes.
    pub fn next_deadline(&self, now: Duration) -> Option<Duration> {
        let buttons = self.buttons.iter().filter_map(|(b, _)| b.next_deadline());
        let confirm = self.confirm_since.map(|s| s + self.config.confirm_timeout);
        let power = [self.config.dim_after, self.config.sleep_after]
            .into_iter()
            .map(|d| self.last_activity + d)
            .filter(|t| *t > now);
        buttons.chain(confirm).chain(power).min()
    }

    fn on_event(
        &mut self,
        index: usize,
        ev: ButtonEvent,
        now: Duration,
        out: &mut Vec<PanelAction>,
    ) {
        match ev {
            ButtonEvent::Down { at } => {
                let wake_only = self.power(at.max(self.last_activity)) == ScreenPower::Off;
                self.last_activity = self.last_activity.max(now);
                self.revision += 1;
                self.buttons[index].1 = Some(Press {
                    epoch: self.screen_epoch,
                    wake_only,
                });
            }
            ButtonEvent::Short => {
                if self.take_valid_press(index).is_some() {
                    if self.view.shutdown == ShutdownStage::Confirming {
                        self.cancel_confirm();
                    } else if index == 1 {
                        self.step(-1);
                    } else {
                        self.step(1);
                    }
                }
            }
            ButtonEvent::Long => {
                if self.take_valid_press(index).is_some() {
                    self.select(now, out);
                }
            }
        }
    }

    /// The press that just ended, if it may act: not a wake-up, and on the screen it began on.
    fn take_valid_press(&mut self, index: usize) -> Option<Press> {
        let press = self.buttons[index].1.take()?;
        (!press.wake_only && press.epoch == self.screen_epoch).then_some(press)
    }

    fn select(&mut self, now: Duration, out: &mut Vec<PanelAction>) {
        match self.view.screen {
            Screen::Shutdown => match self.view.shutdown {
                ShutdownStage::Idle => {
                    self.view.shutdown = ShutdownStage::Confirming;
                    self.confirm_since = Some(now);
                    self.revision += 1;
                }
                ShutdownStage::Confirming => {
                    self.cancel_confirm();
                    tracing::info!("safe shutdown confirmed on the panel");
                    out.push(PanelAction::Shutdown);
                }
            },
            screen => {
                let pages = screen.pages(&self.status);
                if pages > 1 {
                    self.view.page = (self.view.page + 1) % pages;
                    self.revision += 1;
                }
            }
        }
    }

    fn cancel_confirm(&mut self) {
        self.view.shutdown = ShutdownStage::Idle;
        self.confirm_since = None;
        self.revision += 1;
    }

    fn step(&mut self, dir: isize) {
        let cycle = Screen::cycle(&self.status);
        let here = cycle
            .iter()
            .position(|s| *s == self.view.screen)
            .unwrap_or(0) as isize;
        let n = cycle.len() as isize;
        let next = cycle[((here + dir).rem_euclid(n)) as usize];
        self.go_to(next);
    }

    fn go_to(&mut self, screen: Screen) {
        if self.view.screen != screen {
            self.screen_epoch += 1;
        }
        self.view = View::of(screen);
        self.confirm_since = None;
        self.revision += 1;
    }

    /// Keeps the view on a screen this snapshot has (setup and recovery come and go).
    fn fit_view(&mut self) {
        if self.status.shutting_down {
            if self.view.screen != Screen::Shutdown {
                self.go_to(Screen::Shutdown);
            }
        } else if !self.view.screen.is_shown(&self.status) {
            self.go_to(Screen::Status);
        }
        let pages = self.view.screen.pages(&self.status);
        if self.view.page >= pages {
            self.view.page = 0;
        }
    }
}
