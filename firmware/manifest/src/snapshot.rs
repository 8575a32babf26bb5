//! Encrypted, signed, versioned snapshots of the manifest for replication to peers.
//!
//! Layout (all integers big-endian):
//!
//! ```text
//! header   magic "BUNKERMS" | format u16 = 1 | compression u8 = 1 (zstd) | 0u8
//!          | version u64 | created_at i64 | db_size u64 | compressed_len u64
//!          | chunk_size u32 | owner key len u16 | owner ed25519 public key (protobuf)
//!          | nonce prefix [16]
//! chunks   ceil(compressed_len / chunk_size) (at least 1) XChaCha20-Poly1305 chunks,
//!          each plaintext chunk_size bytes (the last one shorter) + 16-byte tag;
//!          nonce = prefix | chunk index u64, AAD = blake3(header) | index u64 | last u8
//! trailer  signature len u16 | ed25519 signature over
//!          "bunker manifest snapshot v1" | blake3(header | chunks)
//! ```
//!
//! The signature lets a host check who made a snapshot and that it is intact
//! without the key; the AEAD keeps its content secret; the version makes
//! replaying an old snapshot detectable. Chunks keep memory bounded on a Pi.

use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use libp2p_identity::{Keypair, PeerId, PublicKey};
use rand::RngCore;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::db::{integrity_problems, sql, Manifest};
use crate::error::{CopyError, ImportError, QueryError, SnapshotError};
use crate::key::ManifestKey;
use crate::schema::SCHEMA_VERSION;
use crate::types::UnixSecs;

/// Magic bytes opening every snapshot.
pub const MAGIC: &[u8; 8] = b"BUNKERMS";
/// Snapshot format written and read by this build.
pub const FORMAT_VERSION: u16 = 1;
/// Plaintext bytes per sealed chunk.
pub const CHUNK_SIZE: u32 = 1 << 20;
/// Largest compressed manifest a snapshot may carry (also what a host should accept).
pub const MAX_COMPRESSED_LEN: u64 = 1 << 31;
/// Largest database a snapshot may expand to: caps disk use of a hostile snapshot.
pub const MAX_DB_SIZE: u64 = 8 << 30;
/// Longest owner public key accepted (ed25519 protobuf is 36 bytes).
const MAX_OWNER_KEY_LEN: u16 = 64;
/// Longest signature accepted (ed25519 is 64 bytes).
const MAX_SIGNATURE_LEN: u16 = 128;
const COMPRESSION_ZSTD: u8 = 1;
const ZSTD_LEVEL: i32 = 3;
const SIGNATURE_CONTEXT: &[u8] = b"bunker manifest snapshot v1";
const KEY_CONTEXT: &str = "bunker 2026-11 manifest snapshot encryption";
const TAG_LEN: u64 = 16;
const META_SNAPSHOT_VERSION: &str = "snapshot_version";

/// What a snapshot header says, after its signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Format version.
    pub format: u16,
    /// Monotonic snapshot version.
    pub version: u64,
    /// Whose manifest it is.
    pub owner: PeerId,
    /// When it was made.
    pub created_at: UnixSecs,
    /// Size of the database it expands to.
    pub db_size: u64,
    /// Size of the compressed database.
    pub compressed_len: u64,
    /// Total size of the snapshot in bytes.
    pub snapshot_len: u64,
}

struct Header {
    info: SnapshotInfo,
    chunk_size: u32,
    nonce_prefix: [u8; 16],
    owner_key: PublicKey,
    /// Bytes of the header, for the AAD and the signature.
    len: usize,
    /// The header itself (at most [`MAX_HEADER_LEN`] bytes).
    bytes: Vec<u8>,
}

/// Longest possible header: fixed fields, the largest owner key, the nonce prefix.
const MAX_HEADER_LEN: usize = 8 + 2 + 2 + 8 + 8 + 8 + 8 + 4 + 2 + MAX_OWNER_KEY_LEN as usize + 16;
/// Bytes read at a time when hashing or decrypting a snapshot.
const READ_BLOCK: usize = 1 << 20;

impl Manifest {
    /// The version of the newest snapshot made from or imported into this manifest (0: none).
    pub fn snapshot_version(&self) -> Result<u64, QueryError> {
        read_snapshot_version(&self.conn).map_err(sql("read snapshot version"))
    }

