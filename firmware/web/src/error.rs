//! What an admin API call can answer besides success, and the HTTP status
//! and JSON body (`{"error": "..."}`) each becomes. Messages are for the
//! person at the phone: they say what was wrong and what to do.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::password::PasswordError;
use crate::store::StoreError;

/// Why an admin API call was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// No session cookie, or an expired one.
    #[error("not logged in (or the session ended): log in again")]
    NotLoggedIn,
    /// The request body or a field in it is not what the call takes.
    #[error("{0}")]
    BadInput(String),
    /// The request body is larger than any admin call takes.
    #[error("request body is larger than {limit} bytes")]
    TooLarge {
        /// The cap.
        limit: usize,
    },
    /// Claim with a code that is not the one on the box's screen.
    #[error("that pairing code is not right: use the code shown on the box's screen")]
    WrongPairingCode,
    /// Login with a wrong password.
    #[error("wrong password")]
    WrongPassword,
    /// Password change with a wrong current password.
    #[error("the current password is not right")]
    WrongOldPassword,
    /// The words given back do not match the seed.
    #[error("one or more of the words do not match the words you were shown: check what you wrote down")]
    WordsMismatch,
    /// Claim of a box that already has an owner.
    #[error("this box is already claimed: log in with its password")]
    AlreadyClaimed,
    /// Login before anyone claimed the box.
    #[error("this box is not claimed yet: claim it with the pairing code on its screen")]
    NotClaimed,
    /// Second request to see the words.
    #[error("the 24 words were already shown once and are never shown again")]
    WordsAlreadyShown,
    /// Quiz before the words were shown.
    #[error("the 24 words have not been shown yet")]
    WordsNotShown,
    /// Quiz after setup is done.
    #[error("setup is already complete")]
    SetupComplete,
    /// Too many attempts at a secret.
    #[error("too many attempts: try again in {retry_after_secs} s")]
    TooManyAttempts {
        /// Seconds until the next attempt is allowed.
        retry_after_secs: u64,
    },
    /// A state-changing request without an `Origin` header.
    #[error("refused: a request that changes something must carry an Origin header")]
    MissingOrigin,
    /// A state-changing request from another site.
    #[error("refused: request from origin {origin}, not from this box's own page {expected}")]
    ForeignOrigin {
        /// What the request said.
        origin: String,
        /// What it had to say.
        expected: String,
    },
    /// A request for a host name the box does not answer to (DNS rebinding).
    #[error(
        "refused: this box does not answer to host name {0:?}; use its IP address, its plain name or its .local name"
    )]
    ForeignHost(String),
    /// Reading or writing the admin state failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The seed could not be read.
    #[error("cannot read the seed: {0}")]
    Seed(String),
    /// Hashing failed, or a new password was refused.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// The request took longer than the server allows.
    #[error("the request took too long (more than {} s)", crate::REQUEST_TIMEOUT.as_secs())]
    Timeout,
    /// A background task died.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::NotLoggedIn | ApiError::WrongPassword => StatusCode::UNAUTHORIZED,
            ApiError::BadInput(_) | ApiError::WordsMismatch => StatusCode::BAD_REQUEST,
            ApiError::Password(PasswordError::TooShort(_) | PasswordError::TooLong(_)) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::WrongPairingCode
            | ApiError::WrongOldPassword
            | ApiError::MissingOrigin
            | ApiError::ForeignOrigin { .. }
            | ApiError::ForeignHost(_) => StatusCode::FORBIDDEN,
            ApiError::AlreadyClaimed
            | ApiError::NotClaimed
            | ApiError::WordsAlreadyShown
            | ApiError::WordsNotShown
            | ApiError::SetupComplete => StatusCode::CONFLICT,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Store(_) | ApiError::Seed(_) | ApiError::Password(_) | ApiError::Internal(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "admin API call failed");
        }
        let mut resp = (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if let ApiError::TooManyAttempts { retry_after_secs } = self {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        resp
    }
}
