//! `/bunker/store/2` and `/bunker/fetch/2`: whole objects over libp2p streams.
//!
//! Shape of both: a capped header frame, an answer frame, then exactly `total_len` raw body
//! bytes (the length was announced up front, capped by the receiver and checked at the end),
//! and for store a final frame saying whether the host kept it. When the host has a lane
//! ([`crate::lane`]) the answer frame offers it, and the body bytes move on that plain TCP
//! connection instead of the stream; every frame stays on the stream. Bodies are copied through one
//! fixed buffer, and yamux's per-stream window means a writer can be at most one window ahead
//! of a reader: a slow disk on the host slows the sender, memory stays bounded. A stream on
//! which nothing moves for [`Limits::stream_idle_timeout`] fails with [`StreamError::Stalled`].

use std::{
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::{
    net::TcpStream,
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

use crate::{
    error::StreamError,
    event_loop::{Command, Misbehaviour},
    frame::{self, FrameError},
    guard::{PeerGuard, Slot},
    inbound::InboundRequest,
    lane::{LaneClient, LaneHost, Ticket},
    limits::Limits,
    messages::{FetchHeader, FetchRequest, Id32, LaneChoice, StoreDone, StoreHeader, StoreReady, StoreReceipt},
    protocols,
};

/// Size of the one copy buffer per transfer.
const CHUNK: usize = 256 * 1024;

const STORE: &str = "/bunker/store/2";
const FETCH: &str = "/bunker/fetch/2";

/// What the acceptor tasks share.
pub(crate) struct BulkCtx {
    pub(crate) limits: Arc<Limits>,
    pub(crate) guard: PeerGuard,
    pub(crate) inbound: mpsc::Sender<InboundRequest>,
    pub(crate) commands: mpsc::Sender<Command>,
    /// Our lane, when we have one: offered for the body of every store and fetch.
    pub(crate) lane: Option<Arc<LaneHost>>,
}

/// What an owner needs to use hosts' lanes: the client, and the event loop to learn which IP
/// our connection to a host goes to.
pub(crate) struct OwnerLanes {
    pub(crate) client: LaneClient,
    pub(crate) commands: mpsc::Sender<Command>,
}

impl OwnerLanes {
    /// Opens `peer`'s lane on `port` and shows `ticket`; `None` when the peer has no direct
    /// connection with an IP (relayed) or the lane cannot be reached.
    async fn open(&self, peer: PeerId, port: u16, ticket: &Id32) -> Option<TcpStream> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(Command::PeerIp { peer, tx }).await.ok()?;
        let ip = rx.await.ok()??;
        self.client.open(std::net::SocketAddr::new(ip, port), ticket).await
    }
}

impl BulkCtx {
    fn report(&self, peer: PeerId, what: Misbehaviour) {
        // Best effort: if the event loop is flooded, the peer's streams are dropped anyway.
        let _ = self.commands.try_send(Command::Misbehaved { peer, what });
    }
}

/// An object body arriving from a peer: reads yield exactly the announced number of bytes,
/// then end. A stream that ends early or stalls yields an error instead of a short object.
pub struct IncomingObject {
    peer: PeerId,
    protocol: &'static str,
    stream: Stream,
    /// Where the body comes from when it is not the stream.
    lane: Option<Compat<TcpStream>>,
    total: u64,
    remaining: u64,
    idle: Duration,
    /// When the last body bytes arrived.
    last_progress: Instant,
    deadline: Pin<Box<tokio::time::Sleep>>,
    _slot: Option<Slot>,
    /// Store bodies end with our verdict frame; fetch bodies just close.
    send_verdict: bool,
    header_cap: usize,
}

impl std::fmt::Debug for IncomingObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingObject")
            .field("peer", &self.peer)
            .field("protocol", &self.protocol)
            .field("total", &self.total)
            .field("remaining", &self.remaining)
            .field("lane", &self.lane.is_some())
            .finish()
    }
}

