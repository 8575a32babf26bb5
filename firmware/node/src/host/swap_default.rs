//! A swap partner that loses what it keeps for us loses, after a grace
//! period, as many bytes of what we keep for it (DESIGN §5).
//!
//! Swaps carry no payment: the only thing that keeps a partner honest is
//! that its copies here depend on ours there. A partner defaults when one of
//! our swap replicas on it is declared lost (K failed audits in a row; the
//! repair worker places it elsewhere). Once `hosting.swap_grace` has passed
//! since that loss, we end the partner's swap contracts here, newest first,
//! and delete their bytes, until what we keep for it is no more than what it
//! still keeps for us — and never more than the bytes it lost for us, so a
//! partner is not punished for our own deletions and releases.
//!
//! Dropping never overshoots: a contract is ended only if it fits in what
//! is still due. Were we to drop more, the partner would see us keep less
//! for it than it keeps for us, count our drop as its loss, and drop in
//! return — each side's punishment becoming the other's default.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bunker_manifest::{ContractDirection, ContractId, ContractState, Manifest, QueryError, ReplicaState};
use bunker_net::PeerId;

use crate::host::contracts::discard;
use crate::node::{now, Inner};

/// One partner's swap books, as the policy needs them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PartnerBooks {
    /// Bytes of our active swap contracts on the partner: what it keeps for us.
    pub(crate) keeps_for_us: u64,
    /// Its active swap contracts here: id, bytes, accepted at (Unix s).
    pub(crate) kept_here: Vec<(ContractId, u64, i64)>,
    /// Bytes of our swap replicas on it declared lost before the grace started.
    pub(crate) lost_for_us: u64,
    /// Bytes of its swap contracts here already ended for a default.
    pub(crate) dropped: u64,
}

/// The partner's contracts to end now: newest first, each only if it fits
/// in what is still due (see the module doc for why never more).
pub(crate) fn to_drop(b: &PartnerBooks) -> Vec<ContractId> {
    let kept: u64 = b.kept_here.iter().map(|(_, n, _)| *n).fold(0, u64::saturating_add);
    let imbalance = kept.saturating_sub(b.keeps_for_us);
    let mut due = imbalance.min(b.lost_for_us.saturating_sub(b.dropped));
    let mut newest_first = b.kept_here.clone();
    newest_first.sort_by(|a, b| b.2.cmp(&a.2).then(b.0 .0.cmp(&a.0 .0)));
    let mut out = Vec::new();
    for (id, bytes, _) in newest_first {
        if due == 0 {
            break;
        }
        if bytes <= due {
            due -= bytes;
            out.push(id);
        }
    }
    out
}

/// Every partner that keeps swap copies here, with its books. `lost_before`:
/// losses after this time are still in their grace period.
pub(crate) fn load_books(m: &Manifest, lost_before: i64) -> Result<HashMap<PeerId, PartnerBooks>, QueryError> {
    let mut books: HashMap<PeerId, PartnerBooks> = HashMap::new();
    for r in m.contracts(ContractDirection::TheirsOnUs, ContractState::Active)? {
        let c = r.contract;
        if c.is_swap {
            books.entry(c.peer).or_default().kept_here.push((c.id, c.size_bytes, c.created_at));
        }
    }
    for r in m.contracts(ContractDirection::TheirsOnUs, ContractState::Broken)? {
        let c = r.contract;
        if let (true, Some(b)) = (c.is_swap, books.get_mut(&c.peer)) {
            b.dropped = b.dropped.saturating_add(c.size_bytes);
        }
    }
    for r in m.contracts(ContractDirection::OursOnPeer, ContractState::Active)? {
        let c = r.contract;
        if let (true, Some(b)) = (c.is_swap, books.get_mut(&c.peer)) {
            b.keeps_for_us = b.keeps_for_us.saturating_add(c.size_bytes);
        }
    }
    for (peer, b) in books.iter_mut() {
        for replica in m.replicas_on_host(peer)? {
            if replica.state != ReplicaState::Lost {
                continue;
            }
            let lost_at = replica.last_audit_at.unwrap_or(replica.created_at);
            let Some(cid) = replica.contract else { continue };
            let Some(c) = m.contract(&cid)? else { continue };
            if c.contract.is_swap && c.contract.direction == ContractDirection::OursOnPeer && lost_at < lost_before {
                b.lost_for_us = b.lost_for_us.saturating_add(c.contract.size_bytes);
            }
        }
    }
    books.retain(|_, b| b.lost_for_us > b.dropped);
    Ok(books)
}

