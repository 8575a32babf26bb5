//! Restore from the 24 words, asked for on the admin page's first-run setup,
//! and its progress: `POST /api/setup/restore` and `GET /api/restore`.
//!
//! The web crate checks the words (count, BIP39 word list, checksum) and who
//! asks (a session, the Origin check of every state-changing call, a box
//! still in setup); the daemon, behind [`RestoreControl`], decides whether
//! the box may be restored (no user data under its current seed) and does
//! it: stops the engine, swaps the seed, starts again and runs the restore.
//! Errors never echo the words except the one unknown word, which is the
//! owner's own typo and what they need to see to fix it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bunker_core::seed::{Seed, SeedError, WORD_COUNT};
use bunker_node::recovery::{RestoreProgress, RestoreReport};
use bunker_node::Node;
use serde::{Deserialize, Serialize};
use serde_json::json;
use zeroize::Zeroizing;

use crate::guard::{JsonBody, LoggedIn};
use crate::AppState;

/// Where a restore asked for by the admin page (or resumed at start-up)
/// stands. JSON: `{"state": "idle" | "running" | "done" | "failed", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RestoreState {
    /// No restore asked for since the daemon started.
    Idle,
    /// Accepted: the daemon is swapping the seed and restarting the engine.
    Switching,
    /// Running; the engine's own progress.
    Running(RestoreProgress),
    /// Finished.
    Done(RestoreSummary),
    /// Gave up; `error` says why, for the owner.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// What a finished restore did, for the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSummary {
    /// This box's PeerId (the lost box's, from the words).
    pub peer_id: String,
    /// Manifest version now live.
    pub version: u64,
    /// Which holder served it.
    pub from: Option<String>,
    /// Files in the restored manifest.
    pub files: u64,
    /// Locally kept files fetched back.
    pub files_restored: u64,
    /// Locally kept files not fetched back yet (read from replicas on first access).
    pub files_failed: u64,
    /// Warnings for the owner.
    pub warnings: Vec<String>,
}

impl RestoreSummary {
    /// The summary of `report` for the box `peer_id`.
    pub fn from_report(peer_id: String, report: &RestoreReport) -> RestoreSummary {
        RestoreSummary {
            peer_id,
            version: report.version,
            from: report.from.clone(),
            files: report.files,
            files_restored: report.files_restored,
            files_failed: report.files_failed.len() as u64,
            warnings: report.warnings.clone(),
        }
    }
}

/// Why the daemon refused a restore.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreRefusal {
    /// The box's current seed already holds the owner's data.
    #[error("this box already holds data ({0}): restoring would replace it, so it is refused; restore on a new box or an emptied one")]
    HasData(String),
    /// A restore is being set up or running.
    #[error("a restore is already running: follow its progress")]
    Running,
    /// The daemon cannot tell or cannot do it now.
    #[error("{0}")]
    Unavailable(String),
}

/// Future returned by [`RestoreControl::start`].
pub type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<(), RestoreRefusal>> + Send + 'a>>;

/// The daemon's side of a restore from the admin page.
pub trait RestoreControl: Send + Sync + 'static {
    /// Checks that the box may be restored and hands `seed` (and the
    /// recovery kit's text, if the owner gave it) over; returns once the
    /// restore is accepted (it runs in the background).
    fn start(&self, seed: Seed, kit: Option<Vec<u8>>) -> StartFuture<'_>;
    /// Where the restore stands.
    fn state(&self) -> RestoreState;
    /// Whether a restore was accepted and has not finished (a failed one may
    /// be asked again although setup is marked complete).
    fn pending(&self) -> bool;
}

/// Makes the restore calls of `router` (the admin router) answer with
/// `control`; without it, they answer 503.
pub fn with_restore(router: Router, control: Arc<dyn RestoreControl>) -> Router {
    router.layer(Extension(control))
}

/// The restore routes, merged into the admin router before its Host/Origin
/// checks.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/api/setup/restore", post(start)).route("/api/restore", get(state))
}

/// Body of `POST /api/setup/restore`: the words as typed (spaces, line
/// breaks and numbering such as `1.` allowed), or one word per entry; and,
/// optionally, the recovery kit's text (`BUNKERKIT1:…`, the kit's QR or
/// `kit.txt`), which names the manifest's holders when the DHT cannot.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestoreRequest {
    words: WordsInput,
    #[serde(default)]
    kit: Option<String>,
}

/// Longest recovery kit text taken (a kit's text is well under 4 KiB).
pub const MAX_KIT_TEXT: usize = 8 * 1024;
/// How a recovery kit's text starts.
const KIT_PREFIX: &str = "BUNKERKIT1:";

