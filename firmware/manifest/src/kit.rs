//! The recovery kit: the least a new box needs to find its manifest again —
//! who holds snapshots, where to reach them, and the newest version — sealed
//! under the manifest key so that only the same 24 words open it. Small enough
//! to print as a QR code: the text form uses base32, which QR encodes in its
//! compact alphanumeric mode.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libp2p_identity::PeerId;
use rand::RngCore;

use crate::error::KitError;
use crate::key::ManifestKey;
use crate::types::UnixSecs;

/// Prefix of the text form; only characters of QR's alphanumeric set.
pub const KIT_TEXT_PREFIX: &str = "BUNKERKIT1:";
/// Most holders a kit lists.
pub const MAX_HOLDERS: usize = 8;
/// Most addresses per holder.
pub const MAX_ADDRESSES: usize = 2;
/// Longest address (multiaddr text) in a kit.
pub const MAX_ADDRESS_LEN: usize = 96;
const MAGIC: &[u8; 4] = b"BKIT";
const KIT_FORMAT: u8 = 1;
const KEY_CONTEXT: &str = "bunker 2026-11 recovery kit encryption";
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Largest sealed kit accepted when reading (bounds work on hostile input).
const MAX_BLOB_LEN: usize = 8 * 1024;

/// One peer holding the owner's manifest snapshots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KitHolder {
    /// The holder.
    pub peer: PeerId,
    /// Where to reach it (multiaddr text).
    pub addresses: Vec<String>,
}

/// Where to find the manifest after losing the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryKit {
    /// Whose manifest.
    pub owner: PeerId,
    /// Newest snapshot version known when the kit was made.
    pub latest_version: u64,
    /// When the kit was made.
    pub created_at: UnixSecs,
    /// Who holds snapshots.
    pub holders: Vec<KitHolder>,
}

