//! Shared set-up for the regtest tests: a chain, nodes on it, a channel.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use bunker_core::seed::Seed;
use bunker_ln::regtest::Bitcoind;
use bunker_ln::{
    ChainSource, Direction, LedgerSinkError, Lightning, LnConfig, Network, PaymentLedger, PaymentRecord, Status,
};

pub const T: Duration = Duration::from_secs(90);

/// Tests in one binary share a chain. A node whose view of the tip lags the
/// payee's by many blocks builds HTLCs the payee rejects ("final CLTV expiry
/// too soon"): in real life blocks come every ten minutes, here another test
/// can mine a dozen in a second. So mining takes this lock for writing, and
/// a test that pays holds it for reading ([`quiet_chain`]) after syncing its
/// nodes to the tip.
static CHAIN_LOCK: RwLock<()> = RwLock::new(());

/// Held while a test mines.
pub fn mining() -> RwLockWriteGuard<'static, ()> {
    CHAIN_LOCK.write().unwrap_or_else(|p| p.into_inner())
}

/// Holds the chain still and brings `nodes` to its tip.
pub fn quiet_chain(nodes: &[&TestNode]) -> RwLockReadGuard<'static, ()> {
    let guard = CHAIN_LOCK.read().unwrap_or_else(|p| p.into_inner());
    for n in nodes {
        n.ln.wait_until("wallet sync", T, || n.ln.sync().ok()).unwrap();
    }
    guard
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,ldk_node=off".into()),
        )
        .with_test_writer()
        .try_init();
}

/// The engine's ledger as the tests see it: what bunker-ln handed over.
#[derive(Default)]
pub struct MemLedger(pub Mutex<BTreeMap<String, PaymentRecord>>);

impl PaymentLedger for MemLedger {
    fn record(&self, record: &PaymentRecord) -> Result<(), LedgerSinkError> {
        self.0.lock().unwrap().insert(record.id.clone(), record.clone());
        Ok(())
    }
}

pub struct TestNode {
    pub ln: Lightning,
    pub ledger: Arc<MemLedger>,
    pub addr: SocketAddr,
    pub seed: Seed,
}

/// A listen address no outgoing connection can take before the node binds it.
pub fn free_addr() -> SocketAddr {
    bunker_ln::regtest::free_listen_addr().unwrap()
}

pub fn config(dir: &Path, chain: ChainSource, addr: SocketAddr) -> LnConfig {
    let mut c = LnConfig::new(dir, Network::Regtest, chain);
    c.listen = vec![addr];
    c
}

pub fn start_node(chain: &Bitcoind, dir: &Path, seed: Seed) -> TestNode {
    let addr = free_addr();
    let ledger = Arc::new(MemLedger::default());
    let ln = Lightning::start(config(dir, chain.chain_source(), addr), &seed, ledger.clone()).expect("node starts");
    TestNode { ln, ledger, addr, seed }
}

/// Funds `node`'s on-chain wallet with `sat` and waits until it sees them.
pub fn fund(chain: &Bitcoind, node: &TestNode, sat: u64) {
    let addr = node.ln.new_onchain_address().unwrap();
    chain.fund(&addr, sat).unwrap();
    node.ln
        .wait_until("on-chain funds", T, || {
            node.ln.sync().ok()?;
            (node.ln.balances().onchain_spendable_sat >= sat).then_some(())
        })
        .unwrap();
}

