//! The engine's start-up from the daemon's configuration: MANIFEST.db, the
//! libp2p swarm, Lightning settings and the `bunker_node::Node` built from
//! them; the connections to the bootstrap peers; the engine's status for
//! the panel. The disk watcher starts first: its device profile tunes the
//! engine and MANIFEST.db, and its disk states follow into the engine.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use bunker_core::keys::Keys;
use bunker_core::seed::Seed;
use bunker_net::{Multiaddr, Net, PeerId};
use bunker_node::{Node, NodeParts};
use multiaddr::Protocol;
use tokio::sync::watch;

use bunkerd::config::Config;

/// File name of the box's database in the data directory.
pub const MANIFEST_FILE: &str = "MANIFEST.db";

/// How often the daemon checks that it is connected to each bootstrap
/// peer, and dials the ones it is not.
const RECONNECT_EVERY: Duration = Duration::from_secs(15);

/// Longest the engine's status may take for the panel; a slower answer
/// leaves the panel's figures as they were.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens MANIFEST.db, starts the swarm and the engine.
pub async fn start(cfg: &Config, data_dir: &Path, seed: Seed, keys: &Keys) -> anyhow::Result<Node> {
    let bootstrap = bootstrap_peers(&cfg.net.bootstrap)?;
    let store_root = cfg.store_root();
    std::fs::create_dir_all(&store_root)
        .with_context(|| format!("cannot create storage.root {}", store_root.display()))?;
    let disks = bunkerd::disk_watch::DiskWatch::start(data_dir, &store_root, cfg.reserves.disk_policy())?;
    let tuning = bunkerd::disk_watch::engine_tuning(disks.profile());
    let manifest_path = data_dir.join(MANIFEST_FILE);
    let manifest = {
        let path = manifest_path.clone();
        let cache_kib = tuning.sqlite_cache_kib;
        tokio::task::spawn_blocking(move || {
            let mut m = bunker_manifest::Manifest::open(&path).map_err(|e| e.to_string())?;
            m.set_cache_size_kib(cache_kib).map_err(|e| e.to_string())?;
            Ok::<_, String>(m)
        })
        .await
        .context("opening MANIFEST.db stopped half-way")?
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", manifest_path.display()))?
    };

    let mut net_config = bunker_net::NetConfig::new(keys.identity());
    net_config.listen = cfg.net.listen.clone();
    net_config.bootstrap = bootstrap.clone();
    net_config.mdns = cfg.net.mdns;
    net_config.upnp = cfg.net.upnp;
    net_config.lane_port = cfg.net.lane.then_some(cfg.net.lane_port);
    let listen = cfg.net.listen.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    let (net, inbound) = bunker_net::Net::start(net_config)
        .await
        .with_context(|| format!("cannot start the peer-to-peer network on net.listen [{listen}]"))?;

    let mut node_config = cfg.node_config();
    node_config.tuning = tuning;
    let ln = cfg.ln_config();
    match &ln {
        Some(ln) => tracing::info!(network = %ln.network, chain = %ln.chain, "Lightning on"),
        None => tracing::info!("Lightning off (ln.chain = \"none\"): swap contracts only"),
    }
    let parts = NodeParts { seed, config: node_config, manifest, net: net.clone(), inbound, ln };
    let node = match Node::start(parts).await {
        Ok(node) => node,
        Err(e) => {
            net.shutdown().await;
            bail!("cannot start the storage engine: {e}");
        }
    };
    // Ends with the engine (it watches the engine's stop).
    let _follow = node.follow_disks(disks.engine_disks());
    // And back: a disk the engine finds failing while writing is marked in
    // the watcher at once (panel, /api/status), not at the next probe.
    let mut faults = node.disk_faults();
    let watch = std::sync::Arc::clone(&disks);
    tokio::spawn(async move {
        while faults.changed().await.is_ok() {
            let now = faults.borrow_and_update().clone();
            for d in &now {
                watch.note_engine_fault(d);
            }
        }
    });
    Ok(node)
}

