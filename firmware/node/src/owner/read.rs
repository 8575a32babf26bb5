//! Reading a file back: from the local copy if there is one, else from the
//! fastest healthy host, falling back to the next copy on any error. Every
//! byte handed on has been verified (each segment's AEAD under our key; the
//! object's root and the plaintext blake3 at the end), and a fallback goes
//! on from the byte the failed copy stopped at, so nothing is handed on twice.

use std::io::{self, Write};
use std::sync::Arc;

use bunker_core::{Descriptor, Layout, ObjectId, Opener, FORMAT_VERSION};
use bunker_manifest::{AuditOutcome, FileRecord, Replica, ReplicaState};
use bunker_net::FetchRequest;

use crate::node::Inner;
use crate::objects::{local_name, Area};
use crate::owner::bridge::futures_to_blocking;
use crate::owner::local::LOCAL_REPLICA_INDEX;

/// Where one attempt reads from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// Our keep-local sealed copy.
    Local,
    /// A replica on a host.
    Remote(Box<Replica>),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Local => f.write_str("local copy"),
            Source::Remote(r) => write!(f, "replica {} on {}", r.index, r.host),
        }
    }
}

/// Passes on only the plaintext past what earlier attempts already passed
/// on, and hashes what it passes.
struct Resume<W> {
    out: W,
    /// Bytes passed on by all attempts.
    released: u64,
    /// Bytes seen in this attempt.
    seen: u64,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for Resume<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let start = self.seen;
        self.seen += data.len() as u64;
        if self.seen > self.released {
            let skip = self.released.saturating_sub(start) as usize;
            let new = &data[skip..];
            self.out.write_all(new)?;
            self.hasher.update(new);
            self.released += new.len() as u64;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The final flush is the caller's, after the whole-file check.
        Ok(())
    }
}

/// The sources of `file` in the order to try them: local copy, then active
/// replicas with fewest recent failures and fastest recent audits.
pub(crate) async fn sources(inner: &Arc<Inner>, file: &FileRecord, use_local: bool) -> Vec<Source> {
    let mut out = Vec::new();
    if use_local && file.local.is_some() {
        out.push(Source::Local);
    }
    let id = file.id;
    let ranked = inner
        .db
        .call(move |m| {
            let mut ranked = Vec::new();
            for r in m.replicas_of(id)? {
                if r.state != ReplicaState::Active {
                    continue;
                }
                let audits = m.audits_of_replica(r.id, 5)?;
                let passed: Vec<u64> =
                    audits.iter().filter(|a| a.outcome == AuditOutcome::Passed).map(|a| a.latency_ms).collect();
                let latency = if passed.is_empty() { u64::MAX / 2 } else { passed.iter().sum::<u64>() / passed.len() as u64 };
                ranked.push((r.consecutive_failures, latency, r));
            }
            Ok(ranked)
        })
        .await;
    let mut ranked = ranked.unwrap_or_default();
    ranked.sort_by_key(|(f, l, r)| (*f, *l, r.index));
    out.extend(ranked.into_iter().map(|(_, _, r)| Source::Remote(Box::new(r))));
    out
}

