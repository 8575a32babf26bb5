//! Real ldk-node nodes paying each other on a Bitcoin Knots regtest chain.
//!
//! Each test runs its own chain and its own nodes: tests stay independent,
//! and every bitcoind stops when its test ends.

mod common;

use std::str::FromStr;
use std::time::Duration;

use bunker_core::seed::Seed;
use bunker_ln::regtest::Bitcoind;
use bunker_ln::{ContractId, Direction, Method, PayError, Status};
use common::*;

/// A chain of the test's own: dropped (bitcoind stopped, data dir deleted)
/// when the test ends, pass or fail.
fn chain() -> Bitcoind {
    init_tracing();
    let chain = Bitcoind::start().expect("regtest bitcoind starts");
    chain.mine(101).unwrap();
    chain
}

#[test]
fn keysend_with_contract_bolt11_and_bolt12_are_paid_and_recorded_alike_on_both_sides() {
    let chain = &chain();
    let root = tempfile::tempdir().unwrap();
    let (a, b) = pair(chain, root.path());
    let _quiet = quiet_chain(&[&a, &b]);

    // Keysend carrying the contract id: the host attributes it.
    let contract = ContractId([0xC7; 32]);
    let ks = a.ln.pay_keysend(b.ln.node_id(), 12_345, Some(contract)).unwrap();
    let sent = a.ln.wait_payment(&ks, T).unwrap();
    assert_eq!(sent.status, Status::Succeeded, "{sent:?}");
    assert_eq!(sent.contract, Some(contract));
    assert_eq!(sent.fee_msat, Some(0), "direct channel: no routing fee");
    let got = wait_inbound(&b, "keysend", |r| r.id == ks);
    assert_eq!(got.method, Method::Keysend);
    assert_eq!(
        got.contract,
        Some(contract),
        "receiver attributes the payment to the contract"
    );
    assert_eq!(got.amount_msat, Some(12_345));

    // BOLT11: b invoices, a pays.
    let invoice = b.ln.invoice(50_000, "audit fee", 600).unwrap();
    let paid = a.ln.pay_invoice(&invoice, None).unwrap();
    let rec = a.ln.wait_payment(&paid, T).unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    let got = wait_inbound(&b, "bolt11", |r| r.id == paid);
    assert_eq!(
        (got.method, got.amount_msat, got.contract),
        (Method::Bolt11, Some(50_000), None)
    );
    // Paying the same invoice twice is refused, and recorded once.
    assert!(matches!(a.ln.pay_invoice(&invoice, None), Err(PayError::Node(_))));

    // BOLT11 the other way round: a zero-amount invoice needs an amount.
    let invoice = a.ln.invoice(21_000, "retrieval", 600).unwrap();
    let back = b.ln.pay_invoice(&invoice, None).unwrap();
    let rec = b.ln.wait_payment(&back, T).unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    wait_inbound(&a, "bolt11 back", |r| r.id == back);

    // BOLT12: b offers, a pays (the invoice request travels as onion messages).
    let offer = b.ln.offer(Some(77_000), "storage").unwrap();
    let o = a.ln.pay_offer(&offer, None).unwrap();
    let done = a.ln.wait_payment(&o, T).unwrap();
    assert_eq!(
        (done.status, done.method, done.amount_msat),
        (Status::Succeeded, Method::Bolt12, Some(77_000))
    );
    wait_inbound(&b, "bolt12", |r| {
        r.method == Method::Bolt12 && r.amount_msat == Some(77_000)
    });
    // An offer without amount: the payer names one.
    let offer = b.ln.offer(None, "tip").unwrap();
    assert!(matches!(a.ln.pay_offer(&offer, None), Err(PayError::NoAmount { .. })));
    let o = a.ln.pay_offer(&offer, Some(5_000)).unwrap();
    let rec = a.ln.wait_payment(&o, T).unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    wait_inbound(&b, "bolt12 tip", |r| {
        r.method == Method::Bolt12 && r.amount_msat == Some(5_000)
    });

    assert_ledger_agrees(&a);
    assert_ledger_agrees(&b);
    let inbound_b: u64 =
        b.ln.payments()
            .unwrap()
            .iter()
            .filter(|r| r.direction == Direction::Inbound && r.status == Status::Succeeded)
            .filter_map(|r| r.amount_msat)
            .sum();
    assert_eq!(inbound_b, 12_345 + 50_000 + 77_000 + 5_000);

    // Cooperative close: both sides see it closed.
    let mut events = b.ln.subscribe();
    let channel = a.ln.channels()[0].user_channel_id;
    a.ln.close_channel(channel, b.ln.node_id()).unwrap();
    a.ln.wait_until("channel closed", T, || a.ln.channels().is_empty().then_some(()))
        .unwrap();
    let closed = b.ln.wait_until("close event", T, || loop {
        match events.try_recv() {
            Ok(bunker_ln::LnEvent::ChannelClosed { counterparty, .. }) => return Some(counterparty),
            Ok(_) => continue,
            Err(_) => return None,
        }
    });
    assert_eq!(closed.unwrap(), Some(a.ln.node_id().to_string()));
    assert!(matches!(
        a.ln.close_channel(channel, b.ln.node_id()),
        Err(bunker_ln::ChannelError::UnknownChannel { .. })
    ));
}

