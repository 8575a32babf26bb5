//! The admin page's own calls beside the engine's API: the front panel's
//! live mirror (its picture and its buttons), QR codes for the page to draw
//! (deposit addresses, invoices, the recovery kit), and the daemon's
//! settings, read-only, with every secret blanked.
//!
//! The daemon hands the panel and its settings over with [`with_console`];
//! a daemon that does not gets honest 503 answers ("not connected"), never
//! an invented picture or a default config passed off as the box's own.
//! All of it needs a session, like every admin call but the login.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use qrcodegen::{QrCode, QrCodeEcc};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::guard::{JsonBody, LoggedIn};
use crate::panel::{PanelControl, MAX_HOLD};
use crate::AppState;

/// Longest text the page may ask a QR code for: a BOLT11 invoice with a
/// long description and the recovery kit fit; a QR code at error
/// correction M holds at most 2,331 bytes.
pub const MAX_QR_TEXT: usize = 2_000;

/// What the page shows in place of a secret setting.
pub const HIDDEN: &str = "(hidden)";

/// What the daemon lends the admin page beyond the admin account.
#[derive(Clone, Default)]
struct Console {
    panel: Option<Arc<dyn PanelControl>>,
    settings: Option<Arc<Value>>,
}

/// Connects the admin `router` to the front panel (for its mirror) and to
/// the daemon's effective settings (shown read-only on the Settings view,
/// after [`redact_settings`]). Either may be `None`: the page then says the
/// part is not available instead of showing something made up.
pub fn with_console(router: Router, panel: Option<Arc<dyn PanelControl>>, settings: Option<Value>) -> Router {
    let console = Console { panel, settings: settings.map(|s| Arc::new(redact_settings(s))) };
    router.layer(Extension(console))
}

/// The console's routes, mounted inside the admin router (so behind its
/// Host/Origin checks and time limit).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/panel.png", get(panel_png))
        .route("/api/panel/press", post(panel_press))
        .route("/api/qr", post(qr))
        .route("/api/settings", get(settings))
}

fn not_connected(what: &str) -> Response {
    let error = format!("{what} is not connected to this admin page");
    (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "error": error }))).into_response()
}

fn console(ext: Option<Extension<Console>>) -> Console {
    ext.map(|Extension(c)| c).unwrap_or_default()
}

/// `GET /api/panel.png`: the panel's screen as it is now.
async fn panel_png(_: LoggedIn, ext: Option<Extension<Console>>) -> Response {
    let Some(panel) = console(ext).panel else { return not_connected("the front panel") };
    match tokio::task::spawn_blocking(move || panel.png()).await {
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], bytes).into_response()
        }
        Ok(Err(e)) => (StatusCode::CONFLICT, Json(json!({ "error": e }))).into_response(),
        Err(e) => ApiError::Internal(format!("panel picture task: {e}")).into_response(),
    }
}

/// Body of `POST /api/panel/press`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Press {
    /// 0 = next/select, 1 = back.
    button: usize,
    /// Milliseconds held; 1,500 or more is a long press.
    hold_ms: u64,
}

/// `POST /api/panel/press`: one press of a panel button.
async fn panel_press(_: LoggedIn, ext: Option<Extension<Console>>, JsonBody(body): JsonBody<Press>) -> Response {
    let Some(panel) = console(ext).panel else { return not_connected("the front panel") };
    let hold = Duration::from_millis(body.hold_ms);
    if hold > MAX_HOLD {
        let e = format!("hold_ms {} is longer than the {} ms allowed", body.hold_ms, MAX_HOLD.as_millis());
        return ApiError::BadInput(e).into_response();
    }
    match panel.press(body.button, hold) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => ApiError::BadInput(e).into_response(),
    }
}

/// Body of `POST /api/qr`. POST, not a GET with the text in the URL: the
/// recovery kit's text must not land in browser history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QrRequest {
    text: String,
}

/// `POST /api/qr`: `{"size": n, "rows": ["0110…", …]}`, one string of
/// `0`/`1` per row of modules (1 = dark), without quiet zone. The page
/// draws it as inline SVG; the encoder stays on the box, not in the page.
async fn qr(_: LoggedIn, JsonBody(body): JsonBody<QrRequest>) -> Result<Json<Value>, ApiError> {
    Ok(Json(qr_rows(&body.text)?))
}

fn qr_rows(text: &str) -> Result<Value, ApiError> {
    if text.is_empty() {
        return Err(ApiError::BadInput("nothing to draw as a QR code: the text is empty".into()));
    }
    if text.len() > MAX_QR_TEXT {
        return Err(ApiError::BadInput(format!(
            "{} bytes is too long for a QR code here (at most {MAX_QR_TEXT})",
            text.len()
        )));
    }
    let code = QrCode::encode_text(text, QrCodeEcc::Medium)
        .map_err(|e| ApiError::BadInput(format!("cannot make a QR code of this text: {e:?}")))?;
    let size = code.size();
    let rows: Vec<String> =
        (0..size).map(|y| (0..size).map(|x| if code.get_module(x, y) { '1' } else { '0' }).collect()).collect();
    Ok(json!({ "size": size, "rows": rows }))
}

