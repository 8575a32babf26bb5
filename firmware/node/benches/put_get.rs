//! Put of a large file with 2 copies on two loopback hosts (Lightning off),
//! and get of it back from a host (no local copy), against the sealing limit
//! measured in the same run: bunker-core's `Sealer` on every core sealing
//! the same number of bytes into nothing.
//!
//! `cargo bench -p bunker-node --bench put_get [-- SIZE_MIB [RUNS]]` (default 1024, 1).
//!
//! A put seals each replica (2 copies: twice the plaintext) and streams it
//! to its host, so its floor is about 2 × the seal time; the ratios are
//! printed against one seal of the file and against two:
//! `put vs 2 seals` = (2 × seal s) / put s, where `seal s` is the wall time
//! of one all-core `Sealer` pass over SIZE_MIB into a sink, measured just
//! before the put; `get vs seal` = seal s / get s. The same two ratios are
//! printed against a one-core `Sealer` pass (`1-core`) and against
//! bunker-core's sealing limit itself (`limit`), measured here the way
//! bunker-core's bench defines it: 1/(1/c + 1/b) on one thread, with c =
//! XChaCha20-Poly1305 and b = blake3 over the same bytes in 64 KiB messages
//! (a put of 2 copies seals each copy on its own thread).
//!
//! `BUNKER_BENCH_HOSTS_DIR=/path` puts the two hosts' object stores there
//! (e.g. a tmpfs, standing for hosts whose disks are not the owner's; by
//! default all three boxes share one temp dir on one disk). `RUST_LOG=
//! bunker_node::owner::put=debug` prints the put's stages.

use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bunker_core::{FileId, Keys, NoLeaves, ObjectId, Sealer, Seed, DEFAULT_SEGMENT_SIZE};
use bunker_manifest::Manifest;
use bunker_net::{Net, NetConfig};
use bunker_node::{Node, NodeConfig, NodeParts, Policy};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// `len` bytes of non-constant data from a 1 MiB block (no allocation per
/// read, nothing on disk): the same bytes for every reader.
struct Source {
    block: std::sync::Arc<Vec<u8>>,
    pos: u64,
    len: u64,
}

impl Source {
    fn new(block: std::sync::Arc<Vec<u8>>, len: u64) -> Source {
        Source { block, pos: 0, len }
    }

    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let off = (self.pos % self.block.len() as u64) as usize;
        let n = buf.len().min((self.len - self.pos) as usize).min(self.block.len() - off);
        buf[..n].copy_from_slice(&self.block[off..off + n]);
        self.pos += n as u64;
        n
    }
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.fill(buf))
    }
}