#[test]
fn threshold_settlement_pays_exactly_what_was_owed_with_the_contract_id() {
    let chain = &chain();
    let root = tempfile::tempdir().unwrap();
    let (a, b) = pair(chain, root.path());
    let _quiet = quiet_chain(&[&a, &b]);
    let host = b.ln.node_id();
    let c1 = ContractId([1; 32]);
    let c2 = ContractId([2; 32]);

    // Below the 500 sat default threshold: nothing is paid.
    a.ln.owe(c1, &host, 200_001).unwrap();
    a.ln.owe(c2, &host, 499_999).unwrap();
    let report = a.ln.settle_due().unwrap();
    assert!(report.sent.is_empty() && report.deferred.is_none(), "{report:?}");
    assert!(a.ln.payments().unwrap().is_empty());

    // c1 passes it; c2 does not.
    a.ln.owe(c1, &host, 299_999).unwrap();
    a.ln.owe(c1, &host, 7).unwrap();
    let report = a.ln.settle_due().unwrap();
    assert_eq!(report.sent.len(), 1, "{report:?}");
    let (contract, id, amount) = report.sent[0].clone();
    assert_eq!((contract, amount), (c1, 200_001 + 299_999 + 7));
    let rec = a.ln.wait_payment(&id, T).unwrap();
    assert_eq!(rec.status, Status::Succeeded);
    assert_eq!(rec.fee_msat, Some(0));
    let got = wait_inbound(&b, "settlement", |r| r.id == id);
    assert_eq!((got.contract, got.amount_msat), (Some(c1), Some(500_007)));

    // What is left: c2 untouched, c1 settled to zero.
    let owed = a.ln.owed().unwrap();
    assert_eq!(owed.len(), 1, "{owed:?}");
    assert_eq!(
        (owed[0].contract, owed[0].owed_msat, owed[0].in_flight_msat),
        (c2, 499_999, 0)
    );

    // A contract's amount is bound to its host.
    let other = a.ln.node_id();
    assert!(matches!(
        a.ln.owe(c2, &other, 1),
        Err(bunker_ln::OweError::OtherPayee { .. })
    ));

    assert_ledger_agrees(&a);
    assert_ledger_agrees(&b);
}

/// A valid invoice, signed, for mainnet.
fn mainnet_invoice() -> String {
    use ldk_node::bitcoin::hashes::{sha256, Hash};
    use ldk_node::bitcoin::secp256k1::{Secp256k1, SecretKey};
    use ldk_node::lightning_invoice::{Currency, InvoiceBuilder};
    let secp = Secp256k1::new();
    let key = SecretKey::from_slice(&[0x11; 32]).unwrap();
    InvoiceBuilder::new(Currency::Bitcoin)
        .description("elsewhere".into())
        .payment_hash(sha256::Hash::hash(b"x"))
        .payment_secret(ldk_node::lightning_types::payment::PaymentSecret([42; 32]))
        .current_timestamp()
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(10_000)
        .build_signed(|hash| secp.sign_ecdsa_recoverable(hash, &key))
        .unwrap()
        .to_string()
}

