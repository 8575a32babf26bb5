//! Scale figures for MANIFEST.db, printed as a table (not criterion: one
//! million-file insert is a single long measurement, not a micro-benchmark).
//!
//! `cargo bench -p bunker-manifest --bench manifest_scale`
//! Environment: `BUNKER_BENCH_FILES` (default 1000000), `BUNKER_BENCH_DIR`
//! (default the system temp dir; needs ~1.5 GB free), `BUNKER_BENCH_KEEP=1` keeps the databases.

use std::io::BufWriter;
use std::time::{Duration, Instant};

use bunker_manifest::*;
use libp2p_identity::{Keypair, PeerId};
use rand::{Rng, SeedableRng};

const NOW: i64 = 1_800_000_000;
const BIG_FOLDER_FILES: u64 = 10_000;
const FILES_PER_FOLDER: u64 = 1_000;
const BATCH: u64 = 50_000;
const PEERS: u8 = 60;
const DUE_LIMIT: u32 = 1_000;

fn main() {
    let total: u64 = std::env::var("BUNKER_BENCH_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var("BUNKER_BENCH_DIR")
        .map(Into::into)
        .unwrap_or_else(|_| std::env::temp_dir());
    let dir = tempfile::tempdir_in(base).expect("bench dir");
    let path = dir.path().join("MANIFEST.db");
    let mut m = Manifest::open(&path).expect("open");
    let peers: Vec<PeerId> = (0..PEERS)
        .map(|n| {
            Keypair::ed25519_from_bytes([n; 32])
                .unwrap()
                .public()
                .to_peer_id()
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);

    // 1. insert: total files × 3 replicas, one transaction per 50,000 files (a first import).
    // Only the put_files calls are timed, not making up the test data.
    let mut insert = Duration::ZERO;
    let mut insert_cpu = 0u64;
    let mut n = 0u64;
    while n < total {
        let end = (n + BATCH).min(total);
        let mut batch = Vec::with_capacity((end - n) as usize);
        for i in n..end {
            let path = if i < BIG_FOLDER_FILES {
                format!("/bench/big/file-{i:07}.jpg")
            } else {
                format!("/bench/d{:04}/file-{i:07}.jpg", i / FILES_PER_FOLDER)
            };
            let f = NewFile {
                path: FilePath::parse(&path).unwrap(),
                object_id: bunker_core::FileId(rng.gen()),
                size: rng.gen_range(1_000..50_000_000),
                plaintext_blake3: rng.gen(),
                segment_size: 65536,
                keep_local: i % 3 == 0,
                redundancy: 3,
                local: None,
                created_at: NOW - 86400,
                modified_at: NOW - 86400,
            };
            let first = rng.gen_range(0..PEERS as usize);
            let reps: Vec<NewReplica> = (0..3u32)
                .map(|r| NewReplica {
                    index: r,
                    host: peers[(first + r as usize * 7) % PEERS as usize],
                    root: rng.gen(),
                    stored_size: 1 << 20,
                    contract: None,
                    state: ReplicaState::Active,
                    // Audits spread over the next hour; ~1.5% are due now.
                    next_audit_at: NOW + rng.gen_range(-60..3600),
                    created_at: NOW - 86400,
                })
                .collect();
            batch.push((f, reps));
        }
        let (t, c) = (Instant::now(), cpu_ns());
        m.put_files(batch.iter().map(|(f, r)| (f, &r[..])))
            .expect("insert batch");
        insert += t.elapsed();
        insert_cpu += cpu_ns().saturating_sub(c);
        n = end;
    }

    // 2. list the 10,000-file folder.
    let big = FolderPath::parse("/bench/big").unwrap();
    let listed = m.list_folder(&big).unwrap().files.len();
    let list = median(21, || {
        std::hint::black_box(m.list_folder(&big).unwrap());
    });

    // 3. replicas due for audit.
    let due_count = m.replicas_due_for_audit(NOW, DUE_LIMIT).unwrap().len();
    let due = median(51, || {
        std::hint::black_box(m.replicas_due_for_audit(NOW, DUE_LIMIT).unwrap());
    });

    // 4. consistent copy, snapshot, import.
    let t = Instant::now();
    let copy_path = dir.path().join("copy.db");
    let copy_size = m.write_consistent_copy(&copy_path).unwrap();
    let copy = t.elapsed();
    std::fs::remove_file(&copy_path).unwrap();

    let key = ManifestKey::from_bytes([5; 32]);
    let owner = Keypair::ed25519_from_bytes([99; 32]).unwrap();
    let snap_path = dir.path().join("snapshot.bin");
    let t = Instant::now();
    let info = {
        let mut out = BufWriter::new(std::fs::File::create(&snap_path).unwrap());
        m.export_snapshot(&key, &owner, NOW, &mut out).unwrap()
    };
    let snapshot = t.elapsed();
    drop(m);

    let fresh_path = dir.path().join("fresh.db");
    let mut fresh = Manifest::open(&fresh_path).unwrap();
    let t = Instant::now();
    let mut snap_file = std::fs::File::open(&snap_path).unwrap();
    fresh
        .import_snapshot_from(&mut snap_file, &key, &owner.public().to_peer_id())
        .unwrap();
    let import = t.elapsed();
    assert_eq!(fresh.list_folder(&big).unwrap().files.len(), listed);

    let rows = total * 4;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "bunker-manifest scale bench: {total} files x 3 replicas (load average {})",
        load.trim()
    );
    println!(
        "{:<48} {:>12} {:>10} {:>8}",
        "measure", "value", "target", "ratio"
    );
    row(
        "insert files+replicas, wall (s)",
        insert.as_secs_f64(),
        60.0,
    );
    row(
        "insert files+replicas, on-CPU (s)",
        insert_cpu as f64 / 1e9,
        60.0,
    );
    println!(
        "{:<48} {:>12.0}",
        "  rows inserted per wall second",
        rows as f64 / insert.as_secs_f64()
    );
    row(
        &format!("list folder of {listed} files, wall (ms, median)"),
        ms(list.0),
        50.0,
    );
    row(
        &format!("list folder of {listed} files, on-CPU (ms, mean)"),
        ms(list.1),
        50.0,
    );
    row(
        &format!("{due_count} replicas due for audit, wall (ms, median)"),
        ms(due.0),
        20.0,
    );
    row(
        &format!("{due_count} replicas due for audit, on-CPU (ms, mean)"),
        ms(due.1),
        20.0,
    );
    println!("{:<48} {:>12.0}", "consistent copy (ms)", ms(copy));
    println!(
        "{:<48} {:>12.1}",
        "database size (MiB)",
        copy_size as f64 / 1048576.0
    );
    println!("{:<48} {:>12.0}", "snapshot export (ms)", ms(snapshot));
    println!(
        "{:<48} {:>12.1}",
        "snapshot size (MiB)",
        info.snapshot_len as f64 / 1048576.0
    );
    println!(
        "{:<48} {:>12.2}",
        "snapshot size / database size",
        info.snapshot_len as f64 / info.db_size as f64
    );
    println!(
        "{:<48} {:>12.0}",
        "snapshot import incl. verify (ms)",
        ms(import)
    );
    if std::env::var_os("BUNKER_BENCH_KEEP").is_some() {
        std::fs::remove_file(&snap_path).ok();
        println!("kept {}", dir.keep().display());
    }
}

fn row(name: &str, value: f64, target: f64) {
    let verdict = if value <= target { "ok" } else { "OVER" };
    println!(
        "{name:<44} {value:>12.2} {target:>10.1} {:>7.2} {verdict}",
        value / target
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Nanoseconds this thread has spent on a CPU (Linux schedstat): unlike wall
/// time, it does not grow when other builds on the machine take the cores.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Median wall time and mean on-CPU time of `runs` calls, after one warm-up.
/// The CPU figure is the total over all runs divided by `runs`: schedstat is
/// updated at scheduler ticks, so only a long span measures it precisely.
fn median(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    f();
    let mut wall = Vec::with_capacity(runs);
    let cpu_start = cpu_ns();
    for _ in 0..runs {
        let t = Instant::now();
        f();
        wall.push(t.elapsed());
    }
    let cpu = Duration::from_nanos(cpu_ns().saturating_sub(cpu_start) / runs as u64);
    wall.sort();
    (wall[runs / 2], cpu)
}
