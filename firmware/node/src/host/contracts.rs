//! Offers, contracts and releases: the hosting market's three messages.

use std::sync::Arc;

use bunker_core::Layout;
use bunker_manifest::{ContractDirection, ContractId, ContractState, NewContract, QueryError};
use bunker_net::{
    ContractAnswer, ContractProposal, ContractTerms, Holding, HoldingsRequest, HoldingsResponse, Offer, OfferRequest,
    PeerId, ReleaseRequest, ReleaseResponse, MAX_HOLDINGS_PER_PAGE, MAX_OWNER_LABEL,
};

use crate::host::{capacity, HostState};
use crate::node::{now, Inner};
use crate::objects::{hosted_name, Area};
use crate::sign;

/// Longest contract term accepted (10 years).
const MAX_TERM_SECS: u64 = 10 * 365 * 86_400;
const GIB: u128 = 1 << 30;

/// The price of one whole retrieval of `bytes` at `msat_per_gib`, rounded up.
pub(crate) fn retrieval_price_msat(bytes: u64, msat_per_gib: u64) -> u64 {
    let p = (u128::from(bytes) * u128::from(msat_per_gib)).div_ceil(GIB);
    u64::try_from(p).unwrap_or(u64::MAX)
}

/// Our quote: what we can give this asker now, at our price, with our
/// Lightning node id signed by our libp2p key when Lightning runs.
pub(crate) async fn offer(inner: &Arc<Inner>, peer: PeerId, request: OfferRequest) -> Offer {
    let terms = &inner.config.hosting;
    let swap = request.swap_offered_bytes > 0 && terms.accept_swaps;
    let free_bytes = match capacity(inner).await {
        Ok(cap) if swap => cap.available(terms),
        Ok(cap) => cap.paid_limit(terms, &peer, terms.price_msat_per_gib_day),
        Err(e) => {
            tracing::warn!(%peer, error = %e, "cannot compute hosting capacity; offering nothing");
            0
        }
    };
    let (ln_node_id, ln_node_id_signature) = match inner.lightning() {
        Some(ln) => {
            let id = ln.node_id().serialize().to_vec();
            let sig = sign::sign_ln_node_id(&inner.keys, &id);
            (id, sig)
        }
        None => (Vec::new(), Vec::new()),
    };
    Offer {
        free_bytes,
        price_msat_per_gib_day: terms.price_msat_per_gib_day,
        retrieval_msat_per_gib: terms.retrieval_msat_per_gib,
        swap_wanted_bytes: if swap { request.bytes.min(free_bytes) } else { 0 },
        ln_node_id,
        ln_node_id_signature,
    }
}

/// Checks what does not depend on our state: signature, layout and size,
/// term, audit bounds, retrieval price.
fn check_terms(inner: &Inner, peer: &PeerId, t: &ContractTerms, owner_signature: &[u8]) -> Result<(), String> {
    sign::verify_terms(peer, t, owner_signature)
        .map_err(|e| format!("owner signature does not verify against your PeerId: {e}"))?;
    if t.owner_label.len() > MAX_OWNER_LABEL {
        return Err(format!("owner label of {} bytes is over the limit of {MAX_OWNER_LABEL}", t.owner_label.len()));
    }
    let layout = Layout::new(t.plain_bytes, t.segment_size).map_err(|e| format!("wrong size: {e}"))?;
    if layout.sealed_size() != t.object_bytes {
        return Err(format!(
            "wrong size: {} plain bytes in segments of {} seal to {} bytes, the terms say {}",
            t.plain_bytes,
            t.segment_size,
            layout.sealed_size(),
            t.object_bytes
        ));
    }
    // An audit answer carries one sealed segment and its proof (≤ 1 KiB):
    // segments too big for our audit responses could never be proven.
    let audit_room = inner.net.limits().audit.max_response.saturating_sub(2048);
    if t.segment_size as usize + bunker_core::format::TAG_LEN > audit_room {
        return Err(format!(
            "segments of {} bytes are too large to audit through this box (at most {} bytes)",
            t.segment_size,
            audit_room - bunker_core::format::TAG_LEN
        ));
    }
    let max = inner.net.limits().max_object_bytes;
    if t.object_bytes > max {
        return Err(format!("object of {} bytes is over this box's limit of {max} bytes", t.object_bytes));
    }
    if t.term_secs == 0 || t.term_secs > MAX_TERM_SECS {
        return Err(format!("term of {} s is outside 1..={MAX_TERM_SECS} s", t.term_secs));
    }
    let (lo, hi) = t.audit_interval_secs;
    if lo == 0 || lo > hi {
        return Err(format!("audit interval {lo}..{hi} s is not a valid range"));
    }
    let ours = inner.config.hosting.retrieval_msat_per_gib;
    if !t.swap && t.retrieval_msat_per_gib < ours {
        return Err(format!(
            "retrieval price {} msat/GiB is below this box's {ours} msat/GiB",
            t.retrieval_msat_per_gib
        ));
    }
    Ok(())
}

