//! The admin API's handlers: first-run setup, login, logout, password
//! change and the dashboard's status. Every answer is JSON; every refusal is
//! `{"error": "..."}` with a status that says which kind (see [`ApiError`]).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::guard::{ClientIp, JsonBody, LoggedIn};
use crate::sessions;
use crate::AppState;

/// Body of `POST /api/setup/claim`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClaimRequest {
    pairing_code: String,
    password: String,
}

/// Body of `POST /api/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginRequest {
    password: String,
}

/// Body of `POST /api/password`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PasswordChange {
    old_password: String,
    new_password: String,
}

/// Body of `POST /api/setup/quiz`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuizAnswer {
    words: Vec<String>,
}

/// `GET /api/setup/claim`: open, so the page knows whether to offer the
/// claim form or the login form. Says one bit and nothing else.
pub(crate) async fn claim_state(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({ "claimed": state.admin.pairing_code().is_none() }))
}

/// `POST /api/setup/claim`: open (the pairing code is the credential).
pub(crate) async fn claim(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<ClaimRequest>,
) -> Result<Response, ApiError> {
    let id = state.admin.claim(ip, &body.pairing_code, &body.password).await?;
    Ok(with_session(&state, &id))
}

/// `POST /api/login`.
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(body): JsonBody<LoginRequest>,
) -> Result<Response, ApiError> {
    let id = state.admin.login(ip, &body.password).await?;
    Ok(with_session(&state, &id))
}

fn with_session(state: &AppState, id: &str) -> Response {
    let cookie = sessions::set_cookie(id, state.admin.options().sessions, state.admin.options().https);
    ([(header::SET_COOKIE, cookie)], Json(json!({ "setup": state.admin.stage() }))).into_response()
}

/// `POST /api/logout`.
pub(crate) async fn logout(State(state): State<AppState>, LoggedIn(id): LoggedIn) -> Response {
    state.admin.logout(&id);
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, sessions::clear_cookie(state.admin.options().https))])
        .into_response()
}

/// `GET /api/session`: who is logged in and where setup stands.
pub(crate) async fn session(State(state): State<AppState>, _: LoggedIn) -> Json<serde_json::Value> {
    Json(json!({ "setup": state.admin.stage() }))
}

/// `POST /api/password`.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    LoggedIn(id): LoggedIn,
    JsonBody(body): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    state.admin.change_password(ip, &id, &body.old_password, &body.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/setup/words`: the 24 words, once. POST because it changes
/// state (the words are never shown again), and so it is Origin-checked.
pub(crate) async fn show_words(State(state): State<AppState>, _: LoggedIn) -> Result<Response, ApiError> {
    let words = state.admin.show_words()?;
    let positions = state.admin.quiz_positions()?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(json!({ "words": words, "quiz_positions": positions })))
        .into_response())
}

/// `GET /api/setup/quiz`: which words to give back.
pub(crate) async fn quiz(State(state): State<AppState>, _: LoggedIn) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(json!({ "positions": state.admin.quiz_positions()? })))
}

/// `POST /api/setup/quiz`.
pub(crate) async fn answer_quiz(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    _: LoggedIn,
    JsonBody(body): JsonBody<QuizAnswer>,
) -> Result<Json<serde_json::Value>, ApiError> {
    if body.words.iter().any(|w| w.len() > 64) {
        return Err(ApiError::BadInput("a seed word has at most 8 letters; got something much longer".into()));
    }
    state.admin.answer_quiz(ip, &body.words)?;
    Ok(Json(json!({ "setup": state.admin.stage() })))
}

/// `GET /api/status`: the dashboard.
pub(crate) async fn status(State(state): State<AppState>, _: LoggedIn) -> Json<crate::NodeStatus> {
    Json(state.status.status())
}