/// Keeps a connection to every `net.bootstrap` peer until `stop` turns true.
pub fn keep_connected(net: Net, cfg: &Config, mut stop: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    // Checked when the engine started; an entry without /p2p was refused there.
    let peers = bootstrap_peers(&cfg.net.bootstrap).unwrap_or_default();
    tokio::spawn(async move {
        if peers.is_empty() {
            return;
        }
        let mut reported: HashSet<PeerId> = HashSet::new();
        loop {
            let connected: HashSet<String> = match net.peers().await {
                Ok(summary) => summary.connected.into_iter().map(|p| p.peer_id).collect(),
                Err(_) => return, // the swarm stopped
            };
            let dials = peers.iter().filter(|(peer, _)| !connected.contains(&peer.to_string())).map(|(peer, addr)| {
                let net = net.clone();
                async move { (*peer, net.dial(*peer, vec![addr.clone()]).await) }
            });
            for (peer, result) in futures::future::join_all(dials).await {
                match result {
                    Ok(()) => {
                        reported.remove(&peer);
                        tracing::info!(%peer, "connected to bootstrap peer");
                    }
                    // Said once per outage, then quietly retried.
                    Err(e) if reported.insert(peer) => tracing::warn!(%peer, error = %e, "cannot reach bootstrap peer; retrying"),
                    Err(e) => tracing::debug!(%peer, error = %e, "bootstrap peer still unreachable"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(RECONNECT_EVERY) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    })
}

/// `net.bootstrap` as (PeerId, address) pairs; every entry must name its
/// peer with a `/p2p/<PeerId>` suffix.
fn bootstrap_peers(list: &[Multiaddr]) -> anyhow::Result<Vec<(PeerId, Multiaddr)>> {
    list.iter()
        .map(|addr| {
            let mut dial = addr.clone();
            match dial.pop() {
                Some(Protocol::P2p(peer)) if !dial.is_empty() => Ok((peer, dial)),
                _ => bail!("config key `net.bootstrap`: {addr} must be an address ending in /p2p/<PeerId>"),
            }
        })
        .collect()
}

/// What the panel shows from the engine: its status and the Lightning
/// balance, or `None` when the engine could not answer in time.
pub async fn panel_figures(node: &Node) -> Option<(bunker_node::views::NodeStatus, Option<u64>)> {
    let n = node.clone();
    // On its own task: a failure inside the engine must not stop the panel's feed.
    let status = tokio::time::timeout(STATUS_TIMEOUT, tokio::spawn(async move { n.status().await })).await;
    let status = match status {
        Ok(Ok(Ok(status))) => status,
        Ok(Ok(Err(e))) => {
            tracing::debug!(error = %e, "engine status unavailable");
            return None;
        }
        _ => return None,
    };
    let sats = match node.lightning() {
        Some(ln) => tokio::task::spawn_blocking(move || ln.balances().lightning_sat).await.ok(),
        None => None,
    };
    Some((status, sats))
}

/// Stops the engine, giving up after `budget` (the daemon's stop budget is
/// what systemd and the owner wait for).
pub async fn stop(node: &Node, budget: Duration) {
    if tokio::time::timeout(budget, node.shutdown()).await.is_err() {
        tracing::warn!("the engine did not stop within {budget:?}; stopping anyway");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_entries_must_name_their_peer() {
        let id = PeerId::random();
        let good: Multiaddr = format!("/ip4/127.0.0.1/tcp/4001/p2p/{id}").parse().unwrap();
        let peers = bootstrap_peers(&[good]).unwrap();
        assert_eq!(peers, vec![(id, "/ip4/127.0.0.1/tcp/4001".parse().unwrap())]);
        let bare: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let msg = bootstrap_peers(&[bare]).unwrap_err().to_string();
        assert!(msg.contains("net.bootstrap") && msg.contains("/p2p/"), "{msg}");
        let only_id: Multiaddr = format!("/p2p/{id}").parse().unwrap();
        assert!(bootstrap_peers(&[only_id]).is_err());
    }
}
