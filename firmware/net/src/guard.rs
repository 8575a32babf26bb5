//! Per-peer accounting of bulk streams. Inbound: a peer gets a bounded number of concurrent
//! slots, and asking for one more is treated as abuse (the caller cuts the peer off). Outbound:
//! we wait for a slot of our own before opening a stream, so that a box doing many transfers
//! with one peer at once (a restore, several downloads) never looks like that abuse.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use libp2p::PeerId;
use tokio::sync::Notify;

/// Shared counter of open bulk streams per peer.
#[derive(Clone, Default)]
pub(crate) struct PeerGuard {
    counts: Arc<Mutex<HashMap<PeerId, usize>>>,
    freed: Arc<Notify>,
}

/// One held slot; frees itself on drop, however the stream ends.
pub(crate) struct Slot {
    peer: PeerId,
    counts: Arc<Mutex<HashMap<PeerId, usize>>>,
    freed: Arc<Notify>,
}

impl PeerGuard {
    /// Takes a slot for `peer` unless it already holds `max`.
    pub(crate) fn try_acquire(&self, peer: PeerId, max: usize) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(peer).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot { peer, counts: self.counts.clone(), freed: self.freed.clone() })
    }

    /// Waits up to `within` for a slot for `peer` (at most `max` held at once).
    pub(crate) async fn acquire(&self, peer: PeerId, max: usize, within: Duration) -> Option<Slot> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            // Registered before the check, so a slot freed in between still wakes us.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_acquire(peer, max) {
                return Some(slot);
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return None;
            }
        }
    }

    /// Slots `peer` holds now.
    #[cfg(test)]
    pub(crate) fn held(&self, peer: &PeerId) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(peer).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
        drop(counts);
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_per_peer_and_freed_on_drop() {
        let guard = PeerGuard::default();
        let a = PeerId::random();
        let b = PeerId::random();
        let s1 = guard.try_acquire(a, 2).expect("first slot");
        let _s2 = guard.try_acquire(a, 2).expect("second slot");
        assert!(guard.try_acquire(a, 2).is_none(), "third slot must be refused");
        assert!(guard.try_acquire(b, 2).is_some(), "another peer is not affected");
        drop(s1);
        assert_eq!(guard.held(&a), 1);
        assert!(guard.try_acquire(a, 2).is_some());
    }

    #[tokio::test]
    async fn a_waiting_acquire_gets_the_slot_freed_and_gives_up_at_its_deadline() {
        let guard = PeerGuard::default();
        let a = PeerId::random();
        let held = guard.try_acquire(a, 1).expect("first slot");
        let waiter = {
            let guard = guard.clone();
            tokio::spawn(async move { guard.acquire(a, 1, Duration::from_secs(10)).await.is_some() })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(held);
        assert!(waiter.await.unwrap(), "the freed slot goes to the waiter");
        let _held = guard.try_acquire(a, 1).expect("free again after the waiter dropped it");
        let started = tokio::time::Instant::now();
        assert!(guard.acquire(a, 1, Duration::from_millis(100)).await.is_none(), "no slot within the deadline");
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
