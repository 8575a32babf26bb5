//! The box's HTTP faces: the admin page for a phone on the LAN, and the
//! local API that the `bunker` command uses over a Unix socket.
//!
//! Both are axum routers; they differ in who can reach them. The Unix socket
//! is protected by file permissions (mode 0600, the daemon's user). The admin
//! page is protected by a login: an argon2id password set when the owner
//! claims the box with the pairing code from its screen, an HttpOnly
//! SameSite=Strict session cookie, attempt limits, and Host/Origin checks on
//! every request. Only `/healthz` and the claim call answer without a session.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use bunker_web::{Admin, AdminOptions, NodeStatus, SeedWords, StatusSource};
//! struct Words;
//! impl SeedWords for Words {
//!     fn words(&self) -> Result<Vec<String>, String> { Err("no seed in this example".into()) }
//! }
//! struct Status;
//! impl StatusSource for Status {
//!     fn status(&self) -> NodeStatus { unimplemented!() }
//! }
//! let admin = Arc::new(Admin::open(AdminOptions::new("/var/lib/bunker"), Arc::new(Words))?);
//! let router = bunker_web::admin_router(admin, Arc::new(Status));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! bunker_web::serve_admin(listener, router, std::future::pending()).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod admin;
mod api;
mod assets;
mod console;
pub mod engine_api;
pub mod engine_slot;
pub mod error;
mod guard;
pub mod panel;
pub mod password;
pub mod rate_limit;
pub mod restore;
pub mod sessions;
pub mod status;
pub mod store;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Json;

pub use admin::{Admin, AdminOptions, SeedWords, SetupStage, QUIZ_WORDS};
pub use console::{redact_settings, with_console};
pub use engine_api::{with_engine, EngineApi};
pub use engine_slot::{with_engine_slot, EngineSlot};
pub use axum::serve::Listener;
pub use axum::Router;
pub use error::ApiError;
pub use guard::{host_allowed, MAX_BODY, REQUEST_TIMEOUT};
pub use panel::{panel_router, PanelControl};
pub use restore::{with_restore, RestoreControl, RestoreRefusal, RestoreState, RestoreSummary};
pub use status::{disk_space, DataDiskStatus, DiskSpace, NodeStatus, StatusAlert, StatusSource};

/// Serves `router` on `listener` (TCP or Unix) until `shutdown` completes,
/// then lets requests in flight finish. For the local API: it has no
/// clients to tell apart.
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

/// Serves the admin page on a TCP `listener` until `shutdown` completes.
/// Unlike [`serve`], handlers see each client's address, which the attempt
/// limits are counted by.
pub async fn serve_admin(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// What the admin handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    admin: Arc<Admin>,
    status: Arc<dyn StatusSource>,
}

/// The admin page: `/healthz`, the admin API and the embedded web UI.
pub fn admin_router(admin: Arc<Admin>, status: Arc<dyn StatusSource>) -> Router {
    let state = AppState { admin, status };
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/setup/claim", get(api::claim_state).post(api::claim))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/session", get(api::session))
        .route("/api/password", post(api::change_password))
        .route("/api/setup/words", post(api::show_words))
        .route("/api/setup/quiz", get(api::quiz).post(api::answer_quiz))
        .route("/api/status", get(api::status))
        .merge(restore::routes())
        .merge(console::routes())
        .route("/api/{*rest}", axum::routing::any(api_not_found))
        .fallback(assets::serve)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard::host_and_origin))
        .layer(axum::middleware::from_fn(guard::time_limit))
        // After the layers above: it brings its own checks and time limits.
        .merge(engine_api::admin_routes(state.clone()))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The local API served on the daemon's Unix socket for the `bunker` CLI.
/// Whoever can open the socket is the box's owner (or root), so it needs
/// no session; it can read the pairing code, which the web cannot.
pub fn local_api_router(admin: Arc<Admin>, status: Arc<dyn StatusSource>) -> Router {
    let state = AppState { admin, status };
    Router::new()
        .route("/api/status", get(local_status))
        .route("/api/pairing-code", get(pairing_code))
        .route("/healthz", get(healthz))
        .merge(engine_api::local_routes())
        .with_state(state)
}

/// Liveness for monitors and the image boot test: answers as soon as the
/// daemon serves HTTP, carries no information worth hiding.
async fn healthz() -> &'static str {
    "ok\n"
}

async fn api_not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(serde_json::json!({ "error": "no such API call" }))).into_response()
}

async fn local_status(State(state): State<AppState>) -> Json<NodeStatus> {
    Json(state.status.status())
}

async fn pairing_code(State(state): State<AppState>) -> Response {
    match state.admin.pairing_code() {
        Some(code) => Json(serde_json::json!({ "pairing_code": code })).into_response(),
        None => (
            StatusCode::CONFLICT,
            Json(serde_json::json!({ "error": "this box is already claimed: it has no pairing code any more" })),
        )
            .into_response(),
    }
}

/// Headers that keep the admin page from being framed, sniffed or made to
/// load anything from elsewhere: all assets are embedded, so `'self'` is all
/// the page ever needs. API answers are never cached (they hold the
/// owner's data, and once the words).
async fn security_headers(mut response: Response) -> impl IntoResponse {
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    if response.headers().get(header::CONTENT_TYPE).is_some_and(|t| t.as_bytes().starts_with(b"application/json")) {
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
