//! The engine's "done means", end to end: real engines on real swarms,
//! paying each other with real ldk-node payments on a regtest chain.
//!
//! Run: `cargo test -p bunker-tests --test engine -- --test-threads=1`
//! (one cluster at a time anyway: the harness serialises them).

use std::collections::BTreeMap;
use std::io::Cursor;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bunker_core::sidecar::{build_from_sealed, Sidecar};
use bunker_core::{verify_segment, Descriptor, Layout, FORMAT_VERSION};
use bunker_node::views::ContractView;
use bunker_tests::cluster::{random_bytes, wait_until, Cluster, ClusterSpec};

/// Time allowed for audits, payments and repairs to happen (intervals are
/// seconds; this is margin for a loaded 2-core machine).
const WAIT: Duration = Duration::from_secs(240);

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// The owner's active contract with `host`.
async fn contract_on(cluster: &Cluster, owner: usize, host: usize) -> ContractView {
    let peer = cluster.boxes[host].peer_id.to_string();
    let found: Vec<_> = cluster
        .contracts(owner)
        .await
        .into_iter()
        .filter(|c| c.direction == "ours_on_peer" && c.peer == peer)
        .collect();
    assert_eq!(found.len(), 1, "box {owner} should have one contract on box {host}: {found:?}");
    found.into_iter().next().expect("one")
}

/// A contract as `side` records it, by id.
async fn contract_by_id(cluster: &Cluster, side: usize, id: &str) -> Option<ContractView> {
    cluster.contracts(side).await.into_iter().find(|c| c.id == id)
}

/// Both ledgers and both ends of each channel agree, to the msat, on what
/// `owner` paid `hosts`. `Err` says what differs (a payment may be in flight).
async fn ledgers_agree(cluster: &Cluster, owner: usize, hosts: &[usize]) -> Result<String, String> {
    let owner_out = cluster.paid_by_contract(owner, "outgoing").await;
    if let Some(p) = cluster.payments(owner).await.iter().find(|p| p.state == "pending") {
        return Err(format!("owner payment {} pending", p.id));
    }
    let mut report = Vec::new();
    for &h in hosts {
        if let Some(p) = cluster.payments(h).await.iter().find(|p| p.state == "pending") {
            return Err(format!("box {h} payment {} pending", p.id));
        }
        let host_in = cluster.paid_by_contract(h, "incoming").await;
        let host_peer = cluster.boxes[h].peer_id.to_string();
        let contracts: Vec<ContractView> = cluster
            .contracts(owner)
            .await
            .into_iter()
            .filter(|c| c.direction == "ours_on_peer" && c.peer == host_peer)
            .collect();
        let (mut sent, mut fees, mut received) = (0u64, 0u64, 0u64);
        for c in &contracts {
            let (out, fee) = owner_out.get(&c.id).copied().unwrap_or((0, 0));
            let (inc, _) = host_in.get(&c.id).copied().unwrap_or((0, 0));
            if out != inc {
                return Err(format!("contract {}: owner sent {out} msat, box {h} received {inc}", c.id));
            }
            if c.paid_msat != out {
                return Err(format!("contract {}: owner's contract says paid {} msat, its ledger {out}", c.id, c.paid_msat));
            }
            let theirs = contract_by_id(cluster, h, &c.id)
                .await
                .ok_or_else(|| format!("box {h} has no contract {}", c.id))?;
            if theirs.direction != "theirs_on_us" || theirs.paid_msat != inc {
                return Err(format!("box {h}'s contract {}: {theirs:?}, its ledger says {inc} msat received", c.id));
            }
            sent += out;
            fees += fee;
        }
        // Everything box h received from the owner is for one of these contracts.
        let owner_contract_ids: Vec<&String> = contracts.iter().map(|c| &c.id).collect();
        for (id, (amount, _)) in &host_in {
            if !owner_contract_ids.contains(&id) {
                return Err(format!("box {h} received {amount} msat for contract {id:?}, not one of the owner's"));
            }
            received += amount;
        }
        let opened = cluster
            .channels
            .iter()
            .find(|c| c.spec.from == owner && c.spec.to == h)
            .ok_or_else(|| format!("no channel {owner}→{h}"))?;
        let owner_side = cluster.channel(owner, h).await.ok_or("owner's channel gone")?;
        let host_side = cluster.channel(h, owner).await.ok_or("host's channel gone")?;
        if owner_side.outbound_msat + sent + fees != opened.from_outbound_msat {
            return Err(format!(
                "owner's channel to box {h}: {} msat now, {} at opening, {sent} sent + {fees} fees",
                owner_side.outbound_msat, opened.from_outbound_msat
            ));
        }
        if host_side.outbound_msat != opened.to_outbound_msat + received {
            return Err(format!(
                "box {h}'s channel: {} msat now, {} at opening, {received} received",
                host_side.outbound_msat, opened.to_outbound_msat
            ));
        }
        report.push(format!("box {h}: {sent} msat over {} contract(s), {fees} msat fees", contracts.len()));
    }
    Ok(report.join("; "))
}

