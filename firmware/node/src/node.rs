//! The [`Node`] handle: built once by the daemon from its parts, cloned
//! freely (it is an `Arc`), and the only way in for the admin page and CLI.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bunker_core::{Keys, Seed};
use bunker_ln::{LnConfig, Lightning};
use bunker_manifest::Manifest;
use bunker_net::{InboundRequest, Net, PeerId};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{NodeConfig, Policy};
use crate::db::Db;
use crate::error::{DbError, FileError, PutError, StartError};
use crate::objects::ObjectStore;
use crate::views::{
    AuditView, ContractView, FileDetail, FileView, Listing, NodeStatus, PaymentView, PeersView, ReplicationView,
};

/// What the daemon hands the engine. The engine owns them from then on.
pub struct NodeParts {
    /// The box's 24 words: keys for sealing, the Lightning wallet.
    pub seed: Seed,
    /// Settings.
    pub config: NodeConfig,
    /// The box's MANIFEST.db, opened.
    pub manifest: Manifest,
    /// The running swarm…
    pub net: Net,
    /// …and the requests peers send us through it.
    pub inbound: mpsc::Receiver<InboundRequest>,
    /// Lightning settings; `None` runs without payments (swap contracts only,
    /// amounts owed still accrue and are paid once Lightning is configured).
    pub ln: Option<LnConfig>,
}

/// Where Lightning stands. Its chain source can be away at start or later:
/// storage keeps working meanwhile and what is owed waits.
#[derive(Clone, Default)]
pub(crate) enum LnState {
    /// Not configured.
    #[default]
    Off,
    /// Being started (or restarted after the chain source was unreachable).
    Starting(String),
    /// Running.
    Running(Arc<Lightning>),
}

/// State shared by every task of the engine.
pub(crate) struct Inner {
    pub(crate) keys: Keys,
    pub(crate) seed: Seed,
    pub(crate) config: NodeConfig,
    pub(crate) db: Db,
    pub(crate) net: Net,
    pub(crate) objects: ObjectStore,
    pub(crate) ln: RwLock<LnState>,
    /// What the hosting side remembers between requests (admission lock, disk row).
    pub(crate) host: crate::host::HostState,
    /// Background loops' status and the foreground/background throttle.
    pub(crate) workers: crate::workers::Workers,
    /// Flips to `true` once on shutdown; every loop watches it.
    pub(crate) stop: watch::Receiver<bool>,
    /// What manifest replication did since start (the Backup view).
    pub(crate) replication: crate::replication::Tracker,
}

impl Inner {
    /// The running Lightning node, if there is one now.
    pub(crate) fn lightning(&self) -> Option<Arc<Lightning>> {
        match &*self.ln.read().unwrap_or_else(|p| p.into_inner()) {
            LnState::Running(ln) => Some(Arc::clone(ln)),
            _ => None,
        }
    }

    /// Where Lightning stands now.
    pub(crate) fn ln_state(&self) -> LnState {
        self.ln.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn set_ln_state(&self, state: LnState) {
        *self.ln.write().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Our PeerId.
    pub(crate) fn peer_id(&self) -> PeerId {
        self.net.local_peer_id()
    }
}

/// Unix seconds now: the engine owns the clock (the manifest takes times
/// from its caller).
pub(crate) fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// How long the engine's loops get to stop on shutdown, together.
const TASK_STOP_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
    tasks: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
    stop: Arc<watch::Sender<bool>>,
}

/// A file being read back: verified plaintext, `len` bytes in all.
pub struct FileStream {
    /// Plaintext bytes that will be read.
    pub len: u64,
    /// The bytes; an error mid-way means no verified copy could be finished.
    pub body: tokio::io::DuplexStream,
}

impl Node {
    /// Starts the engine: the object store, the inbound dispatch loop, the
    /// background workers, and Lightning (in the background: a chain source
    /// that is away does not stop the box from serving storage).
    pub async fn start(parts: NodeParts) -> Result<Node, StartError> {
        let keys = Keys::from_seed(&parts.seed);
        let objects = ObjectStore::new(&parts.config.store_root).map_err(|source| StartError::Store {
            path: parts.config.store_root.display().to_string(),
            source,
        })?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let inner = Arc::new(Inner {
            keys,
            seed: parts.seed,
            config: parts.config,
            db: Db::new(parts.manifest),
            net: parts.net,
            objects,
            ln: RwLock::new(LnState::Off),
            host: crate::host::HostState::default(),
            workers: crate::workers::Workers::new(),
            stop: stop_rx,
            replication: crate::replication::Tracker::default(),
        });
        let node = Node {
            inner: Arc::clone(&inner),
            tasks: Arc::new(std::sync::Mutex::new(Vec::new())),
            stop: Arc::new(stop_tx),
        };
        let mut tasks = vec![tokio::spawn(dispatch(Arc::clone(&inner), parts.inbound))];
        tasks.extend(crate::ledger::start_lightning(Arc::clone(&inner), parts.ln));
        tasks.extend(crate::workers::spawn_all(Arc::clone(&inner)));
        node.tasks.lock().unwrap_or_else(|p| p.into_inner()).extend(tasks);
        Ok(node)
    }

    /// Our PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id()
    }