impl IncomingObject {
    fn new(
        peer: PeerId,
        protocol: &'static str,
        (stream, lane): (Stream, Option<TcpStream>),
        total: u64,
        limits: &Limits,
        slot: Option<Slot>,
        send_verdict: bool,
    ) -> Self {
        let idle = limits.stream_idle_timeout;
        Self {
            peer,
            protocol,
            stream,
            lane: lane.map(TokioAsyncReadCompatExt::compat),
            total,
            remaining: total,
            idle,
            last_progress: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(idle)),
            _slot: slot,
            send_verdict,
            header_cap: limits.max_stream_header,
        }
    }

    /// The sending peer (noise-authenticated).
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// Announced (and capped) length of the whole body.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True for an empty object.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Body bytes not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    /// True when the body comes on the sender's lane (plain TCP) rather than the stream.
    pub fn via_lane(&self) -> bool {
        self.lane.is_some()
    }

    /// Ends an inbound store: tells the owner the object was kept, with the signed receipt
    /// (`Ok`), or why not (`Err(reason)`, e.g. the Merkle root did not match). Claiming
    /// success before the whole body was read is refused. For a fetched object the outcome is
    /// not sent anywhere and this is [`IncomingObject::close`].
    pub async fn finish(mut self, outcome: Result<StoreReceipt, String>) -> Result<(), StreamError> {
        let peer = self.peer;
        let protocol = self.protocol;
        if self.send_verdict {
            let verdict = match outcome {
                Ok(_) if self.remaining > 0 => {
                    return Err(StreamError::ShortBody {
                        protocol,
                        peer,
                        got: self.total - self.remaining,
                        expected: self.total,
                    })
                }
                Ok(receipt) => StoreDone::Stored(receipt),
                Err(reason) => StoreDone::Failed { reason },
            };
            let cap = self.header_cap;
            with_timeout(self.idle, protocol, peer, async {
                frame::write_frame(&mut self.stream, "store verdict", &verdict, cap)
                    .await
                    .map_err(|source| StreamError::Frame { protocol, peer, source })
            })
            .await?;
        }
        if self.remaining > 0 {
            // Giving up mid-body: dropping the stream unclosed resets it, so a sender blocked
            // on flow control fails now instead of after its idle timeout.
            return Ok(());
        }
        let idle = self.idle;
        let _ = tokio::time::timeout(idle, self.stream.close()).await;
        Ok(())
    }
}

impl IncomingObject {
    /// Ends a fetched object: closes the stream when the whole body was read, resets it
    /// otherwise (so the host stops sending now).
    pub async fn close(mut self) -> Result<(), StreamError> {
        if self.remaining > 0 {
            return Ok(());
        }
        let _ = tokio::time::timeout(self.idle, self.stream.close()).await;
        Ok(())
    }
}