/// Failed (not passed) audits of `host` by `owner` at or after `since`.
async fn failed_audits(cluster: &Cluster, owner: usize, host: usize, since: i64) -> usize {
    let peer = cluster.boxes[host].peer_id.to_string();
    cluster
        .audits(owner)
        .await
        .iter()
        .filter(|a| a.host == peer && a.at >= since && a.outcome != "passed")
        .count()
}

/// Waits until `path` (owned by box `owner`) has `copies` active replicas,
/// none on `gone`, and the replica on `gone` is marked lost; the file reads
/// back byte-identical at every poll.
async fn wait_replaced(cluster: &Cluster, owner: usize, path: &str, data: &[u8], gone: usize, copies: usize) -> Vec<usize> {
    let gone_peer = cluster.boxes[gone].peer_id.to_string();
    let gone_peer = &gone_peer;
    wait_until(&format!("replica on box {gone} re-placed"), WAIT, move || async move {
        let got = cluster.try_get(owner, path).await.map_err(|e| format!("get failed: {e}"))?;
        assert!(got == data, "{path} read back different bytes ({} bytes)", got.len());
        let d = cluster.detail(owner, path).await;
        let active: Vec<usize> =
            d.replicas.iter().filter(|r| r.state == "active").map(|r| cluster.index_of(&r.host)).collect();
        let lost = d.replicas.iter().any(|r| &r.host == gone_peer && r.state == "lost");
        if active.len() == copies && !active.contains(&gone) && lost {
            Ok(active)
        } else {
            Err(format!("replicas {:?}", d.replicas))
        }
    })
    .await
}

/// 1) Two copies, no local copy; audits run and pay; both ledgers and both
/// ends of every channel agree on every msat.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audits_pay_and_both_ledgers_agree_to_the_msat() {
    let cluster = Cluster::start(ClusterSpec::new(4)).await;
    let data = random_bytes(1 << 20);
    let view = cluster.put(0, "/paid.bin", data.clone(), 2, false).await;
    assert_eq!((view.active_replicas, view.has_local), (2, false), "{view:?}");
    let hosts = cluster.active_hosts(0, "/paid.bin").await;
    assert_eq!(hosts.len(), 2, "two distinct hosts: {hosts:?}");
    assert!(hosts[0] != hosts[1] && !hosts.contains(&0), "{hosts:?}");
    assert!(cluster.hosted_objects(0).is_empty(), "the owner hosts nothing of its own");

    let c = &cluster;
    let hosts_ref = &hosts;
    wait_until("two paid audits per host", WAIT, move || async move {
        let mut seen = BTreeMap::new();
        for &h in hosts_ref {
            let n = c.payments(h).await.iter().filter(|p| p.direction == "incoming" && p.state == "succeeded").count();
            seen.insert(h, n);
        }
        if seen.values().all(|&n| n >= 2) {
            Ok(())
        } else {
            Err(format!("incoming succeeded payments per host {seen:?}"))
        }
    })
    .await;
    let report = wait_until("ledgers and channels agreeing", WAIT, move || ledgers_agree(c, 0, hosts_ref)).await;
    eprintln!("agreed: {report}");
    let passed = cluster.audits(0).await.iter().filter(|a| a.outcome == "passed").count();
    assert!(passed >= 4, "at least two passed audits per replica, saw {passed}");
    assert_eq!(cluster.get(0, "/paid.bin").await, data);
    cluster.shutdown().await;
}

/// 2) A host is killed: after the configured failed audits its replica is
/// placed on the remaining box; the file reads back identical throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_host_is_replaced_and_the_file_stays_readable() {
    let mut cluster = Cluster::start(ClusterSpec::new(4).without_lightning()).await;
    let data = random_bytes(512 * 1024);
    cluster.put(0, "/kill.bin", data.clone(), 2, false).await;
    let hosts = cluster.active_hosts(0, "/kill.bin").await;
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    let victim = hosts[0];
    let spare = (1..4).find(|i| !hosts.contains(i)).expect("a spare box");
    let t_kill = now();
    cluster.kill(victim).await;

    let active = wait_replaced(&cluster, 0, "/kill.bin", &data, victim, 2).await;
    assert!(active.contains(&spare), "re-placed on box {spare}: {active:?}");
    let failures = failed_audits(&cluster, 0, victim, t_kill).await;
    let k = cluster.boxes[0].config.repair_after_failures as usize;
    assert!(failures >= k, "re-placed after {failures} failed audits, configured {k}");
    assert_eq!(cluster.get(0, "/kill.bin").await, data);
    cluster.shutdown().await;
}

