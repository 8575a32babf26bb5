//! The admin account and first-run setup: who may use the admin page, and
//! how far the owner got in claiming the box and writing down its words.
//!
//! Order of first-run setup, each step only after the one before:
//! 1. claim: the pairing code from the OLED plus a new password (so nobody
//!    else on the LAN can claim the box first) → a session;
//! 2. the 24 words, shown exactly once;
//! 3. three of them, by position, given back → setup complete.
//!
//! Or, instead of 2 and 3, the owner of a lost box types its 24 words
//! (`restore.rs`): setup is complete and the box becomes the lost one.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use rand::seq::index::sample;
use serde::Serialize;

use crate::error::ApiError;
use crate::password::{self, PasswordCost};
use crate::rate_limit::{Limiter, RateLimits};
use crate::sessions::{SessionLimits, Sessions};
use crate::store::{self, AdminRecord, StoreError};

/// How many words the owner gives back after seeing them.
pub const QUIZ_WORDS: usize = 3;

/// Password hashes computed at once. Each argon2id run holds its memory
/// cost (19 MiB by default); a burst of logins on a 1 GiB Pi queues here
/// instead of exhausting memory.
pub const CONCURRENT_HASHES: usize = 2;

/// Where the 24 words come from (the daemon's seed file). A trait so the
/// web crate never owns the seed: it asks for the words at the one moment
/// it shows or checks them.
pub trait SeedWords: Send + Sync + 'static {
    /// The seed's words in order.
    fn words(&self) -> Result<Vec<String>, String>;
}

/// Settings of the admin page's security.
#[derive(Debug, Clone)]
pub struct AdminOptions {
    /// The daemon's data directory: `admin.json` and `pairing-code` live here.
    pub data_dir: PathBuf,
    /// Served over https (behind a TLS proxy): cookies get `Secure` and the
    /// page's origin is `https://…`. Plain http on the LAN by default.
    pub https: bool,
    /// Host names the page answers to besides IP addresses, `localhost`
    /// and `*.local` (anything else is refused against DNS rebinding).
    pub allowed_hosts: Vec<String>,
    /// Session lifetimes.
    pub sessions: SessionLimits,
    /// Attempt limits for login, claim and the word check.
    pub rate_limits: RateLimits,
    /// Cost of hashing a new password.
    pub password_cost: PasswordCost,
}

impl AdminOptions {
    /// Defaults for a box whose data directory is `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> AdminOptions {
        AdminOptions {
            data_dir: data_dir.into(),
            https: false,
            allowed_hosts: Vec::new(),
            sessions: SessionLimits::default(),
            rate_limits: RateLimits::default(),
            password_cost: PasswordCost::default(),
        }
    }
}

/// Where first-run setup stands, as the page needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetupStage {
    /// Nobody has claimed the box.
    Claim,
    /// Claimed; the words have not been shown yet.
    ShowWords,
    /// The words were shown; three must be given back.
    ConfirmWords,
    /// Done.
    Complete,
}

/// The admin account, its sessions and attempt limits.
pub struct Admin {
    opts: AdminOptions,
    record: Mutex<AdminRecord>,
    pairing_code: Mutex<Option<String>>,
    sessions: Mutex<Sessions>,
    limiter: Mutex<Limiter>,
    hashing: tokio::sync::Semaphore,
    seed: Arc<dyn SeedWords>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin").field("data_dir", &self.opts.data_dir).field("stage", &self.stage()).finish()
    }
}

