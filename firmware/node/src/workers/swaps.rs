//! Swap enforcement: every so often, a swap partner that lost one of our
//! copies more than `hosting.swap_grace` ago loses as many bytes of what we
//! keep for it (`host::swap_default` holds the rule).

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::host::swap_default::enforce;
use crate::node::Inner;
use crate::workers::{jittered, Worker};

/// How often the books are looked at: an eighth of the grace period, at
/// least every second (tests) and at most every hour.
fn interval(grace: Duration) -> Duration {
    (grace / 8).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// Starts the swap-enforcement loop.
pub(crate) fn spawn(inner: Arc<Inner>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let w = Worker::new(&inner, "swaps");
        let grace = inner.config.hosting.swap_grace;
        while w.sleep(&inner, jittered(interval(grace))).await {
            let _permit = inner.workers.throttle().background().await;
            match enforce(&inner, grace).await {
                Ok(dropped) if dropped.is_empty() => w.done("every swap partner keeps what it owes"),
                Ok(dropped) => {
                    let bytes: u64 = dropped.iter().map(|(_, _, n)| n).sum();
                    w.done(format!("{} copies ({bytes} bytes) of defaulting swap partners dropped", dropped.len()));
                }
                Err(e) => w.set_error(e),
            }
        }
        w.set_state("stopped");
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_week_of_grace_is_checked_hourly_and_seconds_of_grace_every_second() {
        assert_eq!(interval(Duration::from_secs(7 * 86_400)), Duration::from_secs(3600));
        assert_eq!(interval(Duration::from_secs(2)), Duration::from_secs(1));
    }
}