impl AsyncRead for IncomingObject {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.remaining == 0 || buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let max = buf.len().min(usize::try_from(this.remaining).unwrap_or(usize::MAX));
        let read = match this.lane.as_mut() {
            Some(lane) => Pin::new(lane).poll_read(cx, &mut buf[..max]),
            None => Pin::new(&mut this.stream).poll_read(cx, &mut buf[..max]),
        };
        match read {
            Poll::Ready(Ok(0)) => Poll::Ready(Err(this.cut_short(io::ErrorKind::UnexpectedEof, "object ended", ""))),
            Poll::Ready(Ok(n)) => {
                this.remaining -= n as u64;
                // The stall clock restarts from here; the timer itself is moved only when
                // the read has to wait (resetting it on every read costs more than the read).
                this.last_progress = Instant::now();
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if let Some(e) = this.poll_owner_gone(cx) {
                    return Poll::Ready(Err(e));
                }
                let due = this.last_progress + this.idle;
                if this.deadline.deadline() != due {
                    this.deadline.as_mut().reset(due);
                }
                match this.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        let what = format!("stalled for {:?}", this.idle);
                        Poll::Ready(Err(this.cut_short(io::ErrorKind::TimedOut, &what, "")))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl IncomingObject {
    /// The error of a body that stops before its end: `what` happened after so many bytes.
    fn cut_short(&self, kind: io::ErrorKind, what: &str, tail: &str) -> io::Error {
        let (got, total) = (self.total - self.remaining, self.total);
        io::Error::new(kind, format!("{} from {}: {what} after {got} of {total} bytes{tail}", self.protocol, self.peer))
    }

    /// A store body on the lane, while we wait for more of it: the owner sends nothing more on
    /// the stream until our verdict, so anything there (its end, a reset because its node
    /// went away) means the transfer is over; do not keep taking bytes nobody waits a verdict
    /// for. Registers for the stream's wake-up otherwise.
    fn poll_owner_gone(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        if self.lane.is_none() || !self.send_verdict {
            return None;
        }
        let mut probe = [0u8; 1];
        let Poll::Ready(r) = Pin::new(&mut self.stream).poll_read(cx, &mut probe) else {
            return None;
        };
        let why = match r {
            Ok(0) => "closed".to_string(),
            Ok(_) => "sent bytes out of turn".to_string(),
            Err(e) => e.to_string(),
        };
        let tail = format!(": the stream {why} while the body was on the lane");
        Some(self.cut_short(io::ErrorKind::ConnectionAborted, "object ended", &tail))
    }
}

/// An owner wants to store an object here. Accept to get the body, or reject before a single
/// body byte moves.
pub struct InboundStore {
    /// The owner (noise-authenticated).
    pub peer: PeerId,
    /// What it wants to store; `total_len` is already checked against
    /// [`Limits::max_object_bytes`].
    pub header: StoreHeader,
    stream: Stream,
    limits: Arc<Limits>,
    slot: Slot,
    lane: Option<Arc<LaneHost>>,
}

impl std::fmt::Debug for InboundStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundStore").field("peer", &self.peer).field("header", &self.header).finish()
    }
}

impl InboundStore {
    /// Tells the owner to send the body and returns it. Call [`IncomingObject::finish`] when
    /// it is on disk (or failed verification).
    pub async fn accept(mut self) -> Result<IncomingObject, StreamError> {
        let (peer, cap, t) = (self.peer, self.limits.max_stream_header, self.limits.stream_header_timeout);
        let ticket = self.lane.as_ref().map(|lane| (lane.port(), lane.issue()));
        let ready = match &ticket {
            Some((port, (id, _))) => StoreReady::AcceptLane { port: *port, ticket: *id },
            None => StoreReady::Accept,
        };
        with_timeout(t, STORE, peer, async {
            frame::write_frame(&mut self.stream, "store ready", &ready, cap)
                .await
                .map_err(|source| StreamError::Frame { protocol: STORE, peer, source })
        })
        .await?;
        let lane = match ticket {
            Some((_, (_, ticket))) => take_lane(&mut self.stream, ticket, &self.limits, STORE, peer).await?,
            None => None,
        };
        Ok(IncomingObject::new(
            peer,
            STORE,
            (self.stream, lane),
            self.header.total_len,
            &self.limits,
            Some(self.slot),
            true,
        ))
    }

    /// Declines the object (no room, unknown contract, …).
    pub async fn reject(mut self, reason: impl Into<String>) -> Result<(), StreamError> {
        let (peer, cap, t) = (self.peer, self.limits.max_stream_header, self.limits.stream_header_timeout);
        let msg = StoreReady::Reject { reason: reason.into() };
        with_timeout(t, STORE, peer, async {
            frame::write_frame(&mut self.stream, "store ready", &msg, cap)
                .await
                .map_err(|source| StreamError::Frame { protocol: STORE, peer, source })?;
            let _ = self.stream.close().await;
            Ok(())
        })
        .await
    }
}

/// A peer asks for a whole object. Answer with [`InboundFetch::send`], or say it is not here.
pub struct InboundFetch {
    /// The requester (noise-authenticated).
    pub peer: PeerId,
    /// What it asks for.
    pub request: FetchRequest,
    stream: Stream,
    limits: Arc<Limits>,
    _slot: Slot,
    lane: Option<Arc<LaneHost>>,
}

impl std::fmt::Debug for InboundFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundFetch").field("peer", &self.peer).field("request", &self.request).finish()
    }
}