    /// Makes the next snapshot: bumps the version, takes a consistent copy,
    /// compresses, seals and signs it, writing it to `out`.
    ///
    /// Temporary files go beside the database, so the SD card's RAM is spared.
    pub fn export_snapshot(
        &mut self,
        key: &ManifestKey,
        owner: &Keypair,
        created_at: UnixSecs,
        out: &mut dyn Write,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let owner_key = owner.public();
        if owner.key_type() != libp2p_identity::KeyType::Ed25519 {
            return Err(SnapshotError::KeyType(format!("{:?}", owner.key_type())));
        }
        let version = self.bump_snapshot_version()?;
        let copy = self.staged_copy()?;
        let db_size = copy
            .as_file()
            .metadata()
            .map_err(|source| SnapshotError::Io {
                step: "stat copy",
                source,
            })?
            .len();

        let io = |step| move |source| SnapshotError::Io { step, source };
        let dir = copy
            .path()
            .parent()
            .map(|p| p.to_owned())
            .unwrap_or_else(|| ".".into());
        let mut compressed = tempfile::tempfile_in(&dir).map_err(io("create compressed file"))?;
        {
            let mut input = BufReader::new(copy.reopen().map_err(io("reopen copy"))?);
            let mut enc =
                zstd::stream::write::Encoder::new(BufWriter::new(&mut compressed), ZSTD_LEVEL)
                    .map_err(io("start compression"))?;
            std::io::copy(&mut input, &mut enc).map_err(io("compress"))?;
            enc.finish()
                .map_err(io("finish compression"))?
                .flush()
                .map_err(io("flush compressed"))?;
        }
        drop(copy);
        let compressed_len = compressed
            .stream_position()
            .map_err(io("measure compressed"))?;
        if compressed_len > MAX_COMPRESSED_LEN {
            return Err(SnapshotError::TooLarge {
                size: compressed_len,
                max: MAX_COMPRESSED_LEN,
            });
        }
        compressed
            .seek(SeekFrom::Start(0))
            .map_err(io("rewind compressed"))?;

        let mut nonce_prefix = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce_prefix);
        let owner_key_bytes = owner_key.encode_protobuf();
        let mut header = Vec::with_capacity(96);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        header.push(COMPRESSION_ZSTD);
        header.push(0);
        header.extend_from_slice(&version.to_be_bytes());
        header.extend_from_slice(&created_at.to_be_bytes());
        header.extend_from_slice(&db_size.to_be_bytes());
        header.extend_from_slice(&compressed_len.to_be_bytes());
        header.extend_from_slice(&CHUNK_SIZE.to_be_bytes());
        header.extend_from_slice(&(owner_key_bytes.len() as u16).to_be_bytes());
        header.extend_from_slice(&owner_key_bytes);
        header.extend_from_slice(&nonce_prefix);

