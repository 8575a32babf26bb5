//! The engine's HTTP API: files, peers, contracts, audits, payments, the
//! Lightning wallet and the manifest's backup (replication status, recovery
//! kit), over a [`bunker_node::Node`].
//!
//! One set of handlers, mounted twice: on the admin page (session cookie,
//! Host and Origin checks, like every other `/api` call) and on the local
//! API socket that the `bunker` CLI uses (file permissions are the check).
//! Bodies are `bunker_node::views` types; refusals are `{"error": "..."}`
//! with 400 (bad input), 404 (no such file), 409 (exists, policy refused),
//! 411 (upload without Content-Length), 413 (larger than any data disk),
//! 507 (no room for the file's copies now), 503 (an engine part is not
//! running) or 500.
//!
//! File contents stream both ways: an upload goes from the socket into the
//! engine chunk by chunk and a download from the engine to the socket, so a
//! box with 1 GiB of RAM moves files of any size. A stalled upload is cut
//! after [`UPLOAD_IDLE`] without a byte rather than after a total time.

use std::io::ErrorKind;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path as UrlPath, Query, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use bunker_manifest::{FilePath, FolderPath, MANIFEST_PATH};
use bunker_node::{FileError, Node, Policy, PutError};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::guard::{JsonBody, LoggedIn};
use crate::AppState;

/// Longest an upload may go without a single byte arriving before it is
/// ended (and nothing of it is kept).
pub const UPLOAD_IDLE: Duration = Duration::from_secs(60);

/// Most entries one `audits` or `payments` call returns.
pub const MAX_LIMIT: u32 = 10_000;

/// Most copies of one file on peers that a request may ask for.
pub const MAX_COPIES: u8 = 16;

/// Room kept beyond a file's own size when checking an upload against the
/// free space: sealing adds a 16-byte tag per segment and a proof sidecar.
const SEALING_SLACK: u64 = 16 << 20;

/// What the engine API needs besides the engine.
#[derive(Clone)]
pub struct EngineApi {
    /// The engine.
    pub node: Node,
    /// The first place sealed objects are written: its size bounds an
    /// upload while the engine knows no disk's size yet.
    pub store_root: PathBuf,
    /// A directory on a real disk (not a RAM /tmp) for the consistent copy
    /// of MANIFEST.db that a download of `/MANIFEST.db` streams.
    pub scratch_dir: PathBuf,
}

/// Makes the engine API of `router` (the admin or local router) answer
/// with `api`; without it, its calls answer 503.
pub fn with_engine(router: Router, api: EngineApi) -> Router {
    router.layer(Extension(Arc::new(api)))
}

/// The engine routes for the local API router: no session (the socket's
/// mode is the check).
pub(crate) fn local_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    json_routes().merge(content_routes())
}

/// The engine routes for the admin router: a session and the Host/Origin
/// checks on every call, the admin's time limit on all but file contents
/// (a large upload takes longer than any JSON call; it has [`UPLOAD_IDLE`]).
pub(crate) fn admin_routes(state: AppState) -> Router<AppState> {
    json_routes()
        .layer(axum::middleware::from_fn(crate::guard::time_limit))
        .merge(content_routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_session))
        .layer(axum::middleware::from_fn_with_state(state, crate::guard::host_and_origin))
}

fn json_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/api/files", get(list))
        .route("/api/files/detail", get(detail))
        .route("/api/files/policy", post(set_policy))
        .route("/api/node", get(node_status))
        .route("/api/peers", get(peers))
        .route("/api/contracts", get(contracts))
        .route("/api/audits", get(audits))
        .route("/api/payments", get(payments))
        .route("/api/wallet", get(wallet))
        .route("/api/wallet/address", post(wallet_address))
        .route("/api/wallet/channels", post(open_channel))
        .route("/api/wallet/channels/{id}", delete(close_channel))
        .route("/api/wallet/invoice", post(invoice))
        .route("/api/wallet/pay", post(pay))
        .route("/api/backup", get(backup_status))
        .route("/api/backup/replicate", post(backup_replicate))
        .route("/api/backup/audit", post(backup_audit))
        .route("/api/backup/kit", get(backup_kit))
        .route("/api/backup/kit.txt", get(backup_kit_text))
}

