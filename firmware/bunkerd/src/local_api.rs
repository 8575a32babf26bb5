//! The client side of the daemon's local API: HTTP/1.1 over the Unix socket
//! in the data directory. The socket's file mode (0600) is what keeps other
//! users of the machine out, so the CLI needs no password.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;

/// How long the CLI waits for the daemon before giving up.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a local API call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalApiError {
    /// Nothing answers on the socket.
    #[error("cannot reach bunkerd at {path}: {source} (is the daemon running with this data dir?)")]
    Connect {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The daemon did not answer in time.
    #[error("bunkerd at {0} did not answer within {TIMEOUT:?}")]
    Timeout(PathBuf),
    /// HTTP-level failure.
    #[error("local API request {path} failed: {message}")]
    Http {
        /// The request path.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// `GET path` on the daemon at `socket`, decoded from JSON.
pub async fn get_json<T: DeserializeOwned>(socket: &Path, path: &str) -> Result<T, LocalApiError> {
    let body = request(socket, hyper::Method::GET, path, None).await?;
    serde_json::from_slice(&body)
        .map_err(|e| LocalApiError::Http { path: path.to_string(), message: format!("unreadable answer: {e}") })
}

/// `GET path` on the daemon at `socket`, raw bytes (e.g. a PNG).
pub async fn get_bytes(socket: &Path, path: &str) -> Result<Bytes, LocalApiError> {
    request(socket, hyper::Method::GET, path, None).await
}

/// `POST path` with a JSON body; the answer's body, if any, is ignored.
pub async fn post_json(socket: &Path, path: &str, body: &serde_json::Value) -> Result<(), LocalApiError> {
    request(socket, hyper::Method::POST, path, Some(body.to_string())).await.map(drop)
}

/// `method path` with an optional JSON body, waiting up to `timeout` for
/// the answer (opening a channel or paying takes longer than a status), and
/// the answer's JSON (`null` for an empty answer such as 204).
pub async fn call_json(
    socket: &Path,
    method: hyper::Method,
    path: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<serde_json::Value, LocalApiError> {
    let answer = tokio::time::timeout(timeout, request_inner(socket, method, path, body.map(|b| b.to_string())))
        .await
        .map_err(|_| LocalApiError::Timeout(socket.to_owned()))??;
    if answer.is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_slice(&answer)
        .map_err(|e| LocalApiError::Http { path: path.to_string(), message: format!("unreadable answer: {e}") })
}

/// Uploads `len` bytes from `file` with `PUT path`, calling `progress` with
/// the bytes sent so far; returns the answer's JSON. The body streams: the
/// file is never read whole. The daemon answers once every copy is placed,
/// so the wait after the last byte is long ([`PUT_ANSWER_TIMEOUT`]).
pub async fn upload(
    socket: &Path,
    path: &str,
    file: tokio::fs::File,
    len: u64,
    progress: impl Fn(u64) + Send + Sync + 'static,
) -> Result<serde_json::Value, LocalApiError> {
    use futures::StreamExt;
    let http = |message: String| LocalApiError::Http { path: path.to_string(), message };
    let mut sender = connect(socket, path).await?;
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let chunks = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            let total = sent.fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed) + bytes.len() as u64;
            progress(total);
        }
        chunk.map(hyper::body::Frame::data)
    });
    let req = hyper::Request::builder()
        .method(hyper::Method::PUT)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::ACCEPT, "application/json")
        .header(hyper::header::CONTENT_TYPE, "application/octet-stream")
        .header(hyper::header::CONTENT_LENGTH, len)
        .body(http_body_util::StreamBody::new(chunks))
        .map_err(|e| http(e.to_string()))?;
    // The upload itself may take as long as the disk and link need; after
    // that the answer must come within PUT_ANSWER_TIMEOUT.
    let budget = PUT_ANSWER_TIMEOUT + Duration::from_secs(len / MIN_UPLOAD_RATE);
    let resp = tokio::time::timeout(budget, sender.send_request(req))
        .await
        .map_err(|_| LocalApiError::Timeout(socket.to_owned()))?
        .map_err(|e| http(e.to_string()))?;
    let body = answer(path, resp).await?;
    serde_json::from_slice(&body).map_err(|e| http(format!("unreadable answer: {e}")))
}