        let cipher = XChaCha20Poly1305::new(key.subkey(KEY_CONTEXT).as_ref().into());
        let header_hash = blake3::hash(&header);
        let mut signed = blake3::Hasher::new();
        signed.update(&header);
        out.write_all(&header).map_err(io("write header"))?;
        let chunks = chunk_count(compressed_len, CHUNK_SIZE);
        let mut reader = BufReader::new(compressed);
        let mut buf = vec![0u8; CHUNK_SIZE as usize];
        let mut total = header.len() as u64;
        for i in 0..chunks {
            let len = chunk_len(compressed_len, CHUNK_SIZE, i);
            reader
                .read_exact(&mut buf[..len])
                .map_err(io("read compressed"))?;
            let sealed = cipher
                .encrypt(
                    &chunk_nonce(&nonce_prefix, i),
                    Payload {
                        msg: &buf[..len],
                        aad: &chunk_aad(&header_hash, i, i + 1 == chunks),
                    },
                )
                .map_err(|_| SnapshotError::Encrypt { chunk: i })?;
            signed.update(&sealed);
            out.write_all(&sealed).map_err(io("write chunk"))?;
            total += sealed.len() as u64;
        }
        let digest = signed.finalize();
        let signature = owner
            .sign(&signature_message(digest.as_bytes()))
            .map_err(|e| SnapshotError::Sign(e.to_string()))?;
        out.write_all(&(signature.len() as u16).to_be_bytes())
            .map_err(io("write signature"))?;
        out.write_all(&signature).map_err(io("write signature"))?;
        out.flush().map_err(io("flush snapshot"))?;
        total += 2 + signature.len() as u64;
        tracing::info!(
            version,
            db_size,
            compressed_len,
            snapshot_len = total,
            "manifest snapshot made"
        );
        Ok(SnapshotInfo {
            format: FORMAT_VERSION,
            version,
            owner: owner_key.to_peer_id(),
            created_at,
            db_size,
            compressed_len,
            snapshot_len: total,
        })
    }

    /// Replaces the live manifest with a snapshot held in memory; see
    /// [`Manifest::import_snapshot_from`].
    pub fn import_snapshot(
        &mut self,
        snapshot: &[u8],
        key: &ManifestKey,
        owner: &PeerId,
    ) -> Result<SnapshotInfo, ImportError> {
        self.import_snapshot_from(&mut std::io::Cursor::new(snapshot), key, owner)
    }

    /// Replaces the live manifest with a snapshot read from `src` (a file, so a
    /// large manifest never has to fit in RAM), after checking that it is
    /// `owner`'s, intact, decryptable with `key`, newer than what we have, and a
    /// sound database. Nothing in the live database changes unless all of that
    /// holds; the swap itself is one SQLite transaction.
    pub fn import_snapshot_from<R: Read + Seek>(
        &mut self,
        src: &mut R,
        key: &ManifestKey,
        owner: &PeerId,
    ) -> Result<SnapshotInfo, ImportError> {
        let header = verify_snapshot(src)?;
        let info = header.info.clone();
        if &info.owner != owner {
            return Err(ImportError::WrongOwner {
                found: info.owner.to_string(),
                expected: owner.to_string(),
            });
        }
        let current = self.snapshot_version()?;
        if info.version < current {
            return Err(ImportError::Older {
                offered: info.version,
                current,
            });
        }
        if info.version == current {
            return Err(ImportError::AlreadyCurrent {
                offered: info.version,
            });
        }

        let io = |step| move |source| ImportError::Io { step, source };
        let dir = self
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        // 1. decrypt every chunk into a temporary file (the AEAD proves the key).
        let mut compressed = tempfile::tempfile_in(dir).map_err(io("create temporary file"))?;
        {
            let mut w = BufWriter::new(&mut compressed);
            let cipher = XChaCha20Poly1305::new(key.subkey(KEY_CONTEXT).as_ref().into());
            let header_hash = blake3::hash(&header.bytes);
            let chunks = chunk_count(info.compressed_len, header.chunk_size);
            src.seek(SeekFrom::Start(header.len as u64))
                .map_err(io("seek to chunks"))?;
            let mut sealed = vec![0u8; header.chunk_size as usize + TAG_LEN as usize];
            for i in 0..chunks {
                let len = chunk_len(info.compressed_len, header.chunk_size, i) + TAG_LEN as usize;
                src.read_exact(&mut sealed[..len])
                    .map_err(io("read chunk"))?;
                let plain = cipher
                    .decrypt(
                        &chunk_nonce(&header.nonce_prefix, i),
                        Payload {
                            msg: &sealed[..len],
                            aad: &chunk_aad(&header_hash, i, i + 1 == chunks),
                        },
                    )
                    .map_err(|_| ImportError::Decrypt { chunk: i })?;
                w.write_all(&plain).map_err(io("write decrypted chunk"))?;
            }
            w.flush().map_err(io("flush decrypted"))?;
        }
        compressed
            .seek(SeekFrom::Start(0))
            .map_err(io("rewind decrypted"))?;

        // 2. decompress into a candidate database file, never past the announced size.
        let candidate = tempfile::Builder::new()
            .prefix(".manifest-import-")
            .tempfile_in(dir)
            .map_err(io("create candidate database"))?;
        {
            let dec = zstd::stream::read::Decoder::new(BufReader::new(compressed))
                .map_err(io("start decompression"))?;
            let mut limited = dec.take(info.db_size + 1);
            let mut w = BufWriter::new(candidate.as_file());
            let n = std::io::copy(&mut limited, &mut w).map_err(|e| ImportError::BadContent {
                reason: format!("decompression failed: {e}"),
            })?;
            w.flush().map_err(io("write candidate database"))?;
            if n != info.db_size {
                return Err(ImportError::BadContent {
                    reason: format!("expands to {} bytes, header says {}", n, info.db_size),
                });
            }
        }

        // 3. check the candidate is a sound manifest of the announced version.
        let cand = Connection::open_with_flags(candidate.path(), OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|source| ImportError::Sqlite {
                step: "open candidate",
                source,
            })?;
        check_candidate(&cand, info.version)?;

        // 4. swap it in: the backup API writes all pages into the live file in one transaction.
        {
            let backup =
                rusqlite::backup::Backup::new(&cand, &mut self.conn).map_err(|source| {
                    ImportError::Sqlite {
                        step: "start restore",
                        source,
                    }
                })?;
            match backup.step(-1).map_err(|source| ImportError::Sqlite {
                step: "restore",
                source,
            })? {
                rusqlite::backup::StepResult::Done => {}
                other => {
                    return Err(ImportError::Sqlite {
                        step: "restore",
                        source: rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some(format!("restore step returned {other:?}")),
                        ),
                    })
                }
            }
        }
        drop(cand);
        // An older schema inside the snapshot is brought up to date like at open.
        let path = self.path.clone();
        crate::schema::migrate(&mut self.conn, &path).map_err(|e| ImportError::BadContent {
            reason: format!("migrating the imported manifest failed: {e}"),
        })?;
        tracing::info!(version = info.version, owner = %info.owner, "manifest snapshot imported");
        Ok(info)
    }

    fn bump_snapshot_version(&mut self) -> Result<u64, QueryError> {
        let v: i64 = self
            .conn
            .query_row(
                "INSERT INTO meta (key, value) VALUES (?1, 1) \
                 ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value",
                [META_SNAPSHOT_VERSION],
                |r| r.get(0),
            )
            .map_err(sql("bump snapshot version"))?;
        Ok(v as u64)
    }
}