/// Reads `file` into `out` from the first of `sources` that works,
/// resuming on the next after an error. On success `out` has been flushed.
/// Returns `out` back, and the reason each failed source failed.
pub(crate) async fn read_into<W>(
    inner: &Arc<Inner>,
    file: &FileRecord,
    sources: Vec<Source>,
    out: W,
) -> (Result<(), Vec<String>>, W)
where
    W: Write + Send + 'static,
{
    let mut reasons = Vec::new();
    let mut resume = Resume { out, released: 0, seen: 0, hasher: blake3::Hasher::new() };
    let layout = match Layout::new(file.size, file.segment_size) {
        Ok(l) => l,
        Err(e) => return (Err(vec![format!("layout of {}: {e}", file.path)]), resume.out),
    };
    for source in sources {
        resume.seen = 0;
        let (result, back) = read_one(inner, file, layout, &source, resume).await;
        resume = back;
        match result {
            Ok(()) => {
                if resume.released != file.size {
                    reasons.push(format!("{source}: gave {} of {} bytes", resume.released, file.size));
                    return (Err(reasons), resume.out);
                }
                let hash = *resume.hasher.finalize().as_bytes();
                if hash != file.plaintext_blake3 {
                    reasons.push(format!("{source}: plaintext does not hash to the recorded blake3"));
                    return (Err(reasons), resume.out);
                }
                // The last chunk goes out only now, after the whole-file check.
                let flushed = tokio::task::spawn_blocking(move || {
                    let mut out = resume.out;
                    (out.flush(), out)
                })
                .await;
                let (flushed, out) = match flushed {
                    Ok(pair) => pair,
                    Err(e) => panic_to_error(e),
                };
                if let Err(e) = flushed {
                    reasons.push(format!("handing the bytes on: {e}"));
                    return (Err(reasons), out);
                }
                return (Ok(()), out);
            }
            Err(reason) => {
                tracing::info!(file = %file.path, %source, %reason, "copy failed, trying the next");
                reasons.push(format!("{source}: {reason}"));
                if reason.contains(READER_GONE) {
                    break;
                }
            }
        }
    }
    if reasons.is_empty() {
        reasons.push("no copy is recorded".into());
    }
    (Err(reasons), resume.out)
}

const READER_GONE: &str = "the reader went away";

async fn read_one<W>(
    inner: &Arc<Inner>,
    file: &FileRecord,
    layout: Layout,
    source: &Source,
    mut resume: Resume<W>,
) -> (Result<(), String>, Resume<W>)
where
    W: Write + Send + 'static,
{
    let file_id = file.object_id;
    match source {
        Source::Local => {
            let inner = Arc::clone(inner);
            let size = file.size;
            let res = tokio::task::spawn_blocking(move || {
                let r = (|| {
                    let stored = inner.objects.open(Area::Local, &local_name(&file_id)).map_err(|e| e.to_string())?;
                    let descriptor = stored.descriptor();
                    if descriptor.size != size {
                        return Err(format!("local copy holds {} bytes, the file has {size}", descriptor.size));
                    }
                    let reader = stored.reader().map_err(|e| e.to_string())?;
                    let key = inner.keys.replica_key(&file_id, LOCAL_REPLICA_INDEX);
                    Opener::new(&key, ObjectId { file_id, replica_index: LOCAL_REPLICA_INDEX })
                        .open(&descriptor, io::BufReader::with_capacity(256 * 1024, reader), &mut resume)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })();
                (r, resume)
            })
            .await;
            match res {
                Ok(pair) => pair,
                Err(e) => panic_to_error(e),
            }
        }
        Source::Remote(r) => {
            let Some(contract) = r.contract else {
                return (Err("no contract covers it".into()), resume);
            };
            let request = FetchRequest { contract_id: contract.0, object_root: r.root };
            let incoming = match inner.net.fetch(r.host, request, r.stored_size).await {
                Ok(i) => i,
                Err(e) => return (Err(e.to_string()), resume),
            };
            if incoming.len() != layout.sealed_size() {
                return (Err(format!("host sends {} bytes, the object has {}", incoming.len(), layout.sealed_size())), resume);
            }
            let reader = futures_to_blocking(incoming);
            let descriptor = descriptor(r.root, layout);
            let key = inner.keys.replica_key(&file_id, r.index);
            let object = ObjectId { file_id, replica_index: r.index };
            let res = tokio::task::spawn_blocking(move || {
                let r = Opener::new(&key, object).open(&descriptor, reader, &mut resume).map(|_| ()).map_err(|e| e.to_string());
                (r, resume)
            })
            .await;
            match res {
                Ok(pair) => pair,
                Err(e) => panic_to_error(e),
            }
        }
    }
}

fn panic_to_error<T>(e: tokio::task::JoinError) -> T {
    // The blocking task owned the writer; a panic there is a bug, not a
    // peer's doing, so it is not hidden.
    std::panic::resume_unwind(e.into_panic())
}

/// The descriptor of a replica: its root and the file's layout.
pub(crate) fn descriptor(root: [u8; 32], layout: Layout) -> Descriptor {
    Descriptor {
        version: FORMAT_VERSION,
        root,
        size: layout.size(),
        segment_size: layout.segment_size(),
        segment_count: layout.segment_count(),
    }
}
