//! A get whose every copy fails after some bytes went out never looks like
//! a whole file: the stream ends short of the announced length (the mark
//! bunker-web turns into a broken-off download), every byte it gave is the
//! file's own (verified), and none of the bad bytes is passed on.
//!
//! Real engines on loopback swarms: hosts that return bytes that do not
//! verify, and hosts shut down mid-transfer.

mod owner_common;

use std::time::Duration;

use bunker_node::Policy;
use owner_common::*;
use tokio::io::AsyncReadExt;

/// Flips one byte at `at` (a fraction of the length) in every object a host keeps.
fn corrupt_hosted(h: &Box_, at: f64) {
    let dir = h.store().join("hosted");
    for e in std::fs::read_dir(&dir).unwrap() {
        let object = e.unwrap().path().join("object");
        let mut bytes = std::fs::read(&object).unwrap();
        let i = (bytes.len() as f64 * at) as usize;
        bytes[i] ^= 0x5a;
        std::fs::write(&object, &bytes).unwrap();
    }
}

/// Reads what the stream gives until it ends (or errors); returns the bytes
/// and the announced length.
async fn read_all(owner: &Box_, path: &str) -> (Vec<u8>, u64) {
    let mut stream = owner.node.get(path).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), stream.body.read_to_end(&mut out)).await.expect("get ends");
    (out, stream.len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_failing_verification_midway_ends_the_stream_short_with_only_verified_bytes() {
    let (owner, hosts) = swarm(2, |c| c.audit_interval = Duration::from_secs(3600)).await;
    let data = content(2 << 20, 1);
    put(&owner, "/two.bin", &data, Policy { copies: 2, keep_local: false }).await.unwrap();
    for h in &hosts {
        corrupt_hosted(h, 0.75);
    }
    let (got, len) = read_all(&owner, "/two.bin").await;
    assert_eq!(len, data.len() as u64);
    assert!(got.len() < data.len(), "a stream of {} bytes for a file of {} is not whole", got.len(), data.len());
    assert!(!got.is_empty(), "the verified first part went out before the bad segment");
    assert_eq!(&got[..], &data[..got.len()], "every byte given is the file's own");
    let e = get(&owner, "/two.bin").await.unwrap_err();
    assert!(e.contains("stream ended after"), "{e}");
    // The file is still recorded: a later get (after repair) may read it.
    assert!(owner.node.file("/two.bin").await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_host_going_away_mid_transfer_ends_the_stream_short() {
    let (owner, hosts) = swarm(2, |c| c.audit_interval = Duration::from_secs(3600)).await;
    let data = content(12 << 20, 2);
    put(&owner, "/big.bin", &data, Policy { copies: 2, keep_local: false }).await.unwrap();
    let mut stream = owner.node.get("/big.bin").await.unwrap();
    let mut first = vec![0u8; 64 << 10];
    tokio::time::timeout(Duration::from_secs(30), stream.body.read_exact(&mut first)).await.unwrap().unwrap();
    // The reader holds back; both hosts stop while the rest is in flight.
    for h in &hosts {
        h.node.shutdown().await;
    }
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(90), stream.body.read_to_end(&mut rest)).await.expect("get ends");
    let got = [first, rest].concat();
    assert!(got.len() < data.len(), "{} of {} bytes: the stream must end short", got.len(), data.len());
    assert_eq!(&got[..], &data[..got.len()], "every byte given is the file's own");
}
