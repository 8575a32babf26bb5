//! The box's HTTP faces: the admin page for a phone on the LAN, and the
//! local API that the `bunker` command uses over a Unix socket.
//!
//! Both are axum routers over the same handlers; they differ in who can
//! reach them. The Unix socket is protected by file permissions (mode 0600,
//! the daemon's user), the admin page will be protected by a login.
#![deny(missing_docs)]

mod assets;
pub mod status;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Json;

pub use axum::serve::Listener;
pub use axum::Router;
pub use status::{NodeStatus, StatusSource};

/// Serves `router` on `listener` (TCP or Unix) until `shutdown` completes,
/// then lets requests in flight finish.
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

type Source = Arc<dyn StatusSource>;

/// The admin page: `/healthz`, the status API and the embedded web UI.
pub fn admin_router(source: Source) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/status", get(status))
        .fallback(assets::serve)
        .layer(axum::middleware::map_response(security_headers))
        .with_state(source)
}

/// The local API served on the daemon's Unix socket for the `bunker` CLI.
pub fn local_api_router(source: Source) -> Router {
    Router::new().route("/api/status", get(status)).route("/healthz", get(healthz)).with_state(source)
}

/// Liveness for monitors and the image boot test: answers as soon as the
/// daemon serves HTTP, carries no information worth hiding.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn status(State(source): State<Source>) -> Json<NodeStatus> {
    Json(source.status())
}

/// Headers that keep the admin page from being framed, sniffed or made to
/// load anything from elsewhere: all assets are embedded, so `'self'` is all
/// the page ever needs.
async fn security_headers(mut response: Response) -> impl IntoResponse {
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    struct Fixed;
    impl StatusSource for Fixed {
        fn status(&self) -> NodeStatus {
            NodeStatus {
                version: "9.9.9".into(),
                state: "running".into(),
                uptime_secs: 42,
                peer_id: Some("12D3KooWTest".into()),
            }
        }
    }

    async fn get(router: Router, path: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let resp = router.oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        (status, headers, body)
    }

    #[tokio::test]
    async fn healthz_answers_ok() {
        let (status, _, body) = get(admin_router(Arc::new(Fixed)), "/healthz").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, b"ok\n");
    }

    #[tokio::test]
    async fn status_is_the_sources_status_as_json() {
        let (status, _, body) = get(admin_router(Arc::new(Fixed)), "/api/status").await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["version"], "9.9.9");
        assert_eq!(v["uptime_secs"], 42);
        assert_eq!(v["peer_id"], "12D3KooWTest");
    }

    #[tokio::test]
    async fn root_serves_the_embedded_page_with_security_headers() {
        let (status, headers, body) = get(admin_router(Arc::new(Fixed)), "/").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'self'"));
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains("<title>Bunker</title>"), "{html}");
        // Every asset the page references is embedded.
        for asset in ["/app.js", "/style.css"] {
            assert!(html.contains(asset), "page does not reference {asset}");
            let (status, _, _) = get(admin_router(Arc::new(Fixed)), asset).await;
            assert_eq!(status, StatusCode::OK, "{asset}");
        }
    }

    #[tokio::test]
    async fn unknown_paths_and_traversal_are_not_found() {
        for path in ["/nope.js", "/../Cargo.toml", "/%2e%2e/Cargo.toml", "/.."] {
            let (status, _, _) = get(admin_router(Arc::new(Fixed)), path).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }
}