/// 3) A host flips bytes of what it stores: its audits fail, it is paid
/// nothing for them, and the replica is repaired elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_that_flips_bytes_fails_audits_is_not_paid_and_is_repaired() {
    let cluster = Cluster::start(ClusterSpec::new(4)).await;
    let data = random_bytes(1 << 20);
    cluster.put(0, "/flip.bin", data.clone(), 2, false).await;
    let hosts = cluster.active_hosts(0, "/flip.bin").await;
    let victim = hosts[0];
    let c = &cluster;
    wait_until("a paid audit on the victim", WAIT, move || async move {
        let n = c.payments(victim).await.iter().filter(|p| p.direction == "incoming" && p.state == "succeeded").count();
        if n >= 1 {
            Ok(())
        } else {
            Err(format!("{n} incoming payments"))
        }
    })
    .await;

    let contract = contract_on(&cluster, 0, victim).await;
    let obj = cluster.hosted_object(victim, 0);
    Cluster::corrupt(&obj.object());
    let t_corrupt = now();
    // The first failed audit: from here on nothing more may accrue.
    wait_until("a failed audit of the flipped object", WAIT, move || async move {
        match failed_audits(c, 0, victim, t_corrupt).await {
            0 => Err("no failed audit yet".into()),
            n => Ok(n),
        }
    })
    .await;
    let at_failure = contract_by_id(&cluster, 0, &contract.id).await.expect("contract");
    let ceiling = at_failure.paid_msat + at_failure.owed_msat;

    wait_replaced(&cluster, 0, "/flip.bin", &data, victim, 2).await;
    let victim_peer = cluster.boxes[victim].peer_id.to_string();
    let passed_after: Vec<_> = cluster
        .audits(0)
        .await
        .into_iter()
        // Audits that surely started after the flip was written: `at` is
        // when an audit ended (whole seconds), so one sent just before the
        // flip can end, passed, seconds later on a loaded machine. Its
        // round trip says when it started.
        .filter(|a| a.host == victim_peer && (a.at - t_corrupt - 1) * 1000 > a.latency_ms as i64 && a.outcome == "passed")
        .collect();
    assert!(passed_after.is_empty(), "audits of flipped bytes passed: {passed_after:?}");
    // Give what was owed before the failure time to settle (and anything
    // wrongly accrued since, time to show)...
    tokio::time::sleep(Duration::from_secs(6)).await;
    // ...then wait until both ledgers agree on this contract: a payment can
    // still be in flight after a fixed sleep on a loaded machine (the owner
    // records it sent before the host records it received).
    let id = &contract.id;
    let inc = wait_until("both ledgers agreeing on the flipping host's contract", WAIT, move || async move {
        for side in [0, victim] {
            if let Some(p) = c.payments(side).await.iter().find(|p| p.state == "pending" && p.contract.as_ref() == Some(id)) {
                return Err(format!("box {side}'s payment {} of the contract is pending", p.id));
            }
        }
        let out = c.paid_by_contract(0, "outgoing").await.get(id).copied().unwrap_or_default().0;
        let inc = c.paid_by_contract(victim, "incoming").await.get(id).copied().unwrap_or_default().0;
        let paid = contract_by_id(c, 0, id).await.map(|k| k.paid_msat);
        if out == inc && paid == Some(out) {
            Ok(inc)
        } else {
            Err(format!("owner sent {out} msat (its contract says {paid:?}), the flipping host received {inc}"))
        }
    })
    .await;
    let end = contract_by_id(&cluster, 0, &contract.id).await.expect("contract");
    assert!(
        end.paid_msat + end.owed_msat <= ceiling,
        "paid {} + owed {} msat after the failures, was {ceiling} at the first failure",
        end.paid_msat,
        end.owed_msat
    );
    assert!(inc <= ceiling, "the flipping host received {inc} msat, only {ceiling} was earned before");
    assert_eq!(cluster.get(0, "/flip.bin").await, data);
    cluster.shutdown().await;
}

