//! bunker-core's speed and memory targets, measured in one run.
//!
//! `cargo bench -p bunker-core --bench core` runs criterion over the raw
//! primitives, sealing, opening and proofs, then a ratio pass that times
//! the same operations interleaved (best of N rounds, so that other work on
//! the machine hurts all of them alike) and prints each target with
//! whether it holds. Absolute numbers depend on the machine; the ratios are
//! what the targets are about.

use std::alloc::{GlobalAlloc, Layout as AllocLayout, System};
use std::hint::black_box;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bunker_core::proof::verify_segment;
use bunker_core::{
    leaf_hash, Descriptor, FileId, Keys, NoLeaves, ObjectId, Opener, Proof, Sealer, Seed, Sidecar,
    SidecarWriter, DEFAULT_SEGMENT_SIZE,
};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use criterion::{Criterion, Throughput};

/// Counts live and peak heap bytes, to check the proof memory target.
struct CountingAlloc;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: AllocLayout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: AllocLayout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

const DATA: usize = 64 * 1024 * 1024;
/// Leaves of a 100 GiB object in 64 KiB segments.
const BIG_LEAVES: u64 = 100 * 1024 * 1024 * 1024 / DEFAULT_SEGMENT_SIZE as u64;

struct Fixture {
    key: bunker_core::ReplicaKey,
    object: ObjectId,
    plain: Vec<u8>,
    sealed: Vec<u8>,
    descriptor: Descriptor,
}

fn fixture() -> Fixture {
    let keys = Keys::from_seed(&Seed::from_entropy(&[1u8; 32]));
    let object = ObjectId {
        file_id: FileId([3u8; 16]),
        replica_index: 0,
    };
    let key = keys.replica_key(&object.file_id, 0);
    let plain: Vec<u8> = (0..DATA)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut sealed = Vec::with_capacity(DATA + DATA / 4096);
    let descriptor = Sealer::new(&key, object, DATA as u64, DEFAULT_SEGMENT_SIZE)
        .unwrap()
        .seal(&plain[..], &mut sealed, NoLeaves)
        .unwrap();
    Fixture {
        key,
        object,
        plain,
        sealed,
        descriptor,
    }
}

/// XChaCha20-Poly1305 over 64 MiB in 64 KiB messages, in place: the same
/// message size as a segment, so the limit is what sealing could reach.
fn aead(buf: &mut [u8]) {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&[7u8; 32]));
    for (i, chunk) in buf.chunks_mut(DEFAULT_SEGMENT_SIZE as usize).enumerate() {
        let mut nonce = [0u8; 24];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        let tag = cipher
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), b"ad", chunk)
            .unwrap();
        black_box(tag);
    }
}

/// blake3 over 64 MiB in 64 KiB inputs (one per leaf), single-threaded.
fn hash(data: &[u8]) {
    for chunk in data.chunks(DEFAULT_SEGMENT_SIZE as usize) {
        black_box(blake3::hash(chunk));
    }
}

/// CPU seconds this process has used (all threads), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat (utime, stime) are at 11 and 12 after ')'.
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|x| x.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    ticks / 100.0
}

fn seal(f: &Fixture, threads: usize) {
    let d = Sealer::new(&f.key, f.object, DATA as u64, DEFAULT_SEGMENT_SIZE)
        .unwrap()
        .threads(threads)
        .seal(&f.plain[..], io::sink(), NoLeaves)
        .unwrap();
    assert_eq!(d.root, f.descriptor.root);
}

/// Sealing that also hashes the plaintext for the manifest (one core).
fn seal_and_hash(f: &Fixture) {
    let (d, _) = Sealer::new(&f.key, f.object, DATA as u64, DEFAULT_SEGMENT_SIZE)
        .unwrap()
        .seal_and_hash(&f.plain[..], io::sink(), NoLeaves)
        .unwrap();
    assert_eq!(d.root, f.descriptor.root);
}

