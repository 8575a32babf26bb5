//! Ending our contracts with hosts. A release that cannot reach its host
//! leaves the contract `ending`; the repair worker tries again until the
//! host confirms, so an offline host is released later, never forgotten.

use std::sync::Arc;

use bunker_manifest::{ContractDirection, ContractId, ContractState, NewContract, QueryError};
use bunker_net::{PeerId, ReleaseRequest, ReleaseResponse};

use crate::node::{now, Inner};
use crate::sign;

/// Asks `host` to end contract `id`. `Ok` once the host released it or no
/// longer knows it (it is over either way).
pub(crate) async fn release_contract(inner: &Arc<Inner>, host: PeerId, id: &ContractId) -> Result<(), String> {
    let request = ReleaseRequest { contract_id: id.0, signature: sign::sign_release(&inner.keys, &id.0) };
    match inner.net.release(host, request).await {
        Ok(ReleaseResponse::Released) | Ok(ReleaseResponse::UnknownContract) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Ends a recorded contract: marks it `ending`, asks the host, and marks it
/// `ended` when the host confirms. Returns whether the host confirmed.
pub(crate) async fn end_contract(inner: &Arc<Inner>, host: PeerId, id: ContractId) -> bool {
    let at = now();
    let mark = inner.db.call(move |m| m.set_contract_state(&id, ContractState::Ending, at)).await;
    if let Err(e) = mark {
        tracing::warn!(contract = %hex::encode(id.0), error = %e, "could not mark contract ending");
    }
    match release_contract(inner, host, &id).await {
        Ok(()) => {
            let at = now();
            if let Err(e) = inner.db.call(move |m| m.set_contract_state(&id, ContractState::Ended, at)).await {
                tracing::warn!(contract = %hex::encode(id.0), error = %e, "could not mark contract ended");
            }
            true
        }
        Err(e) => {
            tracing::info!(%host, contract = %hex::encode(id.0), error = %e, "release deferred: host unreachable");
            false
        }
    }
}

/// Records a contract the host accepted but that could not be released at
/// once, as `ending`, so the repair worker releases it later.
pub(crate) async fn record_unreleased(inner: &Arc<Inner>, contract: NewContract, why: String) {
    let id = contract.id;
    tracing::info!(host = %contract.peer, contract = %hex::encode(id.0), reason = %why, "release deferred");
    let at = now();
    let res = inner
        .db
        .call(move |m| {
            match m.insert_contract(&contract) {
                Ok(()) | Err(QueryError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e),
            }
            m.set_contract_state(&contract.id, ContractState::Ending, at)
        })
        .await;
    if let Err(e) = res {
        tracing::warn!(contract = %hex::encode(id.0), error = %e, "could not record a contract to release later");
    }
}

/// Tries again every contract of ours left `ending`. Returns (released, still pending).
pub(crate) async fn retry_ending(inner: &Arc<Inner>) -> Result<(usize, usize), crate::error::DbError> {
    let ending = inner.db.call(|m| m.contracts(ContractDirection::OursOnPeer, ContractState::Ending)).await?;
    let (mut done, mut pending) = (0, 0);
    for c in ending {
        if end_contract(inner, c.contract.peer, c.contract.id).await {
            done += 1;
        } else {
            pending += 1;
        }
    }
    Ok((done, pending))
}
