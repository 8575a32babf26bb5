//! The lane: a plain TCP connection for the body of a store or fetch.
//!
//! Why it exists: an object body is already sealed — ChaCha20 under a key only the owner has,
//! every segment hashed into the Merkle root the owner keeps. Moving it through noise
//! encrypts and authenticates it a second time, and on loopback that second pass (owner
//! encrypts, host decrypts, yamux frames) cost about three times the sealing itself
//! (BENCHMARKS.md, put and get of 1 GiB). On a Raspberry Pi without AES instructions the
//! same double work is what limits every upload.
//!
//! What stays on the noise stream is everything that must be authenticated: who asks, for
//! which contract and object, the length, the lane ticket, and the host's signed verdict.
//! Only the body moves on the lane, and its integrity is end to end: the host signs the
//! root it computed from the bytes it received and the owner compares it with its own; a
//! fetched object is checked segment by segment against the owner's root before a byte is
//! released. A bystander on the path sees ciphertext (which the host sees too) and sizes
//! (which noise does not hide either); tampering only makes a transfer fail, which dropping
//! packets does as well.
//!
//! Handshake: the host issues a one-use ticket (32 random bytes) on the noise stream with the
//! lane's port; the owner connects to the IP its libp2p connection to the host uses, writes
//! the ticket, and says on the noise stream whether it got through. A host whose lane cannot
//! be reached (relayed connection, NAT, firewall) gets the body on the noise stream as before,
//! so the lane is only ever a faster road, never the only one.

use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::AbortHandle,
    time::Instant,
};

use crate::messages::Id32;

/// Connections that have not yet shown a ticket, at most: a port scanner or a flood of
/// empty connections holds this many sockets, never more. When a new one comes and all are
/// taken, the oldest is dropped: a real owner writes its ticket the moment it connects, so a
/// flood would have to open this many connections within that instant to push it out.
const MAX_UNIDENTIFIED: usize = 64;
/// Time a new lane connection has to write its ticket.
const TICKET_TIMEOUT: Duration = Duration::from_secs(5);
/// Time an owner gives the TCP connect to a host's lane before it falls back to the stream.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// After a failed connect, the same lane is not tried again for this long (every transfer
/// would otherwise wait [`CONNECT_TIMEOUT`] first).
const RETRY_AFTER: Duration = Duration::from_secs(600);

type Tickets = Arc<Mutex<HashMap<Id32, oneshot::Sender<TcpStream>>>>;

/// The host side: a TCP listener that hands each connection to the transfer whose ticket it
/// shows.
pub(crate) struct LaneHost {
    port: u16,
    tickets: Tickets,
    acceptor: tokio::task::JoinHandle<()>,
}

impl Drop for LaneHost {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl LaneHost {
    /// Listens on `ip:port` (port 0: any free port) and starts accepting.
    pub(crate) async fn bind(ip: IpAddr, port: u16) -> io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(ip, port)).await?;
        let port = listener.local_addr()?.port();
        let tickets: Tickets = Arc::default();
        let acceptor = tokio::spawn(accept_loop(listener, tickets.clone()));
        tracing::info!(%ip, port, "lane listening");
        Ok(Self { port, tickets, acceptor })
    }

    /// The port owners connect to.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// A new one-use ticket. The connection that shows it is handed to [`Ticket::wait`]; the
    /// ticket is void once the [`Ticket`] is dropped.
    pub(crate) fn issue(&self) -> (Id32, Ticket) {
        let id: Id32 = rand::random();
        let (tx, rx) = oneshot::channel();
        lock(&self.tickets).insert(id, tx);
        (id, Ticket { id, rx, tickets: self.tickets.clone() })
    }
}

/// A ticket the host issued and waits on.
pub(crate) struct Ticket {
    id: Id32,
    rx: oneshot::Receiver<TcpStream>,
    tickets: Tickets,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.tickets).remove(&self.id);
    }
}