impl InboundFetch {
    /// Streams exactly `len` bytes of `body` to the requester, as fast as it reads them.
    pub async fn send<R: AsyncRead + Unpin>(mut self, len: u64, body: R) -> Result<(), StreamError> {
        let (peer, cap, t) = (self.peer, self.limits.max_stream_header, self.limits.stream_header_timeout);
        let idle = self.limits.stream_idle_timeout;
        let ticket = self.lane.as_ref().map(|lane| (lane.port(), lane.issue()));
        let header = match &ticket {
            Some((port, (id, _))) => FetchHeader::ObjectLane { total_len: len, port: *port, ticket: *id },
            None => FetchHeader::Object { total_len: len },
        };
        with_timeout(t, FETCH, peer, async {
            frame::write_frame(&mut self.stream, "fetch header", &header, cap)
                .await
                .map_err(|source| StreamError::Frame { protocol: FETCH, peer, source })
        })
        .await?;
        let lane = match ticket {
            Some((_, (_, ticket))) => take_lane(&mut self.stream, ticket, &self.limits, FETCH, peer).await?,
            None => None,
        };
        match lane {
            Some(sock) => {
                let mut sock = sock.compat();
                // The requester says nothing more on the stream until it has the whole body;
                // the stream ending or breaking first (it gave up, or either node is going
                // away) stops the lane too, as it stops a body sent on the stream.
                let mut probe = [0u8; 1];
                let sent = {
                    let send = std::pin::pin!(send_body(&mut sock, body, len, idle, FETCH, peer));
                    let watch = std::pin::pin!(self.stream.read(&mut probe));
                    match futures::future::select(send, watch).await {
                        futures::future::Either::Left((sent, _)) => sent,
                        futures::future::Either::Right(_) => Err(StreamError::Io {
                            protocol: FETCH,
                            peer,
                            source: io::Error::new(
                                io::ErrorKind::ConnectionAborted,
                                "the stream ended while the body was on the lane",
                            ),
                        }),
                    }
                };
                sent?;
                let _ = tokio::time::timeout(idle, sock.close()).await;
            }
            None => send_body(&mut self.stream, body, len, idle, FETCH, peer).await?,
        }
        let _ = tokio::time::timeout(idle, self.stream.close()).await;
        Ok(())
    }

    /// The object is not held here.
    pub async fn not_found(self) -> Result<(), StreamError> {
        self.answer(FetchHeader::NotFound).await
    }

    /// Refuses to serve (e.g. unknown contract).
    pub async fn refuse(self, reason: impl Into<String>) -> Result<(), StreamError> {
        self.answer(FetchHeader::Refused { reason: reason.into() }).await
    }

    async fn answer(mut self, h: FetchHeader) -> Result<(), StreamError> {
        let (peer, cap, t) = (self.peer, self.limits.max_stream_header, self.limits.stream_header_timeout);
        with_timeout(t, FETCH, peer, async {
            frame::write_frame(&mut self.stream, "fetch header", &h, cap)
                .await
                .map_err(|source| StreamError::Frame { protocol: FETCH, peer, source })?;
            let _ = self.stream.close().await;
            Ok(())
        })
        .await
    }
}

/// Host side, after offering the lane: reads the requester's [`LaneChoice`] and, when it chose
/// the lane, the connection that showed the ticket. A requester that says "lane" and never
/// shows up fails the transfer; one that says "stream" gets the body on the stream.
async fn take_lane(
    stream: &mut Stream,
    ticket: Ticket,
    limits: &Limits,
    protocol: &'static str,
    peer: PeerId,
) -> Result<Option<TcpStream>, StreamError> {
    let t = limits.stream_header_timeout;
    let choice: LaneChoice = with_timeout(t, protocol, peer, async {
        frame::read_frame(stream, "lane choice", limits.max_stream_header)
            .await
            .map_err(|source| StreamError::Frame { protocol, peer, source })
    })
    .await?;
    match choice {
        LaneChoice::Stream => Ok(None),
        LaneChoice::Lane => match ticket.wait(t).await {
            Some(sock) => Ok(Some(sock)),
            None => Err(StreamError::Stalled { protocol, peer, secs: t.as_secs_f64() }),
        },
    }
}

/// Requester side of a lane offer: opens the lane and tells the host which way the body goes.
async fn choose_lane(
    stream: &mut Stream,
    lanes: &OwnerLanes,
    (port, ticket): (u16, Id32),
    limits: &Limits,
    protocol: &'static str,
    peer: PeerId,
) -> Result<Option<TcpStream>, StreamError> {
    let sock = lanes.open(peer, port, &ticket).await;
    let choice = if sock.is_some() { LaneChoice::Lane } else { LaneChoice::Stream };
    with_timeout(limits.stream_header_timeout, protocol, peer, async {
        frame::write_frame(stream, "lane choice", &choice, limits.max_stream_header)
            .await
            .map_err(|source| StreamError::Frame { protocol, peer, source })
    })
    .await?;
    Ok(sock)
}

