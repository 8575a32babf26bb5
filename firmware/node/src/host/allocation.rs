//! How much space this box gives peers, and to whom first (DESIGN §6).
//!
//! Capacity is the room of the data disks that take new data (each disk's
//! free space beyond its reserve, each file system counted once; a missing,
//! full, read-only or failing disk counts nothing) minus the safety margin,
//! minus what accepted contracts still have to upload (their space is
//! promised even though no byte has arrived), and never more than
//! `max_hosted_bytes` over all active hosting contracts. One object lives on
//! one disk, so a contract must also fit the roomiest disk. The owner's own
//! local copies live on the same disks, so they are already out of the free
//! space: the owner's files come first by construction.
//!
//! Who gets it: swap partners first, up to what they keep for us — the space
//! we owe them is held back from paid requests. Paid requests must pay at
//! least the floor; bids below our asking price may not take the last half
//! of the paid space, which stays for bids that pay what we ask or more, so
//! when space runs short the highest fee per byte gets it. Contracts are
//! never broken to make room.

use std::collections::HashMap;

use bunker_manifest::{ContractDirection, ContractState, Manifest, QueryError};
use bunker_net::PeerId;

use crate::config::HostingTerms;

/// Swap bytes between us and one peer (active swap contracts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SwapBalance {
    /// What the peer keeps for us.
    pub(crate) theirs_for_us: u64,
    /// What we keep for the peer.
    pub(crate) ours_for_them: u64,
}

impl SwapBalance {
    /// Space we still owe the peer in return for what it keeps for us.
    fn owed_to_them(&self) -> u64 {
        self.theirs_for_us.saturating_sub(self.ours_for_them)
    }
}

/// What the policy looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Capacity {
    /// Room for new data over the data disks that take it.
    pub(crate) free_bytes: u64,
    /// Room on the roomiest of those disks: the largest object that fits.
    pub(crate) largest_disk_bytes: u64,
    /// The disks in words (refusals name them: "sdb missing").
    pub(crate) disks: String,
    /// Sum of the sizes of all active hosting contracts (stored or not).
    pub(crate) committed_bytes: u64,
    /// Bytes of accepted contracts not uploaded yet (promised, not on disk).
    pub(crate) pending_bytes: u64,
    /// Swap balances per peer.
    pub(crate) swaps: HashMap<PeerId, SwapBalance>,
}

impl Capacity {
    /// Reads the contract side from the manifest; `free_bytes` from the caller.
    pub(crate) fn load(m: &Manifest, free_bytes: u64) -> Result<Capacity, QueryError> {
        let mut cap = Capacity { free_bytes, largest_disk_bytes: free_bytes, ..Capacity::default() };
        let hosting = m.contracts(ContractDirection::TheirsOnUs, ContractState::Active)?;
        let mut stored_bytes = 0u64;
        for c in &hosting {
            let c = &c.contract;
            cap.committed_bytes = cap.committed_bytes.saturating_add(c.size_bytes);
            if c.is_swap {
                let b = cap.swaps.entry(c.peer).or_default();
                b.ours_for_them = b.ours_for_them.saturating_add(c.size_bytes);
            }
        }
        for a in m.disk_allocation()? {
            stored_bytes = stored_bytes.saturating_add(a.hosted_bytes);
        }
        cap.pending_bytes = cap.committed_bytes.saturating_sub(stored_bytes);
        for c in m.contracts(ContractDirection::OursOnPeer, ContractState::Active)? {
            let c = &c.contract;
            if c.is_swap {
                let b = cap.swaps.entry(c.peer).or_default();
                b.theirs_for_us = b.theirs_for_us.saturating_add(c.size_bytes);
            }
        }
        Ok(cap)
    }

    /// Bytes that can still be promised to anyone.
    pub(crate) fn available(&self, terms: &HostingTerms) -> u64 {
        let disk = self
            .free_bytes
            .saturating_sub(terms.safety_margin_bytes)
            .saturating_sub(self.pending_bytes);
        match terms.max_hosted_bytes {
            Some(max) => disk.min(max.saturating_sub(self.committed_bytes)),
            None => disk,
        }
    }

    /// Space held back for swap partners, except `for_peer`'s own share.
    fn swap_reserve(&self, except: Option<&PeerId>) -> u64 {
        self.swaps
            .iter()
            .filter(|(p, _)| Some(*p) != except)
            .map(|(_, b)| b.owed_to_them())
            .fold(0u64, u64::saturating_add)
    }

    /// Bytes a paid request at `price` may take.
    pub(crate) fn paid_limit(&self, terms: &HostingTerms, peer: &PeerId, price: u64) -> u64 {
        if price < terms.price_floor_msat_per_gib_day {
            return 0;
        }
        let pool = self.available(terms).saturating_sub(self.swap_reserve(Some(peer)));
        if price >= terms.price_msat_per_gib_day {
            pool
        } else {
            pool / 2
        }
    }