/// A proposed contract: checked, admitted by the allocation policy,
/// recorded (TheirsOnUs) and countersigned — or refused with the reason.
pub(crate) async fn contract(inner: &Arc<Inner>, peer: PeerId, proposal: ContractProposal) -> ContractAnswer {
    let t = proposal.terms;
    let id = ContractId(t.contract_id);
    let refuse = |reason: String| {
        tracing::info!(%peer, contract = %hex::encode(id.0), %reason, "contract refused");
        ContractAnswer::Rejected { reason }
    };
    if let Err(reason) = check_terms(inner, &peer, &t, &proposal.owner_signature) {
        return refuse(reason);
    }
    let HostState { admission, .. } = &inner.host;
    let _admission = admission.lock().await;
    let cap = match capacity(inner).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot compute hosting capacity");
            return refuse("host cannot check its space now; try later".into());
        }
    };
    if let Err(reason) =
        cap.admit(&inner.config.hosting, &peer, t.object_bytes, t.price_msat_per_gib_day, t.swap)
    {
        return refuse(reason);
    }
    let host_signature = sign::sign_terms(&inner.keys, &t);
    let at = now();
    let term_secs = i64::try_from(t.term_secs).unwrap_or(i64::MAX);
    let record = NewContract {
        id,
        direction: ContractDirection::TheirsOnUs,
        peer,
        object_root: t.object_root,
        size_bytes: t.object_bytes,
        price_msat_per_gib_day: t.price_msat_per_gib_day,
        retrieval_price_msat: retrieval_price_msat(t.object_bytes, t.retrieval_msat_per_gib),
        audit_interval_secs: (t.audit_interval_secs.0 / 2 + t.audit_interval_secs.1 / 2).max(1),
        full_check_interval_secs: inner.config.full_check_interval.as_secs().max(1),
        is_swap: t.swap,
        term_start_at: at,
        term_end_at: at.saturating_add(term_secs),
        terms: sign::terms_record(&t),
        our_signature: host_signature.clone(),
        peer_signature: proposal.owner_signature,
        created_at: at,
    };
    let root = t.object_root;
    let owner_label = t.owner_label.clone();
    let inserted = inner
        .db
        .call(move |m| {
            // One live contract per owner and object: the stored object is named by both.
            let same = m.contracts_with_peer(&record.peer)?.into_iter().any(|c| {
                c.contract.direction == ContractDirection::TheirsOnUs
                    && c.contract.object_root == root
                    && matches!(c.state, ContractState::Active | ContractState::Ending)
            });
            if same {
                return Ok(Err("you already have a contract with this box for this object".to_string()));
            }
            match m.insert_contract_with_label(&record, &owner_label) {
                Ok(()) => Ok(Ok(())),
                Err(QueryError::AlreadyExists { .. }) => Ok(Err("contract id already in use".to_string())),
                Err(e) => Err(e),
            }
        })
        .await;
    match inserted {
        Ok(Ok(())) => {
            inner.host.note_accepted(peer, t.object_bytes, t.swap);
            tracing::info!(%peer, contract = %hex::encode(id.0), bytes = t.object_bytes, swap = t.swap, "contract accepted");
            ContractAnswer::Accepted { host_signature }
        }
        Ok(Err(reason)) => refuse(reason),
        Err(e) => {
            tracing::error!(error = %e, "cannot record a contract");
            refuse("host could not record the contract; try later".into())
        }
    }
}

/// Room kept in a holdings page for the response's own framing.
const PAGE_SLACK: usize = 1024;

