//! One push button, debounced, turned into presses: short, long, and the moment it went down.
//!
//! Pure: the caller feeds raw level changes with their timestamps (from GPIO interrupts, or
//! synthetic ones in tests) and polls at [`Button::next_deadline`]. Time is a [`Duration`] since
//! any fixed origin; timestamps that run backwards are treated as "now" rather than trusted.

use std::time::Duration;

/// How long a level must hold before it counts, and how long a press must last to be long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ButtonTiming {
    /// Contact bounce of cheap tactile switches dies out within a few ms; 30 ms is safe and
    /// still feels instant.
    pub debounce: Duration,
    /// Held this long, a press is a long press (fires while still held, so the user feels it
    /// take effect without guessing when to let go).
    pub long_press: Duration,
}

impl Default for ButtonTiming {
    fn default() -> Self {
        Self {
            debounce: Duration::from_millis(30),
            long_press: Duration::from_millis(1500),
        }
    }
}

/// What a button did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ButtonEvent {
    /// Went down (after debouncing); `at` is when the stable press began.
    Down {
        /// Start of the press.
        at: Duration,
    },
    /// Released before the long-press time.
    Short,
    /// Held for the long-press time (reported once, while still held).
    Long,
}

/// The debouncer and press classifier for one button.
#[derive(Debug, Clone)]
pub struct Button {
    timing: ButtonTiming,
    /// Last raw level seen, and since when.
    raw: bool,
    raw_since: Duration,
    /// Debounced level.
    stable: bool,
    /// Start of the current debounced press.
    pressed_at: Option<Duration>,
    long_fired: bool,
    /// Latest timestamp seen, to clamp ones that go backwards.
    last: Duration,
}

impl Button {
    /// A released button.
    pub fn new(timing: ButtonTiming) -> Self {
        Self {
            timing,
            raw: false,
            raw_since: Duration::ZERO,
            stable: false,
            pressed_at: None,
            long_fired: false,
            last: Duration::ZERO,
        }
    }

    /// Whether the button is (debounced) down.
    pub fn is_down(&self) -> bool {
        self.stable
    }

    /// Feeds a raw level change (`pressed` = contact closed) seen at `at`.
    pub fn edge(&mut self, pressed: bool, at: Duration) -> Vec<ButtonEvent> {
        let at = self.clamp(at);
        let mut out = Vec::new();
        self.advance(at, &mut out);
        if pressed != self.raw {
            self.raw = pressed;
            self.raw_since = at;
        }
        out
    }

    /// Lets time pass to `now`: confirms levels that held long enough, fires long presses.
    pub fn poll(&mut self, now: Duration) -> Vec<ButtonEvent> {
        let now = self.clamp(now);
        let mut out = Vec::new();
        self.advance(now, &mut out);
        out
    }

    /// When [`Button::poll`] must next be called for events to come out on time; `None` while
    /// nothing is pending.
    pub fn next_deadline(&self) -> Option<Duration> {
        if self.raw != self.stable {
            Some(self.raw_since + self.timing.debounce)
        } else if self.stable && !self.long_fired {
            self.pressed_at.map(|p| p + self.timing.long_press)
        } else {
            None
        }
    }

    fn clamp(&mut self, t: Duration) -> Duration {
        self.last = self.last.max(t);
        self.last
    }

