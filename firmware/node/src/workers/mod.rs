//! Background work, one shape for all of it (DESIGN §8): audits, full
//! checks, repair, settlement, swap enforcement, manifest replication.
//!
//! Each loop holds a [`Worker`]: its name, a line of state text, when it is
//! next due and its last error, kept in the engine's [`Workers`] registry
//! that the status view reads. Before touching the disk or the network a
//! loop takes a [`Throttle::background`] permit, which waits while the owner
//! has a put or get running ([`Throttle::foreground`]): the user's own
//! transfers go first on a Pi's one USB disk. Intervals are randomised
//! ([`jittered`]) so peers cannot predict them.
//!
//! How a loop is written (see `settle.rs`):
//!
//! ```text
//! let w = Worker::new(&inner, "audit");
//! while w.sleep(&inner, jittered(interval)).await {
//!     let _permit = inner.workers.throttle().background().await;
//!     w.set_state("auditing 3 replicas");
//!     match step().await { Ok(n) => w.done(format!("{n} audited")), Err(e) => w.set_error(e.to_string()) }
//! }
//! ```

pub(crate) mod audit;
pub(crate) mod full_check;
pub(crate) mod repair;
pub(crate) mod settle;
pub(crate) mod swaps;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, SemaphorePermit};
use tokio::task::JoinHandle;

use crate::node::{now, Inner};

/// Background steps that may run at once (a Pi has 4 cores and one disk).
const BACKGROUND_SLOTS: usize = 2;
/// Longest a background step waits for foreground work to finish before it
/// runs anyway: a box that is always busy still audits and pays.
const MAX_DEFER: Duration = Duration::from_secs(30);

/// Starts every background loop of the engine.
pub(crate) fn spawn_all(inner: Arc<Inner>) -> Vec<JoinHandle<()>> {
    vec![
        audit::spawn(Arc::clone(&inner)),
        full_check::spawn(Arc::clone(&inner)),
        repair::spawn(Arc::clone(&inner)),
        settle::spawn(Arc::clone(&inner)),
        swaps::spawn(Arc::clone(&inner)),
        crate::replication::spawn(inner),
    ]
}

/// `d` randomised by ±50%.
pub(crate) fn jittered(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>())
}

/// What the admin page shows of one background loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WorkerStatus {
    /// Which loop ("audit", "settle", …).
    pub(crate) name: &'static str,
    /// What it is doing or last did, in words.
    pub(crate) state: String,
    /// Unix seconds of its next run, when known.
    pub(crate) next_due: Option<i64>,
    /// Its last error, cleared by the next success.
    pub(crate) last_error: Option<String>,
    /// Unix seconds of the end of its last run.
    pub(crate) last_run: Option<i64>,
    /// Runs completed since start.
    pub(crate) runs: u64,
}

/// The engine's workers and their throttle.
#[derive(Default)]
pub(crate) struct Workers {
    list: Mutex<Vec<Arc<Mutex<WorkerStatus>>>>,
    throttle: Throttle,
}

impl Workers {
    pub(crate) fn new() -> Workers {
        Workers::default()
    }

    /// Every registered worker's status, in registration order.
    pub(crate) fn statuses(&self) -> Vec<WorkerStatus> {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).clone()).collect()
    }

    /// Where background work yields to the owner's puts and gets.
    pub(crate) fn throttle(&self) -> &Throttle {
        &self.throttle
    }
}

/// One background loop's handle on its status.
pub(crate) struct Worker {
    status: Arc<Mutex<WorkerStatus>>,
}

