//! Where replicas go (DESIGN §5 "Host choice"): ask the peers we know for
//! offers, keep those within our price caps and with room, rank them by
//! reputation, price and free space, and never put two replicas of one file
//! on the same peer — nor on the same IP subnet while another choice exists.
//! Then conclude a contract signed by both sides and upload, and count the
//! copy only when the host's signed receipt names our root.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bunker_manifest::{ContractDirection, ContractId, NewContract, PeerSighting};
use bunker_net::{ContractAnswer, ContractProposal, ContractTerms, Offer, OfferRequest, PeerId, StoreHeader};

use crate::label::{self, FileFacts, OwnerLabel};
use crate::node::{now, Inner};
use crate::owner::contracts::{record_unreleased, release_contract};
use crate::owner::seal::Staged;
use crate::objects::Area;
use crate::sign;

/// One GiB, the unit prices are quoted in.
pub(crate) const GIB: u64 = 1 << 30;
/// How much one audit moves a peer's reputation against its history:
/// counts are multiplied by this before each new outcome is added, so old
/// behaviour fades (Storj-style decayed α/β).
pub(crate) const REPUTATION_DECAY: f64 = 0.98;
/// Longest we wait for all offers of one placement round.
const OFFER_ROUND: Duration = Duration::from_secs(20);

/// A host that offered room, with what placement ranks it by.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub(crate) peer: PeerId,
    pub(crate) offer: Offer,
    /// Mean of the reputation's beta distribution, (α+1)/(α+β+2).
    pub(crate) reputation: f64,
    /// The /24 (IPv4) or /48 (IPv6) it was reached at, when known.
    pub(crate) subnet: Option<String>,
}

/// A replica placed on a host, with the contract covering it.
#[derive(Debug, Clone)]
pub(crate) struct Placed {
    pub(crate) index: u32,
    pub(crate) host: PeerId,
    pub(crate) root: [u8; 32],
    pub(crate) sealed_len: u64,
    pub(crate) contract: NewContract,
}

/// The reputation mean of decayed counts.
pub(crate) fn reputation(successes: f64, failures: f64) -> f64 {
    (successes + 1.0) / (successes + failures + 2.0)
}

/// Decays the counts and adds one outcome.
pub(crate) fn reputation_after(successes: f64, failures: f64, passed: bool) -> (f64, f64) {
    let s = successes * REPUTATION_DECAY + if passed { 1.0 } else { 0.0 };
    let f = failures * REPUTATION_DECAY + if passed { 0.0 } else { 1.0 };
    (s, f)
}

/// The subnet part of a multiaddr's IP ("/ip4/192.168.1.7/tcp/…" → "192.168.1").
pub(crate) fn subnet_of(addr: &str) -> Option<String> {
    let mut parts = addr.split('/').skip(1);
    let proto = parts.next()?;
    let ip = parts.next()?;
    match proto {
        "ip4" => {
            let octets: Vec<&str> = ip.split('.').collect();
            (octets.len() == 4).then(|| format!("v4:{}", octets[..3].join(".")))
        }
        "ip6" => {
            let groups: Vec<&str> = ip.split(':').take(3).collect();
            Some(format!("v6:{}", groups.join(":")))
        }
        _ => None,
    }
}

/// Price of one whole retrieval of `bytes` at `msat_per_gib`, rounded up.
pub(crate) fn retrieval_price(bytes: u64, msat_per_gib: u64) -> u64 {
    ((bytes as u128 * msat_per_gib as u128).div_ceil(GIB as u128)).min(u64::MAX as u128) as u64
}