async fn with_timeout<T>(
    t: Duration,
    protocol: &'static str,
    peer: PeerId,
    f: impl Future<Output = Result<T, StreamError>>,
) -> Result<T, StreamError> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => r,
        Err(_) => Err(StreamError::Stalled { protocol, peer, secs: t.as_secs_f64() }),
    }
}

/// Copies exactly `len` bytes from `body` to `stream` through one buffer. Each write must make
/// progress within `idle`; a body that ends early is an error (and the stream is dropped, so
/// the receiver sees a short object, never a silently truncated one).
async fn send_body<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    stream: &mut W,
    mut body: R,
    len: u64,
    idle: Duration,
    protocol: &'static str,
    peer: PeerId,
) -> Result<(), StreamError> {
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(len).unwrap_or(CHUNK)).max(1)];
    let mut sent = 0u64;
    while sent < len {
        let want = buf.len().min(usize::try_from(len - sent).unwrap_or(usize::MAX));
        // The local source gets the same allowance as the peer: a hung disk fails the transfer
        // instead of holding the stream (and the peer's slot) forever.
        let n = match tokio::time::timeout(idle, body.read(&mut buf[..want])).await {
            Ok(r) => r.map_err(|source| StreamError::Io { protocol, peer, source })?,
            Err(_) => {
                let msg = format!("local body source gave no data for {idle:?} after {sent} bytes");
                let source = io::Error::new(io::ErrorKind::TimedOut, msg);
                return Err(StreamError::Io { protocol, peer, source });
            }
        };
        if n == 0 {
            return Err(StreamError::ShortBody { protocol, peer, got: sent, expected: len });
        }
        match tokio::time::timeout(idle, stream.write_all(&buf[..n])).await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(StreamError::Io { protocol, peer, source }),
            Err(_) => return Err(StreamError::Stalled { protocol, peer, secs: idle.as_secs_f64() }),
        }
        sent += n as u64;
    }
    match tokio::time::timeout(idle, stream.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(source)) => Err(StreamError::Io { protocol, peer, source }),
        Err(_) => Err(StreamError::Stalled { protocol, peer, secs: idle.as_secs_f64() }),
    }
}

