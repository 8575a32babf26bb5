//! `/bunker/audit/1`: one sealed segment and its Merkle proof, read from the
//! object and its sidecar (a bounded number of reads whatever the size).
//!
//! The object is looked up under the requester's own PeerId, so a peer can
//! only ever reach objects it stored: anyone else's root is `NotFound`,
//! exactly like a root that does not exist. The disk is not consulted
//! through MANIFEST.db, so audits do not queue behind the manifest's lock —
//! except when the object is on no disk that is here while some disk is
//! away: then MANIFEST.db says whether it is on that disk.
//!
//! An object on a data disk that is missing or failing is answered
//! `Failed { reason: "unavailable: …" }`, from the disk's state: honest
//! (the owner learns the host still has it, out of reach) and never a proof
//! it could not give. When the disk is back, audits pass again.

use std::sync::Arc;

use bunker_net::{AuditChallenge, AuditResponse, PeerId};

use crate::node::Inner;
use crate::objects::{hosted_name, Area, ObjectError};

/// The prefix of every answer about an object on a disk that is away.
pub(crate) const UNAVAILABLE: &str = "unavailable: ";

/// Answers an audit honestly: the proof, `NotFound`, or `Failed` with why.
pub(crate) async fn audit(inner: &Arc<Inner>, peer: PeerId, c: AuditChallenge) -> AuditResponse {
    let _slot = inner.host.serve_slot(&inner.config).await;
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
        Ok(Err(e)) if e.is_missing() => match on_disk_away(inner, &peer, &root).await {
            Some(reason) => AuditResponse::Failed { reason },
            None => AuditResponse::NotFound,
        },
        Ok(Err(e)) if e.is_unavailable() => AuditResponse::Failed { reason: format!("{UNAVAILABLE}{e}") },
        Ok(Err(e @ ObjectError::Length { .. })) => AuditResponse::Failed { reason: e.to_string() },
        Ok(Err(e)) => {
            tracing::error!(%peer, error = %e, "audit could not be answered");
            AuditResponse::Failed { reason: format!("{UNAVAILABLE}{e}") }
        }
        Err(e) => AuditResponse::Failed { reason: format!("{UNAVAILABLE}host task failed: {e}") },
    }
}

/// When an object is on none of the disks that are here but some disk is
/// away (e.g. missing since the box started, so its names were never
/// read): whether MANIFEST.db records the object on such a disk, and the
/// "unavailable" answer if so.
pub(crate) async fn on_disk_away(inner: &Arc<Inner>, owner: &PeerId, root: &[u8; 32]) -> Option<String> {
    if !inner.objects.some_disk_away() {
        return None;
    }
    let (owner, root) = (*owner, *root);
    let held = inner.db.call(move |m| m.hosted_object(&owner, &root)).await.ok()??;
    let disk = inner.objects.disk_with_row(held.object.disk)?;
    let s = disk.status();
    if s.health.readable() {
        return None;
    }
    Some(format!(
        "{UNAVAILABLE}object hosted/{} is on data disk {} which is {}",
        hosted_name(&owner, &root),
        s.label,
        s.health
    ))
}
