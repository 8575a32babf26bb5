//! `/bunker/audit/1`: one sealed segment and its Merkle proof, read from the
//! object and its sidecar (a bounded number of reads whatever the size).
//!
//! The object is looked up under the requester's own PeerId, so a peer can
//! only ever reach objects it stored: anyone else's root is `NotFound`,
//! exactly like a root that does not exist. The disk is not consulted
//! through MANIFEST.db, so audits do not queue behind the manifest's lock.

use std::sync::Arc;

use bunker_net::{AuditChallenge, AuditResponse, PeerId};

use crate::node::Inner;
use crate::objects::{hosted_name, Area, ObjectError};

/// Answers an audit honestly: the proof, `NotFound`, or `Failed` with why.
pub(crate) async fn audit(inner: &Arc<Inner>, peer: PeerId, c: AuditChallenge) -> AuditResponse {
    let (i, name, root, segment) = (Arc::clone(inner), hosted_name(&peer, &c.object_root), c.object_root, c.segment);
    let answered = tokio::task::spawn_blocking(move || {
        let o = i.objects.open(Area::Hosted, &name)?;
        if o.root() != root {
            return Err(ObjectError::CorruptSidecar {
                area: Area::Hosted,
                name,
                reason: "its root is not the one it is stored under".into(),
            });
        }
        o.segment_with_proof(segment)
    })
    .await;
    match answered {
        Ok(Ok((sealed_segment, proof))) => AuditResponse::Proof { sealed_segment, proof: proof.to_bytes() },
        Ok(Err(e)) if e.is_missing() => AuditResponse::NotFound,
        Ok(Err(e @ ObjectError::Length { .. })) => AuditResponse::Failed { reason: e.to_string() },
        Ok(Err(e)) => {
            tracing::error!(%peer, error = %e, "audit could not be answered");
            AuditResponse::Failed { reason: format!("unavailable: {e}") }
        }
        Err(e) => AuditResponse::Failed { reason: format!("unavailable: host task failed: {e}") },
    }
}