#[test]
fn bad_invoices_offers_and_amounts_are_refused_clearly_and_the_ledger_stays_intact() {
    let chain = &chain();
    let root = tempfile::tempdir().unwrap();
    let (a, b) = pair(chain, root.path());
    let _quiet = quiet_chain(&[&a, &b]);
    // Something in the ledger to keep intact.
    let ks = a.ln.pay_keysend(b.ln.node_id(), 1_000, None).unwrap();
    a.ln.wait_payment(&ks, T).unwrap();
    let before = a.ln.payments().unwrap();
    let ldk_before = a.ln.ldk_payments().len();

    // An invoice for another network.
    let err = a.ln.pay_invoice(&mainnet_invoice(), None).unwrap_err();
    assert!(matches!(err, PayError::WrongNetwork { .. }), "{err}");
    assert!(
        err.to_string().contains("bitcoin") && err.to_string().contains("regtest"),
        "{err}"
    );

    // An expired invoice.
    let short = b.ln.invoice(10_000, "soon gone", 1).unwrap();
    let parsed = ldk_node::lightning_invoice::Bolt11Invoice::from_str(&short).unwrap();
    a.ln.wait_until("invoice expiry", Duration::from_secs(10), || {
        parsed.is_expired().then_some(())
    })
    .unwrap();
    let err = a.ln.pay_invoice(&short, None).unwrap_err();
    assert!(matches!(err, PayError::Expired { what: "invoice", .. }), "{err}");

    // Garbage and truncated offers and invoices.
    let offer = b.ln.offer(Some(1_000), "real").unwrap();
    for bad in ["lno1qqqqqq", &offer[..offer.len() / 2], "not an offer at all"] {
        let err = a.ln.pay_offer(bad, None).unwrap_err();
        assert!(matches!(err, PayError::MalformedOffer { .. }), "{bad}: {err}");
    }
    let err = a.ln.pay_invoice("lnbcrt1garbage", None).unwrap_err();
    assert!(matches!(err, PayError::MalformedInvoice { .. }), "{err}");
    let huge = "l".repeat(bunker_ln::MAX_PAYMENT_TEXT + 1);
    assert!(matches!(a.ln.pay_offer(&huge, None), Err(PayError::TooLong { .. })));

    // More than the channel can carry, by each route in.
    let sendable = a.ln.sendable_msat();
    assert!(sendable > 0);
    let err = a.ln.pay_keysend(b.ln.node_id(), sendable + 1, None).unwrap_err();
    match err {
        PayError::OverChannelLimit {
            amount_msat,
            sendable_msat,
        } => {
            assert_eq!((amount_msat, sendable_msat), (sendable + 1, sendable))
        }
        other => panic!("{other}"),
    }
    let big = b.ln.invoice(900_000_000, "too much", 600).unwrap();
    assert!(matches!(
        a.ln.pay_invoice(&big, None),
        Err(PayError::OverChannelLimit { .. })
    ));
    let big = b.ln.offer(Some(900_000_000), "too much").unwrap();
    assert!(matches!(
        a.ln.pay_offer(&big, None),
        Err(PayError::OverChannelLimit { .. })
    ));
    assert!(matches!(
        a.ln.pay_keysend(b.ln.node_id(), 0, None),
        Err(PayError::InvalidAmount { .. })
    ));

    // A direct channel over the cap is refused; one that exists is reused.
    let cap = 200_000;
    let err = a.ln.open_direct_channel(b.ln.node_id(), b.addr, cap + 1).unwrap_err();
    assert!(
        matches!(
            err,
            bunker_ln::ChannelError::OverCap {
                amount_sat: 200_001,
                cap_sat: 200_000,
                ..
            }
        ),
        "{err}"
    );
    let existing = a.ln.channels()[0].user_channel_id;
    assert_eq!(
        a.ln.open_direct_channel(b.ln.node_id(), b.addr, 50_000).unwrap(),
        existing
    );
    assert_eq!(a.ln.channels().len(), 1);

    // Nothing was added, nothing lost.
    assert_eq!(a.ln.payments().unwrap(), before);
    assert_eq!(a.ln.ldk_payments().len(), ldk_before);
    assert_ledger_agrees(&a);
}