/// 4) Replicas are sealed under their own keys: a host that dropped its
/// object and got the other host's copy cannot answer for its own root.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_serving_the_other_replica_cannot_pass() {
    let cluster = Cluster::start(ClusterSpec::new(4).without_lightning()).await;
    let data = random_bytes(256 * 1024);
    cluster.put(0, "/twin.bin", data.clone(), 2, false).await;
    let hosts = cluster.active_hosts(0, "/twin.bin").await;
    let (a, b) = (hosts[0], hosts[1]);
    let (oa, ob) = (cluster.hosted_object(a, 0), cluster.hosted_object(b, 0));
    let bytes_a = std::fs::read(oa.object()).expect("replica a");
    let bytes_b = std::fs::read(ob.object()).expect("replica b");
    assert_eq!(bytes_a.len(), bytes_b.len());
    let same = bytes_a.iter().zip(&bytes_b).filter(|(x, y)| x == y).count();
    assert!(same * 50 < bytes_a.len(), "replicas share {same} of {} bytes", bytes_a.len());

    let layout = Layout::new(data.len() as u64, cluster.boxes[0].config.segment_size).expect("layout");
    let tree = |bytes: &[u8]| {
        let (root, sidecar) = build_from_sealed(&layout, bytes, Cursor::new(Vec::new())).expect("sidecar");
        (root, Sidecar::open(sidecar.into_inner()).expect("sidecar opens"))
    };
    let (root_a, sidecar_a) = tree(&bytes_a);
    let (root_b, sidecar_b) = tree(&bytes_b);
    assert_eq!(hex::encode(root_a), oa.root_hex, "replica a's bytes give the root it is stored under");
    assert_ne!(root_a, root_b);
    let descriptor_a = Descriptor {
        version: FORMAT_VERSION,
        root: root_a,
        size: layout.size(),
        segment_size: layout.segment_size(),
        segment_count: layout.segment_count(),
    };
    for i in 0..layout.segment_count() {
        let at = layout.sealed_offset(i) as usize..layout.sealed_offset(i) as usize + layout.sealed_len(i);
        let own = verify_segment(&descriptor_a, i, &bytes_a[at.clone()], &sidecar_a.proof(i).expect("proof a"));
        assert!(own.is_ok(), "segment {i} of replica a against its own root: {own:?}");
        let other = verify_segment(&descriptor_a, i, &bytes_b[at.clone()], &sidecar_b.proof(i).expect("proof b"));
        assert!(other.is_err(), "segment {i} of replica b verified against replica a's root");
        let mixed = verify_segment(&descriptor_a, i, &bytes_b[at], &sidecar_a.proof(i).expect("proof a"));
        assert!(mixed.is_err(), "segment {i} of replica b verified with a's proof");
    }

    // Live: host a now serves b's object and b's tree, as a host that
    // re-fetched the other copy would.
    std::fs::copy(ob.object(), oa.object()).expect("copy object");
    std::fs::copy(ob.sidecar(), oa.sidecar()).expect("copy sidecar");
    let t_swap = now();
    let c = &cluster;
    wait_until("a failed audit of the swapped-in replica", WAIT, move || async move {
        match failed_audits(c, 0, a, t_swap).await {
            0 => Err("no failed audit yet".into()),
            n => Ok(n),
        }
    })
    .await;
    wait_replaced(&cluster, 0, "/twin.bin", &data, a, 2).await;
    cluster.shutdown().await;
}

/// 5) Full checks fetch whole replicas and pay the retrieval price; a get
/// with no local copy returns identical bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_checks_pay_the_retrieval_price_and_get_without_local_copy() {
    // Storage itself is free here, so every msat paid is a retrieval price.
    let spec = ClusterSpec::new(3).configure(|_, c| {
        c.hosting.price_msat_per_gib_day = 0;
        c.full_check_interval = Duration::from_secs(5);
        c.audit_interval = Duration::from_secs(3600);
    });
    let cluster = Cluster::start(spec).await;
    let data = random_bytes(1 << 20);
    let view = cluster.put(0, "/full.bin", data.clone(), 2, false).await;
    assert!(!view.has_local);
    let hosts = cluster.active_hosts(0, "/full.bin").await;
    let c = &cluster;
    let hosts_ref = &hosts;
    wait_until("full checks paid at the retrieval price", WAIT, move || async move {
        let audits = c.audits(0).await;
        let out = c.paid_by_contract(0, "outgoing").await;
        let mut seen = Vec::new();
        for &h in hosts_ref {
            let contract = contract_on(c, 0, h).await;
            assert!(contract.retrieval_price_msat > 0, "{contract:?}");
            let peer = c.boxes[h].peer_id.to_string();
            let full = audits.iter().filter(|a| a.host == peer && a.kind == "full" && a.outcome == "passed").count() as u64;
            let paid = out.get(&contract.id).copied().unwrap_or_default().0;
            let inc = c.paid_by_contract(h, "incoming").await.get(&contract.id).copied().unwrap_or_default().0;
            let state = format!("box {h}: {full} full checks, paid {paid}, received {inc}, price {}", contract.retrieval_price_msat);
            if full == 0 || paid != full * contract.retrieval_price_msat || inc != paid || contract.owed_msat != 0 {
                return Err(state);
            }
            seen.push(state);
        }
        Ok(seen)
    })
    .await;
    let report = wait_until("ledgers and channels agreeing", WAIT, move || ledgers_agree(c, 0, hosts_ref)).await;
    eprintln!("agreed: {report}");
    assert_eq!(cluster.get(0, "/full.bin").await, data, "get with no local copy");
    assert!(!cluster.detail(0, "/full.bin").await.file.has_local);
    cluster.shutdown().await;
}