/// One round: ends and deletes what defaulting partners keep here beyond
/// what they still keep for us. Returns (partner, contract, bytes) dropped.
pub(crate) async fn enforce(inner: &Arc<Inner>, grace: Duration) -> Result<Vec<(PeerId, ContractId, u64)>, String> {
    let lost_before = now().saturating_sub(i64::try_from(grace.as_secs()).unwrap_or(i64::MAX));
    let books = inner.db.call(move |m| load_books(m, lost_before)).await.map_err(|e| e.to_string())?;
    let mut dropped = Vec::new();
    for (peer, b) in books {
        for id in to_drop(&b) {
            let bytes = b.kept_here.iter().find(|(c, _, _)| *c == id).map_or(0, |(_, n, _)| *n);
            match discard(inner, peer, id, Some(ContractState::Broken)).await {
                Ok(()) => {
                    tracing::warn!(%peer, contract = %hex::encode(id.0), bytes, lost_for_us = b.lost_for_us,
                        "swap partner lost our copy: its copy here is dropped");
                    dropped.push((peer, id, bytes));
                }
                Err(e) => return Err(format!("dropping a swap contract of {peer}: {e}")),
            }
        }
    }
    if !dropped.is_empty() {
        inner.host.forget_capacity();
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ContractId {
        ContractId([n; 32])
    }

    #[test]
    fn a_partner_in_good_standing_loses_nothing() {
        let b = PartnerBooks { keeps_for_us: 100, kept_here: vec![(id(1), 100, 1)], lost_for_us: 0, dropped: 0 };
        assert!(to_drop(&b).is_empty());
    }

    #[test]
    fn a_default_costs_the_newest_copies_up_to_the_lost_bytes() {
        // It kept 300 for us and lost 200 of it; we keep 300 for it.
        let b = PartnerBooks {
            keeps_for_us: 100,
            kept_here: vec![(id(1), 100, 10), (id(2), 100, 30), (id(3), 100, 20)],
            lost_for_us: 200,
            dropped: 0,
        };
        assert_eq!(to_drop(&b), vec![id(2), id(3)], "newest first, 200 bytes");
    }

    #[test]
    fn our_own_deletions_are_not_charged_to_the_partner() {
        // We released 200 of what it kept for us ourselves; it lost only 50.
        let b = PartnerBooks { keeps_for_us: 0, kept_here: vec![(id(1), 50, 1), (id(2), 150, 2)], lost_for_us: 50, dropped: 0 };
        assert_eq!(to_drop(&b), vec![id(1)], "only the 50 lost bytes are due");
    }

    #[test]
    fn dropping_never_overshoots_so_the_partner_has_nothing_to_retaliate_for() {
        // 60 due, the only copies are 100 each: nothing fits, nothing is dropped.
        let b = PartnerBooks { keeps_for_us: 140, kept_here: vec![(id(1), 100, 1), (id(2), 100, 2)], lost_for_us: 60, dropped: 0 };
        assert!(to_drop(&b).is_empty());
        // What was already dropped counts against the loss.
        let b = PartnerBooks { keeps_for_us: 0, kept_here: vec![(id(1), 100, 1)], lost_for_us: 100, dropped: 100 };
        assert!(to_drop(&b).is_empty());
    }

    #[test]
    fn a_partner_that_keeps_enough_for_us_again_loses_nothing() {
        // It lost 100, then took a new 100 for us: the books balance.
        let b = PartnerBooks { keeps_for_us: 100, kept_here: vec![(id(1), 100, 1)], lost_for_us: 100, dropped: 0 };
        assert!(to_drop(&b).is_empty());
    }
}
