//! Bridges between tokio's async byte streams and the blocking sealing and
//! opening code of bunker-core, which runs on the blocking pool: a bounded
//! channel of chunks each way, so memory stays a few chunks whatever the
//! file's size and a slow side holds the other back.

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes per chunk crossing a bridge.
pub(crate) const CHUNK: usize = 256 * 1024;
/// Chunks in flight per bridge.
const DEPTH: usize = 4;

/// The blocking end of an async → blocking bridge: a [`Read`] over chunks
/// an async task pumps from an [`AsyncRead`].
pub(crate) struct ChunkReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    current: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                None => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Starts a task copying `body` into the returned reader. The task ends at
/// the body's end, on its error (handed to the reader), or when the reader
/// is dropped.
pub(crate) fn async_to_blocking<R>(mut body: R) -> ChunkReader
where
    R: AsyncRead + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::channel(DEPTH);
    tokio::spawn(async move {
        // One buffer for all reads, and each chunk sized to what arrived: a
        // network body comes in pieces far smaller than CHUNK, and a fresh
        // zeroed CHUNK per piece cost more than the copy.
        let mut buf = vec![0u8; CHUNK];
        loop {
            match body.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(Ok(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    ChunkReader { rx, current: Vec::new(), pos: 0, done: false }
}

/// [`async_to_blocking`] for a `futures` reader (what bunker-net hands out
/// for a fetched object).
pub(crate) fn futures_to_blocking<R>(body: R) -> ChunkReader
where
    R: futures::AsyncRead + Send + Unpin + 'static,
{
    use tokio_util::compat::FuturesAsyncReadCompatExt as _;
    async_to_blocking(body.compat())
}

/// The blocking end of a blocking → async bridge: a [`Write`] whose bytes
/// an async task copies into an [`AsyncWrite`]. Writes fail once the async
/// side is gone (the reader of a get hung up). Up to one chunk is held
/// back until [`Write::flush`]: dropping the writer without it cuts the
/// stream short, which is how a get that failed its final check says so.
pub(crate) struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))
    }
}

/// Starts a task copying what is written to the returned writer into `out`.
/// The task ends (shutting `out` down) when the writer is dropped.
pub(crate) fn blocking_to_async<W>(mut out: W) -> ChunkWriter
where
    W: AsyncWrite + Send + Unpin + 'static,
{
    let (tx, mut rx) = mpsc::channel::<io::Result<Vec<u8>>>(DEPTH);
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = rx.recv().await {
            if out.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = out.shutdown().await;
    });
    ChunkWriter { tx, buf: Vec::with_capacity(CHUNK) }
}

/// A blocking writer and a blocking reader joined by a bounded channel (a
/// verified read of one copy feeding the sealing of new ones). Bytes not
/// flushed when the writer is dropped never reach the reader.
pub(crate) fn pipe() -> (ChunkWriter, ChunkReader) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        ChunkWriter { tx, buf: Vec::with_capacity(CHUNK) },
        ChunkReader { rx, current: Vec::new(), pos: 0, done: false },
    )
}