/// The kit's text as the engine opens it, or why it is not one; blank is none.
fn kit_text(kit: Option<&str>) -> Result<Option<Vec<u8>>, RestoreApiError> {
    let Some(text) = kit.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    if text.len() > MAX_KIT_TEXT {
        return Err(RestoreApiError::BadInput(format!("that is not a recovery kit: a kit's text has at most {MAX_KIT_TEXT} characters")));
    }
    if !text.starts_with(KIT_PREFIX) {
        return Err(RestoreApiError::BadInput(format!(
            "that is not a recovery kit's text: it starts with {KIT_PREFIX} (the text under the kit's QR code, or kit.txt)"
        )));
    }
    Ok(Some(text.as_bytes().to_vec()))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WordsInput {
    Text(String),
    List(Vec<String>),
}

impl Drop for RestoreRequest {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        match &mut self.words {
            WordsInput::Text(t) => t.zeroize(),
            WordsInput::List(l) => l.iter_mut().for_each(|w| w.zeroize()),
        }
        if let Some(k) = &mut self.kit {
            k.zeroize();
        }
    }
}

/// A refusal of a restore call.
#[derive(Debug, thiserror::Error)]
pub enum RestoreApiError {
    /// The words are not a seed (count, unknown word, checksum), or the kit
    /// is not a kit.
    #[error("{0}")]
    BadInput(String),
    /// First-run setup is over: a box in use is not restored over.
    #[error("setup is complete on this box: restoring from words is only offered during first-run setup")]
    NotInSetup,
    /// The daemon refused.
    #[error(transparent)]
    Refused(#[from] RestoreRefusal),
    /// Recording the setup stage failed.
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for RestoreApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            RestoreApiError::BadInput(_) => StatusCode::BAD_REQUEST,
            RestoreApiError::NotInSetup
            | RestoreApiError::Refused(RestoreRefusal::HasData(_) | RestoreRefusal::Running) => StatusCode::CONFLICT,
            RestoreApiError::Refused(_) => StatusCode::SERVICE_UNAVAILABLE,
            RestoreApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(error = %self, "restore call failed");
        }
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

/// Reads the 24 words from what the owner typed: numbering (`1.`, `12)`)
/// and punctuation around words are skipped, case is ignored. The errors
/// say what is wrong in the owner's terms.
pub fn parse_words(text: &str) -> Result<Seed, RestoreApiError> {
    let words: Vec<Zeroizing<String>> = text
        .split_whitespace()
        .map(|t| t.trim_matches(|c: char| !c.is_alphabetic()))
        .filter(|t| !t.is_empty())
        .map(|t| Zeroizing::new(t.to_lowercase()))
        .collect();
    if words.len() != WORD_COUNT {
        return Err(RestoreApiError::BadInput(format!(
            "enter exactly {WORD_COUNT} words (the ones written down when the lost box was set up); got {}",
            words.len()
        )));
    }
    if let Some((i, w)) = words.iter().enumerate().find(|(_, w)| !w.chars().all(|c| c.is_ascii_lowercase())) {
        return Err(RestoreApiError::BadInput(format!(
            "word {} ({:?}) is not in the list of seed words: check its spelling",
            i + 1,
            w.chars().take(16).collect::<String>()
        )));
    }
    let phrase = Zeroizing::new(words.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(" "));
    Seed::from_phrase(&phrase).map_err(|e| {
        RestoreApiError::BadInput(match e {
            SeedError::UnknownWord { position, word } => {
                format!("word {position} ({:?}) is not in the list of seed words: check its spelling", word.chars().take(16).collect::<String>())
            }
            SeedError::Checksum => {
                "these 24 words do not belong together (their checksum does not match): check each word and their order".to_string()
            }
            other => other.to_string(),
        })
    })
}

/// Longest the check for the owner's data may take.
const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Refuses a restore when the box's current seed holds the owner's data:
/// files, contracts, payments, or sats in its wallet. A restore discards
/// what the current seed made, and the words of the seed created at first
/// start may never have been shown: those would be lost for good.
pub async fn refuse_if_in_use(node: &Node) -> Result<(), RestoreRefusal> {
    fn failed(what: &str, e: impl std::fmt::Display) -> RestoreRefusal {
        RestoreRefusal::Unavailable(format!("cannot check this box's {what}: {e}"))
    }
    fn slow(what: &str) -> RestoreRefusal {
        RestoreRefusal::Unavailable(format!("checking this box's {what} took too long: try again"))
    }
    let status = tokio::time::timeout(CHECK_TIMEOUT, async { node.status().await.map(|s| s.files) })
        .await
        .map_err(|_| slow("files"))?
        .map_err(|e| failed("files", e))?;
    let contracts = tokio::time::timeout(CHECK_TIMEOUT, node.contracts())
        .await
        .map_err(|_| slow("contracts"))?
        .map_err(|e| failed("contracts", e))?;
    let payments = tokio::time::timeout(CHECK_TIMEOUT, node.payments(1))
        .await
        .map_err(|_| slow("payments"))?
        .map_err(|e| failed("payments", e))?;
    let mut found = Vec::new();
    if status > 0 {
        found.push(format!("{status} files"));
    }
    if !contracts.is_empty() {
        found.push(format!("{} contracts", contracts.len()));
    }
    if !payments.is_empty() {
        found.push("payments".to_string());
    }
    if let Some(ln) = node.lightning() {
        let balances = tokio::task::spawn_blocking(move || ln.balances()).await.map_err(|e| failed("wallet", e))?;
        let sats = balances.onchain_total_sat + balances.lightning_sat;
        if sats > 0 {
            found.push(format!("{sats} sat in its wallet"));
        }
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(RestoreRefusal::HasData(found.join(", ")))
    }
}

/// `POST /api/setup/restore`: a logged-in owner in first-run setup hands
/// the words over. 202 once the daemon accepted; the progress is at
/// `GET /api/restore`.
async fn start(
    axum::extract::State(state): axum::extract::State<AppState>,
    _: LoggedIn,
    control: Option<Extension<Arc<dyn RestoreControl>>>,
    JsonBody(body): JsonBody<RestoreRequest>,
) -> Result<Response, RestoreApiError> {
    let Some(Extension(control)) = control else {
        return Err(RestoreRefusal::Unavailable("restoring is not available on this box".into()).into());
    };
    if state.admin.stage() == crate::SetupStage::Complete && !control.pending() {
        return Err(RestoreApiError::NotInSetup);
    }
    let seed = match &body.words {
        WordsInput::Text(t) => parse_words(t)?,
        WordsInput::List(l) => parse_words(&Zeroizing::new(l.join(" ")))?,
    };
    let kit = kit_text(body.kit.as_deref())?;
    drop(body);
    control.start(seed, kit).await?;
    // The owner typed all 24 words: nothing is left to show or ask back.
    state.admin.mark_restored().map_err(|e| RestoreApiError::Internal(e.to_string()))?;
    tracing::info!("restore from the 24 words accepted from the admin page");
    Ok((StatusCode::ACCEPTED, Json(control.state())).into_response())
}

/// `GET /api/restore`: where the restore stands.
async fn state(_: LoggedIn, control: Option<Extension<Arc<dyn RestoreControl>>>) -> Json<RestoreState> {
    Json(control.map(|Extension(c)| c.state()).unwrap_or(RestoreState::Idle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        match parse_words(text) {
            Err(RestoreApiError::BadInput(m)) => m,
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("accepted {text:?}"),
        }
    }

    #[test]
    fn typed_words_with_numbering_and_capitals_are_read() {
        let seed = Seed::generate();
        let typed: String = seed.words().enumerate().map(|(i, w)| format!("{}. {} \n", i + 1, w.to_uppercase())).collect();
        assert!(parse_words(&typed).unwrap() == seed);
    }

    #[test]
    fn wrong_count_unknown_word_and_bad_checksum_are_told_apart() {
        let seed = Seed::generate();
        let words: Vec<&str> = seed.words().collect();
        assert!(err(&words[..23].join(" ")).contains("got 23"));
        let mut unknown = words.clone();
        unknown[4] = "qwertz";
        let m = err(&unknown.join(" "));
        assert!(m.contains("word 5") && m.contains("qwertz"), "{m}");
        assert!(!m.contains(words[0]), "echoes another word: {m}");
        // Swapping two different words breaks the checksum (almost always:
        // retry with another seed in the rare case it does not).
        for _ in 0..8 {
            let seed = Seed::generate();
            let mut w: Vec<&str> = seed.words().collect();
            if w[0] == w[1] {
                continue;
            }
            w.swap(0, 1);
            if let Err(RestoreApiError::BadInput(m)) = parse_words(&w.join(" ")) {
                assert!(m.contains("checksum"), "{m}");
                return;
            }
        }
        panic!("no swapped seed failed its checksum");
    }
}