impl AsyncRead for Source {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = self.fill(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// CPU time (user + system) of this process so far, seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// bunker-core's sealing limit in MiB/s, as its bench defines it: one
/// thread, 1/(1/c + 1/b) with c = XChaCha20-Poly1305 and b = blake3 over
/// 256 MiB in 64 KiB messages (best of 3 passes each).
fn sealing_limit() -> f64 {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
    const LEN: usize = 256 << 20;
    let mut buf: Vec<u8> = (0..LEN).map(|i| (i as u32).wrapping_mul(2654435761) as u8).collect();
    let seg = DEFAULT_SEGMENT_SIZE as usize;
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&[7u8; 32]));
    let best = |f: &mut dyn FnMut()| {
        (0..3)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let c = best(&mut || {
        for (i, chunk) in buf.chunks_mut(seg).enumerate() {
            let mut nonce = [0u8; 24];
            nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let tag = cipher.encrypt_in_place_detached(XNonce::from_slice(&nonce), b"ad", chunk).expect("aead");
            std::hint::black_box(tag);
        }
    });
    let b = best(&mut || {
        for chunk in buf.chunks(seg) {
            std::hint::black_box(blake3::hash(chunk));
        }
    });
    let mib = (LEN >> 20) as f64;
    1.0 / (c / mib + b / mib)
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_string()
}

async fn start_box(dir: &std::path::Path) -> Node {
    std::fs::create_dir_all(dir).expect("box dir");
    let seed = Seed::generate();
    let keys = Keys::from_seed(&seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.expect("swarm");
    let mut config = NodeConfig::new(dir.join("store"));
    config.hosting.safety_margin_bytes = 0;
    // No audits or full checks during the measurement.
    config.audit_interval = Duration::from_secs(86_400);
    config.full_check_interval = Duration::from_secs(86_400 * 30);
    let manifest = Manifest::open(dir.join("MANIFEST.db")).expect("manifest");
    Node::start(NodeParts { seed, config, manifest, net, inbound, ln: None }).await.expect("node starts")
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let hosts_dir = std::env::var_os("BUNKER_BENCH_HOSTS_DIR").map(std::path::PathBuf::from);
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let size_mib: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1024);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let len = size_mib << 20;
    let mib = size_mib as f64;
    let block: std::sync::Arc<Vec<u8>> =
        std::sync::Arc::new((0..(1u32 << 20)).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8).collect());
    let want_hash = {
        let mut h = blake3::Hasher::new();
        let mut src = Source::new(block.clone(), len);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = src.fill(&mut buf);
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
        h.finalize()
    };

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("put_get: {size_mib} MiB, 2 copies, loopback hosts, Lightning off; load average {} at start", load());
    match &hosts_dir {
        Some(d) => println!("hosts' stores under {} (owner's under the system temp dir)", d.display()),
        None => println!("owner's and hosts' stores under the system temp dir"),
    }
    println!("| run | seal MiB/s (all cores / 1 core / limit) | put s | put MiB/s | put vs 1 seal | put vs 2 seals (all / 1-core / limit) | put CPU-s | get s | get MiB/s | get vs seal (all / 1-core / limit) | get CPU-s |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for run in 1..=runs {
        // The sealing limit, now, on this machine.
        let keys = Keys::from_seed(&Seed::generate());
        let object = ObjectId { file_id: FileId::random(), replica_index: 0 };
        let seal_secs = |threads: usize| {
            let sealer = Sealer::new(&keys.replica_key(&object.file_id, 0), object, len, DEFAULT_SEGMENT_SIZE)
                .expect("sealer")
                .threads(threads);
            let t = Instant::now();
            sealer.seal(Source::new(block.clone(), len), std::io::sink(), NoLeaves).expect("seal");
            t.elapsed().as_secs_f64()
        };
        let seal_s = seal_secs(0);
        let seal1_s = seal_secs(1);
        let limit_s = mib / sealing_limit();

        let tmp = tempfile::tempdir().expect("tempdir");
        let host_tmp = match &hosts_dir {
            Some(d) => tempfile::tempdir_in(d).expect("tempdir for the hosts"),
            None => tempfile::tempdir().expect("tempdir"),
        };
        let (put_s, get_s, put_cpu, get_cpu) = rt.block_on(async {
            let owner = start_box(&tmp.path().join("owner")).await;
            let h1 = start_box(&host_tmp.path().join("host1")).await;
            let h2 = start_box(&host_tmp.path().join("host2")).await;
            for h in [&h1, &h2] {
                let addrs = h.net().listen_addrs().await.expect("addrs");
                owner.net().dial(h.peer_id(), addrs).await.expect("dial");
            }
            let (t, cpu) = (Instant::now(), cpu_secs());
            let policy = Policy { copies: 2, keep_local: false };
            owner.put("/big.bin", len, policy, Source::new(block.clone(), len)).await.expect("put");
            let put_s = t.elapsed().as_secs_f64();
            let put_cpu = cpu_secs() - cpu;

            let (t, cpu) = (Instant::now(), cpu_secs());
            let mut stream = owner.get("/big.bin").await.expect("get");
            let mut h = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut got = 0u64;
            loop {
                let n = stream.body.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                got += n as u64;
            }
            let get_s = t.elapsed().as_secs_f64();
            let get_cpu = cpu_secs() - cpu;
            assert_eq!(got, len, "get returned {got} bytes");
            assert_eq!(h.finalize(), want_hash, "get returned different bytes");
            for n in [owner, h1, h2] {
                n.shutdown().await;
            }
            (put_s, get_s, put_cpu, get_cpu)
        });
        println!(
            "| {run} | {:.0} / {:.0} / {:.0} | {put_s:.2} | {:.0} | {:.1} % | {:.1} % / {:.1} % / {:.1} % | {put_cpu:.1} | {get_s:.2} | {:.0} | {:.1} % / {:.1} % / {:.1} % | {get_cpu:.1} |",
            mib / seal_s,
            mib / seal1_s,
            mib / limit_s,
            mib / put_s,
            100.0 * seal_s / put_s,
            100.0 * 2.0 * seal_s / put_s,
            100.0 * 2.0 * seal1_s / put_s,
            100.0 * 2.0 * limit_s / put_s,
            mib / get_s,
            100.0 * seal_s / get_s,
            100.0 * seal1_s / get_s,
            100.0 * limit_s / get_s,
        );
    }
    println!("process CPU {:.1} s; load average {} at end", cpu_secs(), load());
}