fn open(f: &Fixture) {
    let n = Opener::new(&f.key, f.object)
        .open(&f.descriptor, &f.sealed[..], io::sink())
        .unwrap();
    assert_eq!(n, DATA as u64);
}

/// A 64 KiB "segment" whose leaf we plant: for verification we need a
/// segment that belongs to the big tree, so the sidecar for it is built
/// with this segment's real leaf at index `AUDITED`.
const AUDITED: u64 = 1_234_567;

fn audited_sidecar(segment: &[u8]) -> Sidecar<std::fs::File> {
    let leaf = leaf_hash(segment);
    let mut w = SidecarWriter::new(tempfile::tempfile().unwrap()).unwrap();
    for i in 0..BIG_LEAVES {
        if i == AUDITED {
            w.push(&leaf).unwrap();
        } else {
            w.push(blake3::hash(&i.to_le_bytes()).as_bytes()).unwrap();
        }
    }
    let (_, file) = w.finish().unwrap();
    Sidecar::open(file).unwrap()
}

fn big_descriptor(root: [u8; 32]) -> Descriptor {
    Descriptor {
        version: 1,
        root,
        size: BIG_LEAVES * DEFAULT_SEGMENT_SIZE as u64,
        segment_size: DEFAULT_SEGMENT_SIZE,
        segment_count: BIG_LEAVES,
    }
}

fn criterion_benches(
    c: &mut Criterion,
    f: &Fixture,
    sidecar: &Sidecar<std::fs::File>,
    segment: &[u8],
) {
    let mut g = c.benchmark_group("64MiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    g.throughput(Throughput::Bytes(DATA as u64));
    let mut buf = f.plain.clone();
    g.bench_function("xchacha20poly1305", |b| b.iter(|| aead(&mut buf)));
    g.bench_function("blake3", |b| b.iter(|| hash(&f.plain)));
    g.bench_function("seal_1_core", |b| b.iter(|| seal(f, 1)));
    g.bench_function("seal_all_cores", |b| b.iter(|| seal(f, 0)));
    g.bench_function("open", |b| b.iter(|| open(f)));
    g.finish();

    let mut g = c.benchmark_group("proof_100GiB");
    let d = big_descriptor(sidecar.root());
    let proof = sidecar.proof(AUDITED).unwrap();
    let mut i = 0u64;
    g.bench_function("generate", |b| {
        b.iter(|| {
            i = (i + 7919) % BIG_LEAVES;
            black_box(sidecar.proof(i).unwrap())
        })
    });
    let bytes = proof.to_bytes();
    g.bench_function("decode", |b| {
        b.iter(|| black_box(Proof::from_bytes(&bytes).unwrap()))
    });
    let leaf = leaf_hash(segment);
    g.bench_function("verify_path", |b| {
        b.iter(|| assert!(proof.verify_leaf(&leaf, &d.root)))
    });
    g.bench_function("verify_segment_64KiB", |b| {
        b.iter(|| verify_segment(&d, AUDITED, segment, &proof).unwrap())
    });
    g.finish();
}

/// CPU time of the calling thread, in ns resolution, from the scheduler.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(
        stat.split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0),
    )
}

/// One operation's timings over all rounds.
struct Measured {
    /// Fastest wall time of one run.
    wall: Duration,
    /// Fastest CPU time of the calling thread in one run: for a
    /// single-threaded operation, its cost regardless of how often other
    /// processes took the core away.
    thread_cpu: Duration,
    /// Process CPU seconds (all threads) per wall second: cores really had.
    cores: f64,
    /// Process CPU seconds per run (all threads), averaged.
    process_cpu: f64,
}