fn content_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/api/files/content", get(download).put(upload).delete(remove))
}

async fn require_session(_: LoggedIn, req: Request, next: Next) -> Response {
    next.run(req).await
}

/// A refusal or failure of an engine call.
#[derive(Debug)]
pub struct EngineError {
    status: StatusCode,
    message: String,
}

impl EngineError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        EngineError { status, message: message.into() }
    }
    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
    fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

impl IntoResponse for EngineError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(status = %self.status, error = %self.message, "engine API call failed");
        }
        (self.status, Json(json!({ "error": self.message }))).into_response()
    }
}

impl From<PutError> for EngineError {
    fn from(e: PutError) -> Self {
        let status = match &e {
            PutError::Path(_) | PutError::SizeMismatch { .. } => StatusCode::BAD_REQUEST,
            PutError::Policy(_) | PutError::Exists(_) => StatusCode::CONFLICT,
            PutError::Placement { .. } => StatusCode::SERVICE_UNAVAILABLE,
            PutError::NoRoom { .. } => StatusCode::INSUFFICIENT_STORAGE,
            // The disk is marked; sending the file again uses another one.
            PutError::DiskFailed { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        EngineError::new(status, e.to_string())
    }
}

impl From<FileError> for EngineError {
    fn from(e: FileError) -> Self {
        let status = match &e {
            FileError::Path(_) => StatusCode::BAD_REQUEST,
            FileError::NotFound(_) => StatusCode::NOT_FOUND,
            FileError::Policy(_) => StatusCode::CONFLICT,
            FileError::Unavailable { .. } | FileError::Placement { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        EngineError::new(status, e.to_string())
    }
}

impl From<bunker_node::error::DbError> for EngineError {
    fn from(e: bunker_node::error::DbError) -> Self {
        EngineError::internal(e.to_string())
    }
}

type Result<T, E = EngineError> = std::result::Result<T, E>;

/// The engine, or 503 when this router was built without one.
fn engine(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Arc<EngineApi>> {
    ext.map(|Extension(api)| api).ok_or_else(|| EngineError::unavailable("the storage engine is not running"))
}

/// Runs an engine call on its own task: a bug that panics in the engine
/// answers 500 with a sentence instead of dropping the connection.
async fn run<T, E>(fut: impl std::future::Future<Output = Result<T, E>> + Send + 'static) -> Result<T>
where
    T: Send + 'static,
    E: Into<EngineError> + Send + 'static,
{
    match tokio::spawn(fut).await {
        Ok(result) => result.map_err(Into::into),
        Err(e) => {
            let why = if e.is_panic() { "the engine failed on this request" } else { "the request was cancelled" };
            Err(EngineError::internal(format!("internal error: {why}")))
        }
    }
}

/// Runs a blocking call (Lightning's methods block) on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|_| Err(EngineError::internal("internal error: the wallet failed on this request")))
}

/// A query string as `T`, or 400 with a sentence (axum's own rejection is
/// plain text).
fn query<T>(q: std::result::Result<Query<T>, QueryRejection>) -> Result<T> {
    q.map(|Query(t)| t).map_err(|e| EngineError::bad(format!("bad query string: {}", e.body_text())))
}

fn file_path(path: &str) -> Result<String> {
    FilePath::parse(path).map(|p| p.to_path_string()).map_err(|e| EngineError::bad(e.to_string()))
}

// ---------------------------------------------------------------- files

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderQuery {
    #[serde(default)]
    folder: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PathQuery {
    path: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    path: String,
    #[serde(default)]
    copies: Option<u8>,
    #[serde(default)]
    keep_local: Option<bool>,
}

/// Body of `POST /api/files/policy`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRequest {
    /// The file.
    pub path: String,
    /// Copies on peers.
    pub copies: u8,
    /// Keep a sealed copy on the box.
    pub keep_local: bool,
}

fn policy(copies: u8, keep_local: bool) -> Result<Policy> {
    if copies > MAX_COPIES {
        return Err(EngineError::bad(format!("at most {MAX_COPIES} copies per file, not {copies}")));
    }
    Ok(Policy { copies, keep_local })
}

/// `GET /api/files?folder=/photos`
async fn list(
    ext: Option<Extension<Arc<EngineApi>>>,
    q: std::result::Result<Query<FolderQuery>, QueryRejection>,
) -> Result<Response> {
    let api = engine(ext)?;
    let folder = query(q)?.folder.unwrap_or_else(|| "/".into());
    let folder = FolderPath::parse(&folder).map_err(|e| EngineError::bad(e.to_string()))?.as_str().to_string();
    let node = api.node.clone();
    Ok(Json(run(async move { node.list(&folder).await }).await?).into_response())
}

/// `GET /api/files/detail?path=/photos/a.jpg`
async fn detail(
    ext: Option<Extension<Arc<EngineApi>>>,
    q: std::result::Result<Query<PathQuery>, QueryRejection>,
) -> Result<Response> {
    let api = engine(ext)?;
    let path = file_path(&query(q)?.path)?;
    let node = api.node.clone();
    Ok(Json(run(async move { node.file(&path).await }).await?).into_response())
}

/// `POST /api/files/policy`
async fn set_policy(ext: Option<Extension<Arc<EngineApi>>>, JsonBody(body): JsonBody<PolicyRequest>) -> Result<Response> {
    let api = engine(ext)?;
    let path = file_path(&body.path)?;
    let policy = policy(body.copies, body.keep_local)?;
    let node = api.node.clone();
    Ok(Json(run(async move { node.set_policy(&path, policy).await }).await?).into_response())
}

/// `DELETE /api/files/content?path=...`
async fn remove(
    ext: Option<Extension<Arc<EngineApi>>>,
    q: std::result::Result<Query<PathQuery>, QueryRejection>,
) -> Result<StatusCode> {
    let api = engine(ext)?;
    let path = file_path(&query(q)?.path)?;
    let node = api.node.clone();
    run(async move { node.remove(&path).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /api/files/content?path=...&copies=2&keep_local=true`, the file as
/// the raw body.
async fn upload(
    ext: Option<Extension<Arc<EngineApi>>>,
    q: std::result::Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let api = engine(ext)?;
    let q = query(q)?;
    let path = file_path(&q.path)?;
    let defaults = Policy::default();
    let policy = policy(q.copies.unwrap_or(defaults.copies), q.keep_local.unwrap_or(defaults.keep_local))?;
    let size = content_length(&headers)?;
    // Larger than any data disk of the box is in all: it can never be
    // stored here (413). A file that could fit but finds no room now is the
    // engine's refusal (507 Insufficient Storage, `PutError::NoRoom`).
    let disks = api.node.disks();
    let (largest, free) = match disks.iter().max_by_key(|d| d.total_bytes) {
        Some(d) if d.total_bytes > 0 => (d.total_bytes, d.free_bytes),
        _ => {
            let space = crate::disk_space(&api.store_root).map_err(|e| {
                EngineError::internal(format!("cannot read the free space of {}: {e}", api.store_root.display()))
            })?;
            (space.total_bytes, space.free_bytes)
        }
    };
    let needed = size.saturating_add(size / 256).saturating_add(SEALING_SLACK);
    if needed > largest {
        return Err(EngineError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{path} is {size} bytes; the box's largest data disk holds {largest} bytes in all ({free} bytes free)"),
        ));
    }
    let reader = SharedBody::new(tokio_util::io::StreamReader::new(idle_limited(body.into_data_stream(), UPLOAD_IDLE)));
    let node = api.node.clone();
    let for_put = reader.clone();
    let result = run(async move { node.put(&path, size, policy, for_put).await.map_err(EngineError::from) }).await;
    match result {
        Ok(file) => Ok((StatusCode::CREATED, Json(file)).into_response()),
        Err(e) => {
            if e.status == StatusCode::INSUFFICIENT_STORAGE && size <= DRAIN_LIMIT {
                reader.drain(DRAIN_LIMIT, DRAIN_TIME).await;
            }
            Err(e)
        }
    }
}

/// A refused upload's body up to this size is read and dropped before the
/// refusal is sent; a larger one gets the refusal and a closed connection.
const DRAIN_LIMIT: u64 = 64 << 20;
/// Longest that reading takes.
const DRAIN_TIME: Duration = Duration::from_secs(30);

/// The upload body, shared between the engine's put and the handler. A full
/// box refuses a put before reading a byte; if the handler answered then, a
/// client still sending its file would hit a closed connection and never
/// read the 507 (the `bunker` CLI printed only "broken pipe"). Sharing the
/// body lets the handler read the rest (bounded) before it answers.
struct SharedBody<R>(Arc<std::sync::Mutex<R>>);

impl<R> Clone for SharedBody<R> {
    fn clone(&self) -> Self {
        SharedBody(Arc::clone(&self.0))
    }
}

impl<R: tokio::io::AsyncRead + Unpin> SharedBody<R> {
    fn new(r: R) -> Self {
        SharedBody(Arc::new(std::sync::Mutex::new(r)))
    }

    /// Reads and drops up to `limit` bytes within `time`.
    async fn drain(mut self, limit: u64, time: Duration) {
        let mut rest = tokio::io::AsyncReadExt::take(&mut self, limit);
        let _ = tokio::time::timeout(time, tokio::io::copy(&mut rest, &mut tokio::io::sink())).await;
    }
}

impl<R: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for SharedBody<R> {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        // Never contended: the put reads it, and the handler only after the put ended.
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::pin::Pin::new(&mut *r).poll_read(cx, buf)
    }
}

/// The announced body length; uploads without one are refused (411): the
/// engine must know the size before the first byte (free space, contracts).
fn content_length(headers: &HeaderMap) -> Result<u64> {
    let value = headers.get(header::CONTENT_LENGTH).ok_or_else(|| {
        EngineError::new(StatusCode::LENGTH_REQUIRED, "send the file with a Content-Length header")
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .ok_or_else(|| EngineError::bad("Content-Length is not a number of bytes"))
}

/// The body's chunks as `io::Result`s, ending with an error when no chunk
/// came for `idle`.
fn idle_limited(
    body: axum::body::BodyDataStream,
    idle: Duration,
) -> impl Stream<Item = std::io::Result<axum::body::Bytes>> + Send + Unpin + 'static {
    Box::pin(futures::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(body))),
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e)), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(ErrorKind::TimedOut, format!("no data for {} s: upload abandoned", idle.as_secs()))),
                None,
            )),
        }
    }))
}

/// `GET /api/files/content?path=...`: the plaintext, or for
/// `/MANIFEST.db` a consistent copy of the database.
async fn download(
    ext: Option<Extension<Arc<EngineApi>>>,
    q: std::result::Result<Query<PathQuery>, QueryRejection>,
) -> Result<Response> {
    let api = engine(ext)?;
    let requested = query(q)?.path;
    if requested == MANIFEST_PATH {
        return manifest_download(&api).await;
    }
    let path = file_path(&requested)?;
    let name = path.rsplit('/').next().unwrap_or("file").to_string();
    let node = api.node.clone();
    let shown = path.clone();
    let file = run(async move { node.get(&path).await }).await?;
    let body = Body::from_stream(whole_or_error(tokio_util::io::ReaderStream::new(file.body), file.len, shown));
    Ok(attachment(body, file.len, &name))
}

/// The file's chunks, ending in an error instead of a clean end when they
/// stop short of `len`: the engine ends its stream early when no copy could
/// be read to the end (every byte it gave was verified, but not the rest),
/// and a download must then break off (the connection is cut, the client
/// sees an incomplete body) rather than end like a whole, shorter file.
fn whole_or_error<S>(chunks: S, len: u64, path: String) -> impl Stream<Item = std::io::Result<axum::body::Bytes>> + Send + 'static
where
    S: Stream<Item = std::io::Result<axum::body::Bytes>> + Send + Unpin + 'static,
{
    futures::stream::unfold(Some((chunks, 0u64)), move |state| {
        let path = path.clone();
        async move {
            let (mut chunks, sent) = state?;
            match chunks.next().await {
                Some(Ok(bytes)) => {
                    let sent = sent + bytes.len() as u64;
                    Some((Ok(bytes), Some((chunks, sent))))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None if sent == len => None,
                None => {
                    tracing::warn!(path = %path, sent, len, "download broken off: no copy of the file could be read to the end");
                    let e = std::io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!("{path}: no copy could be read to the end; {sent} of {len} bytes were sent"),
                    );
                    Some((Err(e), None))
                }
            }
        }
    })
}

/// A consistent copy of MANIFEST.db (SQLite's backup API) into a scratch
/// file that is unlinked as soon as it is open, so nothing is left behind
/// even if the download or the daemon stops half-way.
async fn manifest_download(api: &EngineApi) -> Result<Response> {
    let scratch = api.scratch_dir.clone();
    let tmp = tokio::task::spawn_blocking(move || tempfile::Builder::new().prefix(".manifest-copy-").tempfile_in(&scratch))
        .await
        .map_err(|_| EngineError::internal("internal error: cannot make a scratch file"))?
        .map_err(|e| EngineError::internal(format!("cannot make a scratch file in {}: {e}", api.scratch_dir.display())))?;
    let (file, path) = tmp.into_parts();
    let node = api.node.clone();
    let dest = path.to_path_buf();
    // The copy writes by path (SQLite opens it); the handle we keep reads it.
    let copied = run(async move { node.manifest_copy(dest).await }).await;
    let reopened = std::fs::File::open(&path);
    drop(path); // unlinks the name; the open handle keeps the bytes readable
    drop(file);
    let len = copied?;
    let file = reopened.map_err(|e| EngineError::internal(format!("cannot read the manifest copy: {e}")))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file)));
    Ok(attachment(body, len, "MANIFEST.db"))
}

fn attachment(body: Body, len: u64, name: &str) -> Response {
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    // The name is from a validated path (no control characters); quotes
    // and backslashes are escaped, anything not ASCII goes in filename*.
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() && c != '"' && c != '\\' { c } else { '_' })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

// ---------------------------------------------------------------- engine state

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    #[serde(default)]
    limit: Option<u32>,
}

fn limit(q: std::result::Result<Query<LimitQuery>, QueryRejection>) -> Result<u32> {
    let limit = query(q)?.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(EngineError::bad(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok(limit)
}

/// `GET /api/node`
async fn node_status(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    Ok(Json(run(async move { node.status().await }).await?).into_response())
}

/// `GET /api/peers`
async fn peers(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    Ok(Json(run(async move { node.peers().await }).await?).into_response())
}

/// `GET /api/contracts`
async fn contracts(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    Ok(Json(run(async move { node.contracts().await }).await?).into_response())
}

/// `GET /api/audits?limit=100`
async fn audits(
    ext: Option<Extension<Arc<EngineApi>>>,
    q: std::result::Result<Query<LimitQuery>, QueryRejection>,
) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    let limit = limit(q)?;
    Ok(Json(run(async move { node.audits(limit).await }).await?).into_response())
}

/// `GET /api/payments?limit=100`
async fn payments(
    ext: Option<Extension<Arc<EngineApi>>>,
    q: std::result::Result<Query<LimitQuery>, QueryRejection>,
) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    let limit = limit(q)?;
    Ok(Json(run(async move { node.payments(limit).await }).await?).into_response())
}

// ---------------------------------------------------------------- backup

/// `GET /api/backup`: how MANIFEST.db is replicated to peers (newest
/// snapshot, holders and what each confirmed, last audits, next round).
async fn backup_status(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    Ok(Json(run(async move { node.replication_status().await }).await?).into_response())
}

/// Why a replication call failed: an empty manifest is the owner's
/// situation (409, nothing to send yet), anything else the box's (500).
fn replication_error(e: bunker_node::replication::ReplicationError) -> EngineError {
    match e {
        bunker_node::replication::ReplicationError::Empty => EngineError::new(StatusCode::CONFLICT, e.to_string()),
        other => EngineError::internal(other.to_string()),
    }
}

/// Longest "back up now" or "check holders now" is waited for: under the
/// admin page's 30 s request limit. A slower round is not cancelled: it
/// goes on in the background and the status shows its outcome.
const BACKUP_WAIT: Duration = Duration::from_secs(25);

/// Runs `work` on its own task and waits at most [`BACKUP_WAIT`] for it.
async fn backup_step<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: std::future::Future<Output = std::result::Result<T, bunker_node::replication::ReplicationError>> + Send + 'static,
{
    match tokio::time::timeout(BACKUP_WAIT, tokio::spawn(work)).await {
        Ok(Ok(result)) => result.map_err(replication_error),
        Ok(Err(_)) => Err(EngineError::internal("internal error: the engine failed on this request")),
        Err(_) => Err(EngineError::unavailable(format!(
            "still running after {} s; it goes on in the background and the Backup view shows its outcome",
            BACKUP_WAIT.as_secs()
        ))),
    }
}

/// `POST /api/backup/replicate`: a snapshot now, to the configured number
/// of holders; answers what the round did and the new status.
async fn backup_replicate(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    let n = node.clone();
    let round = backup_step(async move { n.replicate_manifest_now(None).await }).await?;
    let status = run(async move { node.replication_status().await }).await?;
    Ok(Json(json!({ "round": round, "status": status })).into_response())
}

/// `POST /api/backup/audit`: fetches the snapshot back from every holder
/// and verifies it now; holders that failed are dropped (the next round
/// replaces them). Answers the audits and the new status.
async fn backup_audit(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    let n = node.clone();
    let audits = backup_step(async move { n.audit_manifest_holders().await }).await?;
    let status = run(async move { node.replication_status().await }).await?;
    Ok(Json(json!({ "audits": audits, "status": status })).into_response())
}

/// `GET /api/backup/kit`: the sealed recovery kit (who holds the manifest
/// snapshots), which opens only with the same 24 words.
async fn backup_kit(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    let bytes = run(async move { node.recovery_kit_file().await.map_err(|e| EngineError::internal(e.to_string())) }).await?;
    let len = bytes.len() as u64;
    Ok(attachment(Body::from(bytes), len, "bunker-recovery-kit.bin"))
}

/// `GET /api/backup/kit.txt`: the same kit as text for a QR code.
async fn backup_kit_text(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let node = engine(ext)?.node.clone();
    let text = run(async move { node.recovery_kit_text().await.map_err(|e| EngineError::internal(e.to_string())) }).await?;
    Ok(Json(json!({ "text": text })).into_response())
}

// ---------------------------------------------------------------- wallet

/// The running Lightning node, or 503 saying why there is none.
async fn lightning(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Arc<bunker_ln::Lightning>> {
    let node = engine(ext)?.node.clone();
    if let Some(ln) = node.lightning() {
        return Ok(ln);
    }
    let state = run(async move { node.status().await }).await.map(|s| s.lightning).unwrap_or_else(|_| "off".into());
    Err(EngineError::unavailable(match state.as_str() {
        "off" => "Lightning is off: set ln.chain in the box's configuration".to_string(),
        "starting" => "Lightning is starting: try again in a moment".to_string(),
        other => format!("Lightning is not running: {other}"),
    }))
}

/// `GET /api/wallet`
async fn wallet(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let ln = lightning(ext).await?;
    let view = blocking(move || {
        let b = ln.balances();
        let channels: Vec<_> = ln
            .channels()
            .into_iter()
            .map(|c| {
                json!({
                    "user_channel_id": c.user_channel_id.to_string(),
                    "counterparty": c.counterparty,
                    "value_sat": c.value_sat,
                    "outbound_msat": c.outbound_msat,
                    "inbound_msat": c.inbound_msat,
                    "next_outbound_htlc_limit_msat": c.next_outbound_htlc_limit_msat,
                    "ready": c.ready,
                    "usable": c.usable,
                })
            })
            .collect();
        Ok(json!({
            "node_id": ln.node_id().to_string(),
            "listening": ln.listening_addresses(),
            "balances": {
                "onchain_sat": b.onchain_total_sat,
                "onchain_spendable_sat": b.onchain_spendable_sat,
                "anchor_reserve_sat": b.anchor_reserve_sat,
                "lightning_msat": b.lightning_sat.saturating_mul(1000),
                "sendable_msat": ln.sendable_msat(),
            },
            "channels": channels,
        }))
    })
    .await?;
    Ok(Json(view).into_response())
}

/// `POST /api/wallet/address`
async fn wallet_address(ext: Option<Extension<Arc<EngineApi>>>) -> Result<Response> {
    let ln = lightning(ext).await?;
    let address = blocking(move || ln.new_onchain_address().map_err(|e| EngineError::internal(e.to_string()))).await?;
    Ok(Json(json!({ "address": address })).into_response())
}

/// Body of `POST /api/wallet/channels`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenChannel {
    node_id: String,
    address: String,
    sat: u64,
    #[serde(default)]
    push_msat: u64,
}

fn node_id(text: &str) -> Result<bunker_ln::NodeId> {
    bunker_ln::NodeId::from_str(text.trim())
        .map_err(|_| EngineError::bad("node_id must be a Lightning node id: 66 hex digits"))
}

fn channel_error(e: bunker_ln::ChannelError) -> EngineError {
    let status = match &e {
        bunker_ln::ChannelError::UnknownChannel { .. } => StatusCode::NOT_FOUND,
        bunker_ln::ChannelError::OverCap { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    EngineError::new(status, e.to_string())
}

/// `POST /api/wallet/channels`
async fn open_channel(ext: Option<Extension<Arc<EngineApi>>>, JsonBody(body): JsonBody<OpenChannel>) -> Result<Response> {
    let peer = node_id(&body.node_id)?;
    if body.sat == 0 {
        return Err(EngineError::bad("a channel needs more than 0 sat"));
    }
    if body.address.len() > 300 {
        return Err(EngineError::bad("address must be host:port"));
    }
    let addr = tokio::time::timeout(Duration::from_secs(10), tokio::net::lookup_host(body.address.as_str()))
        .await
        .map_err(|_| EngineError::bad(format!("{} could not be resolved within 10 s", body.address)))?
        .map_err(|e| EngineError::bad(format!("address must be host:port ({}: {e})", body.address)))?
        .next()
        .ok_or_else(|| EngineError::bad(format!("{} has no address", body.address)))?;
    let ln = lightning(ext).await?;
    let push = (body.push_msat > 0).then_some(body.push_msat);
    let id = blocking(move || ln.open_channel(peer, addr, body.sat, push).map_err(channel_error)).await?;
    Ok(Json(json!({ "user_channel_id": id.to_string() })).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseQuery {
    node_id: String,
}

/// `DELETE /api/wallet/channels/{user_channel_id}?node_id=<hex>`
async fn close_channel(
    ext: Option<Extension<Arc<EngineApi>>>,
    UrlPath(id): UrlPath<String>,
    q: std::result::Result<Query<CloseQuery>, QueryRejection>,
) -> Result<StatusCode> {
    let id: u128 = id.parse().map_err(|_| EngineError::bad("the channel id is a decimal number"))?;
    let peer = node_id(&query(q)?.node_id)?;
    let ln = lightning(ext).await?;
    blocking(move || ln.close_channel(id, peer).map_err(channel_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/wallet/invoice`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceRequest {
    msat: u64,
    #[serde(default)]
    description: String,
}

/// How long an invoice made from the admin page or CLI can be paid.
const INVOICE_EXPIRY_SECS: u32 = 3600;

/// `POST /api/wallet/invoice`
async fn invoice(ext: Option<Extension<Arc<EngineApi>>>, JsonBody(body): JsonBody<InvoiceRequest>) -> Result<Response> {
    let ln = lightning(ext).await?;
    let text = blocking(move || {
        ln.invoice(body.msat, &body.description, INVOICE_EXPIRY_SECS).map_err(|e| {
            let status = match &e {
                bunker_ln::ReceiveError::DescriptionTooLong { .. } | bunker_ln::ReceiveError::InvalidAmount { .. } => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            EngineError::new(status, e.to_string())
        })
    })
    .await?;
    Ok(Json(json!({ "invoice": text })).into_response())
}

/// Body of `POST /api/wallet/pay`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    invoice: String,
}

/// `POST /api/wallet/pay`
async fn pay(ext: Option<Extension<Arc<EngineApi>>>, JsonBody(body): JsonBody<PayRequest>) -> Result<Response> {
    let ln = lightning(ext).await?;
    let id = blocking(move || {
        ln.pay_invoice(body.invoice.trim(), None).map_err(|e| {
            use bunker_ln::PayError as P;
            let status = match &e {
                P::Node(_) | P::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                P::OverChannelLimit { .. } => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            EngineError::new(status, e.to_string())
        })
    })
    .await?;
    Ok(Json(json!({ "payment_id": id })).into_response())
}
