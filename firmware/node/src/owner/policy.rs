//! What the owner may ask for, and when replicas are next audited.

use std::time::Duration;

use rand::Rng;

use crate::config::Policy;

/// Most copies of one file on peers: past this, each copy costs more than
/// it adds, and a mistyped number would contract half the network.
pub(crate) const MAX_COPIES: u8 = 16;

/// Checks a policy, saying why it is refused.
pub(crate) fn check(policy: Policy) -> Result<(), String> {
    if !policy.keep_local && policy.copies < 2 {
        return Err(format!(
            "without a local copy at least 2 copies on peers are needed (asked for {})",
            policy.copies
        ));
    }
    if policy.copies > MAX_COPIES {
        return Err(format!("at most {MAX_COPIES} copies on peers (asked for {})", policy.copies));
    }
    Ok(())
}

/// `interval` randomised ±50%, so hosts cannot predict when they are asked.
pub(crate) fn jittered(interval: Duration) -> Duration {
    let ms = interval.as_millis().min(u64::MAX as u128) as u64;
    if ms < 2 {
        return interval;
    }
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms + ms / 2))
}

/// Unix time of the next check `interval` (randomised) after `now`.
pub(crate) fn next_due(now: i64, interval: Duration) -> i64 {
    now.saturating_add(jittered(interval).as_secs().max(1) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_local_copy_needs_two_peer_copies() {
        assert!(check(Policy { copies: 1, keep_local: false }).is_err());
        assert!(check(Policy { copies: 0, keep_local: false }).is_err());
        assert!(check(Policy { copies: 2, keep_local: false }).is_ok());
        assert!(check(Policy { copies: 0, keep_local: true }).is_ok());
        assert!(check(Policy { copies: MAX_COPIES + 1, keep_local: true }).is_err());
    }

    #[test]
    fn jitter_stays_within_half_either_side() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100));
            assert!(d >= Duration::from_secs(50) && d <= Duration::from_secs(150), "{d:?}");
        }
    }
}
