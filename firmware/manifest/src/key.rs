//! The manifest key, taken as plain bytes so this crate does not wait on
//! bunker-core's key module: the engine passes `derive_key("…manifest key", seed)`.

/// 32-byte symmetric key that seals manifest snapshots and recovery kits.
#[derive(Clone)]
pub struct ManifestKey([u8; 32]);

impl ManifestKey {
    /// Wraps key bytes derived from the seed.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        ManifestKey(bytes)
    }

    /// A key for one purpose, so the snapshot key and the kit key differ.
    pub(crate) fn subkey(&self, context: &str) -> [u8; 32] {
        blake3::derive_key(context, &self.0)
    }
}

impl From<[u8; 32]> for ManifestKey {
    fn from(bytes: [u8; 32]) -> Self {
        ManifestKey(bytes)
    }
}

impl std::fmt::Debug for ManifestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ManifestKey(<redacted>)")
    }
}

impl Drop for ManifestKey {
    fn drop(&mut self) {
        // Do not leave the key in freed memory.
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}