    /// The swarm, for the daemon's `peers` view and dialing bootstrap peers.
    pub fn net(&self) -> &Net {
        &self.inner.net
    }

    /// The Lightning node, when it is running (wallet page).
    pub fn lightning(&self) -> Option<Arc<Lightning>> {
        self.inner.lightning()
    }

    /// Stores `size` bytes read from `body` at `path` with `policy`: sealed
    /// per replica, placed on distinct hosts, recorded in the manifest. Returns
    /// once every copy is confirmed by its host (signed root equal to ours).
    pub async fn put<R>(&self, path: &str, size: u64, policy: Policy, body: R) -> Result<FileView, PutError>
    where
        R: tokio::io::AsyncRead + Send + Unpin + 'static,
    {
        crate::owner::put(&self.inner, path, size, policy, body).await
    }

    /// Streams the plaintext of `path` back, verified segment by segment:
    /// from the local copy if there is one, else from the fastest healthy
    /// host, falling back to the next replica on any error.
    pub async fn get(&self, path: &str) -> Result<FileStream, FileError> {
        crate::owner::get(&self.inner, path).await
    }

    /// Deletes `path`: local copy removed, every contract released.
    pub async fn remove(&self, path: &str) -> Result<(), FileError> {
        crate::owner::remove(&self.inner, path).await
    }

    /// Changes the copies/keep-local of `path`; raising places new replicas,
    /// lowering releases contracts.
    pub async fn set_policy(&self, path: &str, policy: Policy) -> Result<FileView, FileError> {
        crate::owner::set_policy(&self.inner, path, policy).await
    }

    /// One folder of the box's tree; the root lists `/MANIFEST.db` first.
    pub async fn list(&self, folder: &str) -> Result<Listing, FileError> {
        crate::owner::list(&self.inner, folder).await
    }

    /// One file with replicas, hosts and recent audits.
    pub async fn file(&self, path: &str) -> Result<FileDetail, FileError> {
        crate::owner::detail(&self.inner, path).await
    }

    /// A consistent copy of MANIFEST.db (SQLite backup API) written to
    /// `dest`, for the `/MANIFEST.db` download. Returns its length.
    pub async fn manifest_copy(&self, dest: std::path::PathBuf) -> Result<u64, FileError> {
        let path = bunker_manifest::MANIFEST_PATH.to_string();
        self.inner
            .db
            .call(move |m| {
                m.write_consistent_copy(&dest)
                    .map_err(|e| bunker_manifest::QueryError::InvalidValue { field: "copy", reason: e.to_string() })
            })
            .await
            .map_err(|e| FileError::Io { path, reason: e.to_string() })
    }

    /// Peers: connected and known, NAT status, audit record.
    pub async fn peers(&self) -> Result<PeersView, DbError> {
        crate::owner::peers(&self.inner).await
    }

    /// Contracts both ways.
    pub async fn contracts(&self) -> Result<Vec<ContractView>, DbError> {
        crate::owner::contracts(&self.inner).await
    }

    /// The latest audits, newest first.
    pub async fn audits(&self, limit: u32) -> Result<Vec<AuditView>, DbError> {
        crate::owner::audits(&self.inner, limit).await
    }

    /// The latest payments, newest first.
    pub async fn payments(&self, limit: u32) -> Result<Vec<PaymentView>, DbError> {
        crate::owner::payments(&self.inner, limit).await
    }

    /// The engine at a glance.
    pub async fn status(&self) -> Result<NodeStatus, DbError> {
        crate::owner::status(&self.inner).await
    }

    /// How MANIFEST.db is replicated: newest snapshot, holders and what
    /// they confirmed, their last audits, the next round (the Backup view).
    pub async fn replication_status(&self) -> Result<ReplicationView, DbError> {
        crate::replication::status(&self.inner).await
    }

    /// Stops every loop, Lightning and the swarm. Idempotent.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        // All loops stop together within one budget: a worker stuck on a slow
        // disk or peer is aborted rather than holding up the daemon's exit.
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        if tokio::time::timeout(TASK_STOP_BUDGET, futures::future::join_all(tasks)).await.is_err() {
            tracing::warn!(budget = ?TASK_STOP_BUDGET, "engine tasks did not all stop in time; aborted");
            aborts.iter().for_each(|a| a.abort());
        }
        let ln = std::mem::take(&mut *self.inner.ln.write().unwrap_or_else(|p| p.into_inner()));
        if let LnState::Running(ln) = ln {
            match Arc::try_unwrap(ln) {
                Ok(ln) => {
                    let _ = tokio::task::spawn_blocking(move || ln.stop()).await;
                }
                Err(_) => tracing::warn!("Lightning still in use at shutdown; it stops when released"),
            }
        }
        self.inner.net.shutdown().await;
    }
}

/// Answers what peers ask, each request on its own task so a slow disk
/// behind one store does not hold up another peer's audit.
async fn dispatch(inner: Arc<Inner>, mut inbound: mpsc::Receiver<InboundRequest>) {
    let mut stop = inner.stop.clone();
    loop {
        tokio::select! {
            req = inbound.recv() => match req {
                Some(req) => {
                    let inner = Arc::clone(&inner);
                    tokio::spawn(async move { crate::host::handle(&inner, req).await });
                }
                None => break,
            },
            _ = stop.changed() => break,
        }
    }
}
