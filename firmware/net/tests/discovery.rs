//! Finding peers: by Kademlia through a bootstrap peer on loopback, and by mDNS alone between
//! two network namespaces joined by a veth pair (mDNS ignores loopback interfaces).

mod common;

use std::time::Duration;

use bunker_net::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_node_finds_a_provider_through_the_bootstrap_peer() {
    let boot = node().await;
    let with_bootstrap = || {
        let mut cfg = NetConfig::loopback(Keypair::generate_ed25519());
        cfg.bootstrap = vec![(boot.id, tcp_addr(&boot))];
        cfg
    };
    let b = start(with_bootstrap()).await;
    let c = start(with_bootstrap()).await;
    // B and C know only the bootstrap peer; neither was told about the other.
    let key: Id32 = [0x4D; 32];
    assert!(
        eventually(20, || async { b.net.start_providing(key).await.is_ok() }).await,
        "B could not announce itself"
    );
    let mut providers = Vec::new();
    let mut found = false;
    for _ in 0..40 {
        providers = c.net.get_providers(key).await.unwrap_or_default();
        if providers.contains(&b.id) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(found, "C did not find B as provider: {providers:?}");
    // …and can reach B with what the DHT told it.
    let offer =
        c.net.offer(b.id, OfferRequest { bytes: 1, term_secs: 1, swap_offered_bytes: 0 }).await.unwrap();
    assert_eq!(offer, offer_of(&b.id));
    // A key nobody provides has no providers.
    assert!(c.net.get_providers([0x11; 32]).await.unwrap_or_default().is_empty());
}

/// mDNS between two network namespaces. Needs root (`ip netns`); skips with a message
/// otherwise. Addresses are from 198.18.0.0/15 (reserved for tests) and exist only inside the
/// two namespaces this test creates and deletes.
#[test]
fn two_nodes_find_each_other_by_mdns_alone() {
    let uid = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
    });
    if uid.as_deref() != Some("0") {
        eprintln!("SKIPPED two_nodes_find_each_other_by_mdns_alone: needs root to create network namespaces");
        return;
    }
    let pair = match netns::VethPair::create() {
        Ok(p) => p,
        Err(e) => panic!("cannot set up network namespaces as root: {e}"),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let mut threads = Vec::new();
    for (ns, ip, peer_ip) in
        [(pair.a.clone(), "198.18.7.1", "198.18.7.2"), (pair.b.clone(), "198.18.7.2", "198.18.7.1")]
    {
        let tx = tx.clone();
        threads.push(std::thread::spawn(move || {
            netns::enter(&ns).expect("enter namespace");
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut cfg = NetConfig::loopback(Keypair::generate_ed25519());
                cfg.listen = vec![format!("/ip4/{ip}/tcp/0").parse().unwrap()];
                cfg.mdns = true;
                let n = start(cfg).await;
                // Nothing is dialled by hand: the peer must come from mDNS.
                let seen = eventually(30, || async {
                    let p = n.net.peers().await.unwrap();
                    p.connected.iter().any(|c| c.addresses.iter().any(|a| a.contains(peer_ip)))
                })
                .await;
                let summary = n.net.peers().await.unwrap();
                tx.send((n.id, seen, summary)).unwrap();
                // Stay up until the other side has seen us too.
                tokio::time::sleep(Duration::from_secs(3)).await;
            });
        }));
    }
    drop(tx);
    let results: Vec<_> = rx.iter().collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(results.len(), 2);
    for (id, seen, summary) in &results {
        assert!(seen, "{id} did not find its neighbour by mDNS: {summary:?}");
    }
    let (ida, _, sa) = &results[0];
    let (idb, _, sb) = &results[1];
    assert!(
        sa.connected.iter().any(|c| c.peer_id == idb.to_string())
            || sb.connected.iter().any(|c| c.peer_id == ida.to_string())
    );
}

mod netns {
    use std::{fs::File, process::Command};

    fn ip(args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {args:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// Two namespaces joined by a veth pair; deleted on drop, even when the test panics.
    pub struct VethPair {
        pub a: String,
        pub b: String,
    }

    impl VethPair {
        pub fn create() -> Result<Self, String> {
            let id = std::process::id();
            let pair = VethPair { a: format!("bunker-mdns-a-{id}"), b: format!("bunker-mdns-b-{id}") };
            ip(&["netns", "add", &pair.a])?;
            ip(&["netns", "add", &pair.b])?;
            let (va, vb) = (format!("bmA{}", id % 100000), format!("bmB{}", id % 100000));
            ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
            ip(&["link", "set", &va, "netns", &pair.a])?;
            ip(&["link", "set", &vb, "netns", &pair.b])?;
            for (ns, dev, addr) in [(&pair.a, &va, "198.18.7.1/24"), (&pair.b, &vb, "198.18.7.2/24")] {
                ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
                ip(&["-n", ns, "link", "set", dev, "up"])?;
                ip(&["-n", ns, "link", "set", "lo", "up"])?;
                ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", dev])?;
            }
            Ok(pair)
        }
    }

    impl Drop for VethPair {
        fn drop(&mut self) {
            let _ = ip(&["netns", "del", &self.a]);
            let _ = ip(&["netns", "del", &self.b]);
        }
    }

    /// Moves the calling thread into `ns`; sockets it (and threads it spawns) open live there.
    pub fn enter(ns: &str) -> Result<(), String> {
        let f = File::open(format!("/var/run/netns/{ns}")).map_err(|e| format!("open netns {ns}: {e}"))?;
        nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {ns}: {e}"))
    }
}
