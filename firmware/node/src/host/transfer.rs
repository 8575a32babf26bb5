//! Whole objects in and out: `/bunker/store/2` and `/bunker/fetch/2`.
//!
//! A store is taken only under a contract of that very peer, for exactly the
//! root and size the contract names; the bytes are hashed as they arrive
//! and the object is published only if they hash to the contract's root.
//! The owner then gets a receipt signed over the root *we* computed. A fetch
//! hands the whole object back to its owner — the same path for full checks
//! and recoveries, so they cannot be told apart.

use std::io::Write;
use std::sync::Arc;

use bunker_core::{Hash, Layout};
use bunker_manifest::{ContractDirection, ContractId, ContractState, HostedState, NewHostedObject, QueryError};
use bunker_net::{InboundFetch, InboundStore, IncomingObject, PeerId, StoreHeader, StoreReceipt};
use futures::AsyncReadExt;

use crate::node::{now, Inner};
use crate::objects::{hosted_name, Area, AsyncObjectReader};
use crate::sign;

/// Chunks queued between the stream and the disk writer.
const QUEUE: usize = 4;

/// What an accepted store will write.
#[derive(Clone)]
struct StorePlan {
    contract: ContractId,
    owner: PeerId,
    layout: Layout,
    root: Hash,
    name: String,
    total_len: u64,
}

/// The contract `peer` names, if it is theirs, hosted here, and in force.
/// Someone else's contract is answered exactly like an unknown one.
async fn their_contract(inner: &Arc<Inner>, peer: PeerId, id: ContractId) -> Result<bunker_manifest::ContractRecord, String> {
    let record = inner.db.call(move |m| m.contract(&id)).await.map_err(|e| {
        tracing::error!(error = %e, "cannot read a contract");
        "host cannot read its contracts now; try later".to_string()
    })?;
    match record {
        Some(r) if r.contract.peer == peer && r.contract.direction == ContractDirection::TheirsOnUs => {
            if r.state == ContractState::Active {
                Ok(r)
            } else {
                Err(format!("contract {} is {}", hex::encode(id.0), r.state))
            }
        }
        _ => Err(format!("no contract {} for you on this box", hex::encode(id.0))),
    }
}

async fn plan_store(inner: &Arc<Inner>, peer: PeerId, h: StoreHeader) -> Result<StorePlan, String> {
    let record = their_contract(inner, peer, ContractId(h.contract_id)).await?;
    let c = &record.contract;
    if c.object_root != h.object_root {
        return Err(format!(
            "contract {} is for object {}, not {}",
            hex::encode(h.contract_id),
            hex::encode(c.object_root),
            hex::encode(h.object_root)
        ));
    }
    if h.total_len != c.size_bytes {
        return Err(format!("contract covers exactly {} bytes, {} announced", c.size_bytes, h.total_len));
    }
    let terms = sign::terms_from_record(&record.contract.terms)?;
    let layout = Layout::new(terms.plain_bytes, terms.segment_size).map_err(|e| e.to_string())?;
    // One object lives on one disk: the roomiest disk that takes new data
    // must hold it (full, read-only and missing disks take nothing).
    let i = Arc::clone(inner);
    let (room, disks) = tokio::task::spawn_blocking(move || (i.objects.largest_free(), i.objects.describe()))
        .await
        .map_err(|e| format!("host store unavailable: {e}"))?;
    if room < h.total_len {
        return Err(format!("host disk full: {room} bytes free on the roomiest data disk, {} needed ({disks})", h.total_len));
    }
    Ok(StorePlan {
        contract: ContractId(h.contract_id),
        owner: peer,
        layout,
        root: c.object_root,
        name: hosted_name(&peer, &c.object_root),
        total_len: h.total_len,
    })
}

/// Answers an owner's upload.
pub(crate) async fn store(inner: &Arc<Inner>, s: InboundStore) {
    let peer = s.peer;
    let within = inner.net.limits().stream_header_timeout.mul_f64(0.5);
    let plan = match tokio::time::timeout(within, plan_store(inner, peer, s.header.clone())).await {
        Ok(Ok(plan)) => plan,
        Ok(Err(reason)) => {
            tracing::info!(%peer, %reason, "store refused");
            let _ = s.reject(reason).await;
            return;
        }
        Err(_) => {
            let _ = s.reject("host busy; try later").await;
            return;
        }
    };
    let mut body = match s.accept().await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "store ended before the body");
            return;
        }
    };
    let outcome = receive(inner, &plan, &mut body).await;
    match &outcome {
        Ok(_) => tracing::info!(%peer, root = %hex::encode(plan.root), bytes = plan.total_len, "object stored"),
        Err(reason) => tracing::info!(%peer, root = %hex::encode(plan.root), %reason, "object not kept"),
    }
    if let Err(e) = body.finish(outcome).await {
        tracing::debug!(%peer, error = %e, "store verdict not delivered");
    }
}

