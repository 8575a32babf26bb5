//! Length-prefixed postcard frames: the one encoding of every bunker control message.
//!
//! A frame is a 4-byte big-endian length and that many bytes of postcard. The length is checked
//! against the protocol's cap *before* the buffer is allocated, so a peer announcing 4 GiB makes
//! us allocate nothing.

use std::io;

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{de::DeserializeOwned, Serialize};

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The peer announced (or we were about to send) a frame above the protocol's cap.
    #[error("{what}: frame of {len} bytes exceeds the cap of {cap} bytes")]
    Oversize {
        /// Which message.
        what: &'static str,
        /// Announced length.
        len: u64,
        /// The cap.
        cap: usize,
    },
    /// The bytes are not a valid encoding of the expected message.
    #[error("{what}: undecodable message: {source}")]
    Decode {
        /// Which message.
        what: &'static str,
        /// Decoder's complaint.
        source: postcard::Error,
    },
    /// Encoding failed (a bug rather than bad input).
    #[error("{what}: cannot encode: {source}")]
    Encode {
        /// Which message.
        what: &'static str,
        /// Encoder's complaint.
        source: postcard::Error,
    },
    /// The stream failed or ended inside the frame.
    #[error("{what}: stream error: {source}")]
    Io {
        /// Which message.
        what: &'static str,
        /// Underlying error.
        source: io::Error,
    },
}

impl From<FrameError> for io::Error {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Io { source, .. } => source,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// Encodes `msg` as one frame, refusing to send more than `cap` bytes (the peer would reject it).
pub(crate) fn encode<T: Serialize>(what: &'static str, msg: &T, cap: usize) -> Result<Vec<u8>, FrameError> {
    let body = postcard::to_stdvec(msg).map_err(|source| FrameError::Encode { what, source })?;
    if body.len() > cap {
        return Err(FrameError::Oversize { what, len: body.len() as u64, cap });
    }
    let len =
        u32::try_from(body.len()).map_err(|_| FrameError::Oversize { what, len: body.len() as u64, cap })?;
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Writes one frame and flushes it.
pub(crate) async fn write_frame<W, T>(
    io: &mut W,
    what: &'static str,
    msg: &T,
    cap: usize,
) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let bytes = encode(what, msg, cap)?;
    write_encoded(io, what, &bytes).await
}

/// Writes an already encoded frame and flushes it.
pub(crate) async fn write_encoded<W: AsyncWrite + Unpin>(
    io: &mut W,
    what: &'static str,
    bytes: &[u8],
) -> Result<(), FrameError> {
    io.write_all(bytes).await.map_err(|source| FrameError::Io { what, source })?;
    io.flush().await.map_err(|source| FrameError::Io { what, source })
}

/// Reads one frame of at most `cap` bytes and decodes it. Trailing bytes inside the frame are
/// an error too: a frame holds exactly one message.
pub(crate) async fn read_frame<R, T>(io: &mut R, what: &'static str, cap: usize) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await.map_err(|source| FrameError::Io { what, source })?;
    let len = u32::from_be_bytes(len);
    if len as usize > cap {
        return Err(FrameError::Oversize { what, len: len.into(), cap });
    }
    let mut buf = vec![0u8; len as usize];
    io.read_exact(&mut buf).await.map_err(|source| FrameError::Io { what, source })?;
    decode(what, &buf)
}

/// Decodes exactly one message from `buf`.
pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, buf: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) = postcard::take_from_bytes(buf).map_err(|source| FrameError::Decode { what, source })?;
    if !rest.is_empty() {
        return Err(FrameError::Decode { what, source: postcard::Error::DeserializeBadEncoding });
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::AuditChallenge;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        futures::executor::block_on(f)
    }

    #[test]
    fn frame_round_trips() {
        let msg = AuditChallenge { object_root: [7; 32], segment: 17, nonce: [9; 32] };
        let bytes = encode("audit", &msg, 1024).unwrap();
        let back: AuditChallenge = block_on(read_frame(&mut &bytes[..], "audit", 1024)).unwrap();
        assert_eq!(back, msg);
    }

    #[test]
    fn announced_length_above_cap_is_rejected_before_reading() {
        let mut bytes = (u32::MAX).to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        let err = block_on(read_frame::<_, AuditChallenge>(&mut &bytes[..], "audit", 1024)).unwrap_err();
        assert!(
            matches!(err, FrameError::Oversize { len, cap: 1024, .. } if len == u32::MAX as u64),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_a_decode_error() {
        let mut bytes = 5u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[0xff; 5]);
        let err = block_on(read_frame::<_, AuditChallenge>(&mut &bytes[..], "audit", 1024)).unwrap_err();
        assert!(matches!(err, FrameError::Decode { .. }), "{err}");
    }

    #[test]
    fn trailing_bytes_inside_a_frame_are_rejected() {
        let msg = AuditChallenge { object_root: [1; 32], segment: 1, nonce: [2; 32] };
        let mut body = postcard::to_stdvec(&msg).unwrap();
        body.push(0);
        assert!(matches!(decode::<AuditChallenge>("audit", &body), Err(FrameError::Decode { .. })));
    }

    #[test]
    fn truncated_frame_is_an_io_error() {
        let msg = AuditChallenge { object_root: [1; 32], segment: 1, nonce: [2; 32] };
        let bytes = encode("audit", &msg, 1024).unwrap();
        let err = block_on(read_frame::<_, AuditChallenge>(&mut &bytes[..bytes.len() - 3], "audit", 1024))
            .unwrap_err();
        assert!(matches!(err, FrameError::Io { .. }), "{err}");
    }

    #[test]
    fn sender_refuses_to_encode_above_cap() {
        let msg = crate::messages::ManifestRequest::Store { version: 1, snapshot: vec![0; 2000] };
        assert!(matches!(encode("manifest", &msg, 1024), Err(FrameError::Oversize { .. })));
    }
}