    /// Whether a contract of `bytes` at `price` (0 and `swap` for a swap)
    /// from `peer` fits; the reason in words when it does not.
    pub(crate) fn admit(
        &self,
        terms: &HostingTerms,
        peer: &PeerId,
        bytes: u64,
        price: u64,
        swap: bool,
    ) -> Result<(), String> {
        let available = self.available(terms);
        if bytes > self.largest_disk_bytes && bytes <= available {
            return Err(format!(
                "not enough space on one disk: {bytes} bytes asked, the roomiest data disk takes {} ({})",
                self.largest_disk_bytes, self.disks
            ));
        }
        if swap {
            if !terms.accept_swaps {
                return Err("this box does not take swap contracts".into());
            }
            if price != 0 {
                return Err(format!("a swap contract carries no price, this one says {price} msat/GiB-day"));
            }
            let b = self.swaps.get(peer).copied().unwrap_or_default();
            if b.ours_for_them > b.theirs_for_us {
                return Err(format!(
                    "swap out of balance: we keep {} bytes for you, you keep {} for us; store ours first",
                    b.ours_for_them, b.theirs_for_us
                ));
            }
            if bytes > available {
                return Err(self.no_room(bytes, available));
            }
            return Ok(());
        }
        if price < terms.price_floor_msat_per_gib_day {
            return Err(format!(
                "price {price} msat/GiB-day is below this box's floor of {} msat/GiB-day",
                terms.price_floor_msat_per_gib_day
            ));
        }
        let limit = self.paid_limit(terms, peer, price);
        if bytes > limit {
            if bytes <= available && price < terms.price_msat_per_gib_day {
                return Err(format!(
                    "no room at {price} msat/GiB-day: {bytes} bytes asked, {limit} available at that price \
                     ({available} at our asking price of {} msat/GiB-day)",
                    terms.price_msat_per_gib_day
                ));
            }
            return Err(self.no_room(bytes, limit));
        }
        Ok(())
    }
}

impl Capacity {
    fn no_room(&self, bytes: u64, available: u64) -> String {
        if self.disks.is_empty() {
            format!("not enough space: {bytes} bytes asked, {available} available")
        } else {
            format!("not enough space: {bytes} bytes asked, {available} available ({})", self.disks)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> HostingTerms {
        HostingTerms {
            price_msat_per_gib_day: 100,
            retrieval_msat_per_gib: 1000,
            price_floor_msat_per_gib_day: 10,
            safety_margin_bytes: 1000,
            max_hosted_bytes: None,
            accept_swaps: true,
            ..HostingTerms::default()
        }
    }

    fn peer() -> PeerId {
        PeerId::random()
    }

    #[test]
    fn capacity_is_free_space_minus_margin_minus_promises_capped_by_max() {
        let mut cap = Capacity { free_bytes: 11_000, largest_disk_bytes: u64::MAX, committed_bytes: 3000, pending_bytes: 2000, ..Default::default() };
        assert_eq!(cap.available(&terms()), 8000);
        let mut t = terms();
        t.max_hosted_bytes = Some(5000);
        assert_eq!(cap.available(&t), 2000);
        cap.committed_bytes = 6000;
        assert_eq!(cap.available(&t), 0);
        assert!(cap.admit(&t, &peer(), 1, 100, false).unwrap_err().contains("not enough space"));
    }

    #[test]
    fn floor_and_highest_fee_first() {
        let cap = Capacity { free_bytes: 11_000, largest_disk_bytes: u64::MAX, ..Default::default() };
        let p = peer();
        let e = cap.admit(&terms(), &p, 10, 9, false).unwrap_err();
        assert!(e.contains("below this box's floor"), "{e}");
        // At our price: all 10 000 bytes. Above the floor but cheaper: half.
        cap.admit(&terms(), &p, 10_000, 100, false).unwrap();
        cap.admit(&terms(), &p, 5000, 50, false).unwrap();
        let e = cap.admit(&terms(), &p, 6000, 50, false).unwrap_err();
        assert!(e.contains("at our asking price"), "{e}");
    }

    #[test]
    fn swap_partners_come_first_up_to_what_they_keep_for_us() {
        let partner = peer();
        let other = peer();
        let mut cap = Capacity { free_bytes: 11_000, largest_disk_bytes: u64::MAX, ..Default::default() };
        cap.swaps.insert(partner, SwapBalance { theirs_for_us: 6000, ours_for_them: 0 });
        // A paying stranger cannot take the 6000 bytes we owe the partner.
        assert!(cap.admit(&terms(), &other, 5000, 100, false).is_err());
        cap.admit(&terms(), &other, 4000, 100, false).unwrap();
        // The partner gets its swap.
        cap.admit(&terms(), &partner, 6000, 0, true).unwrap();
        // A partner already ahead of us waits for its side.
        cap.swaps.insert(partner, SwapBalance { theirs_for_us: 1000, ours_for_them: 2000 });
        assert!(cap.admit(&terms(), &partner, 10, 0, true).unwrap_err().contains("out of balance"));
        let mut t = terms();
        t.accept_swaps = false;
        assert!(cap.admit(&t, &other, 10, 0, true).is_err());
        assert!(cap.admit(&terms(), &other, 10, 5, true).unwrap_err().contains("no price"));
    }

    #[test]
    fn an_object_must_fit_one_disk_and_refusals_name_the_disks() {
        let cap = Capacity {
            free_bytes: 20_000,
            largest_disk_bytes: 6000,
            disks: "data disks: a active, b missing".into(),
            ..Default::default()
        };
        cap.admit(&terms(), &peer(), 5000, 100, false).unwrap();
        let e = cap.admit(&terms(), &peer(), 7000, 100, false).unwrap_err();
        assert!(e.contains("on one disk") && e.contains("b missing"), "{e}");
        let none = Capacity { disks: "data disks: a full, b missing".into(), ..Default::default() };
        let e = none.admit(&terms(), &peer(), 10, 100, false).unwrap_err();
        assert!(e.contains("not enough space") && e.contains("a full"), "{e}");
    }
}
