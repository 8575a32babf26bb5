//! Several transfers to one peer at once. libp2p-stream hands an inbound
//! stream to the acceptor only if it is ready that instant and drops it
//! otherwise, so streams that arrive together used to fail on the opener's
//! side with "connection is closed"; the opener now tries again.

mod common;

use bunker_net::*;
use common::*;

/// Rounds of a full burst (the per-peer stream limit at once).
const ROUNDS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_fetches_and_stores_to_one_peer_all_arrive() {
    let a = node().await;
    let b = node().await;
    connect(&a, &b).await;
    let at_once = Limits::default().max_inbound_streams_per_peer;
    let len: u64 = 64 << 10;
    let (net, host) = (&a.net, b.id);
    let mut failures = Vec::new();
    for round in 0..ROUNDS {
        let fetches = (0..at_once / 2).map(|_| async {
            let mut cid = [0u8; 32];
            cid[..8].copy_from_slice(&len.to_be_bytes());
            let obj = net.fetch(host, FetchRequest { contract_id: cid, object_root: PATTERN_ROOT }, len).await?;
            check_pattern(obj).await.map_err(|e| StreamError::Io { protocol: "check", peer: host, source: e })
        });
        let stores = (0..at_once / 2).map(|i| {
            let header = StoreHeader {
                contract_id: [round as u8; 32],
                object_root: [(round * at_once + i) as u8; 32],
                total_len: len,
            };
            async move { net.store(host, header, PatternReader { pos: 0, len }).await.map(|_| len) }
        });
        let (f, s) = futures::future::join(futures::future::join_all(fetches), futures::future::join_all(stores)).await;
        failures.extend(f.into_iter().chain(s).filter_map(|r| r.err().map(|e| format!("round {round}: {e}"))));
    }
    assert!(failures.is_empty(), "{} of {} transfers failed: {failures:#?}", failures.len(), ROUNDS * at_once);
}

/// Three times the peer's per-peer stream limit at once: our side waits for
/// its own slots, so every transfer arrives and the peer never cuts us off
/// (it would at one stream over its limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_transfers_than_the_peer_allows_at_once_wait_their_turn() {
    let a = node().await;
    let b = node().await;
    connect(&a, &b).await;
    let n = 3 * Limits::default().max_inbound_streams_per_peer;
    let len: u64 = 256 << 10;
    let (net, host) = (&a.net, b.id);
    let fetches = (0..n).map(|_| async {
        let mut cid = [0u8; 32];
        cid[..8].copy_from_slice(&len.to_be_bytes());
        let obj = net.fetch(host, FetchRequest { contract_id: cid, object_root: PATTERN_ROOT }, len).await?;
        check_pattern(obj).await.map_err(|e| StreamError::Io { protocol: "check", peer: host, source: e })
    });
    let results = futures::future::join_all(fetches).await;
    let failed: Vec<String> = results.iter().filter_map(|r| r.as_ref().err().map(|e| e.to_string())).collect();
    assert!(failed.is_empty(), "{} of {n} fetches failed: {failed:#?}", failed.len());
    assert!(results.iter().all(|r| matches!(r, Ok(l) if *l == len)));
    // Still welcome: a plain request goes through.
    let offer = net.offer(host, OfferRequest { bytes: 1, term_secs: 60, swap_offered_bytes: 0 }).await;
    assert!(offer.is_ok(), "the peer cut us off: {offer:?}");
}
