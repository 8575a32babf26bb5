//! The front panel over the local API: its picture and its buttons, for
//! the `bunker panel` command and the sandbox (and, once it has a login
//! check of its own, the admin page's live mirror).
//!
//! bunker-web does not know how the panel is driven; the daemon hands it a
//! [`PanelControl`].

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

/// Longest press the API accepts: the panel's own long press is 1.5 s.
pub const MAX_HOLD: Duration = Duration::from_secs(10);

/// What the local API can do with the front panel.
pub trait PanelControl: Send + Sync + 'static {
    /// The screen as a person sees it, as PNG. An error when the panel is
    /// real hardware whose glass cannot be read back.
    fn png(&self) -> Result<Vec<u8>, String>;
    /// One press of `button` (0 = next/select, 1 = back), held for `hold`.
    fn press(&self, button: usize, hold: Duration) -> Result<(), String>;
}

/// A button press, as the CLI sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressRequest {
    /// Which button: 0 = next/select, 1 = back.
    #[serde(default)]
    pub button: usize,
    /// How long it is held, in milliseconds (1,500 or more is a long press).
    #[serde(default = "default_hold_ms")]
    pub hold_ms: u64,
}

fn default_hold_ms() -> u64 {
    100
}

/// `/api/panel.png` and `/api/panel/press` for the local API socket.
pub fn panel_router(panel: Arc<dyn PanelControl>) -> Router {
    Router::new().route("/api/panel.png", get(png)).route("/api/panel/press", post(press)).with_state(panel)
}

async fn png(State(panel): State<Arc<dyn PanelControl>>) -> Response {
    match panel.png() {
        Ok(bytes) => ([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "no-store")], bytes).into_response(),
        Err(e) => (StatusCode::CONFLICT, Json(serde_json::json!({ "error": e }))).into_response(),
    }
}

async fn press(
    State(panel): State<Arc<dyn PanelControl>>,
    body: Result<Json<PressRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": e.body_text() }))).into_response(),
    };
    let hold = Duration::from_millis(req.hold_ms);
    if hold > MAX_HOLD {
        let error = format!("hold_ms {} is longer than the {} ms allowed", req.hold_ms, MAX_HOLD.as_millis());
        return (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": error }))).into_response();
    }
    match panel.press(req.button, hold) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": e }))).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    /// Records presses; has one button and a fixed picture.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(usize, Duration)>>);
    impl PanelControl for Recorder {
        fn png(&self) -> Result<Vec<u8>, String> {
            Ok(b"\x89PNG fake".to_vec())
        }
        fn press(&self, button: usize, hold: Duration) -> Result<(), String> {
            if button > 0 {
                return Err(format!("button {button} does not exist; the panel has 1"));
            }
            self.0.lock().unwrap().push((button, hold));
            Ok(())
        }
    }

    async fn call(router: Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
        let resp = router.oneshot(req).await.unwrap();
        let status = resp.status();
        (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
    }

    fn post_json(body: &str) -> Request<Body> {
        Request::post("/api/panel/press").header("content-type", "application/json").body(Body::from(body.to_string())).unwrap()
    }

    #[tokio::test]
    async fn presses_reach_the_panel_and_bad_ones_are_refused() {
        let rec = Arc::new(Recorder::default());
        let router = panel_router(rec.clone());
        assert_eq!(call(router.clone(), post_json(r#"{"hold_ms":2000}"#)).await.0, StatusCode::NO_CONTENT);
        assert_eq!(call(router.clone(), post_json("{}")).await.0, StatusCode::NO_CONTENT);
        assert_eq!(*rec.0.lock().unwrap(), vec![(0, Duration::from_millis(2000)), (0, Duration::from_millis(100))]);

        let (status, body) = call(router.clone(), post_json(r#"{"button":3}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("button 3 does not exist"));
        let (status, body) = call(router.clone(), post_json(r#"{"hold_ms":600000}"#)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(String::from_utf8_lossy(&body).contains("longer than"));
        assert_eq!(call(router.clone(), post_json(r#"{"hold":1}"#)).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(call(router, post_json("not json")).await.0, StatusCode::BAD_REQUEST);
        assert_eq!(rec.0.lock().unwrap().len(), 2, "refused presses never reach the panel");
    }

    #[tokio::test]
    async fn the_picture_is_served_as_png() {
        let router = panel_router(Arc::new(Recorder::default()));
        let (status, body) = call(router, Request::get("/api/panel.png").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(b"\x89PNG"));
    }
}