/// Parses a snapshot's header and verifies its signature, without any key:
/// what a peer storing snapshots for an owner checks before accepting one.
pub fn inspect_snapshot(snapshot: &[u8]) -> Result<SnapshotInfo, ImportError> {
    verify_snapshot(&mut std::io::Cursor::new(snapshot)).map(|h| h.info)
}

/// [`inspect_snapshot`] for a snapshot in a file or other seekable source.
pub fn inspect_snapshot_from<R: Read + Seek>(src: &mut R) -> Result<SnapshotInfo, ImportError> {
    verify_snapshot(src).map(|h| h.info)
}

impl From<CopyError> for ImportError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Sqlite { step, source } => ImportError::Sqlite { step, source },
            CopyError::Io { step, source } => ImportError::Io { step, source },
        }
    }
}

/// Parses the header and checks the signature over header and chunks, reading
/// the source twice in bounded blocks (never the whole snapshot at once).
fn verify_snapshot<R: Read + Seek>(src: &mut R) -> Result<Header, ImportError> {
    let io = |step| move |source| ImportError::Io { step, source };
    let total = src.seek(SeekFrom::End(0)).map_err(io("measure snapshot"))?;
    src.seek(SeekFrom::Start(0))
        .map_err(io("rewind snapshot"))?;
    let mut head = vec![0u8; total.min(MAX_HEADER_LEN as u64) as usize];
    src.read_exact(&mut head).map_err(io("read header"))?;
    let mut header = parse_header(&head)?;
    let chunks = chunk_count(header.info.compressed_len, header.chunk_size);
    let body_len = header.info.compressed_len + chunks * TAG_LEN;
    let after_header = total - header.len as u64;
    if body_len > after_header {
        return Err(ImportError::Truncated {
            field: "sealed chunks",
            needed: body_len,
            available: after_header,
        });
    }
    let body_end = header.len as u64 + body_len;
    let mut tail = vec![0u8; (total - body_end).min(2 + MAX_SIGNATURE_LEN as u64) as usize];
    src.seek(SeekFrom::Start(body_end))
        .map_err(io("seek to signature"))?;
    src.read_exact(&mut tail).map_err(io("read signature"))?;
    let mut r = Cursor {
        bytes: &tail,
        pos: 0,
    };
    let sig_len = u16::from_be_bytes(r.array("signature length")?);
    if sig_len > MAX_SIGNATURE_LEN {
        return Err(ImportError::TooLarge {
            field: "signature",
            size: sig_len.into(),
            max: MAX_SIGNATURE_LEN.into(),
        });
    }
    let signature = r.take("signature", sig_len.into())?;
    let end = body_end + 2 + u64::from(sig_len);
    if end != total {
        return Err(ImportError::Malformed {
            field: "trailer",
            reason: format!("{} bytes after the signature", total - end),
        });
    }
    let mut h = blake3::Hasher::new();
    src.seek(SeekFrom::Start(0))
        .map_err(io("rewind snapshot"))?;
    let mut left = body_end;
    let mut buf = vec![0u8; READ_BLOCK];
    while left > 0 {
        let n = left.min(READ_BLOCK as u64) as usize;
        src.read_exact(&mut buf[..n]).map_err(io("read chunks"))?;
        h.update(&buf[..n]);
        left -= n as u64;
    }
    if !header
        .owner_key
        .verify(&signature_message(h.finalize().as_bytes()), signature)
    {
        return Err(ImportError::BadSignature {
            owner: header.info.owner.to_string(),
        });
    }
    header.info.snapshot_len = total;
    Ok(header)
}