/// Streams the body to disk, hashing as it goes; records the object and
/// signs the receipt when it is whole and has the contract's root.
async fn receive(inner: &Arc<Inner>, plan: &StorePlan, body: &mut IncomingObject) -> Result<StoreReceipt, String> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(QUEUE);
    // Written buffers come back to be filled again: the bytes are read
    // straight into what the writer takes, with no copy and no new zeroed
    // buffer per piece. At most QUEUE + 2 buffers ever exist.
    let (spent_tx, mut spent_rx) = tokio::sync::mpsc::unbounded_channel::<Vec<u8>>();
    // Bytes per step: the device profile's buffer size. Each buffer is
    // filled whole before it goes (a network read gives much less), so the
    // writer makes few large writes.
    let chunk = inner.config.tuning.io_buffer_bytes.clamp(16 << 10, 4 << 20);
    let (i, p) = (Arc::clone(inner), plan.clone());
    let writer = tokio::task::spawn_blocking(move || -> Result<Hash, String> {
        let mut w = i.objects.create(Area::Hosted, &p.name, p.layout).map_err(|e| e.to_string())?;
        while let Some(chunk) = rx.blocking_recv() {
            w.write_all(&chunk).map_err(|e| format!("writing the object: {e}"))?;
            let _ = spent_tx.send(chunk);
        }
        // Short bodies fail here (and the temporary files go): nothing half-kept.
        w.finish_expect(&p.root).map_err(|e| e.to_string())
    });
    let mut read_error = None;
    'body: loop {
        let mut buf = spent_rx.try_recv().unwrap_or_else(|_| vec![0u8; chunk]);
        buf.resize(chunk, 0);
        let mut filled = 0;
        while filled < chunk {
            match body.read(&mut buf[filled..]).await {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) => {
                    read_error = Some(e.to_string());
                    break 'body;
                }
            }
        }
        if filled == 0 {
            break;
        }
        buf.truncate(filled);
        if tx.send(buf).await.is_err() {
            break; // the writer failed; its error says why
        }
        if filled < chunk {
            break; // the body ended
        }
    }
    drop(tx);
    let written = writer.await.unwrap_or_else(|e| Err(format!("host writer failed: {e}")));
    if let Some(e) = read_error {
        // The writer saw a short object and kept nothing.
        return Err(format!("upload broke off: {e}"));
    }
    let root = written?;
    // The disk it landed on names it in MANIFEST.db.
    let disk = match inner.objects.disk_of(Area::Hosted, &plan.name) {
        Some(d) => crate::data_disks::row_of(inner, &d).await.map_err(|e| {
            tracing::error!(error = %e, "cannot record the disk of a stored object");
            "host could not record the object; try later".to_string()
        })?,
        None => return Err("host lost the object it just wrote; try again".into()),
    };
    let record = NewHostedObject {
        contract: plan.contract,
        owner: plan.owner,
        root,
        disk,
        rel_path: format!("hosted/{}", plan.name),
        bytes: plan.total_len,
        state: HostedState::Stored,
        created_at: now(),
    };
    match inner.db.call(move |m| m.insert_hosted_object(&record)).await {
        Ok(_) => inner.host.note_stored(plan.total_len),
        Err(crate::error::DbError::Query(QueryError::AlreadyExists { .. })) => {}
        Err(e) => {
            tracing::error!(error = %e, "stored object could not be recorded; removing it");
            let (i, name) = (Arc::clone(inner), plan.name.clone());
            let _ = tokio::task::spawn_blocking(move || i.objects.remove(Area::Hosted, &name)).await;
            return Err("host could not record the object; try later".into());
        }
    }
    Ok(StoreReceipt { root, host_signature: sign::sign_receipt(&inner.keys, &plan.contract.0, &root) })
}

/// Answers a fetch: the whole object, to its owner only.
pub(crate) async fn fetch(inner: &Arc<Inner>, f: InboundFetch) {
    let peer = f.peer;
    let id = ContractId(f.request.contract_id);
    let root = f.request.object_root;
    let within = inner.net.limits().stream_header_timeout.mul_f64(0.5);
    let checked = tokio::time::timeout(within, their_contract(inner, peer, id)).await;
    match checked {
        Ok(Ok(r)) if r.contract.object_root == root => {}
        Ok(Ok(_)) => {
            let _ = f.refuse(format!("contract {} is for another object", hex::encode(id.0))).await;
            return;
        }
        Ok(Err(reason)) => {
            tracing::info!(%peer, %reason, "fetch refused");
            let _ = f.refuse(reason).await;
            return;
        }
        Err(_) => {
            let _ = f.refuse("host busy; try later").await;
            return;
        }
    }
    let Some(_slot) = inner.host.serve_slot_within(&inner.config, within).await else {
        let _ = f.refuse("host busy; try later").await;
        return;
    };
    let (i, name) = (Arc::clone(inner), hosted_name(&peer, &root));
    let opened = tokio::task::spawn_blocking(move || {
        let o = i.objects.open(Area::Hosted, &name)?;
        Ok::<_, crate::objects::ObjectError>((o.len(), o.reader()?))
    })
    .await;
    let sent = match opened {
        Ok(Ok((len, file))) => f.send(len, AsyncObjectReader::new(file)).await,
        Ok(Err(e)) if e.is_missing() => match crate::host::audit::on_disk_away(inner, &peer, &root).await {
            Some(reason) => f.refuse(reason).await,
            None => f.not_found().await,
        },
        Ok(Err(e)) if e.is_unavailable() => {
            tracing::info!(%peer, error = %e, "fetch of an object on a disk that is away");
            f.refuse(format!("{}{e}", crate::host::audit::UNAVAILABLE)).await
        }
        Ok(Err(e)) => {
            tracing::error!(%peer, error = %e, "object to fetch is unavailable");
            f.refuse(format!("unavailable: {e}")).await
        }
        Err(e) => f.refuse(format!("unavailable: host task failed: {e}")).await,
    };
    if let Err(e) = sent {
        tracing::info!(%peer, error = %e, "fetch did not complete");
    }
}