    fn advance(&mut self, now: Duration, out: &mut Vec<ButtonEvent>) {
        if self.raw != self.stable && now >= self.raw_since + self.timing.debounce {
            self.stable = self.raw;
            if self.stable {
                self.pressed_at = Some(self.raw_since);
                self.long_fired = false;
                out.push(ButtonEvent::Down { at: self.raw_since });
            } else if self.pressed_at.take().is_some() && !self.long_fired {
                out.push(ButtonEvent::Short);
            }
        }
        if self.stable && !self.long_fired {
            if let Some(p) = self.pressed_at {
                // A release still bouncing does not count as holding: only the stable level.
                let held_until = if self.raw { now } else { self.raw_since };
                if held_until >= p + self.timing.long_press {
                    self.long_fired = true;
                    out.push(ButtonEvent::Long);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn button() -> Button {
        Button::new(ButtonTiming::default())
    }

    #[test]
    fn short_press_is_reported_on_release() {
        let mut b = button();
        assert!(b.edge(true, ms(1000)).is_empty());
        assert_eq!(b.next_deadline(), Some(ms(1030)));
        assert_eq!(b.poll(ms(1030)), vec![ButtonEvent::Down { at: ms(1000) }]);
        assert!(b.edge(false, ms(1200)).is_empty());
        assert_eq!(b.poll(ms(1229)), vec![]);
        assert_eq!(b.poll(ms(1230)), vec![ButtonEvent::Short]);
        assert_eq!(b.next_deadline(), None);
    }

    #[test]
    fn long_press_fires_while_held_and_release_is_silent() {
        let mut b = button();
        b.edge(true, ms(0));
        assert_eq!(b.poll(ms(40)), vec![ButtonEvent::Down { at: ms(0) }]);
        assert_eq!(b.next_deadline(), Some(ms(1500)));
        assert_eq!(b.poll(ms(1499)), vec![]);
        assert_eq!(b.poll(ms(1500)), vec![ButtonEvent::Long]);
        assert_eq!(b.poll(ms(5000)), vec![]);
        b.edge(false, ms(6000));
        assert_eq!(b.poll(ms(7000)), vec![]);
        assert!(!b.is_down());
    }

    #[test]
    fn bounce_on_press_and_release_gives_one_short_press() {
        let mut b = button();
        let mut events = Vec::new();
        // Press: contact chatters for 6 ms.
        for (t, level) in [
            (100, true),
            (102, false),
            (103, true),
            (105, false),
            (106, true),
        ] {
            events.extend(b.edge(level, ms(t)));
        }
        events.extend(b.poll(ms(136)));
        // Release: chatters too.
        for (t, level) in [(400, false), (401, true), (404, false)] {
            events.extend(b.edge(level, ms(t)));
        }
        events.extend(b.poll(ms(500)));
        assert_eq!(
            events,
            vec![ButtonEvent::Down { at: ms(106) }, ButtonEvent::Short]
        );
    }

    #[test]
    fn a_glitch_shorter_than_the_debounce_is_ignored() {
        let mut b = button();
        b.edge(true, ms(10));
        b.edge(false, ms(15));
        assert_eq!(b.poll(ms(1000)), vec![]);
        assert_eq!(b.next_deadline(), None);
    }

    #[test]
    fn late_poll_still_classifies_by_the_edges() {
        // The loop may be late; the timestamps, not the poll time, decide.
        let mut b = button();
        b.edge(true, ms(0));
        let mut ev = b.edge(false, ms(300));
        ev.extend(b.poll(ms(10_000)));
        assert_eq!(
            ev,
            vec![ButtonEvent::Down { at: ms(0) }, ButtonEvent::Short]
        );

        let mut b = button();
        b.edge(true, ms(0));
        let mut ev = b.edge(false, ms(2000));
        ev.extend(b.poll(ms(10_000)));
        assert_eq!(ev, vec![ButtonEvent::Down { at: ms(0) }, ButtonEvent::Long]);
    }

    #[test]
    fn timestamps_running_backwards_do_not_panic_or_fire() {
        let mut b = button();
        b.edge(true, ms(5000));
        assert_eq!(b.poll(ms(10)), vec![]);
        assert_eq!(b.edge(false, ms(1)), vec![]);
        assert_eq!(b.poll(ms(6000)), vec![]);
    }

    #[test]
    fn repeated_edges_of_one_level_do_not_restart_the_press() {
        let mut b = button();
        b.edge(true, ms(0));
        b.edge(true, ms(20));
        assert_eq!(b.poll(ms(30)), vec![ButtonEvent::Down { at: ms(0) }]);
    }
}
