//! Checks every admin request passes before a handler sees it: the Host it
//! names (against DNS rebinding), the Origin of anything that changes state
//! (against cross-site requests), and the session of anything but the few
//! open calls.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::sessions;
use crate::AppState;

/// Largest request body any admin call takes (JSON with a password or three
/// words): anything bigger is refused before it is read whole.
pub const MAX_BODY: usize = 16 * 1024;

/// Longest time one admin request may take, body upload included (a login
/// waits behind at most a few password hashes): a client that sends its
/// body a byte a minute gets 408 instead of holding a task for ever.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Ends requests that take longer than [`REQUEST_TIMEOUT`].
pub(crate) async fn time_limit(req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            tracing::warn!(path, "admin request took longer than {REQUEST_TIMEOUT:?}; ended");
            ApiError::Timeout.into_response()
        }
    }
}

/// Host and Origin checks for the admin page (not `/healthz`, which
/// monitors reach by any name and which tells nothing).
pub(crate) async fn host_and_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" {
        return next.run(req).await;
    }
    match check(&state, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!(error = %e, method = %req.method(), path = req.uri().path(), "refused request");
            e.into_response()
        }
    }
}

fn check(state: &AppState, req: &Request) -> Result<(), ApiError> {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .ok_or_else(|| ApiError::BadInput("the request has no Host header".into()))?;
    if !host_allowed(host, &state.admin.options().allowed_hosts) {
        return Err(ApiError::ForeignHost(host.chars().take(100).collect()));
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let scheme = if state.admin.options().https { "https" } else { "http" };
    let expected = format!("{scheme}://{host}");
    match req.headers().get(header::ORIGIN) {
        None => Err(ApiError::MissingOrigin),
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("(not text)");
            if origin.eq_ignore_ascii_case(&expected) {
                Ok(())
            } else {
                Err(ApiError::ForeignOrigin { origin: origin.chars().take(200).collect(), expected })
            }
        }
    }
}

/// Name endings that only exist on a LAN (mDNS, RFC 8375's home.arpa, the
/// reserved `.internal`, and the `.lan` and `.localdomain` that home routers
/// hand out): nobody can register them in public DNS and rebind them.
const LAN_SUFFIXES: [&str; 5] = [".local", ".lan", ".home.arpa", ".internal", ".localdomain"];

/// Whether the admin page answers to `host` (a Host header: name or
/// address, optionally with a port). IP addresses, names without a dot
/// (`localhost`, `bunker`) and LAN-only names (`bunker.local`,
/// `bunker.lan`, `bunker.home.arpa`) are how a box is reached on a LAN; a
/// public DNS name would mean a rebinding attack.
pub fn host_allowed(host: &str, extra: &[String]) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        // [v6]:port
        match rest.split_once(']') {
            Some((addr, _)) => return addr.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(
            host,
            |(name, port)| {
                if port.bytes().all(|b| b.is_ascii_digit()) {
                    name
                } else {
                    host
                }
            },
        )
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return false;
    }
    name.parse::<IpAddr>().is_ok()
        // A name without a dot (`bunker`, from the router's DNS) cannot be
        // an attacker's public domain.
        || (!name.contains('.') && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        || LAN_SUFFIXES.iter().any(|suffix| name.ends_with(suffix) && name.len() > suffix.len())
        || extra.iter().any(|h| h.trim_end_matches('.').eq_ignore_ascii_case(&name))
}

/// The client's IP address, when the server was started with connect info.
pub(crate) struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// A logged-in request: carries the session id.
pub(crate) struct LoggedIn(pub String);

impl FromRequestParts<AppState> for LoggedIn {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        for value in parts.headers.get_all(header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            if let Some(id) = sessions::id_from_cookie_header(text) {
                if state.admin.session_valid(id) {
                    return Ok(LoggedIn(id.to_string()));
                }
            }
        }
        Err(ApiError::NotLoggedIn)
    }
}

/// A JSON body, capped at [`MAX_BODY`], whose errors say which field was
/// wrong (axum's own `Json` answers 422 with a less helpful text).
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        let is_json =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
                v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(ApiError::BadInput("send the request body as JSON (Content-Type: application/json)".into()));
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| ApiError::TooLarge { limit: MAX_BODY })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadInput(format!("request body is not what this call takes: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_names_and_addresses_are_allowed_other_names_are_not() {
        let extra = vec!["mybox.example.org".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "192.168.1.20",
            "[::1]:8080",
            "[fe80::1]",
            "localhost:8080",
            "bunker.local",
            "Bunker.Local.:80",
            "bunker",
            "bunker:8080",
            "bunker.lan",
            "bunker.home.arpa",
            "bunker.internal",
            "mybox.example.org:8080",
        ] {
            assert!(host_allowed(ok, &extra), "{ok}");
        }
        for bad in [
            "evil.example.com",
            "evil.example.com:8080",
            ".local",
            ".lan",
            "",
            "[nonsense]",
            "127.0.0.1.evil.com",
            "bunker.lan.evil.com",
            "evil.com.",
            "bad_name",
        ] {
            assert!(!host_allowed(bad, &extra), "{bad}");
        }
    }
}