/// `/bunker/holdings/1`: one page of the contracts we host for `peer` —
/// only the ones `peer` itself proposed (the query is keyed by the
/// noise-authenticated requester, so anyone else gets an empty page). At
/// most [`MAX_HOLDINGS_PER_PAGE`] and never more bytes than the protocol's
/// response cap.
pub(crate) async fn holdings(inner: &Arc<Inner>, peer: PeerId, request: HoldingsRequest) -> HoldingsResponse {
    let max = request.max.clamp(1, MAX_HOLDINGS_PER_PAGE);
    let after = request.after.map(ContractId);
    let rows = match inner.db.call(move |m| m.held_for_owner(&peer, after.as_ref(), max + 1)).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(%peer, error = %e, "cannot list the contracts held for an owner");
            return HoldingsResponse::Refused { reason: "host cannot read its contracts now; try later".into() };
        }
    };
    let budget = inner.net.limits().holdings.max_response.saturating_sub(PAGE_SLACK);
    let mut used = 0;
    let mut holdings: Vec<Holding> = Vec::new();
    let mut next = None;
    for (i, held) in rows.into_iter().enumerate() {
        let id = held.contract.contract.id.0;
        if i as u32 == max {
            next = holdings.last().map(|h| h.terms.contract_id);
            break;
        }
        let terms = match sign::terms_from_record(&held.contract.contract.terms) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(contract = %hex::encode(id), error = %e, "held contract skipped");
                continue;
            }
        };
        let holding = Holding {
            terms,
            owner_signature: held.contract.contract.peer_signature,
            host_signature: held.contract.contract.our_signature,
            root: held.stored_root,
            accepted_at: held.contract.contract.term_start_at,
        };
        let size = postcard::to_stdvec(&holding).map(|v| v.len()).unwrap_or(usize::MAX);
        if used + size > budget {
            // The rest goes in the next page; a lone contract too big for
            // any page is skipped rather than blocking the ones after it.
            next = Some(holdings.last().map_or(id, |h| h.terms.contract_id));
            break;
        }
        used += size;
        holdings.push(holding);
    }
    tracing::info!(%peer, count = holdings.len(), more = next.is_some(), "told an owner what we hold for it");
    HoldingsResponse::Page { holdings, next }
}

/// The owner ends a contract: signature checked, object deleted, contract ended.
/// Only the contract's owner reaches it; anyone else learns nothing.
pub(crate) async fn release(inner: &Arc<Inner>, peer: PeerId, request: ReleaseRequest) -> ReleaseResponse {
    let id = ContractId(request.contract_id);
    let record = match inner.db.call(move |m| m.contract(&id)).await {
        Ok(Some(r)) if r.contract.peer == peer && r.contract.direction == ContractDirection::TheirsOnUs => r,
        Ok(_) => return ReleaseResponse::UnknownContract,
        Err(e) => {
            // Not answering lets the owner retry; saying "unknown" would end it on its side.
            tracing::error!(error = %e, "cannot read a contract to release");
            std::future::pending::<()>().await;
            return ReleaseResponse::UnknownContract;
        }
    };
    if let Err(e) = sign::verify_release(&peer, &id.0, &request.signature) {
        tracing::warn!(%peer, contract = %hex::encode(id.0), error = %e, "release with a bad signature ignored");
        return ReleaseResponse::UnknownContract;
    }
    // A contract already ended here (a swap dropped for its owner's
    // default) keeps its state; only bytes may remain.
    let end = matches!(record.state, ContractState::Active | ContractState::Ending).then_some(ContractState::Ended);
    let removed = discard(inner, record.contract.peer, id, end).await;
    match removed {
        Ok(()) => {
            inner.host.forget_capacity();
            tracing::info!(%peer, contract = %hex::encode(id.0), "contract released");
            ReleaseResponse::Released
        }
        Err(e) => {
            tracing::error!(error = %e, "release could not be recorded; the owner will retry");
            std::future::pending::<()>().await;
            ReleaseResponse::UnknownContract
        }
    }
}

/// Deletes what we keep under contract `id` for `owner` and moves the
/// contract to `state` if given (ended on a release, broken when we drop a
/// swap partner's copies for its default). A file already gone is not an
/// error.
pub(crate) async fn discard(
    inner: &Arc<Inner>,
    owner: PeerId,
    id: ContractId,
    state: Option<ContractState>,
) -> Result<(), crate::error::DbError> {
    let i = Arc::clone(inner);
    inner
        .db
        .call(move |m| {
            for h in m.hosted_objects_for_contract(&id)? {
                let name = hosted_name(&owner, &h.object.root);
                match i.objects.remove(Area::Hosted, &name) {
                    Ok(()) => {}
                    Err(e) if e.is_missing() => {}
                    Err(e) => tracing::error!(error = %e, "hosted object could not be deleted"),
                }
                m.remove_hosted_object(h.id)?;
            }
            match state {
                Some(state) => m.set_contract_state(&id, state, now()),
                None => Ok(()),
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrieval_price_is_per_gib_rounded_up() {
        assert_eq!(retrieval_price_msat(1 << 30, 1000), 1000);
        assert_eq!(retrieval_price_msat(1, 1000), 1);
        assert_eq!(retrieval_price_msat(0, 1000), 0);
        assert_eq!(retrieval_price_msat(u64::MAX, u64::MAX), u64::MAX);
    }
}
