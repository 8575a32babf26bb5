//! The status LED as a pure function of the box's state and the time.
//!
//! A heartbeat says "alive and fine" at a glance across a room; a fast blink asks for attention;
//! steady light means "busy restoring, leave me plugged in". Each pattern also says when it next
//! changes, so the panel loop sleeps until then instead of polling.

use std::time::Duration;

use crate::status::{BoxState, PanelStatus};

/// What the LED is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedPattern {
    /// Two short pulses every two seconds: healthy.
    Heartbeat,
    /// 4 Hz blink: there are alerts.
    FastBlink,
    /// On: a recovery is running.
    Steady,
    /// 1 Hz blink: starting up or shutting down.
    SlowBlink,
    /// Off.
    Off,
}

impl LedPattern {
    /// The pattern for a snapshot. Recovery wins over alerts (a recovering box has alerts by
    /// nature, and "do not unplug" matters more); shutting down wins over everything.
    pub fn for_status(status: &PanelStatus) -> LedPattern {
        if status.shutting_down {
            LedPattern::SlowBlink
        } else if status.recovery.is_some() || status.state == BoxState::Recovering {
            LedPattern::Steady
        } else if status.has_alerts() {
            LedPattern::FastBlink
        } else if status.state == BoxState::Starting {
            LedPattern::SlowBlink
        } else {
            LedPattern::Heartbeat
        }
    }

    /// Whether the LED is lit at `t`, and the time of the next change (`None`: never changes).
    pub fn at(self, t: Duration) -> (bool, Option<Duration>) {
        // (period, [on/off switch points within the period, starting lit at 0])
        let (period_ms, switches): (u64, &[u64]) = match self {
            LedPattern::Steady => return (true, None),
            LedPattern::Off => return (false, None),
            LedPattern::Heartbeat => (2000, &[0, 100, 250, 350]),
            LedPattern::FastBlink => (250, &[0, 125]),
            LedPattern::SlowBlink => (1000, &[0, 500]),
        };
        let ms = t.as_millis() as u64;
        let phase = ms % period_ms;
        let base = ms - phase;
        // The index of the last switch at or before the phase says on (even) or off (odd).
        let idx = switches.iter().rposition(|&s| s <= phase).unwrap_or(0);
        let next = switches
            .get(idx + 1)
            .map_or(base + period_ms, |&s| base + s);
        (idx % 2 == 0, Some(Duration::from_millis(next)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Alert, RecoveryPhase, RecoveryProgress};

    fn lit_ms(p: LedPattern, from: u64, to: u64) -> u64 {
        (from..to)
            .filter(|&ms| p.at(Duration::from_millis(ms)).0)
            .count() as u64
    }

    #[test]
    fn heartbeat_is_two_pulses_per_two_seconds() {
        let p = LedPattern::Heartbeat;
        assert_eq!(lit_ms(p, 0, 2000), 200);
        assert!(p.at(Duration::from_millis(50)).0);
        assert!(!p.at(Duration::from_millis(200)).0);
        assert!(p.at(Duration::from_millis(300)).0);
        assert!(!p.at(Duration::from_millis(1999)).0);
        assert_eq!(
            p.at(Duration::from_millis(400)).1,
            Some(Duration::from_millis(2000))
        );
        assert_eq!(
            p.at(Duration::from_millis(2050)).1,
            Some(Duration::from_millis(2100))
        );
    }

    #[test]
    fn next_change_is_really_a_change() {
        for p in [
            LedPattern::Heartbeat,
            LedPattern::FastBlink,
            LedPattern::SlowBlink,
        ] {
            let mut t = Duration::ZERO;
            for _ in 0..20 {
                let (on, next) = p.at(t);
                let next = next.unwrap();
                assert!(next > t);
                assert_eq!(
                    p.at(next - Duration::from_millis(1)).0,
                    on,
                    "{p:?} at {t:?}"
                );
                assert_ne!(p.at(next).0, on, "{p:?} at {next:?}");
                t = next;
            }
        }
        assert_eq!(LedPattern::Steady.at(Duration::from_secs(9)), (true, None));
    }

    #[test]
    fn state_picks_the_pattern() {
        let mut s = PanelStatus {
            state: BoxState::Healthy,
            ..Default::default()
        };
        assert_eq!(LedPattern::for_status(&s), LedPattern::Heartbeat);
        s.alerts.push(Alert::LightningOffline);
        assert_eq!(LedPattern::for_status(&s), LedPattern::FastBlink);
        s.recovery = Some(RecoveryProgress {
            phase: RecoveryPhase::FindingManifest,
            files_done: 0,
            files_total: 0,
            bytes_done: 0,
            bytes_total: 0,
        });
        assert_eq!(LedPattern::for_status(&s), LedPattern::Steady);
        s.shutting_down = true;
        assert_eq!(LedPattern::for_status(&s), LedPattern::SlowBlink);
    }
}