/// 6a) A host at capacity refuses: with box 1 full, a third copy cannot be
/// placed and two copies land on the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_host_at_capacity_refuses() {
    let spec = ClusterSpec::new(4).without_lightning().configure(|i, c| {
        if i == 1 {
            c.hosting.max_hosted_bytes = Some(1024);
        }
    });
    let cluster = Cluster::start(spec).await;
    let data = random_bytes(256 * 1024);
    let refused = cluster
        .node(0)
        .put("/three.bin", data.len() as u64, bunker_node::Policy { copies: 3, keep_local: false }, Cursor::new(data.clone()))
        .await;
    let err = refused.expect_err("3 copies with one of 3 hosts full");
    eprintln!("refused as expected: {err}");
    assert!(matches!(err, bunker_node::PutError::Placement { placed: 2, wanted: 3, .. }), "{err}");
    cluster.put(0, "/two.bin", data.clone(), 2, false).await;
    let mut hosts = cluster.active_hosts(0, "/two.bin").await;
    hosts.sort();
    assert_eq!(hosts, vec![2, 3], "the full box hosts nothing");
    assert!(cluster.hosted_objects(1).is_empty());
    assert_eq!(cluster.get(0, "/two.bin").await, data);
    cluster.shutdown().await;
}

/// 6b) Space a swap partner keeps for us is held for it: a paid request
/// that would eat into it is refused, the partner's swap request for the
/// same space is taken. Box 0 is the host H, box 1 its swap partner P (it
/// keeps H's file), box 2 a paying owner Q (hosts nothing itself).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_swap_partner_wins_over_a_paid_request() {
    const CAP: u64 = 300 * 1024;
    let spec = ClusterSpec::new(3).without_lightning().configure(|i, c| match i {
        0 | 1 => {
            c.hosting.max_hosted_bytes = Some(CAP);
            c.placement.propose_swaps = true;
        }
        _ => c.hosting.max_hosted_bytes = Some(0),
    });
    let cluster = Cluster::start(spec).await;

    // H stores 256 KiB on P as a swap: P now keeps ~257 KiB for H.
    cluster.put(0, "/h.bin", random_bytes(256 * 1024), 1, true).await;
    let swap = contract_on(&cluster, 0, 1).await;
    assert!(swap.is_swap && swap.price_msat_per_gib_day == 0, "H's contract on P is a swap: {swap:?}");

    // Q asks H for 128 KiB, paid. H hosts nothing yet (300 KiB under its
    // cap), so only the ~257 KiB it holds for P can make it refuse; P itself
    // is full with H's object, and Q hosts nothing.
    let q_data = random_bytes(128 * 1024);
    let refused = cluster
        .node(2)
        .put("/q.bin", q_data.len() as u64, bunker_node::Policy { copies: 1, keep_local: true }, Cursor::new(q_data))
        .await;
    let err = refused.expect_err("H must keep its swap partner's space from a paid request");
    eprintln!("paid request refused as expected: {err}");
    assert!(matches!(err, bunker_node::PutError::Placement { placed: 0, wanted: 1, .. }), "{err}");
    assert!(cluster.hosted_objects(0).is_empty(), "H took nothing from Q");

    // P asks H for the same 128 KiB as a swap: taken.
    let p_data = random_bytes(128 * 1024);
    cluster.put(1, "/p.bin", p_data.clone(), 1, true).await;
    let on_h = contract_on(&cluster, 1, 0).await;
    assert!(on_h.is_swap, "P's contract on H is a swap: {on_h:?}");
    let held = cluster.hosted_object(0, 1);
    assert!(std::fs::metadata(held.object()).expect("P's object on H").len() > p_data.len() as u64);
    cluster.shutdown().await;
}
