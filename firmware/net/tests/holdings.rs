//! `/bunker/holdings/1` between real swarms: the engine learns who asks from noise (what it
//! keys its owner-only answer on), pages arrive whole, and a page over the response cap is an
//! error on the asker's side, never a hang or an allocation of what the host announced.

mod common;

use std::time::{Duration, Instant};

use bunker_net::*;
use common::*;

#[tokio::test]
async fn the_host_engine_sees_the_authenticated_asker_and_the_page_arrives_whole() {
    let host = node().await;
    let owner = node().await;
    let stranger = node().await;
    connect(&owner, &host).await;
    connect(&stranger, &host).await;
    for asker in [&owner, &stranger] {
        let page = asker.net.holdings(host.id, HoldingsRequest { after: None, max: 3 }).await.unwrap();
        let HoldingsResponse::Page { holdings, next } = page else { panic!("refused: {page:?}") };
        assert_eq!(holdings.len(), 3);
        assert!(holdings.iter().all(|h| h.owner_signature == asker.id.to_bytes()), "the engine saw the real asker");
        assert!(holdings.iter().all(|h| h.host_signature == host.id.to_bytes()));
        assert_eq!(next, Some([2; 32]));
        assert_eq!(holdings[2].terms.owner_label.len(), 1000, "labels travel intact");
    }
}

#[tokio::test]
async fn a_page_over_the_response_cap_fails_promptly() {
    let host = node().await;
    let owner = node().await;
    connect(&owner, &host).await;
    // 300 holdings of ≈ 1.1 KiB: over the host's own 256 KiB cap, so it cannot send them.
    let t = Instant::now();
    let r = owner.net.holdings(host.id, HoldingsRequest { after: None, max: 300 }).await;
    assert!(r.is_err(), "an oversize page must not arrive: {r:?}");
    assert!(t.elapsed() < Duration::from_secs(20), "failed promptly, not at the timeout");

    // An asker with a tighter cap refuses a page its host would send.
    let limits = Limits {
        holdings: MessageLimits { max_response: 8 * 1024, ..Limits::default().holdings },
        ..Default::default()
    };
    let tight = node_with(limits).await;
    connect(&tight, &host).await;
    let r = tight.net.holdings(host.id, HoldingsRequest { after: None, max: 10 }).await;
    assert!(r.is_err(), "a page over the asker's cap is refused: {r:?}");
    let ok = tight.net.holdings(host.id, HoldingsRequest { after: None, max: 2 }).await.unwrap();
    assert!(matches!(ok, HoldingsResponse::Page { ref holdings, .. } if holdings.len() == 2));
}
