//! Lightning under the engine, on a real Bitcoin Knots regtest chain: the
//! host's Lightning node starts with the engine, its offers carry its node
//! id signed by the box's libp2p key, and a keysend carrying a contract id
//! lands in the host's MANIFEST.db as an incoming, succeeded payment of
//! that contract.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bunker_core::{Keys, Seed};
use bunker_ln::regtest::Bitcoind;
use bunker_ln::{Lightning, LnConfig, Network, NoExternalLedger, Status};
use bunker_manifest::{ContractId, Manifest, PaymentDirection, PaymentState};
use bunker_net::*;
use bunker_node::{HostingTerms, Node, NodeConfig, NodeParts};

const T: Duration = Duration::from_secs(120);


/// A listen address no outgoing connection can take before the node binds it.
fn free_addr() -> SocketAddr {
    bunker_ln::regtest::free_listen_addr().unwrap()
}

fn ln_config(dir: &std::path::Path, chain: &Bitcoind, addr: SocketAddr) -> LnConfig {
    let mut c = LnConfig::new(dir, Network::Regtest, chain.chain_source());
    c.listen = vec![addr];
    c
}

fn wait<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < T, "{what}: not within {T:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn keysend_for_a_contract_lands_in_the_hosts_manifest_as_incoming_and_succeeded() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,ldk_node=off".into()))
        .with_test_writer()
        .try_init();
    let chain = Bitcoind::start().expect("regtest bitcoind");
    chain.mine(101).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("host")).unwrap();

    // The host box: engine with Lightning.
    let host_seed = Seed::generate();
    let host_keys = Keys::from_seed(&host_seed);
    let host_ln_addr = free_addr();
    let host = rt.block_on(async {
        let (net, inbound) = Net::start(NetConfig::loopback(host_keys.identity())).await.unwrap();
        let manifest = Manifest::open(dir.path().join("host/MANIFEST.db")).unwrap();
        let mut config = NodeConfig::new(dir.path().join("host/store"));
        config.hosting = HostingTerms { safety_margin_bytes: 1 << 20, ..HostingTerms::default() };
        let ln = Some(ln_config(&dir.path().join("host/ln"), &chain, host_ln_addr));
        Node::start(NodeParts { seed: host_seed, config, manifest, net, inbound, ln }).await.unwrap()
    });
    let host_ln = wait("the engine's Lightning node running", || host.lightning());

    // The owner box: a bare swarm and a bunker-ln node of its own.
    let owner_seed = Seed::generate();
    let owner_keys = Keys::from_seed(&owner_seed);
    let (owner_net, _owner_inbound) = rt.block_on(async {
        let (net, inbound) = Net::start(NetConfig::loopback(owner_keys.identity())).await.unwrap();
        net.dial(host.peer_id(), host.net().listen_addrs().await.unwrap()).await.unwrap();
        (net, inbound)
    });
    let owner_ln = Lightning::start(
        ln_config(&dir.path().join("owner/ln"), &chain, free_addr()),
        &owner_seed,
        Arc::new(NoExternalLedger),
    )
    .unwrap();

    // The offer names the host's Lightning node, signed by its libp2p key.
    let offer = rt
        .block_on(owner_net.offer(host.peer_id(), OfferRequest { bytes: 1 << 20, term_secs: 86_400, swap_offered_bytes: 0 }))
        .unwrap();
    assert_eq!(offer.ln_node_id, host_ln.node_id().serialize().to_vec());
    let signed = [b"bunker lightning node id v1\0".as_slice(), &offer.ln_node_id].concat();
    assert!(host_keys.identity().public().verify(&signed, &offer.ln_node_id_signature));

    // A contract the host records.
    let t = ContractTerms {
        contract_id: rand::random(),
        object_root: [0x42; 32],
        object_bytes: 100_000 + 16 * 2,
        plain_bytes: 100_000,
        segment_size: 64 * 1024,
        price_msat_per_gib_day: offer.price_msat_per_gib_day,
        retrieval_msat_per_gib: offer.retrieval_msat_per_gib,
        audit_interval_secs: (60, 120),
        term_secs: 86_400,
        swap: false,
        owner_label: Vec::new(),
    };
    let proposal =
        ContractProposal { terms: t.clone(), owner_signature: bunker_node::sign::sign_terms(&owner_keys, &t) };
    let answer = rt.block_on(owner_net.contract(host.peer_id(), proposal)).unwrap();
    assert!(matches!(answer, ContractAnswer::Accepted { .. }), "{answer:?}");

    // A direct channel owner → host.
    let addr = owner_ln.new_onchain_address().unwrap();
    chain.fund(&addr, 2_000_000).unwrap();
    wait("owner funds", || {
        owner_ln.sync().ok()?;
        (owner_ln.balances().onchain_spendable_sat >= 2_000_000).then_some(())
    });
    owner_ln.open_channel(host_ln.node_id(), host_ln_addr, 1_000_000, None).unwrap();
    wait("usable channel", || {
        chain.mine(1).ok()?;
        let _ = owner_ln.sync();
        let _ = host_ln.sync();
        let usable = |ln: &Lightning| ln.channels().iter().any(|c| c.usable);
        (usable(&owner_ln) && usable(&host_ln)).then_some(())
    });

    // Pay for the contract by keysend.
    let cid = bunker_ln::ContractId(t.contract_id);
    let id = owner_ln.pay_keysend(host_ln.node_id(), 12_345, Some(cid)).unwrap();
    let sent = owner_ln.wait_payment(&id, T).unwrap();
    assert_eq!(sent.status, Status::Succeeded, "{sent:?}");

    // It reaches the host's MANIFEST.db through the engine's ledger.
    let m = Manifest::open(dir.path().join("host/MANIFEST.db")).unwrap();
    let got = wait("payment in the host's manifest", || {
        m.payments_for_contract(&ContractId(t.contract_id))
            .ok()?
            .into_iter()
            .find(|p| p.state == PaymentState::Succeeded)
    });
    assert_eq!(got.direction, PaymentDirection::Incoming);
    assert_eq!(got.amount_msat, 12_345);
    assert_eq!(got.contract, Some(ContractId(t.contract_id)));
    assert_eq!(m.payments_for_contract(&ContractId(t.contract_id)).unwrap().len(), 1, "recorded once");

    drop(host_ln);
    owner_ln.stop();
    rt.block_on(host.shutdown());
}