impl Worker {
    /// Registers a worker named `name` with the engine.
    pub(crate) fn new(inner: &Inner, name: &'static str) -> Worker {
        let status = Arc::new(Mutex::new(WorkerStatus {
            name,
            state: "starting".into(),
            next_due: None,
            last_error: None,
            last_run: None,
            runs: 0,
        }));
        inner.workers.list.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::clone(&status));
        Worker { status }
    }

    fn with(&self, f: impl FnOnce(&mut WorkerStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }

    /// Sets the state line.
    pub(crate) fn set_state(&self, state: impl Into<String>) {
        let state = state.into();
        self.with(|s| s.state = state);
    }

    /// Sets when the next run is due (Unix seconds), or that it is unknown.
    pub(crate) fn set_next(&self, at: Option<i64>) {
        self.with(|s| s.next_due = at);
    }

    /// Records an error (shown until the next [`Worker::done`]).
    pub(crate) fn set_error(&self, error: impl Into<String>) {
        let error = error.into();
        tracing::warn!(worker = self.name(), %error, "background step failed");
        self.with(|s| {
            s.last_error = Some(error);
            s.last_run = Some(now());
            s.runs += 1;
        });
    }

    /// Records a successful run with its outcome as the state line.
    pub(crate) fn done(&self, state: impl Into<String>) {
        let state = state.into();
        self.with(|s| {
            s.state = state;
            s.last_error = None;
            s.last_run = Some(now());
            s.runs += 1;
        });
    }

    /// The worker's name.
    pub(crate) fn name(&self) -> &'static str {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).name
    }

    /// Waits `d` (recorded as the next due time); false when the engine is
    /// stopping and the loop should end.
    pub(crate) async fn sleep(&self, inner: &Inner, d: Duration) -> bool {
        self.set_next(Some(now().saturating_add(d.as_secs() as i64)));
        let mut stop = inner.stop.clone();
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => !*stop.borrow(),
            _ = stop.changed() => false,
        }
    }
}

/// Foreground first: owner transfers mark themselves with
/// [`Throttle::foreground`]; background steps take [`Throttle::background`].
pub(crate) struct Throttle {
    foreground: AtomicUsize,
    idle: Notify,
    background: Semaphore,
    max_defer: Duration,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle::new(BACKGROUND_SLOTS, MAX_DEFER)
    }
}

/// Held by an owner's put or get while it runs.
pub(crate) struct ForegroundGuard<'a> {
    throttle: &'a Throttle,
}

impl Drop for ForegroundGuard<'_> {
    fn drop(&mut self) {
        if self.throttle.foreground.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.throttle.idle.notify_waiters();
        }
    }
}

impl Throttle {
    fn new(slots: usize, max_defer: Duration) -> Throttle {
        Throttle { foreground: AtomicUsize::new(0), idle: Notify::new(), background: Semaphore::new(slots), max_defer }
    }

    /// Marks a foreground transfer until the guard is dropped.
    pub(crate) fn foreground(&self) -> ForegroundGuard<'_> {
        self.foreground.fetch_add(1, Ordering::AcqRel);
        ForegroundGuard { throttle: self }
    }

    /// Foreground transfers running now.
    pub(crate) fn foreground_active(&self) -> usize {
        self.foreground.load(Ordering::Acquire)
    }

    /// Waits until no foreground transfer runs (at most [`MAX_DEFER`] in production),
    /// then for one of the background slots.
    pub(crate) async fn background(&self) -> SemaphorePermit<'_> {
        let deadline = tokio::time::Instant::now() + self.max_defer;
        loop {
            let idle = self.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            if self.foreground_active() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        loop {
            match self.background.acquire().await {
                Ok(p) => return p,
                // The semaphore is never closed; if it were, wait and retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const DEFER: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn background_waits_for_foreground_to_finish() {
        let t = Arc::new(Throttle::new(2, Duration::from_secs(60)));
        let fg = t.foreground();
        let t2 = Arc::clone(&t);
        let start = Instant::now();
        let bg = tokio::spawn(async move {
            let _p = t2.background().await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!bg.is_finished(), "background must wait while a put runs");
        drop(fg);
        let ran_at = bg.await.unwrap();
        assert!(ran_at - start >= Duration::from_millis(300));
        assert!(ran_at - start < Duration::from_secs(30), "released as soon as the put ended");
    }

    #[tokio::test]
    async fn background_is_never_starved_forever() {
        let t = Throttle::new(2, DEFER);
        let _fg = t.foreground();
        let start = Instant::now();
        let _p = t.background().await;
        assert!(start.elapsed() >= DEFER);
    }

    #[tokio::test]
    async fn at_most_the_background_slots_run_at_once() {
        let t = Throttle::new(2, DEFER);
        let a = t.background().await;
        let _b = t.background().await;
        assert!(tokio::time::timeout(Duration::from_millis(50), t.background()).await.is_err());
        drop(a);
        let _c = tokio::time::timeout(Duration::from_millis(50), t.background()).await.expect("a slot freed");
    }
}
