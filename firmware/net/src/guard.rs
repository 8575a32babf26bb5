//! Per-peer accounting of inbound bulk streams: a peer gets a bounded number of concurrent
//! slots, and asking for one more is treated as abuse (the caller cuts the peer off).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use libp2p::PeerId;

/// Shared counter of open inbound bulk streams per peer.
#[derive(Clone, Default)]
pub(crate) struct PeerGuard {
    counts: Arc<Mutex<HashMap<PeerId, usize>>>,
}

/// One held slot; frees itself on drop, however the stream ends.
pub(crate) struct Slot {
    peer: PeerId,
    counts: Arc<Mutex<HashMap<PeerId, usize>>>,
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
        Some(Slot { peer, counts: self.counts.clone() })
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
}
