//! bunker-ln figures on a real Knots regtest chain, printed as a table.
//!
//! Run: `cargo bench -p bunker-ln --bench ln_bench`
//!
//! What it measures, and why:
//! - keysend latency over a direct channel (sender's view: sent → succeeded),
//!   the cost of one settlement;
//! - the cost of recording an amount owed (one durable SQLite transaction),
//!   and its ratio to one payment: accruing per audit must be negligible
//!   next to paying, or settling in batches would not be worth it;
//! - the memory two in-process ldk-node nodes take (a Pi 4 has 1–8 GiB).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bunker_ln::regtest::Bitcoind;
use bunker_ln::{ContractId, OwedBook, Status};
use common::*;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // `cargo bench` passes --bench; nothing to parse.
    let rss0 = rss_kib();
    let chain = Bitcoind::start().expect("regtest bitcoind");
    chain.mine(101).unwrap();
    let root = tempfile::tempdir().unwrap();
    let setup = Instant::now();
    let (a, b) = pair(&chain, root.path());
    let setup = setup.elapsed();
    let rss_pair = rss_kib();

    // Keysend latency.
    const N: usize = 40;
    let mut lat = Vec::with_capacity(N);
    for i in 0..N {
        let t = Instant::now();
        let id =
            a.ln.pay_keysend(b.ln.node_id(), 1_000 + i as u64, Some(ContractId([9; 32])))
                .unwrap();
        let r = a.ln.wait_payment(&id, T).unwrap();
        assert_eq!(r.status, Status::Succeeded);
        lat.push(t.elapsed());
    }
    lat.sort();
    let ks_median = percentile(&lat, 0.5);

    // Recording an amount owed.
    let book_dir = tempfile::tempdir().unwrap();
    let book = OwedBook::open(book_dir.path()).unwrap();
    const M: u64 = 2_000;
    let t = Instant::now();
    for i in 0..M {
        book.owe(ContractId([(i % 16) as u8; 32]), &b.ln.node_id(), 1 + i)
            .unwrap();
    }
    let owe_each = t.elapsed() / M as u32;

    // One settlement of many small debts: fee share.
    let c = ContractId([5; 32]);
    for _ in 0..100 {
        a.ln.owe(c, &b.ln.node_id(), 5_000).unwrap();
    }
    let report = a.ln.settle_due().unwrap();
    let (_, id, amount) = report.sent[0].clone();
    let rec = a.ln.wait_payment(&id, T).unwrap();
    let fee = rec.fee_msat.unwrap_or(0);

    println!("bunker-ln bench (Knots regtest, bench profile, 2 cores shared with other builds)");
    println!(
        "pair set-up (2 nodes, fund, 1 M sat channel usable): {:.1} s",
        setup.as_secs_f64()
    );
    println!(
        "keysend over a direct channel, {N} payments: median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ks_median.as_secs_f64() * 1e3,
        percentile(&lat, 0.9).as_secs_f64() * 1e3,
        lat[N - 1].as_secs_f64() * 1e3
    );
    println!(
        "record an amount owed (durable SQLite transaction): {:.0} µs each",
        owe_each.as_secs_f64() * 1e6
    );
    println!(
        "ratio owe / keysend: {:.4} (one payment costs as much as {:.0} recorded debts)",
        owe_each.as_secs_f64() / ks_median.as_secs_f64(),
        ks_median.as_secs_f64() / owe_each.as_secs_f64()
    );
    println!(
        "settlement of 100 debts: {amount} msat paid, fee {fee} msat ({:.3}% of amount)",
        fee as f64 * 100.0 / amount as f64
    );
    println!(
        "resident memory: {} MiB before, {} MiB with two nodes running (+{} MiB)",
        rss0 / 1024,
        rss_pair / 1024,
        rss_pair.saturating_sub(rss0) / 1024
    );
}