/// `GET /api/settings`: the daemon's effective settings, secrets blanked.
async fn settings(State(_): State<AppState>, _: LoggedIn, ext: Option<Extension<Console>>) -> Response {
    match console(ext).settings {
        Some(s) => Json(json!({ "settings": *s })).into_response(),
        None => not_connected("the daemon's settings"),
    }
}

/// Whether a setting's name says it holds a secret.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "token", "passphrase", "mnemonic", "seed", "macaroon", "private"].iter().any(|w| k.contains(w))
}

/// Blanks what must never reach a browser: values of secret-named keys,
/// the password of a `bitcoind:user:password@host:port` chain source and
/// the user part of URLs (`https://user:pass@host`).
pub fn redact_settings(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = if secret_key(&k) && !v.is_null() && v != json!("") { json!(HIDDEN) } else { redact_settings(v) };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact_settings).collect()),
        Value::String(s) => Value::String(redact_text(&s)),
        other => other,
    }
}

fn redact_text(s: &str) -> String {
    if let Some(rest) = s.strip_prefix("bitcoind:") {
        // bitcoind:<user>:<password>@<host>:<port>: keep the user and where.
        return match rest.rsplit_once('@') {
            Some((creds, at)) => {
                let user = creds.split_once(':').map_or(creds, |(u, _)| u);
                format!("bitcoind:{user}:{HIDDEN}@{at}")
            }
            None => format!("bitcoind:{HIDDEN}"),
        };
    }
    // scheme://user:pass@host/...: drop the credentials.
    if let Some((scheme, rest)) = s.split_once("://") {
        let authority_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@') {
            return format!("{scheme}://{HIDDEN}@{}", &rest[at + 1..]);
        }
    }
    s.to_string()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::{admin_router, Admin, AdminOptions, NodeStatus, SeedWords, StatusSource};

    struct NoWords;
    impl SeedWords for NoWords {
        fn words(&self) -> Result<Vec<String>, String> {
            Err("no seed in this test".into())
        }
    }
    struct NoStatus;
    impl StatusSource for NoStatus {
        fn status(&self) -> NodeStatus {
            NodeStatus { version: "0".into(), state: "running".into(), uptime_secs: 0, peer_id: None, data_dir_space: None, disks: vec![], alerts: vec![] }
        }
    }
    #[derive(Default)]
    struct Panel(Mutex<Vec<(usize, Duration)>>);
    impl PanelControl for Panel {
        fn png(&self) -> Result<Vec<u8>, String> {
            Ok(b"\x89PNG test".to_vec())
        }
        fn press(&self, button: usize, hold: Duration) -> Result<(), String> {
            if button > 1 {
                return Err(format!("button {button} does not exist; the panel has 2"));
            }
            self.0.lock().unwrap().push((button, hold));
            Ok(())
        }
    }

    /// A claimed box's admin router and a session cookie for it.
    async fn logged_in(panel: Option<Arc<dyn PanelControl>>, settings: Option<Value>) -> (Router, String, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let mut opts = AdminOptions::new(dir.path());
        opts.password_cost = crate::password::PasswordCost { memory_kib: 64, iterations: 1, parallelism: 1 };
        let admin = Arc::new(Admin::open(opts, Arc::new(NoWords)).unwrap());
        let code = admin.pairing_code().unwrap();
        let id = admin.claim(None, &code, "a long enough password").await.unwrap();
        let router = with_console(admin_router(admin, Arc::new(NoStatus)), panel, settings);
        (router, format!("bunker_session={id}"), dir)
    }

    async fn call(router: &Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    fn get_req(path: &str, cookie: Option<&str>) -> Request<Body> {
        let mut b = Request::get(path).header("host", "127.0.0.1:8080");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(Body::empty()).unwrap()
    }

    fn post_req(path: &str, cookie: Option<&str>, body: &str) -> Request<Body> {
        let mut b = Request::post(path)
            .header("host", "127.0.0.1:8080")
            .header("origin", "http://127.0.0.1:8080")
            .header("content-type", "application/json");
        if let Some(c) = cookie {
            b = b.header("cookie", c);
        }
        b.body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn the_panel_mirror_needs_a_session_and_reaches_the_panel() {
        let panel = Arc::new(Panel::default());
        let (router, cookie, _dir) = logged_in(Some(panel.clone()), None).await;
        assert_eq!(call(&router, get_req("/api/panel.png", None)).await.0, StatusCode::UNAUTHORIZED);
        let press = r#"{"button":1,"hold_ms":100}"#;
        assert_eq!(call(&router, post_req("/api/panel/press", None, press)).await.0, StatusCode::UNAUTHORIZED);
        assert!(panel.0.lock().unwrap().is_empty(), "a press without a session never reaches the panel");

        let (status, body) = call(&router, get_req("/api/panel.png", Some(&cookie))).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(b"\x89PNG"));
        assert_eq!(call(&router, post_req("/api/panel/press", Some(&cookie), press)).await.0, StatusCode::NO_CONTENT);
        let long = r#"{"button":0,"hold_ms":60000}"#;
        assert_eq!(call(&router, post_req("/api/panel/press", Some(&cookie), long)).await.0, StatusCode::BAD_REQUEST);
        let (status, body) = call(&router, post_req("/api/panel/press", Some(&cookie), r#"{"button":7,"hold_ms":1}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("button 7 does not exist"));
        assert_eq!(*panel.0.lock().unwrap(), vec![(1, Duration::from_millis(100))]);
    }

    #[tokio::test]
    async fn without_a_panel_or_settings_the_page_is_told_so() {
        let (router, cookie, _dir) = logged_in(None, None).await;
        let (status, body) = call(&router, get_req("/api/panel.png", Some(&cookie))).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(String::from_utf8_lossy(&body).contains("not connected"));
        assert_eq!(call(&router, get_req("/api/settings", Some(&cookie))).await.0, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn settings_are_served_without_their_secrets() {
        let settings = json!({
            "ln": { "chain": "bitcoind:bunker:hunter2hunter2@127.0.0.1:18443", "network": "regtest" },
            "web": { "addr": "0.0.0.0:80" },
            "backup": { "url": "https://me:pw@example.org/x", "api_token": "abc", "empty_password": "" },
        });
        let (router, cookie, _dir) = logged_in(None, Some(settings)).await;
        assert_eq!(call(&router, get_req("/api/settings", None)).await.0, StatusCode::UNAUTHORIZED);
        let (status, body) = call(&router, get_req("/api/settings", Some(&cookie))).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains("hunter2") && !text.contains("me:pw") && !text.contains("abc"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["settings"]["ln"]["chain"], "bitcoind:bunker:(hidden)@127.0.0.1:18443");
        assert_eq!(v["settings"]["ln"]["network"], "regtest");
        assert_eq!(v["settings"]["backup"]["url"], "https://(hidden)@example.org/x");
        assert_eq!(v["settings"]["backup"]["api_token"], HIDDEN);
        assert_eq!(v["settings"]["backup"]["empty_password"], "", "an unset secret is shown as unset");
        assert_eq!(v["settings"]["web"]["addr"], "0.0.0.0:80");
    }

    #[tokio::test]
    async fn the_liquidity_providers_token_is_hidden_and_its_address_shown() {
        let id = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
        let settings = json!({
            "ln": { "lsps2": { "node_id": id, "address": "203.0.113.5:9735", "token": "lsp-s3cret" } },
            "placement": { "max_price_msat_per_gib_day": 100_000, "term": "365days" },
        });
        let (router, cookie, _dir) = logged_in(None, Some(settings)).await;
        let (status, body) = call(&router, get_req("/api/settings", Some(&cookie))).await;
        assert_eq!(status, StatusCode::OK);
        let text = String::from_utf8(body).unwrap();
        assert!(!text.contains("lsp-s3cret"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["settings"]["ln"]["lsps2"], json!({ "node_id": id, "address": "203.0.113.5:9735", "token": HIDDEN }));
        assert_eq!(v["settings"]["placement"]["max_price_msat_per_gib_day"], 100_000);
    }

    #[tokio::test]
    async fn qr_codes_are_drawn_for_logged_in_pages_only() {
        let (router, cookie, _dir) = logged_in(None, None).await;
        let body = r#"{"text":"bcrt1qexampleaddress"}"#;
        assert_eq!(call(&router, post_req("/api/qr", None, body)).await.0, StatusCode::UNAUTHORIZED);
        let (status, out) = call(&router, post_req("/api/qr", Some(&cookie), body)).await;
        assert_eq!(status, StatusCode::OK);
        let v: Value = serde_json::from_slice(&out).unwrap();
        let size = v["size"].as_u64().unwrap() as usize;
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), size);
        assert!(rows.iter().all(|r| r.as_str().unwrap().len() == size));
        // A QR code's top-left finder pattern starts with 7 dark modules.
        assert!(rows[0].as_str().unwrap().starts_with("1111111"));
        let long = json!({ "text": "x".repeat(MAX_QR_TEXT + 1) }).to_string();
        assert_eq!(call(&router, post_req("/api/qr", Some(&cookie), &long)).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(call(&router, post_req("/api/qr", Some(&cookie), r#"{"text":""}"#)).await.0, StatusCode::BAD_REQUEST);
    }
}