impl RecoveryKit {
    /// Seals the kit under (a subkey of) the manifest key.
    pub fn seal(&self, key: &ManifestKey) -> Result<Vec<u8>, KitError> {
        let plain = self.encode()?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut blob = Vec::with_capacity(MAGIC.len() + 1 + NONCE_LEN + plain.len() + TAG_LEN);
        blob.extend_from_slice(MAGIC);
        blob.push(KIT_FORMAT);
        blob.extend_from_slice(&nonce);
        let cipher = XChaCha20Poly1305::new(key.subkey(KEY_CONTEXT).as_ref().into());
        let sealed = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: &blob[..MAGIC.len() + 1],
                },
            )
            .map_err(|_| KitError::Decrypt)?;
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    /// Opens a sealed kit.
    pub fn open(blob: &[u8], key: &ManifestKey) -> Result<Self, KitError> {
        if blob.len() > MAX_BLOB_LEN {
            return Err(KitError::TooLarge {
                field: "kit",
                size: blob.len(),
                max: MAX_BLOB_LEN,
            });
        }
        let head = MAGIC.len() + 1;
        if blob.len() < head + NONCE_LEN + TAG_LEN {
            if blob.len() >= head
                && (&blob[..MAGIC.len()] != MAGIC || blob[MAGIC.len()] != KIT_FORMAT)
            {
                return Err(KitError::BadMagic);
            }
            return Err(KitError::Truncated {
                field: "sealed kit",
                needed: head + NONCE_LEN + TAG_LEN,
                available: blob.len(),
            });
        }
        if &blob[..MAGIC.len()] != MAGIC || blob[MAGIC.len()] != KIT_FORMAT {
            return Err(KitError::BadMagic);
        }
        let nonce = XNonce::from_slice(&blob[head..head + NONCE_LEN]);
        let cipher = XChaCha20Poly1305::new(key.subkey(KEY_CONTEXT).as_ref().into());
        let plain = cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &blob[head + NONCE_LEN..],
                    aad: &blob[..head],
                },
            )
            .map_err(|_| KitError::Decrypt)?;
        Self::decode(&plain)
    }

    /// The sealed kit as QR-friendly text: `BUNKERKIT1:` and uppercase base32.
    pub fn to_text(&self, key: &ManifestKey) -> Result<String, KitError> {
        let blob = self.seal(key)?;
        Ok(format!(
            "{KIT_TEXT_PREFIX}{}",
            data_encoding::BASE32_NOPAD.encode(&blob)
        ))
    }

    /// Reads the text form; spaces, line breaks and lowercase (hand typing) are tolerated.
    pub fn from_text(text: &str, key: &ManifestKey) -> Result<Self, KitError> {
        if text.len() > MAX_BLOB_LEN * 2 {
            return Err(KitError::TooLarge {
                field: "kit text",
                size: text.len(),
                max: MAX_BLOB_LEN * 2,
            });
        }
        let cleaned: String = text
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let body = cleaned
            .strip_prefix(KIT_TEXT_PREFIX)
            .ok_or(KitError::BadPrefix {
                expected: KIT_TEXT_PREFIX,
            })?;
        let blob = data_encoding::BASE32_NOPAD
            .decode(body.as_bytes())
            .map_err(|e| KitError::BadText(e.to_string()))?;
        Self::open(&blob, key)
    }

    /// Writes the sealed kit to a file (what the admin page offers to download).
    pub fn write_file(&self, path: &Path, key: &ManifestKey) -> Result<(), KitError> {
        let blob = self.seal(key)?;
        std::fs::write(path, blob).map_err(|source| KitError::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Reads a sealed kit file.
    pub fn read_file(path: &Path, key: &ManifestKey) -> Result<Self, KitError> {
        let meta = std::fs::metadata(path).map_err(|source| KitError::Io {
            path: path.to_owned(),
            source,
        })?;
        if meta.len() > MAX_BLOB_LEN as u64 {
            return Err(KitError::TooLarge {
                field: "kit file",
                size: meta.len() as usize,
                max: MAX_BLOB_LEN,
            });
        }
        let blob = std::fs::read(path).map_err(|source| KitError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::open(&blob, key)
    }

    fn encode(&self) -> Result<Vec<u8>, KitError> {
        if self.holders.len() > MAX_HOLDERS {
            return Err(KitError::TooLarge {
                field: "holders",
                size: self.holders.len(),
                max: MAX_HOLDERS,
            });
        }
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(&self.latest_version.to_be_bytes());
        out.extend_from_slice(&self.created_at.to_be_bytes());
        put_bytes(&mut out, &self.owner.to_bytes());
        out.push(self.holders.len() as u8);
        for h in &self.holders {
            put_bytes(&mut out, &h.peer.to_bytes());
            if h.addresses.len() > MAX_ADDRESSES {
                return Err(KitError::TooLarge {
                    field: "addresses",
                    size: h.addresses.len(),
                    max: MAX_ADDRESSES,
                });
            }
            out.push(h.addresses.len() as u8);
            for a in &h.addresses {
                if a.len() > MAX_ADDRESS_LEN {
                    return Err(KitError::TooLarge {
                        field: "address",
                        size: a.len(),
                        max: MAX_ADDRESS_LEN,
                    });
                }
                put_bytes(&mut out, a.as_bytes());
            }
        }
        Ok(out)
    }

    fn decode(b: &[u8]) -> Result<Self, KitError> {
        let mut r = Reader { b, pos: 0 };
        let latest_version = u64::from_be_bytes(r.array("latest_version")?);
        let created_at = i64::from_be_bytes(r.array("created_at")?);
        let owner = r.peer("owner")?;
        let n = r.array::<1>("holder count")?[0] as usize;
        if n > MAX_HOLDERS {
            return Err(KitError::TooLarge {
                field: "holders",
                size: n,
                max: MAX_HOLDERS,
            });
        }
        let mut holders = Vec::with_capacity(n);
        for _ in 0..n {
            let peer = r.peer("holder")?;
            let m = r.array::<1>("address count")?[0] as usize;
            if m > MAX_ADDRESSES {
                return Err(KitError::TooLarge {
                    field: "addresses",
                    size: m,
                    max: MAX_ADDRESSES,
                });
            }
            let mut addresses = Vec::with_capacity(m);
            for _ in 0..m {
                let raw = r.bytes("address")?;
                let s = std::str::from_utf8(raw).map_err(|e| KitError::Malformed {
                    field: "address",
                    reason: e.to_string(),
                })?;
                addresses.push(s.to_owned());
            }
            holders.push(KitHolder { peer, addresses });
        }
        if r.pos != b.len() {
            return Err(KitError::Malformed {
                field: "kit",
                reason: format!("{} trailing bytes", b.len() - r.pos),
            });
        }
        Ok(RecoveryKit {
            owner,
            latest_version,
            created_at,
            holders,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    // Every field written here is capped well below 256 bytes.
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], KitError> {
        let available = self.b.len() - self.pos;
        if n > available {
            return Err(KitError::Truncated {
                field,
                needed: n,
                available,
            });
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], KitError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(field, N)?);
        Ok(a)
    }

    fn bytes(&mut self, field: &'static str) -> Result<&'a [u8], KitError> {
        let n = self.array::<1>(field)?[0] as usize;
        self.take(field, n)
    }

    fn peer(&mut self, field: &'static str) -> Result<PeerId, KitError> {
        let raw = self.bytes(field)?;
        PeerId::from_bytes(raw).map_err(|e| KitError::Malformed {
            field,
            reason: e.to_string(),
        })
    }
}
