//! The chain source goes away mid-run and comes back: what the box owes is
//! kept (through a node restart too) and settled, exactly, once it returns.
//!
//! Its own test binary: it stops the chain, which other tests must not see.

mod common;

use bunker_core::seed::Seed;
use bunker_ln::regtest::Bitcoind;
use bunker_ln::{ChainError, ContractId, Lightning, OwedBook, StartError, Status};
use common::*;

#[test]
fn owed_amounts_survive_a_dead_chain_source_and_a_restart_then_settle_exactly() {
    init_tracing();
    let mut chain = Bitcoind::start().expect("regtest bitcoind starts");
    chain.mine(101).unwrap();
    let root = tempfile::tempdir().unwrap();
    let (a, b) = pair(&chain, root.path());
    let host = b.ln.node_id();
    let contract = ContractId([0xAB; 32]);
    a.ln.owe(contract, &host, 300_000).unwrap();

    // The chain source dies.
    chain.stop().unwrap();
    assert!(matches!(a.ln.chain_status(), Err(ChainError::Unreachable { .. })));
    a.ln.owe(contract, &host, 250_000).unwrap();
    let report = a.ln.settle_due().unwrap();
    let deferred = report.deferred.expect("settlement waits for the chain source");
    assert!(deferred.to_string().contains("unreachable"), "{deferred}");
    assert!(report.sent.is_empty());
    assert_eq!(a.ln.owed().unwrap()[0].owed_msat, 550_000);
    assert!(a.ln.payments().unwrap().is_empty(), "nothing was sent");

    // The box restarts while the chain is still down: the node cannot start,
    // and says why; the engine keeps accruing in the book.
    let seed_a: Seed = a.seed.clone();
    let dir_a = root.path().join("a");
    let addr_a = a.addr;
    let node_id_a = a.ln.node_id();
    drop(a);
    let err = Lightning::start(
        config(&dir_a, chain.chain_source(), addr_a),
        &seed_a,
        std::sync::Arc::new(MemLedger::default()),
    )
    .err()
    .expect("no start without a chain source");
    assert!(
        matches!(err, StartError::Chain(ChainError::Unreachable { .. })),
        "{err}"
    );
    {
        let book = OwedBook::open(&dir_a).unwrap();
        assert_eq!(book.owe(contract, &host, 1_234).unwrap(), 551_234);
    }

    // The chain comes back; the same words give the same node, which pays
    // exactly what was owed.
    chain.restart().unwrap();
    let ledger = std::sync::Arc::new(MemLedger::default());
    let ln = Lightning::start(config(&dir_a, chain.chain_source(), addr_a), &seed_a, ledger.clone()).unwrap();
    assert_eq!(ln.node_id(), node_id_a);
    let a = TestNode {
        ln,
        ledger,
        addr: addr_a,
        seed: seed_a,
    };
    a.ln.connect(host, b.addr).unwrap();
    a.ln.wait_sendable(&host, 551_234, T).unwrap();
    let report = a.ln.settle_due().unwrap();
    assert!(report.deferred.is_none(), "{report:?}");
    assert_eq!(report.sent.len(), 1, "{report:?}");
    let (c, id, amount) = report.sent[0].clone();
    assert_eq!((c, amount), (contract, 551_234));
    assert_eq!(a.ln.wait_payment(&id, T).unwrap().status, Status::Succeeded);
    let got = wait_inbound(&b, "settlement after the outage", |r| r.id == id);
    assert_eq!((got.contract, got.amount_msat), (Some(contract), Some(551_234)));
    assert!(a.ln.owed().unwrap().is_empty(), "{:?}", a.ln.owed());
    assert_ledger_agrees(&a);
    assert_ledger_agrees(&b);

    // The engine's ledger lost its copy (restored from an old snapshot):
    // a replay brings it level with bunker-ln's store.
    a.ledger.0.lock().unwrap().clear();
    assert_eq!(a.ln.replay_ledger().unwrap(), a.ln.payments().unwrap().len());
    assert_ledger_agrees(&a);
}