/// Peers that could host `bytes`, best first, without those in `exclude`.
/// Asks every connected or remembered peer for an offer, in parallel.
pub(crate) async fn candidates(inner: &Arc<Inner>, bytes: u64, exclude: &HashSet<PeerId>) -> Vec<Candidate> {
    let me = inner.peer_id();
    let mut subnets: HashMap<PeerId, String> = HashMap::new();
    let mut peers: Vec<PeerId> = Vec::new();
    if let Ok(summary) = inner.net.peers().await {
        for info in summary.connected {
            let Ok(peer) = info.peer_id.parse::<PeerId>() else { continue };
            if let Some(s) = info.addresses.iter().find_map(|a| subnet_of(a)) {
                subnets.insert(peer, s);
            }
            peers.push(peer);
        }
    }
    let known = inner.db.call(|m| m.peers()).await.unwrap_or_default();
    let mut scores: HashMap<PeerId, f64> = HashMap::new();
    for p in &known {
        scores.insert(p.peer, reputation(p.successes, p.failures));
        if !peers.contains(&p.peer) {
            for a in &p.addresses {
                if let Ok(addr) = a.parse() {
                    let _ = inner.net.add_address(p.peer, addr).await;
                }
            }
            peers.push(p.peer);
        }
        if let (std::collections::hash_map::Entry::Vacant(e), Some(s)) =
            (subnets.entry(p.peer), p.addresses.iter().find_map(|a| subnet_of(a)))
        {
            e.insert(s);
        }
    }
    peers.retain(|p| *p != me && !exclude.contains(p));
    let placement = &inner.config.placement;
    let swaps = wants_swaps(inner);
    let request = OfferRequest {
        bytes,
        term_secs: placement.term.as_secs(),
        swap_offered_bytes: if swaps { bytes } else { 0 },
    };
    let asks = peers.iter().map(|&peer| {
        let request = request.clone();
        async move { (peer, inner.net.offer(peer, request).await) }
    });
    let answers = tokio::time::timeout(OFFER_ROUND, futures::future::join_all(asks)).await.unwrap_or_default();
    let mut out = Vec::new();
    for (peer, answer) in answers {
        let offer = match answer {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "no offer");
                continue;
            }
        };
        let within_caps = offer.price_msat_per_gib_day <= placement.max_price_msat_per_gib_day
            && offer.retrieval_msat_per_gib <= placement.max_retrieval_msat_per_gib;
        let swap = swaps && offer.swap_wanted_bytes >= bytes;
        if offer.free_bytes < bytes || !(within_caps || swap) {
            tracing::debug!(%peer, free = offer.free_bytes, price = offer.price_msat_per_gib_day, "offer not taken");
            continue;
        }
        remember_ln_node_id(inner, peer, &offer).await;
        out.push(Candidate {
            peer,
            reputation: scores.get(&peer).copied().unwrap_or_else(|| reputation(0.0, 0.0)),
            subnet: subnets.get(&peer).cloned(),
            offer,
        });
    }
    rank(&mut out);
    out
}

/// Whether we propose swaps (and can keep the bytes they bind us to).
fn wants_swaps(inner: &Inner) -> bool {
    inner.config.placement.propose_swaps && inner.config.hosting.accept_swaps
}

/// Best first: reputation, then price, then free space.
pub(crate) fn rank(c: &mut [Candidate]) {
    c.sort_by(|a, b| {
        b.reputation
            .partial_cmp(&a.reputation)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.offer.price_msat_per_gib_day.cmp(&b.offer.price_msat_per_gib_day))
            .then(b.offer.free_bytes.cmp(&a.offer.free_bytes))
    });
}

/// Order in which to try candidates for one more replica of a file whose
/// other replicas sit on `used_subnets`: other subnets first, rank kept.
pub(crate) fn try_order(candidates: &[Candidate], used_subnets: &HashSet<String>) -> Vec<usize> {
    let (fresh, same): (Vec<usize>, Vec<usize>) = (0..candidates.len())
        .partition(|&i| candidates[i].subnet.as_ref().is_none_or(|s| !used_subnets.contains(s)));
    fresh.into_iter().chain(same).collect()
}

/// Records the Lightning node id a host announced, when its libp2p key
/// signed it (what the settle worker pays to).
pub(crate) async fn remember_ln_node_id(inner: &Arc<Inner>, peer: PeerId, offer: &Offer) {
    if offer.ln_node_id.len() != 33 || sign::verify_ln_node_id(&peer, &offer.ln_node_id, &offer.ln_node_id_signature).is_err() {
        return;
    }
    let sighting = PeerSighting {
        peer,
        addresses: Vec::new(),
        ln_node_id: Some(hex::encode(&offer.ln_node_id)),
        seen_at: now(),
    };
    if let Err(e) = inner.db.call(move |m| m.upsert_peer(&sighting)).await {
        tracing::warn!(%peer, error = %e, "could not record the host's Lightning node id");
    }
}