fn parse_header(b: &[u8]) -> Result<Header, ImportError> {
    let mut r = Cursor { bytes: b, pos: 0 };
    if r.take("magic", MAGIC.len() as u64)? != MAGIC {
        return Err(ImportError::BadMagic);
    }
    let format = u16::from_be_bytes(r.array("format version")?);
    if format != FORMAT_VERSION {
        return Err(ImportError::UnsupportedFormat {
            found: format,
            supported: FORMAT_VERSION,
        });
    }
    let [compression, reserved] = r.array::<2>("compression")?;
    if compression != COMPRESSION_ZSTD || reserved != 0 {
        return Err(ImportError::Malformed {
            field: "compression",
            reason: format!("unknown compression {compression}/{reserved}"),
        });
    }
    let version = u64::from_be_bytes(r.array("version")?);
    let created_at = i64::from_be_bytes(r.array("created_at")?);
    let db_size = u64::from_be_bytes(r.array("db_size")?);
    if db_size > MAX_DB_SIZE {
        return Err(ImportError::TooLarge {
            field: "db_size",
            size: db_size,
            max: MAX_DB_SIZE,
        });
    }
    let compressed_len = u64::from_be_bytes(r.array("compressed_len")?);
    if compressed_len > MAX_COMPRESSED_LEN {
        return Err(ImportError::TooLarge {
            field: "compressed_len",
            size: compressed_len,
            max: MAX_COMPRESSED_LEN,
        });
    }
    let chunk_size = u32::from_be_bytes(r.array("chunk_size")?);
    if chunk_size == 0 || chunk_size > CHUNK_SIZE {
        return Err(ImportError::Malformed {
            field: "chunk_size",
            reason: format!("{chunk_size} is not in 1..={CHUNK_SIZE}"),
        });
    }
    let key_len = u16::from_be_bytes(r.array("owner key length")?);
    if key_len > MAX_OWNER_KEY_LEN {
        return Err(ImportError::TooLarge {
            field: "owner key",
            size: key_len.into(),
            max: MAX_OWNER_KEY_LEN.into(),
        });
    }
    let key_bytes = r.take("owner key", key_len.into())?;
    let owner_key =
        PublicKey::try_decode_protobuf(key_bytes).map_err(|e| ImportError::Malformed {
            field: "owner key",
            reason: e.to_string(),
        })?;
    if owner_key.key_type() != libp2p_identity::KeyType::Ed25519 {
        return Err(ImportError::Malformed {
            field: "owner key",
            reason: "not an ed25519 key".into(),
        });
    }
    let nonce_prefix: [u8; 16] = r.array("nonce prefix")?;
    Ok(Header {
        info: SnapshotInfo {
            format,
            version,
            owner: owner_key.to_peer_id(),
            created_at,
            db_size,
            compressed_len,
            snapshot_len: 0,
        },
        chunk_size,
        nonce_prefix,
        owner_key,
        len: r.pos,
        bytes: b[..r.pos].to_vec(),
    })
}