/// Opens a stream to `peer` and exchanges the opening frames (our request,
/// the peer's first answer) within `t`, trying again — [`GREET_TRIES`] in
/// all — when the stream breaks before that answer. The host's libp2p-stream
/// hands an inbound stream to its acceptor only if the acceptor is ready that
/// very instant and drops it otherwise (two streams arriving together: the
/// second is dropped), and a connection the swarm is closing fails new
/// streams; either way the opener sees "connection is closed" under its
/// first write or read although the peer is there and did nothing with the
/// request. Nothing of the body was sent yet, so trying again is safe.
async fn greet<Q, A>(
    control: &mut libp2p_stream::Control,
    peer: PeerId,
    (protocol, name): (StreamProtocol, &'static str),
    request: (&'static str, &Q),
    answer: &'static str,
    cap: usize,
    t: Duration,
) -> Result<(Stream, A), StreamError>
where
    Q: serde::Serialize,
    A: serde::de::DeserializeOwned,
{
    let fe = |source: FrameError| StreamError::Frame { protocol: name, peer, source };
    let mut tries = 0;
    loop {
        tries += 1;
        let mut broken = false;
        let attempt = with_timeout(t, name, peer, async {
            let mut stream = match control.open_stream(peer, protocol.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    broken = matches!(e, libp2p_stream::OpenStreamError::Io(_));
                    return Err(StreamError::Open { protocol: name, peer, reason: e.to_string() });
                }
            };
            frame::write_frame(&mut stream, request.0, request.1, cap).await.map_err(fe)?;
            let a: A = frame::read_frame(&mut stream, answer, cap).await.map_err(fe)?;
            Ok((stream, a))
        })
        .await;
        broken |= matches!(&attempt, Err(StreamError::Frame { source: FrameError::Io { .. }, .. }));
        match attempt {
            Err(e) if broken && tries < GREET_TRIES => {
                tracing::debug!(%peer, protocol = name, error = %e, tries, "stream broke before the answer; trying again");
                tokio::time::sleep(GREET_PAUSE * tries).await;
            }
            other => return other,
        }
    }
}

/// Our slot for one more transfer with `peer`: at most half of what the peer
/// allows us (its limit is [`Limits::max_inbound_streams_per_peer`] and one
/// more cuts us off; the margin covers its side of a transfer that has just
/// ended here but not yet there), waiting up to [`OUTBOUND_WAIT`].
async fn outbound_slot(outbound: &PeerGuard, limits: &Limits, peer: PeerId, name: &'static str) -> Result<Slot, StreamError> {
    let max = (limits.max_inbound_streams_per_peer / 2).max(1);
    match outbound.acquire(peer, max, OUTBOUND_WAIT).await {
        Some(slot) => Ok(slot),
        None => Err(StreamError::Busy { protocol: name, peer, running: max, secs: OUTBOUND_WAIT.as_secs_f64() }),
    }
}

/// Longest a transfer waits for one of ours with the same peer to end.
const OUTBOUND_WAIT: Duration = Duration::from_secs(600);

/// Attempts at opening a stream and getting the peer's first answer.
const GREET_TRIES: u32 = 3;
/// Pause before the n-th new attempt is n times this: time for the peer's
/// acceptor to take what it is handling, or for the swarm to finish closing
/// the connection that failed.
const GREET_PAUSE: Duration = Duration::from_millis(50);

/// Owner side of `/bunker/store/2`.
pub(crate) async fn store<R: AsyncRead + Unpin>(
    mut control: libp2p_stream::Control,
    outbound: &PeerGuard,
    lanes: &OwnerLanes,
    limits: &Limits,
    peer: PeerId,
    header: StoreHeader,
    body: R,
) -> Result<StoreReceipt, StreamError> {
    let _slot = outbound_slot(outbound, limits, peer, STORE).await?;
    let (cap, t) = (limits.max_stream_header, limits.stream_header_timeout);
    let fe = |source: FrameError| StreamError::Frame { protocol: STORE, peer, source };
    let (mut stream, ready): (Stream, StoreReady) =
        greet(&mut control, peer, (protocols::STORE, STORE), ("store header", &header), "store ready", cap, t).await?;
    let idle = limits.stream_idle_timeout;
    let lane = match ready {
        StoreReady::Reject { reason } => return Err(StreamError::Refused { protocol: STORE, peer, reason }),
        StoreReady::Accept => None,
        StoreReady::AcceptLane { port, ticket } => {
            choose_lane(&mut stream, lanes, (port, ticket), limits, STORE, peer).await?
        }
    };
    match lane {
        Some(sock) => {
            let mut sock = sock.compat();
            send_body(&mut sock, body, header.total_len, idle, STORE, peer).await?;
            let _ = tokio::time::timeout(idle, sock.close()).await;
        }
        None => send_body(&mut stream, body, header.total_len, idle, STORE, peer).await?,
    }
    // The host answers once the object is on its disk; give it the idle allowance to do so.
    let done: StoreDone = with_timeout(limits.stream_idle_timeout, STORE, peer, async {
        frame::read_frame(&mut stream, "store verdict", cap).await.map_err(fe)
    })
    .await?;
    let _ = tokio::time::timeout(t, stream.close()).await;
    match done {
        StoreDone::Stored(receipt) => Ok(receipt),
        StoreDone::Failed { reason } => Err(StreamError::Refused { protocol: STORE, peer, reason }),
    }
}

/// Requester side of `/bunker/fetch/2`.
pub(crate) async fn fetch(
    mut control: libp2p_stream::Control,
    outbound: &PeerGuard,
    lanes: &OwnerLanes,
    limits: &Limits,
    peer: PeerId,
    request: FetchRequest,
    max_len: u64,
) -> Result<IncomingObject, StreamError> {
    let slot = outbound_slot(outbound, limits, peer, FETCH).await?;
    let (cap, t) = (limits.max_stream_header, limits.stream_header_timeout);
    let (mut stream, header): (Stream, FetchHeader) =
        greet(&mut control, peer, (protocols::FETCH, FETCH), ("fetch request", &request), "fetch header", cap, t).await?;
    let limit = max_len.min(limits.max_object_bytes);
    match header {
        FetchHeader::Object { total_len } | FetchHeader::ObjectLane { total_len, .. } if total_len > limit => {
            Err(StreamError::TooLarge { protocol: FETCH, peer, len: total_len, cap: limit })
        }
        FetchHeader::Object { total_len } => {
            Ok(IncomingObject::new(peer, FETCH, (stream, None), total_len, limits, Some(slot), false))
        }
        FetchHeader::ObjectLane { total_len, port, ticket } => {
            let lane = choose_lane(&mut stream, lanes, (port, ticket), limits, FETCH, peer).await?;
            Ok(IncomingObject::new(peer, FETCH, (stream, lane), total_len, limits, Some(slot), false))
        }
        FetchHeader::NotFound => Err(StreamError::NotFound { protocol: FETCH, peer }),
        FetchHeader::Refused { reason } => Err(StreamError::Refused { protocol: FETCH, peer, reason }),
    }
}

/// Drains one protocol's inbound streams as fast as they come (libp2p-stream drops streams
/// it cannot hand over), giving each peer a bounded number of concurrent slots.
pub(crate) async fn accept_loop(
    mut incoming: libp2p_stream::IncomingStreams,
    is_store: bool,
    ctx: Arc<BulkCtx>,
) {
    while let Some((peer, stream)) = incoming.next().await {
        let Some(slot) = ctx.guard.try_acquire(peer, ctx.limits.max_inbound_streams_per_peer) else {
            drop(stream);
            ctx.report(peer, Misbehaviour::TooManyStreams);
            continue;
        };
        let ctx = ctx.clone();
        tokio::spawn(async move {
            if is_store {
                inbound_store(ctx, peer, stream, slot).await
            } else {
                inbound_fetch(ctx, peer, stream, slot).await
            }
        });
    }
}

async fn read_header<T: serde::de::DeserializeOwned>(
    ctx: &BulkCtx,
    peer: PeerId,
    stream: &mut Stream,
    what: &'static str,
) -> Option<T> {
    let t = ctx.limits.stream_header_timeout;
    match tokio::time::timeout(t, frame::read_frame(stream, what, ctx.limits.max_stream_header)).await {
        Ok(Ok(h)) => Some(h),
        Ok(Err(e)) => {
            tracing::warn!(%peer, error = %e, "bad {what}");
            if !matches!(e, FrameError::Io { .. }) {
                ctx.report(peer, Misbehaviour::BadMessage);
            }
            None
        }
        Err(_) => {
            tracing::warn!(%peer, "no {what} within {t:?}");
            ctx.report(peer, Misbehaviour::Stalled);
            None
        }
    }
}

async fn inbound_store(ctx: Arc<BulkCtx>, peer: PeerId, mut stream: Stream, slot: Slot) {
    let Some(header) = read_header::<StoreHeader>(&ctx, peer, &mut stream, "store header").await else {
        return;
    };
    let refuse = |reason: String| StoreReady::Reject { reason };
    let verdict = if header.total_len > ctx.limits.max_object_bytes {
        Some(refuse(format!(
            "object of {} bytes exceeds the limit of {} bytes",
            header.total_len, ctx.limits.max_object_bytes
        )))
    } else {
        None
    };
    if let Some(v) = verdict {
        tracing::warn!(%peer, len = header.total_len, "refused oversize store");
        let _ = tokio::time::timeout(
            ctx.limits.stream_header_timeout,
            frame::write_frame(&mut stream, "store ready", &v, ctx.limits.max_stream_header),
        )
        .await;
        return;
    }
    let req = InboundStore { peer, header, stream, limits: ctx.limits.clone(), slot, lane: ctx.lane.clone() };
    if let Err(mpsc::error::TrySendError::Full(InboundRequest::Store(req))) =
        ctx.inbound.try_send(InboundRequest::Store(req))
    {
        tracing::warn!(%peer, "engine busy, refusing store");
        let _ = req.reject("host busy").await;
    }
}

async fn inbound_fetch(ctx: Arc<BulkCtx>, peer: PeerId, mut stream: Stream, slot: Slot) {
    let Some(request) = read_header::<FetchRequest>(&ctx, peer, &mut stream, "fetch request").await else {
        return;
    };
    let req = InboundFetch { peer, request, stream, limits: ctx.limits.clone(), _slot: slot, lane: ctx.lane.clone() };
    if let Err(mpsc::error::TrySendError::Full(InboundRequest::Fetch(req))) =
        ctx.inbound.try_send(InboundRequest::Fetch(req))
    {
        tracing::warn!(%peer, "engine busy, refusing fetch");
        let _ = req.refuse("host busy").await;
    }
}
