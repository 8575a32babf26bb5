//! The admin password: argon2id, stored as a PHC string (`$argon2id$v=19$…`)
//! so that the parameters travel with the hash and can be raised later
//! without locking anyone out.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// Shortest password accepted: the box is reachable by everyone on the LAN.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes: a cap on what a client makes us hash.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Cost of hashing a new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PasswordCost {
    /// OWASP's argon2id recommendation (19 MiB, 2 passes, 1 lane): about a
    /// quarter of a second on a Pi 4, and small enough that the login rate
    /// limit keeps memory use bounded.
    fn default() -> Self {
        PasswordCost { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 }
    }
}

/// Why a password was not accepted or could not be hashed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Too short to stand against guessing from the LAN.
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters (it has {0})")]
    TooShort(usize),
    /// Longer than the cap.
    #[error("the password must have at most {MAX_PASSWORD_BYTES} bytes (it has {0})")]
    TooLong(usize),
    /// The hashing library refused (bad parameters or a bad stored hash).
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Checks that `password` is acceptable as a new password.
pub fn check_new(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong(password.len()));
    }
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort(chars));
    }
    Ok(())
}

/// Hashes `password` with argon2id at `cost` and a fresh random salt.
pub fn hash(password: &str, cost: PasswordCost) -> Result<String, PasswordError> {
    check_new(password)?;
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hash(e.to_string()))?;
    let hash = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string `stored`. A stored
/// hash that does not parse is an error, not a mismatch, so that a damaged
/// file is reported rather than silently locking the owner out.
pub fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let parsed = PasswordHash::new(stored).map_err(|e| PasswordError::Hash(format!("stored hash: {e}")))?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(PasswordError::Hash(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: PasswordCost = PasswordCost { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let stored = hash("correct horse", CHEAP).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{stored}");
        assert!(verify("correct horse", &stored).unwrap());
        assert!(!verify("correct horsE", &stored).unwrap());
        assert!(!verify("", &stored).unwrap());
        // Fresh salt every time.
        assert_ne!(hash("correct horse", CHEAP).unwrap(), stored);
    }

    #[test]
    fn the_default_cost_is_argon2id_at_owasp_strength() {
        let stored = hash("a long enough password", PasswordCost::default()).unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("a long enough password", &stored).unwrap());
    }

    #[test]
    fn short_long_and_damaged_inputs_are_named() {
        assert!(matches!(check_new("seven77"), Err(PasswordError::TooShort(7))));
        // Characters, not bytes: eight accented letters are enough.
        check_new("éééééééé").unwrap();
        let long = "x".repeat(MAX_PASSWORD_BYTES + 1);
        assert!(matches!(hash(&long, CHEAP), Err(PasswordError::TooLong(_))));
        assert!(!verify(&long, &hash("correct horse", CHEAP).unwrap()).unwrap());
        let err = verify("whatever", "not a phc string").unwrap_err();
        assert!(err.to_string().contains("stored hash"), "{err}");
    }
}