/// Places one staged replica of the file `facts` describes on the best
/// candidate that takes it, trying the next on any failure. The chosen candidate leaves `candidates`; its
/// subnet joins `used_subnets`. Returns each failed host's reason otherwise.
pub(crate) async fn place_one(
    inner: &Arc<Inner>,
    facts: &FileFacts,
    staged: &Staged,
    candidates: &mut Vec<Candidate>,
    used_subnets: &mut HashSet<String>,
) -> Result<Placed, Vec<String>> {
    let mut reasons = Vec::new();
    let mut tried = HashSet::new();
    for i in try_order(candidates, used_subnets) {
        let c = candidates[i].clone();
        tried.insert(c.peer);
        match place_on(inner, facts, staged, &c).await {
            Ok(p) => {
                candidates.retain(|x| x.peer != c.peer);
                if let Some(s) = c.subnet {
                    used_subnets.insert(s);
                }
                return Ok(p);
            }
            Err(reason) => {
                tracing::info!(host = %c.peer, replica = staged.index, %reason, "host did not take the replica");
                reasons.push(format!("{}: {reason}", c.peer));
            }
        }
    }
    // A host that failed one replica is not retried for the next one.
    candidates.retain(|x| !tried.contains(&x.peer));
    if reasons.is_empty() {
        reasons.push("no peer offered room within the price caps".into());
    }
    Err(reasons)
}

/// Contract, upload, receipt with one host: a swap first when we propose
/// swaps and the host wants one, else (or when it declines) a paid contract.
async fn place_on(inner: &Arc<Inner>, facts: &FileFacts, staged: &Staged, c: &Candidate) -> Result<Placed, String> {
    let p = &inner.config.placement;
    let within_caps = c.offer.price_msat_per_gib_day <= p.max_price_msat_per_gib_day
        && c.offer.retrieval_msat_per_gib <= p.max_retrieval_msat_per_gib;
    if wants_swaps(inner) && c.offer.swap_wanted_bytes >= staged.sealed_len {
        match place_with(inner, facts, staged, c, true).await {
            Ok(placed) => return Ok(placed),
            Err(e) if within_caps => tracing::info!(host = %c.peer, reason = %e, "swap declined; paying instead"),
            Err(e) => return Err(e),
        }
    }
    place_with(inner, facts, staged, c, false).await
}

/// Proposes one contract (carrying the replica's owner label, so the file
/// can be recovered from the hosts even without any manifest), uploads, and
/// checks the receipt.
async fn place_with(inner: &Arc<Inner>, facts: &FileFacts, staged: &Staged, c: &Candidate, swap: bool) -> Result<Placed, String> {
    let cfg = &inner.config;
    let audit = cfg.audit_interval.as_secs().max(1);
    let layout = facts.layout;
    let contract_id: bunker_net::Id32 = rand::random();
    let owner_label = label::seal(
        &inner.keys,
        &contract_id,
        &OwnerLabel { file: facts.clone(), replica_index: staged.index, root: staged.root },
    )
    .map_err(|e| e.to_string())?;
    let terms = ContractTerms {
        contract_id,
        object_root: staged.root,
        object_bytes: staged.sealed_len,
        plain_bytes: layout.size(),
        segment_size: layout.segment_size(),
        price_msat_per_gib_day: if swap { 0 } else { c.offer.price_msat_per_gib_day },
        retrieval_msat_per_gib: c.offer.retrieval_msat_per_gib,
        audit_interval_secs: ((audit / 2).max(1), audit + audit / 2),
        term_secs: cfg.placement.term.as_secs(),
        swap,
        owner_label,
    };
    let our_signature = sign::sign_terms(&inner.keys, &terms);
    let proposal = ContractProposal { terms: terms.clone(), owner_signature: our_signature.clone() };
    let host_signature = match inner.net.contract(c.peer, proposal).await.map_err(|e| e.to_string())? {
        ContractAnswer::Accepted { host_signature } => host_signature,
        ContractAnswer::Rejected { reason } => return Err(format!("contract refused: {}", clip(&reason))),
    };
    sign::verify_terms(&c.peer, &terms, &host_signature).map_err(|e| format!("contract countersignature: {e}"))?;
    let at = now();
    let contract = NewContract {
        id: ContractId(terms.contract_id),
        direction: ContractDirection::OursOnPeer,
        peer: c.peer,
        object_root: staged.root,
        size_bytes: staged.sealed_len,
        price_msat_per_gib_day: terms.price_msat_per_gib_day,
        retrieval_price_msat: retrieval_price(staged.sealed_len, terms.retrieval_msat_per_gib),
        audit_interval_secs: audit,
        full_check_interval_secs: cfg.full_check_interval.as_secs().max(1),
        is_swap: swap,
        term_start_at: at,
        term_end_at: at.saturating_add(terms.term_secs.min(i64::MAX as u64) as i64),
        terms: sign::terms_record(&terms),
        our_signature,
        peer_signature: host_signature,
        created_at: at,
    };
    match upload(inner, staged, &terms, c.peer).await {
        Ok(()) => Ok(Placed {
            index: staged.index,
            host: c.peer,
            root: staged.root,
            sealed_len: staged.sealed_len,
            contract,
        }),
        Err(reason) => {
            // The host agreed and may hold part of it: end the contract, or
            // remember to end it later if it cannot be reached now.
            if let Err(e) = release_contract(inner, c.peer, &contract.id).await {
                record_unreleased(inner, contract, e).await;
            }
            Err(reason)
        }
    }
}