/// Locks `m`, carrying on with the data if a panicking thread poisoned it
/// (every update here is a whole-value replacement, never half done).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Admin {
    /// Reads the admin state from the data directory; an unclaimed box gets
    /// its pairing code now (kept across restarts until the box is claimed).
    pub fn open(opts: AdminOptions, seed: Arc<dyn SeedWords>) -> Result<Admin, StoreError> {
        let record = store::load(&opts.data_dir)?;
        let pairing_code = if record.claimed() {
            store::remove_pairing_code(&opts.data_dir)?;
            None
        } else {
            Some(store::load_or_create_pairing_code(&opts.data_dir)?)
        };
        Ok(Admin {
            sessions: Mutex::new(Sessions::new(opts.sessions)),
            limiter: Mutex::new(Limiter::new(opts.rate_limits, Instant::now())),
            record: Mutex::new(record),
            pairing_code: Mutex::new(pairing_code),
            hashing: tokio::sync::Semaphore::new(CONCURRENT_HASHES),
            seed,
            opts,
        })
    }

    /// The settings in force.
    pub fn options(&self) -> &AdminOptions {
        &self.opts
    }

    /// The pairing code as the OLED and the CLI show it (`ABCD-EFGH`), while
    /// the box is unclaimed.
    pub fn pairing_code(&self) -> Option<String> {
        lock(&self.pairing_code).as_deref().map(store::display_pairing_code)
    }

    /// Where first-run setup stands.
    pub fn stage(&self) -> SetupStage {
        let r = lock(&self.record);
        if !r.claimed() {
            SetupStage::Claim
        } else if r.setup_complete {
            SetupStage::Complete
        } else if r.words_shown {
            SetupStage::ConfirmWords
        } else {
            SetupStage::ShowWords
        }
    }

    /// Whether `id` is a live session (and keeps it alive).
    pub fn session_valid(&self, id: &str) -> bool {
        lock(&self.sessions).touch(id, Instant::now())
    }

    fn attempt(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        lock(&self.limiter)
            .attempt(ip, Instant::now())
            .map_err(|wait| ApiError::TooManyAttempts { retry_after_secs: wait.as_secs().max(1) })
    }

    fn succeeded(&self, ip: Option<IpAddr>) {
        lock(&self.limiter).refund(ip, Instant::now());
    }

    fn new_session(&self) -> String {
        lock(&self.sessions).create(Instant::now())
    }

    /// Claims the box with the pairing code and a new password; returns a
    /// session id.
    pub async fn claim(&self, ip: Option<IpAddr>, code: &str, new_password: &str) -> Result<String, ApiError> {
        self.attempt(ip)?;
        let expected = lock(&self.pairing_code).clone();
        let Some(expected) = expected else {
            return Err(ApiError::AlreadyClaimed);
        };
        password::check_new(new_password)?;
        if !constant_time_eq(store::normalize_pairing_code(code).as_bytes(), expected.as_bytes()) {
            tracing::warn!(client = ?ip, "claim with a wrong pairing code");
            return Err(ApiError::WrongPairingCode);
        }
        let hash = self.hash_blocking(new_password).await?;
        {
            let mut record = lock(&self.record);
            if record.claimed() {
                return Err(ApiError::AlreadyClaimed);
            }
            let mut next = record.clone();
            next.password_hash = Some(hash);
            store::save(&self.opts.data_dir, &next)?;
            *record = next;
        }
        *lock(&self.pairing_code) = None;
        store::remove_pairing_code(&self.opts.data_dir)?;
        tracing::info!(client = ?ip, "box claimed: admin password set");
        self.succeeded(ip);
        Ok(self.new_session())
    }

    /// Logs in with the admin password; returns a session id.
    pub async fn login(&self, ip: Option<IpAddr>, password: &str) -> Result<String, ApiError> {
        self.attempt(ip)?;
        let stored = lock(&self.record).password_hash.clone();
        let Some(stored) = stored else {
            return Err(ApiError::NotClaimed);
        };
        if !self.verify_blocking(password, stored).await? {
            tracing::warn!(client = ?ip, "login with a wrong password");
            return Err(ApiError::WrongPassword);
        }
        tracing::info!(client = ?ip, "admin logged in");
        self.succeeded(ip);
        Ok(self.new_session())
    }

    /// Ends session `id`.
    pub fn logout(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// Changes the password; every other session ends.
    pub async fn change_password(
        &self,
        ip: Option<IpAddr>,
        session: &str,
        old: &str,
        new: &str,
    ) -> Result<(), ApiError> {
        self.attempt(ip)?;
        password::check_new(new)?;
        let stored = lock(&self.record).password_hash.clone();
        let Some(stored) = stored else {
            return Err(ApiError::NotClaimed);
        };
        if !self.verify_blocking(old, stored).await? {
            return Err(ApiError::WrongOldPassword);
        }
        let hash = self.hash_blocking(new).await?;
        {
            let mut record = lock(&self.record);
            let mut next = record.clone();
            next.password_hash = Some(hash);
            store::save(&self.opts.data_dir, &next)?;
            *record = next;
        }
        lock(&self.sessions).retain_only(session);
        self.succeeded(ip);
        tracing::info!(client = ?ip, "admin password changed; other sessions ended");
        Ok(())
    }

    /// The 24 words, once: the record says they were shown before they
    /// leave, so a crash after this never shows them twice.
    pub fn show_words(&self) -> Result<Vec<String>, ApiError> {
        let mut record = lock(&self.record);
        if !record.claimed() {
            return Err(ApiError::NotClaimed);
        }
        if record.words_shown {
            return Err(ApiError::WordsAlreadyShown);
        }
        let words = self.seed.words().map_err(ApiError::Seed)?;
        if words.len() < QUIZ_WORDS {
            return Err(ApiError::Seed(format!("the seed has {} words", words.len())));
        }
        let mut positions: Vec<u8> =
            sample(&mut rand::rngs::OsRng, words.len(), QUIZ_WORDS).into_iter().map(|i| (i + 1) as u8).collect();
        positions.sort_unstable();
        let mut next = record.clone();
        next.words_shown = true;
        next.quiz_positions = positions;
        store::save(&self.opts.data_dir, &next)?;
        *record = next;
        tracing::info!("the 24 words were shown to the owner (once)");
        Ok(words)
    }

    /// Positions (1-based) of the words the owner must give back.
    pub fn quiz_positions(&self) -> Result<Vec<u8>, ApiError> {
        let record = lock(&self.record);
        if !record.words_shown {
            return Err(ApiError::WordsNotShown);
        }
        if record.setup_complete {
            return Err(ApiError::SetupComplete);
        }
        Ok(record.quiz_positions.clone())
    }

    /// Checks the words given back (in the order of [`Admin::quiz_positions`]);
    /// right ones complete setup. Which word was wrong is not said, so the
    /// check is no oracle for guessing the seed a word at a time.
    pub fn answer_quiz(&self, ip: Option<IpAddr>, answers: &[String]) -> Result<(), ApiError> {
        self.attempt(ip)?;
        let mut record = lock(&self.record);
        if !record.words_shown {
            return Err(ApiError::WordsNotShown);
        }
        if record.setup_complete {
            return Err(ApiError::SetupComplete);
        }
        if answers.len() != record.quiz_positions.len() {
            return Err(ApiError::BadInput(format!(
                "give back exactly {} words (words {}), got {}",
                record.quiz_positions.len(),
                join(&record.quiz_positions),
                answers.len()
            )));
        }
        let words = self.seed.words().map_err(ApiError::Seed)?;
        let mut all_match = true;
        for (pos, answer) in record.quiz_positions.iter().zip(answers) {
            let want = words.get(usize::from(*pos).saturating_sub(1)).map(String::as_str).unwrap_or("");
            let got = answer.trim().to_lowercase();
            all_match &= constant_time_eq(got.as_bytes(), want.as_bytes());
        }
        if !all_match {
            return Err(ApiError::WordsMismatch);
        }
        let mut next = record.clone();
        next.setup_complete = true;
        store::save(&self.opts.data_dir, &next)?;
        *record = next;
        drop(record);
        self.succeeded(ip);
        tracing::info!("owner confirmed the 24 words: setup complete");
        Ok(())
    }

    /// Setup is complete because the owner restored the box from its 24
    /// words (`POST /api/setup/restore`): they typed every word, so none is
    /// shown or asked back, and the words of the seed created at first
    /// start (replaced by theirs) are never shown.
    pub fn mark_restored(&self) -> Result<(), ApiError> {
        let mut record = lock(&self.record);
        if !record.claimed() {
            return Err(ApiError::NotClaimed);
        }
        let mut next = record.clone();
        next.words_shown = true;
        next.setup_complete = true;
        next.quiz_positions.clear();
        store::save(&self.opts.data_dir, &next)?;
        *record = next;
        tracing::info!("setup complete: the box is restored from the owner's 24 words");
        Ok(())
    }

    async fn hash_blocking(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_string();
        let cost = self.opts.password_cost;
        let _permit = self.hashing.acquire().await.map_err(|e| ApiError::Internal(format!("hash queue: {e}")))?;
        tokio::task::spawn_blocking(move || password::hash(&password, cost))
            .await
            .map_err(|e| ApiError::Internal(format!("password hashing task: {e}")))?
            .map_err(ApiError::from)
    }

    async fn verify_blocking(&self, password: &str, stored: String) -> Result<bool, ApiError> {
        let password = password.to_string();
        let _permit = self.hashing.acquire().await.map_err(|e| ApiError::Internal(format!("hash queue: {e}")))?;
        tokio::task::spawn_blocking(move || password::verify(&password, &stored))
            .await
            .map_err(|e| ApiError::Internal(format!("password check task: {e}")))?
            .map_err(ApiError::from)
    }
}

fn join(positions: &[u8]) -> String {
    positions.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")
}

/// Compares without an early exit, so the time taken does not tell a
/// guesser how many leading characters were right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
