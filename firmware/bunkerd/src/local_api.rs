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
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|source| LocalApiError::Connect { path: socket.to_owned(), source })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| http(e.to_string()))?;
    tokio::spawn(conn);
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
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| http(e.to_string()))?.to_bytes();
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