/// Opens a `sat` channel from `a` to `b`, pushing `push_msat` to `b`, and
/// waits until both sides can use it.
pub fn open_channel(chain: &Bitcoind, a: &TestNode, b: &TestNode, sat: u64, push_msat: u64) -> u128 {
    let id = a.ln.open_channel(b.ln.node_id(), b.addr, sat, Some(push_msat)).unwrap();
    // The funding transaction goes out once the peers agree; mine until the
    // channel has its confirmations on both sides.
    let start = Instant::now();
    loop {
        chain.mine(1).unwrap();
        let _ = a.ln.sync(); // a failed round is retried by the loop
        let _ = b.ln.sync();
        let usable = |n: &TestNode| n.ln.channels().iter().any(|c| c.usable);
        if usable(a) && usable(b) {
            return id;
        }
        assert!(
            start.elapsed() < T,
            "channel not usable after {:?}: {:?}",
            start.elapsed(),
            a.ln.channels()
        );
        // Let the peers exchange channel_ready before mining more.
        let _ = a.ln.wait_until("usable channel", Duration::from_millis(300), || {
            (usable(a) && usable(b)).then_some(())
        });
    }
}

/// Two nodes with a channel: `a` opened it with 1,000,000 sat and pushed
/// 300,000 sat to `b`, so both can pay.
pub fn pair(chain: &Bitcoind, root: &Path) -> (TestNode, TestNode) {
    let a = start_node(chain, &root.join("a"), Seed::generate());
    let b = start_node(chain, &root.join("b"), Seed::generate());
    let _mining = mining();
    fund(chain, &a, 2_000_000);
    fund(chain, &b, 100_000);
    open_channel(chain, &a, &b, 1_000_000, 300_000_000);
    (a, b)
}

/// bunker-ln's store, the ledger it fed, and ldk-node's payment store say
/// the same about every Lightning payment, to the msat.
pub fn assert_ledger_agrees(node: &TestNode) {
    let stored: BTreeMap<String, PaymentRecord> = node
        .ln
        .payments()
        .unwrap()
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let fed = node.ledger.0.lock().unwrap().clone();
    assert_eq!(stored, fed, "the engine's ledger differs from bunker-ln's store");
    let ldk: Vec<_> = node
        .ln
        .ldk_payments()
        .into_iter()
        .filter(|p| !matches!(p.kind, ldk_node::payment::PaymentKind::Onchain { .. }))
        // ldk-node stores each invoice we issue as a pending inbound payment;
        // an invoice nobody paid is not a payment, and the ledger leaves it out.
        .filter(|p| {
            !(p.direction == ldk_node::payment::PaymentDirection::Inbound
                && p.status == ldk_node::payment::PaymentStatus::Pending)
        })
        .collect();
    assert_eq!(
        ldk.len(),
        stored.len(),
        "ldk-node has {} payments, the ledger {}",
        ldk.len(),
        stored.len()
    );
    for p in ldk {
        let id = hex::encode(p.id.0);
        let r = stored
            .get(&id)
            .unwrap_or_else(|| panic!("payment {id} missing from the ledger"));
        assert_eq!(r.amount_msat, p.amount_msat, "amount of {id}");
        let status = match p.status {
            ldk_node::payment::PaymentStatus::Pending => Status::Pending,
            ldk_node::payment::PaymentStatus::Succeeded => Status::Succeeded,
            ldk_node::payment::PaymentStatus::Failed => Status::Failed,
        };
        assert_eq!(r.status, status, "status of {id}");
        let dir = match p.direction {
            ldk_node::payment::PaymentDirection::Inbound => Direction::Inbound,
            ldk_node::payment::PaymentDirection::Outbound => Direction::Outbound,
        };
        assert_eq!(r.direction, dir, "direction of {id}");
        if dir == Direction::Outbound && status == Status::Succeeded {
            assert_eq!(r.fee_msat, p.fee_paid_msat, "fee of {id}");
        }
    }
}

/// Waits until `node` has an inbound payment record satisfying `f`.
pub fn wait_inbound(node: &TestNode, what: &str, f: impl Fn(&PaymentRecord) -> bool) -> PaymentRecord {
    node.ln
        .wait_until(what, T, || {
            node.ln
                .payments()
                .unwrap()
                .into_iter()
                .find(|r| r.direction == Direction::Inbound && f(r))
        })
        .unwrap()
}