/// An LSPS2 provider, as a plain ldk-node node: it opens a channel to a new
/// box just in time when the box's first invoice is paid.
fn start_lsp(chain: &Bitcoind, dir: &std::path::Path) -> (ldk_node::Node, std::net::SocketAddr) {
    use ldk_node::liquidity::LSPS2ServiceConfig;
    let addr = free_addr();
    let bunker_ln::ChainSource::BitcoindRpc {
        host,
        port,
        user,
        password,
    } = chain.chain_source()
    else {
        unreachable!()
    };
    let config = ldk_node::config::Config {
        storage_dir_path: dir.display().to_string(),
        network: ldk_node::bitcoin::Network::Regtest,
        listening_addresses: Some(vec![addr.into()]),
        ..Default::default()
    };
    let mut builder = ldk_node::Builder::from_config(config);
    // Alias + listening address: it forwards into private (JIT) channels.
    builder.set_node_alias("lsp".into()).unwrap();
    builder.set_chain_source_bitcoind_rpc(host, port, user, password);
    builder.set_liquidity_provider_lsps2(LSPS2ServiceConfig {
        require_token: None,
        advertise_service: false,
        channel_opening_fee_ppm: 10_000,
        channel_over_provisioning_ppm: 100_000,
        min_channel_opening_fee_msat: 0,
        min_channel_lifetime: 100,
        max_client_to_self_delay: 1024,
        min_payment_size_msat: 0,
        max_payment_size_msat: 1_000_000_000,
        client_trusts_lsp: true,
    });
    let node = builder.build().unwrap();
    node.start().unwrap();
    (node, addr)
}