/// Runs the operations interleaved, `rounds` times each, so that load from
/// other processes falls on all of them alike.
fn measure(rounds: usize, ops: &mut [(&str, &mut dyn FnMut())]) -> Vec<Measured> {
    let mut out: Vec<Measured> = ops
        .iter()
        .map(|_| Measured {
            wall: Duration::MAX,
            thread_cpu: Duration::MAX,
            cores: 0.0,
            process_cpu: 0.0,
        })
        .collect();
    let mut wall_sum = vec![0.0f64; ops.len()];
    for _ in 0..rounds {
        for (k, (_, op)) in ops.iter_mut().enumerate() {
            let c = cpu_seconds();
            let tc = thread_cpu();
            let t = Instant::now();
            op();
            let e = t.elapsed();
            let m = &mut out[k];
            m.thread_cpu = m.thread_cpu.min(thread_cpu() - tc);
            m.process_cpu += cpu_seconds() - c;
            wall_sum[k] += e.as_secs_f64();
            m.wall = m.wall.min(e);
        }
    }
    for (m, w) in out.iter_mut().zip(wall_sum) {
        m.cores = m.process_cpu / w;
        m.process_cpu /= rounds as f64;
    }
    out
}

fn mib_s(d: Duration) -> f64 {
    DATA as f64 / (1024.0 * 1024.0) / d.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "holds"
    } else {
        "MISSED"
    }
}