impl Ticket {
    /// The connection that showed this ticket, if one does within `t`.
    pub(crate) async fn wait(mut self, t: Duration) -> Option<TcpStream> {
        tokio::time::timeout(t, &mut self.rx).await.ok().and_then(Result::ok)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Connections waiting for their ticket, oldest first.
#[derive(Default)]
struct Unidentified {
    next: u64,
    waiting: std::collections::VecDeque<(u64, AbortHandle)>,
}

async fn accept_loop(listener: TcpListener, tickets: Tickets) {
    let unidentified: Arc<Mutex<Unidentified>> = Arc::default();
    loop {
        let (mut sock, from) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: do not spin, try again shortly.
                tracing::warn!(error = %e, "lane accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tickets = tickets.clone();
        let mut waiting = lock(&unidentified);
        if waiting.waiting.len() >= MAX_UNIDENTIFIED {
            if let Some((_, oldest)) = waiting.waiting.pop_front() {
                tracing::debug!("too many lane connections without a ticket; dropped the oldest");
                oldest.abort();
            }
        }
        let me = waiting.next;
        waiting.next += 1;
        let list = unidentified.clone();
        let task = tokio::spawn(async move {
            let mut id: Id32 = [0; 32];
            let shown = tokio::time::timeout(TICKET_TIMEOUT, sock.read_exact(&mut id)).await;
            lock(&list).waiting.retain(|(n, _)| *n != me);
            if !matches!(shown, Ok(Ok(_))) {
                tracing::debug!(%from, "lane connection showed no ticket");
                return;
            }
            let waiting = lock(&tickets).remove(&id);
            match waiting {
                Some(tx) => {
                    let _ = tx.send(sock);
                }
                None => tracing::debug!(%from, "lane connection with an unknown or used ticket"),
            }
        });
        waiting.waiting.push_back((me, task.abort_handle()));
    }
}

/// The owner side: connects to hosts' lanes and remembers the ones that could not be reached.
#[derive(Default)]
pub(crate) struct LaneClient {
    unreachable: Mutex<HashMap<SocketAddr, Instant>>,
}

impl LaneClient {
    /// Connects to `addr` and shows `ticket`, or `None` (the caller falls back to the stream).
    pub(crate) async fn open(&self, addr: SocketAddr, ticket: &Id32) -> Option<TcpStream> {
        {
            let mut bad = lock(&self.unreachable);
            bad.retain(|_, until| *until > Instant::now());
            if bad.contains_key(&addr) {
                return None;
            }
        }
        let attempt = tokio::time::timeout(CONNECT_TIMEOUT, async {
            let mut sock = TcpStream::connect(addr).await?;
            sock.write_all(ticket).await?;
            Ok::<_, io::Error>(sock)
        })
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {CONNECT_TIMEOUT:?}"))));
        match attempt {
            Ok(sock) => Some(sock),
            Err(e) => {
                tracing::debug!(%addr, error = %e, "lane unreachable; body goes on the stream");
                lock(&self.unreachable).insert(addr, Instant::now() + RETRY_AFTER);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ticket_gets_its_connection_once() {
        let host = LaneHost::bind(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
        let client = LaneClient::default();
        let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), host.port());
        let (id, ticket) = host.issue();
        let mut sent = client.open(addr, &id).await.expect("lane reachable");
        let mut got = ticket.wait(Duration::from_secs(5)).await.expect("connection handed over");
        sent.write_all(b"sealed").await.unwrap();
        let mut buf = [0u8; 6];
        got.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"sealed");

        // The same ticket again: void, the connection is closed without a byte.
        let mut again = client.open(addr, &id).await.expect("tcp connect still works");
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(10), again.read_to_end(&mut rest)).await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
        assert!(lock(&host.tickets).is_empty());
    }

    #[tokio::test]
    async fn a_dropped_ticket_is_void_and_a_dead_lane_is_remembered() {
        let host = LaneHost::bind(IpAddr::from([127, 0, 0, 1]), 0).await.unwrap();
        let (id, ticket) = host.issue();
        drop(ticket);
        assert!(lock(&host.tickets).is_empty(), "{id:?} still issued");

        // Nothing listens on the port any more: the client fails fast and remembers it.
        let port = host.port();
        drop(host);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let client = LaneClient::default();
        let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 1]), port);
        assert!(client.open(addr, &[7; 32]).await.is_none());
        assert!(lock(&client.unreachable).contains_key(&addr));
        assert!(client.open(addr, &[7; 32]).await.is_none());
    }
}