async fn upload(inner: &Arc<Inner>, staged: &Staged, terms: &ContractTerms, host: PeerId) -> Result<(), String> {
    let store = Arc::clone(inner);
    let name = staged.name.clone();
    let file = tokio::task::spawn_blocking(move || store.objects.open(Area::Staging, &name).and_then(|o| o.reader()))
        .await
        .map_err(|e| format!("staging task: {e}"))?
        .map_err(|e| format!("staged object: {e}"))?;
    let header = StoreHeader { contract_id: terms.contract_id, object_root: staged.root, total_len: staged.sealed_len };
    let receipt = inner
        .net
        .store(host, header, crate::objects::AsyncObjectReader::new(file))
        .await
        .map_err(|e| format!("upload: {e}"))?;
    if receipt.root != staged.root {
        return Err(format!(
            "host computed root {} for our object {}",
            hex::encode(&receipt.root[..8]),
            hex::encode(&staged.root[..8])
        ));
    }
    sign::verify_receipt(&host, &terms.contract_id, &receipt.root, &receipt.host_signature)
        .map_err(|e| format!("store receipt: {e}"))?;
    Ok(())
}

/// A peer's text, cut to a length fit for a log line.
pub(crate) fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_group_ipv4_by_24_and_ipv6_by_48() {
        assert_eq!(subnet_of("/ip4/192.168.1.7/tcp/4001").as_deref(), Some("v4:192.168.1"));
        assert_eq!(subnet_of("/ip4/192.168.1.99/udp/1/quic-v1"), subnet_of("/ip4/192.168.1.7/tcp/4001"));
        assert_ne!(subnet_of("/ip4/192.168.2.7/tcp/4001"), subnet_of("/ip4/192.168.1.7/tcp/4001"));
        assert_eq!(subnet_of("/ip6/2001:db8:1:2::1/tcp/1").as_deref(), Some("v6:2001:db8:1"));
        assert_eq!(subnet_of("/dns4/example.org/tcp/1"), None);
    }

    #[test]
    fn failures_lower_reputation_and_fade_with_time() {
        let (s, f) = reputation_after(0.0, 0.0, false);
        assert!(reputation(s, f) < reputation(0.0, 0.0));
        let mut counts = (s, f);
        for _ in 0..200 {
            counts = reputation_after(counts.0, counts.1, true);
        }
        assert!(reputation(counts.0, counts.1) > 0.95, "{counts:?}");
    }

    #[test]
    fn retrieval_price_is_per_gib_rounded_up() {
        assert_eq!(retrieval_price(GIB, 1000), 1000);
        assert_eq!(retrieval_price(1, 1000), 1);
        assert_eq!(retrieval_price(0, 1000), 0);
    }
}