fn check_candidate(cand: &Connection, version: u64) -> Result<(), ImportError> {
    let bad = |reason: String| ImportError::BadContent { reason };
    let problems =
        integrity_problems(cand).map_err(|e| bad(format!("integrity check failed: {e}")))?;
    if !problems.is_empty() {
        return Err(bad(format!("integrity check: {}", problems.join("; "))));
    }
    let schema: i64 = cand
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| bad(format!("no schema version: {e}")))?;
    if !(1..=SCHEMA_VERSION).contains(&schema) {
        return Err(bad(format!(
            "schema version {schema}, this firmware reads 1..={SCHEMA_VERSION}"
        )));
    }
    let inner =
        read_snapshot_version(cand).map_err(|e| bad(format!("no snapshot version inside: {e}")))?;
    if inner != version {
        return Err(bad(format!(
            "content is snapshot version {inner}, header says {version}"
        )));
    }
    Ok(())
}

fn read_snapshot_version(conn: &Connection) -> rusqlite::Result<u64> {
    let v: Option<i64> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_SNAPSHOT_VERSION],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.unwrap_or(0).max(0) as u64)
}

fn chunk_count(compressed_len: u64, chunk_size: u32) -> u64 {
    compressed_len.div_ceil(chunk_size as u64).max(1)
}

fn chunk_len(compressed_len: u64, chunk_size: u32, i: u64) -> usize {
    let start = i * chunk_size as u64;
    (compressed_len.saturating_sub(start)).min(chunk_size as u64) as usize
}

fn chunk_nonce(prefix: &[u8; 16], i: u64) -> XNonce {
    let mut n = [0u8; 24];
    n[..16].copy_from_slice(prefix);
    n[16..].copy_from_slice(&i.to_be_bytes());
    XNonce::from(n)
}

fn chunk_aad(header_hash: &blake3::Hash, i: u64, last: bool) -> [u8; 41] {
    let mut aad = [0u8; 41];
    aad[..32].copy_from_slice(header_hash.as_bytes());
    aad[32..40].copy_from_slice(&i.to_be_bytes());
    aad[40] = last as u8;
    aad
}

fn signature_message(digest: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNATURE_CONTEXT.len() + 32);
    m.extend_from_slice(SIGNATURE_CONTEXT);
    m.extend_from_slice(digest);
    m
}

/// Bounds-checked reader over untrusted bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, field: &'static str, n: u64) -> Result<&'a [u8], ImportError> {
        let available = (self.bytes.len() - self.pos) as u64;
        if n > available {
            return Err(ImportError::Truncated {
                field,
                needed: n,
                available,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], ImportError> {
        let s = self.take(field, N as u64)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FilePath;

    /// A box still on schema 1 (older firmware) exports a snapshot; a box on
    /// the current schema imports it and migrates it in place.
    #[test]
    fn snapshot_from_an_older_schema_is_imported_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let old_path = dir.path().join("old.db");
        let conn = crate::db::open_connection(&old_path).unwrap();
        crate::schema::create_at_version(&conn, 1).unwrap();
        let mut old = Manifest {
            conn,
            path: old_path,
        };
        // Rows as a schema-1 firmware wrote them (no object id yet).
        old.conn
            .execute_batch(
                "INSERT INTO folders (id, parent_id, path, name) VALUES (2, 1, '/old', 'old'); \
                 INSERT INTO files (folder_id, name, size, plaintext_blake3, segment_size, \
                 keep_local, redundancy, created_at, modified_at) \
                 VALUES (2, 'a.txt', 5, zeroblob(32), 65536, 1, 2, 1, 1);",
            )
            .unwrap();
        let path = FilePath::parse("/old/a.txt").unwrap();
        let owner = Keypair::ed25519_from_bytes([9u8; 32]).unwrap();
        let key = ManifestKey::from_bytes([2; 32]);
        let mut snap = Vec::new();
        old.export_snapshot(&key, &owner, 10, &mut snap).unwrap();
        assert_eq!(old.schema_version().unwrap(), 1);

        let mut new = Manifest::open(dir.path().join("new.db")).unwrap();
        new.import_snapshot(&snap, &key, &owner.public().to_peer_id())
            .unwrap();
        assert_eq!(new.schema_version().unwrap(), crate::SCHEMA_VERSION);
        assert!(new.file(&path).unwrap().is_some());
        assert!(
            new.snapshot_holders().unwrap().is_empty(),
            "v2 tables exist after import"
        );
        assert!(new.integrity_problems().unwrap().is_empty());
    }
}