/// Longest wait for the daemon's answer once an upload's last byte is sent
/// (the engine seals and places every copy before it answers).
pub const PUT_ANSWER_TIMEOUT: Duration = Duration::from_secs(600);
/// Slowest upload rate the CLI waits for, bytes per second.
const MIN_UPLOAD_RATE: u64 = 256 * 1024;
/// Longest a download may go without a byte before it is given up.
pub const DOWNLOAD_IDLE: Duration = Duration::from_secs(60);

/// A download under way: its announced length and its body.
pub struct Download {
    /// `Content-Length` of the answer.
    pub len: Option<u64>,
    body: hyper::body::Incoming,
    path: String,
}

impl Download {
    /// The next chunk, `None` at the end; an error when the daemon stopped
    /// sending (the file could not be read back) or went quiet for
    /// [`DOWNLOAD_IDLE`].
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, LocalApiError> {
        use http_body_util::BodyExt;
        loop {
            let frame = tokio::time::timeout(DOWNLOAD_IDLE, self.body.frame()).await.map_err(|_| LocalApiError::Http {
                path: self.path.clone(),
                message: format!("the daemon sent nothing for {} s", DOWNLOAD_IDLE.as_secs()),
            })?;
            match frame {
                None => return Ok(None),
                Some(Err(e)) => {
                    return Err(LocalApiError::Http { path: self.path.clone(), message: format!("download broke off: {e}") })
                }
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// `GET path` whose answer is streamed (a file's content).
pub async fn download(socket: &Path, path: &str) -> Result<Download, LocalApiError> {
    let http = |message: String| LocalApiError::Http { path: path.to_string(), message };
    let mut sender = connect(socket, path).await?;
    let req = hyper::Request::builder()
        .method(hyper::Method::GET)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .body(http_body_util::Empty::<Bytes>::new())
        .map_err(|e| http(e.to_string()))?;
    let resp = tokio::time::timeout(TIMEOUT, sender.send_request(req))
        .await
        .map_err(|_| LocalApiError::Timeout(socket.to_owned()))?
        .map_err(|e| http(e.to_string()))?;
    if !resp.status().is_success() {
        answer(path, resp).await?;
        return Err(http("unexpected answer".into()));
    }
    let len = resp
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Ok(Download { len, body: resp.into_body(), path: path.to_string() })
}

/// A connection to the daemon, ready for one request.
async fn connect<B>(socket: &Path, path: &str) -> Result<hyper::client::conn::http1::SendRequest<B>, LocalApiError>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let http = |message: String| LocalApiError::Http { path: path.to_string(), message };
    let stream = tokio::time::timeout(TIMEOUT, tokio::net::UnixStream::connect(socket))
        .await
        .map_err(|_| LocalApiError::Timeout(socket.to_owned()))?
        .map_err(|source| LocalApiError::Connect { path: socket.to_owned(), source })?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| http(e.to_string()))?;
    tokio::spawn(conn);
    Ok(sender)
}

/// The body of a successful answer, or the daemon's error sentence.
async fn answer(path: &str, resp: hyper::Response<hyper::body::Incoming>) -> Result<Bytes, LocalApiError> {
    let http = |message: String| LocalApiError::Http { path: path.to_string(), message };
    let status = resp.status();
    let body = tokio::time::timeout(TIMEOUT, resp.into_body().collect())
        .await
        .map_err(|_| http("the answer did not arrive in time".into()))?
        .map_err(|e| http(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        // The daemon's errors are JSON {"error": "..."}: show the sentence, not the JSON.
        let text = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        return Err(http(format!("daemon answered {status}: {text}")));
    }
    Ok(body)
}

/// `s` percent-encoded for a query string value.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn request(socket: &Path, method: hyper::Method, path: &str, body: Option<String>) -> Result<Bytes, LocalApiError> {
    tokio::time::timeout(TIMEOUT, request_inner(socket, method, path, body))
        .await
        .map_err(|_| LocalApiError::Timeout(socket.to_owned()))?
}

async fn request_inner(
    socket: &Path,
    method: hyper::Method,
    path: &str,
    body: Option<String>,
) -> Result<Bytes, LocalApiError> {
    let http = |message: String| LocalApiError::Http { path: path.to_string(), message };
    let mut sender = connect(socket, path).await?;
    let builder = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::ACCEPT, "application/json");
    let req = match body {
        Some(json) => builder.header(hyper::header::CONTENT_TYPE, "application/json").body(Full::new(Bytes::from(json))),
        None => builder.body(Full::new(Bytes::new())),
    }
    .map_err(|e| http(e.to_string()))?;
    let resp = sender.send_request(req).await.map_err(|e| http(e.to_string()))?;
    answer(path, resp).await
}
