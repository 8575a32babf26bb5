//! Login sessions: random 256-bit ids handed out as an HttpOnly cookie,
//! kept in memory only (a restart logs everyone out, which is the safe
//! direction), with an idle and an absolute expiry and a cap on how many
//! exist at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::RngCore;

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "bunker_session";

/// How long sessions live and how many there may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// A session unused for this long ends.
    pub idle: Duration,
    /// A session ends this long after login, used or not.
    pub absolute: Duration,
    /// Most sessions at once; a new login past this ends the oldest.
    pub max_sessions: usize,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            idle: Duration::from_secs(2 * 3600),
            absolute: Duration::from_secs(24 * 3600),
            max_sessions: 32,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Session {
    created: Instant,
    last_used: Instant,
}

/// The live sessions.
#[derive(Debug)]
pub struct Sessions {
    limits: SessionLimits,
    live: HashMap<String, Session>,
}

impl Sessions {
    /// No sessions yet.
    pub fn new(limits: SessionLimits) -> Sessions {
        Sessions { limits, live: HashMap::new() }
    }

    /// The limits in force.
    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Starts a session and returns its id (64 hex digits, 256 random bits).
    pub fn create(&mut self, now: Instant) -> String {
        self.expire(now);
        while self.live.len() >= self.limits.max_sessions.max(1) {
            let oldest = self.live.iter().min_by_key(|(_, s)| s.created).map(|(id, _)| id.clone());
            match oldest {
                Some(id) => {
                    self.live.remove(&id);
                }
                None => break,
            }
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let id = hex::encode(bytes);
        self.live.insert(id.clone(), Session { created: now, last_used: now });
        id
    }

    /// Whether `id` is a live session; touching it keeps it from going idle.
    pub fn touch(&mut self, id: &str, now: Instant) -> bool {
        self.expire(now);
        match self.live.get_mut(id) {
            Some(s) => {
                s.last_used = now;
                true
            }
            None => false,
        }
    }

    /// Ends session `id` (logout).
    pub fn remove(&mut self, id: &str) {
        self.live.remove(id);
    }

    /// Ends every session but `keep` (after a password change).
    pub fn retain_only(&mut self, keep: &str) {
        self.live.retain(|id, _| id == keep);
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        let limits = self.limits;
        self.live.retain(|_, s| {
            now.saturating_duration_since(s.last_used) < limits.idle
                && now.saturating_duration_since(s.created) < limits.absolute
        });
    }
}

/// The session id in a `Cookie:` header value, if there is one of the
/// right shape (anything else is ignored, never an error).
pub fn id_from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.trim())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `Set-Cookie` value that hands `id` to the browser. `Secure` only when
/// the page is served over https: on a LAN over plain http a Secure cookie
/// would never be sent back, and the box could not be used.
pub fn set_cookie(id: &str, limits: SessionLimits, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", limits.absolute.as_secs())
}

/// `Set-Cookie` value that makes the browser forget the session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> SessionLimits {
        SessionLimits { idle: Duration::from_secs(60), absolute: Duration::from_secs(300), max_sessions: 3 }
    }

    #[test]
    fn ids_are_256_random_bits_and_distinct() {
        let mut s = Sessions::new(limits());
        let now = Instant::now();
        let a = s.create(now);
        let b = s.create(now);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(s.touch(&a, now) && s.touch(&b, now));
        assert!(!s.touch(&"0".repeat(64), now));
    }

    #[test]
    fn sessions_end_when_idle_at_their_absolute_limit_and_on_logout() {
        let mut s = Sessions::new(limits());
        let t0 = Instant::now();
        let idle = s.create(t0);
        assert!(!s.touch(&idle, t0 + Duration::from_secs(61)), "idle session must end");

        let busy = s.create(t0);
        for minute in 1..5 {
            assert!(s.touch(&busy, t0 + Duration::from_secs(minute * 59)));
        }
        assert!(!s.touch(&busy, t0 + Duration::from_secs(300)), "absolute limit must end it");

        let gone = s.create(t0);
        s.remove(&gone);
        assert!(!s.touch(&gone, t0));
    }

    #[test]
    fn the_oldest_session_makes_room_and_a_password_change_ends_the_others() {
        let mut s = Sessions::new(limits());
        let t0 = Instant::now();
        let ids: Vec<String> = (0..4).map(|i| s.create(t0 + Duration::from_millis(i))).collect();
        assert_eq!(s.len(), 3);
        assert!(!s.touch(&ids[0], t0 + Duration::from_millis(10)));
        s.retain_only(&ids[3]);
        assert_eq!(s.len(), 1);
        assert!(s.touch(&ids[3], t0 + Duration::from_millis(10)));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_odd_values_are_ignored() {
        let id = "ab".repeat(32);
        assert_eq!(id_from_cookie_header(&format!("x=1; {COOKIE_NAME}={id}; y=2")), Some(id.as_str()));
        assert_eq!(id_from_cookie_header(&format!("{COOKIE_NAME}=../../etc")), None);
        assert_eq!(id_from_cookie_header(&format!("{COOKIE_NAME}={}", "zz".repeat(32))), None);
        assert_eq!(id_from_cookie_header("garbage;;;="), None);
        let c = set_cookie(&id, limits(), false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && !c.contains("Secure"), "{c}");
        assert!(set_cookie(&id, limits(), true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }
}
