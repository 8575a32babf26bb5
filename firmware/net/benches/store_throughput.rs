//! Throughput of `/bunker/store/2` between two swarms on 127.0.0.1 against a bare libp2p
//! stream over the same transport (TCP + noise + yamux, same settings) in the same run, plus
//! the peak RSS growth during each transfer. Since store/2 the body moves on the host's lane
//! (plain TCP; the object is sealed already) and only the frames use the noise stream, so
//! the bare stream is what every body cost before.
//!
//! `cargo bench -p bunker-net --bench store_throughput [-- SIZE_MIB [RUNS]]` (default 1024, 3).
//! Both sides run in this one process, so the RSS figure is the sum of both sides: each side's
//! own growth is at most that.

use std::{
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bunker_net::*;
use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{noise, swarm::dial_opts::DialOpts, tcp, yamux, StreamProtocol, SwarmBuilder};

const BUF: usize = 256 * 1024;

/// Serves `len` bytes from a 1 MiB block of non-constant data (no allocation per read).
struct Source {
    block: Vec<u8>,
    pos: u64,
    len: u64,
}

impl Source {
    fn new(len: u64) -> Self {
        let block = (0..(1u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect();
        Self { block, pos: 0, len }
    }
}

impl AsyncRead for Source {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let off = (self.pos % self.block.len() as u64) as usize;
        let n = buf.len().min((self.len - self.pos) as usize).min(self.block.len() - off);
        buf[..n].copy_from_slice(&self.block[off..off + n]);
        self.pos += n as u64;
        Poll::Ready(Ok(n))
    }
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of the whole process so far, in seconds. The machine is shared,
/// so wall-clock MB/s depends on everybody else's load; MB per CPU-second does not (as much).
fn cpu_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the ")" of the command name: state is field 3, utime 14, stime 15.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    ticks as f64 / 100.0 // USER_HZ is 100 on Linux
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` value 5), so each phase's peak is its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

async fn drain<R: AsyncRead + Unpin>(mut r: R) -> u64 {
    let mut buf = vec![0u8; BUF];
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).await.expect("read");
        if n == 0 {
            return total;
        }
        total += n as u64;
    }
}

fn yamux_config() -> yamux::Config {
    let mut c = yamux::Config::default();
    c.set_max_num_streams(1024);
    c
}

fn bare_swarm() -> libp2p::Swarm<libp2p_stream::Behaviour> {
    SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default().nodelay(true), noise::Config::new, yamux_config)
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build()
}

/// Bare libp2p stream: write `size` bytes, the other side reads and discards them.
async fn bare_run(size: u64) -> (f64, u64, f64) {
    let proto = StreamProtocol::new("/bench/bare/1");
    let mut rx_swarm = bare_swarm();
    let rx_id = *rx_swarm.local_peer_id();
    rx_swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let addr = loop {
        if let libp2p::swarm::SwarmEvent::NewListenAddr { address, .. } = rx_swarm.select_next_some().await {
            break address;
        }
    };
    let mut incoming = rx_swarm.behaviour().new_control().accept(proto.clone()).unwrap();
    tokio::spawn(async move {
        loop {
            rx_swarm.select_next_some().await;
        }
    });
    let mut tx_swarm = bare_swarm();
    let mut control = tx_swarm.behaviour().new_control();
    tx_swarm.dial(DialOpts::peer_id(rx_id).addresses(vec![addr]).build()).unwrap();
    tokio::spawn(async move {
        loop {
            tx_swarm.select_next_some().await;
        }
    });
    let reader = tokio::spawn(async move {
        let (_, s) = incoming.next().await.unwrap();
        drain(s).await
    });
    let mut s = control.open_stream(rx_id, proto).await.unwrap();
    reset_peak();
    let base = status_kib("VmRSS:");
    let c0 = cpu_secs();
    let t0 = Instant::now();
    let mut src = Source::new(size);
    let mut buf = vec![0u8; BUF];
    loop {
        let n = src.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        s.write_all(&buf[..n]).await.unwrap();
    }
    s.close().await.unwrap();
    let got = reader.await.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(got, size);
    let cpu = cpu_secs() - c0;
    (size as f64 / secs / 1e6, status_kib("VmHWM:").saturating_sub(base), size as f64 / cpu.max(0.01) / 1e6)
}

/// `/bunker/store/2` between two bunker nodes: header, acceptance, body, verdict.
async fn store_run(size: u64) -> (f64, u64, f64) {
    let (a, _a_in) = Net::start(NetConfig::loopback(Keypair::generate_ed25519())).await.unwrap();
    let (b, mut b_in) = Net::start(NetConfig::loopback(Keypair::generate_ed25519())).await.unwrap();
    let b_addr =
        b.listen_addrs().await.unwrap().into_iter().find(|x| x.to_string().contains("/tcp/")).unwrap();
    a.dial(b.local_peer_id(), vec![b_addr]).await.unwrap();
    let host = tokio::spawn(async move {
        while let Some(req) = b_in.recv().await {
            if let InboundRequest::Store(s) = req {
                let mut body = s.accept().await.unwrap();
                let n = drain(&mut body).await;
                body.finish(Ok(StoreReceipt { root: [0; 32], host_signature: Vec::new() })).await.unwrap();
                return n;
            }
        }
        0
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    reset_peak();
    let base = status_kib("VmRSS:");
    let c0 = cpu_secs();
    let t0 = Instant::now();
    let header = StoreHeader { contract_id: [1; 32], object_root: [2; 32], total_len: size };
    a.store(b.local_peer_id(), header, Source::new(size)).await.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(host.await.unwrap(), size);
    let cpu = cpu_secs() - c0;
    let peak = status_kib("VmHWM:").saturating_sub(base);
    a.shutdown().await;
    b.shutdown().await;
    (size as f64 / secs / 1e6, peak, size as f64 / cpu.max(0.01) / 1e6)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let mib: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1024);
    let runs: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3);
    let size = mib << 20;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("bunker-net store_throughput: {mib} MiB per transfer, {runs} runs, 127.0.0.1, TCP+noise+yamux");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let (mut best_store, mut best_bare, mut max_rss_store, mut max_rss_bare) = (0f64, 0f64, 0u64, 0u64);
    let (mut best_store_cpu, mut best_bare_cpu) = (0f64, 0f64);
    for run in 1..=runs {
        // Alternate the order so that a burst of other load on the machine hits both alike.
        let ((bare, bare_rss, bare_cpu), (store, store_rss, store_cpu)) = if run % 2 == 1 {
            let b = rt.block_on(bare_run(size));
            (b, rt.block_on(store_run(size)))
        } else {
            let s = rt.block_on(store_run(size));
            (rt.block_on(bare_run(size)), s)
        };
        ratios.push(store / bare);
        cpu_ratios.push(store_cpu / bare_cpu);
        best_store = best_store.max(store);
        best_bare = best_bare.max(bare);
        best_store_cpu = best_store_cpu.max(store_cpu);
        best_bare_cpu = best_bare_cpu.max(bare_cpu);
        max_rss_store = max_rss_store.max(store_rss);
        max_rss_bare = max_rss_bare.max(bare_rss);
        println!(
            "run {run}: bare {bare:7.1} MB/s ({bare_cpu:7.1} MB per CPU-s) | store/2 {store:7.1} MB/s ({store_cpu:7.1} MB per CPU-s) | wall ratio {:5.1}% | CPU ratio {:5.1}% | peak RSS growth (both sides) bare {:.1} MiB, store {:.1} MiB",
            store / bare * 100.0,
            store_cpu / bare_cpu * 100.0,
            bare_rss as f64 / 1024.0,
            store_rss as f64 / 1024.0
        );
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    println!(
        "summary: median wall ratio {:.1}%, median CPU-efficiency ratio {:.1}% (target >= 60%); best store/2 {best_store:.1} MB/s wall, {best_store_cpu:.1} MB per CPU-s (target >= 350 MB/s); best bare {best_bare:.1} MB/s wall, {best_bare_cpu:.1} MB per CPU-s; max peak RSS growth of both sides together: store {:.1} MiB (target <= 64 per side), bare {:.1} MiB",
        median(&mut ratios) * 100.0,
        median(&mut cpu_ratios) * 100.0,
        max_rss_store as f64 / 1024.0,
        max_rss_bare as f64 / 1024.0
    );
}