fn ratios(f: &Fixture, sidecar: &Sidecar<std::fs::File>, segment: &[u8]) {
    let rounds = std::env::var("BUNKER_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    let mut buf = f.plain.clone();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let t = measure(
        rounds,
        &mut [
            ("aead", &mut || aead(&mut buf)),
            ("blake3", &mut || hash(&f.plain)),
            ("seal1", &mut || seal(f, 1)),
            ("sealN", &mut || seal(f, 0)),
            ("open", &mut || open(f)),
            ("seal+hash1", &mut || seal_and_hash(f)),
        ],
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("\n== bunker-core ratios (best of {rounds} interleaved rounds, 64 MiB in 64 KiB segments, {cores} cores) ==");
    println!("load average at start: {}", load.trim());
    println!(
        "{:<20}{:>12}{:>16}{:>12}",
        "", "MiB/s wall", "MiB/s per CPU-s", "cores had"
    );
    let names = [
        "xchacha20poly1305",
        "blake3",
        "seal 1 core",
        "seal all cores",
        "open 1 core",
        "seal+plain hash 1c",
    ];
    for (name, m) in names.iter().zip(&t) {
        let cpu = if name.contains("all") {
            "-".to_string()
        } else {
            format!("{:.0}", mib_s(m.thread_cpu))
        };
        println!(
            "{name:<20}{:>12.0}{cpu:>16}{:>12.2}",
            mib_s(m.wall),
            m.cores
        );
    }
    // Single-threaded ratios on CPU time: what each costs, whatever else
    // the machine was doing. The wall-clock ratios are printed beside.
    let (c, b, s1, o) = (
        mib_s(t[0].thread_cpu),
        mib_s(t[1].thread_cpu),
        mib_s(t[2].thread_cpu),
        mib_s(t[4].thread_cpu),
    );
    let limit = 1.0 / (1.0 / c + 1.0 / b);
    let wall_limit = 1.0 / (1.0 / mib_s(t[0].wall) + 1.0 / mib_s(t[1].wall));
    println!("limit 1/(1/c+1/b): {limit:.0} MiB/s per CPU-s ({wall_limit:.0} MiB/s wall)");
    println!(
        "seal 1 core: {:.1}% of limit (wall: {:.1}%) (target >= 85%: {})",
        100.0 * s1 / limit,
        100.0 * mib_s(t[2].wall) / wall_limit,
        verdict(s1 / limit >= 0.85)
    );
    println!(
        "open 1 core: {:.1}% of limit (wall: {:.1}%) (target >= 85%: {})",
        100.0 * o / limit,
        100.0 * mib_s(t[4].wall) / wall_limit,
        verdict(o / limit >= 0.85)
    );
    let speedup = t[2].wall.as_secs_f64() / t[3].wall.as_secs_f64();
    let overhead = t[3].process_cpu / t[2].process_cpu;
    println!(
        "seal {cores} cores: {speedup:.2}x one core, wall (target >= 1.7x: {}); it had {:.2} cores; CPU per run {:.2}x the 1-core run",
        verdict(speedup >= 1.7),
        t[3].cores,
        overhead
    );
    if t[3].cores < 0.9 * cores as f64 && speedup < 1.7 {
        println!("  (other processes held the cores: on average the run had {:.2} of {cores}; rerun when the machine is quieter)", t[3].cores);
    }

    // Proofs from the 100 GiB sidecar.
    let d = big_descriptor(sidecar.root());
    let n = 20_000u64;
    let before_peak = LIVE.load(Ordering::Relaxed) + n as usize * std::mem::size_of::<Duration>();
    let mut times = Vec::with_capacity(n as usize);
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let t = Instant::now();
    let tc = thread_cpu();
    let mut max_len = 0;
    for k in 0..n {
        let one = Instant::now();
        let p = sidecar.proof((k * 104_729) % BIG_LEAVES).unwrap();
        times.push(one.elapsed());
        max_len = max_len.max(p.to_bytes().len());
    }
    let gen = t.elapsed() / n as u32;
    let gen_cpu = (thread_cpu() - tc) / n as u32;
    let heap = PEAK.load(Ordering::Relaxed).saturating_sub(before_peak);
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    let slowest = *times.last().unwrap();
    let proof = sidecar.proof(AUDITED).unwrap();
    let leaf = leaf_hash(segment);
    // (wall, thread CPU) per call, averaged over `reps` calls.
    let time = |reps: u32, f: &mut dyn FnMut()| {
        let (t, c) = (Instant::now(), thread_cpu());
        for _ in 0..reps {
            f();
        }
        (t.elapsed() / reps, (thread_cpu() - c) / reps)
    };
    let path = time(20_000, &mut || {
        assert!(black_box(&proof).verify_leaf(black_box(&leaf), &d.root))
    });
    let path_rs = time(2000, &mut || {
        assert!(black_box(&proof).verify_leaf_with_rs_merkle(black_box(&leaf), &d.root))
    });
    let full = time(2000, &mut || {
        verify_segment(&d, AUDITED, black_box(segment), &proof).unwrap()
    });
    let leaf_time = time(2000, &mut || {
        black_box(leaf_hash(black_box(segment)));
    });
    println!(
        "proof gen ({BIG_LEAVES} leaves): wall mean {gen:?}, p99 {p99:?}, slowest {slowest:?}; CPU {gen_cpu:?} (target <= 1 ms on p99: {})",
        verdict(p99 <= Duration::from_millis(1))
    );
    println!(
        "proof gen peak heap {heap} bytes (target <= 64 MiB: {})",
        verdict(heap <= 64 << 20)
    );
    println!(
        "proof size max {max_len} bytes (target <= 1 KiB: {})",
        verdict(max_len <= 1024)
    );
    println!(
        "verify path: CPU {:?}, wall {:?} (rs_merkle's verify: CPU {:?}) (target <= 50 us: {})",
        path.1,
        path.0,
        path_rs.1,
        verdict(path.1 <= Duration::from_micros(50))
    );
    println!(
        "verify incl. hashing the 64 KiB segment: CPU {:?}, wall {:?}; the leaf hash alone CPU {:?} (<= 50 us: {})",
        full.1,
        full.0,
        leaf_time.1,
        verdict(full.1 <= Duration::from_micros(50))
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --benches` runs this without --bench: the sizes here
        // are for measuring, the tests cover correctness.
        println!("bunker-core bench: run with `cargo bench -p bunker-core --bench core`");
        return;
    }
    let f = fixture();
    let segment: Vec<u8> = f.sealed[..DEFAULT_SEGMENT_SIZE as usize + 16].to_vec();
    eprintln!("building a {BIG_LEAVES}-leaf sidecar…");
    let sidecar = audited_sidecar(&segment);
    if std::env::var_os("BUNKER_BENCH_RATIOS_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        criterion_benches(&mut c, &f, &sidecar, &segment);
        c.final_summary();
    }
    ratios(&f, &sidecar, &segment);
}