#[test]
fn a_new_box_without_inbound_capacity_is_paid_through_an_lsps2_jit_channel() {
    let chain = &chain();
    let root = tempfile::tempdir().unwrap();
    let mining = mining();
    let (lsp, lsp_addr) = start_lsp(chain, &root.path().join("lsp"));
    let lsp_addr_chain = lsp.onchain_payment().new_address().unwrap().to_string();
    chain.fund(&lsp_addr_chain, 3_000_000).unwrap();

    // The payer has a channel to the LSP.
    let payer = start_node(chain, &root.path().join("payer"), Seed::generate());
    fund(chain, &payer, 2_000_000);
    payer.ln.open_channel(lsp.node_id(), lsp_addr, 1_000_000, None).unwrap();
    let start = std::time::Instant::now();
    loop {
        chain.mine(1).unwrap();
        let _ = payer.ln.sync();
        let _ = lsp.sync_wallets();
        if payer.ln.channels().iter().any(|c| c.usable) {
            break;
        }
        assert!(start.elapsed() < T, "payer → LSP channel not usable");
        let _ = payer.ln.wait_until("usable", Duration::from_millis(300), || {
            payer.ln.channels().iter().any(|c| c.usable).then_some(())
        });
    }

    drop(mining);

    // The new box: no on-chain funds, no channels, only the LSP configured.
    let dir = root.path().join("new-box");
    let mut config = common::config(&dir, chain.chain_source(), free_addr());
    config.lsps2 = Some(bunker_ln::Lsps2Source {
        node_id: lsp.node_id().to_string(),
        address: lsp_addr,
        token: None,
    });
    let ledger = std::sync::Arc::new(MemLedger::default());
    let seed = Seed::generate();
    let ln = bunker_ln::Lightning::start(config, &seed, ledger.clone()).unwrap();
    let newbox = TestNode {
        ln,
        ledger,
        addr: free_addr(),
        seed,
    };
    assert_eq!(newbox.ln.balances().onchain_total_sat, 0);
    let _quiet = quiet_chain(&[&payer, &newbox]);
    let _ = lsp.sync_wallets();

    let invoice = newbox
        .ln
        .invoice_via_lsp(50_000_000, "first payment", 600, Some(1_000_000))
        .unwrap();
    let id = payer.ln.pay_invoice(&invoice, None).unwrap();
    assert_eq!(payer.ln.wait_payment(&id, T).unwrap().status, Status::Succeeded);
    // The LSP kept its 1% opening fee.
    let got = wait_inbound(&newbox, "JIT payment", |r| r.id == id);
    assert_eq!(
        (got.method, got.amount_msat),
        (Method::Bolt11, Some(50_000_000 - 500_000))
    );
    assert_eq!(newbox.ln.channels().len(), 1);
    assert_eq!(newbox.ln.channels()[0].counterparty, lsp.node_id().to_string());
    // Now over a real hop: the LSP forwards into the new box's channel for
    // ldk-node's default 1 sat base fee. The payer caps routing fees at 1% of
    // the amount: 50 sat cannot carry a 1 sat fee, 200 sat can.
    let jit = lsp
        .list_channels()
        .into_iter()
        .find(|c| c.counterparty_node_id == newbox.ln.node_id())
        .unwrap();
    let mut fees = jit.config;
    fees.forwarding_fee_base_msat = 1_000;
    fees.forwarding_fee_proportional_millionths = 0;
    lsp.update_channel_config(&jit.user_channel_id, jit.counterparty_node_id, fees)
        .unwrap();
    // The new box learns the LSP's fee from its channel_update and puts it
    // in its invoices' route hints.
    let hinted_fee = |inv: &str| {
        let inv = ldk_node::lightning_invoice::Bolt11Invoice::from_str(inv).unwrap();
        inv.route_hints()
            .iter()
            .flat_map(|h| h.0.iter())
            .map(|hop| hop.fees.base_msat)
            .max()
    };
    let small = newbox
        .ln
        .wait_until("route hint with the LSP's fee", T, || {
            let inv = newbox.ln.invoice(50_000, "too small for the hop", 600).unwrap();
            (hinted_fee(&inv) == Some(1_000)).then_some(inv)
        })
        .unwrap();
    // 1% of 50 sat is 0.5 sat: no route within the cap, nothing is paid.
    match payer.ln.pay_invoice(&small, None) {
        Err(e) => assert!(
            matches!(e, bunker_ln::PayError::Node(ldk_node::NodeError::PaymentSendingFailed)),
            "{e}"
        ),
        Ok(id) => {
            let rec = payer.ln.wait_payment(&id, T).unwrap();
            assert_eq!(rec.status, Status::Failed, "paid {rec:?} over a 1 sat hop");
        }
    }
    // 1% of 200 sat is 2 sat: the 1 sat hop is taken.
    let fine = newbox.ln.invoice(200_000, "pays its way", 600).unwrap();
    let id = payer.ln.pay_invoice(&fine, None).unwrap();
    let rec = payer.ln.wait_payment(&id, T).unwrap();
    assert_eq!(rec.status, Status::Succeeded, "{rec:?}");
    assert_eq!(rec.fee_msat, Some(1_000), "{rec:?}");
    wait_inbound(&newbox, "routed payment", |r| {
        r.id == id && r.amount_msat == Some(200_000)
    });

    assert_ledger_agrees(&newbox);
    assert_ledger_agrees(&payer);

    // Without a provider configured, the call says so.
    assert!(matches!(
        payer.ln.invoice_via_lsp(1_000, "x", 60, None),
        Err(bunker_ln::ReceiveError::NoLiquiditySource)
    ));
    lsp.stop().unwrap();
}
