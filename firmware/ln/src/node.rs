//! The running Lightning node: ldk-node built from the box's seed, with
//! bunker-ln's ledger fed from its events.

use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ldk_node::bitcoin::constants::ChainHash;
use ldk_node::bitcoin::hashes::Hash as _;
use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::config::{AnchorChannelsConfig, Config as LdkConfig};
use ldk_node::lightning::ln::channelmanager::PaymentId;
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::lightning::offers::offer::{Amount as OfferAmount, Offer};
use ldk_node::lightning::routing::router::RouteParametersConfig;
use ldk_node::lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescription, Description};
use ldk_node::lightning_types::payment::{PaymentHash, PaymentPreimage};
use ldk_node::payment::{PaymentDetails, PaymentKind};
use ldk_node::{CustomTlvRecord, Event, UserChannelId};
use tokio::sync::broadcast;

use bunker_core::seed::Seed;

use crate::chain::{self, ChainError};
use crate::config::{ChainSource, LnConfig};
use crate::error::{ChannelError, PayError, ReceiveError, StartError, WaitTimeout, WalletError};
use crate::ledger::{
    ContractId, Direction, LedgerSinkError, Method, PaymentLedger, PaymentRecord, Status, CONTRACT_TLV_TYPE,
};
use crate::store::{now_secs, OweError, Owed, Store, StoreError, MAX_MSAT};

/// A Lightning node id (secp256k1 public key). Parse with `NodeId::from_str`.
pub type NodeId = PublicKey;

/// Longest invoice or offer text accepted: real ones are well under 2 KiB.
pub const MAX_PAYMENT_TEXT: usize = 4096;

/// BOLT11's limit on a description.
const MAX_DESCRIPTION: usize = 639;

/// What happened, for whoever listens (the admin page, the engine).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LnEvent {
    /// A payment was recorded or changed state.
    Payment(PaymentRecord),
    /// A channel can now carry payments.
    ChannelReady {
        /// Our id for it.
        user_channel_id: u128,
        /// The peer.
        counterparty: Option<String>,
    },
    /// A channel was closed.
    ChannelClosed {
        /// Our id for it.
        user_channel_id: u128,
        /// The peer.
        counterparty: Option<String>,
        /// Why, in words.
        reason: Option<String>,
    },
}

/// One channel, for the admin page and the engine's routing choices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSummary {
    /// Our id for the channel (stable across restarts).
    pub user_channel_id: u128,
    /// The peer's node id, hex.
    pub counterparty: String,
    /// Size of the channel.
    pub value_sat: u64,
    /// What we could send if nothing were in flight.
    pub outbound_msat: u64,
    /// What we could receive.
    pub inbound_msat: u64,
    /// The largest single payment we can send over it right now.
    pub next_outbound_htlc_limit_msat: u64,
    /// Funding confirmed and both sides agreed.
    pub ready: bool,
    /// Ready and the peer connected: payments can go now.
    pub usable: bool,
}

/// The wallet's money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    /// Everything on-chain, confirmed or not.
    pub onchain_total_sat: u64,
    /// On-chain and spendable now (excludes the anchor reserve).
    pub onchain_spendable_sat: u64,
    /// Kept back for closing anchor channels.
    pub anchor_reserve_sat: u64,
    /// Our side of all channels.
    pub lightning_sat: u64,
}

/// What one settlement round did.
#[derive(Debug, Default)]
pub struct SettleReport {
    /// Settlements handed to ldk-node: (contract, payment id, amount msat).
    /// Their outcome arrives as ledger records.
    pub sent: Vec<(ContractId, String, u64)>,
    /// Settlements ldk-node refused at once; their amounts are owed again.
    pub refused: Vec<(ContractId, String)>,
    /// Set when nothing was tried because the chain source is not usable;
    /// everything owed stays owed.
    pub deferred: Option<ChainError>,
}

/// A running Lightning node.
///
/// Its methods block (like ldk-node's own): from async code call them via
/// `spawn_blocking` or on a multi-threaded runtime. Stops on drop.
pub struct Lightning {
    inner: Arc<Inner>,
    events_thread: Option<JoinHandle<()>>,
    stop: Arc<tokio::sync::Notify>,
}

struct Inner {
    node: ldk_node::Node,
    store: Store,
    ledger: Arc<dyn PaymentLedger>,
    config: LnConfig,
    events: broadcast::Sender<LnEvent>,
    /// Serialises "store, then tell the ledger" so the ledger sees changes in
    /// the order they were stored.
    record_lock: Mutex<()>,
    /// Bumped on every change; waiters sleep on `changed`.
    generation: Mutex<u64>,
    changed: Condvar,
}

/// Forwards ldk-node's log lines to `tracing` under the `ldk_node` target.
struct TracingLogWriter;

impl ldk_node::logger::LogWriter for TracingLogWriter {
    fn log(&self, record: ldk_node::logger::LogRecord<'_>) {
        use ldk_node::logger::LogLevel;
        match record.level {
            LogLevel::Error => tracing::error!(target: "ldk_node", module = record.module_path, "{}", record.args),
            LogLevel::Warn => tracing::warn!(target: "ldk_node", module = record.module_path, "{}", record.args),
            LogLevel::Info => tracing::info!(target: "ldk_node", module = record.module_path, "{}", record.args),
            LogLevel::Debug => tracing::debug!(target: "ldk_node", module = record.module_path, "{}", record.args),
            LogLevel::Trace | LogLevel::Gossip => {
                tracing::trace!(target: "ldk_node", module = record.module_path, "{}", record.args)
            }
        }
    }
}

/// Amounts owed per contract, usable while the node is not running (chain
/// source down, before start): the engine keeps accruing here and the node
/// settles when it can.
pub struct OwedBook {
    store: Store,
}

impl OwedBook {
    /// Opens the book in the Lightning data dir.
    pub fn open(data_dir: &std::path::Path) -> Result<OwedBook, StoreError> {
        Ok(OwedBook {
            store: Store::open(data_dir)?,
        })
    }

    /// Adds to what `contract` owes `payee`; returns the total not yet sent.
    pub fn owe(&self, contract: ContractId, payee: &NodeId, amount_msat: u64) -> Result<u64, OweError> {
        self.store.owe(contract, &payee.to_string(), amount_msat)
    }

    /// Everything owed and in flight, per contract.
    pub fn owed(&self) -> Result<Vec<Owed>, StoreError> {
        self.store.owed()
    }

    /// The ledger as stored.
    pub fn payments(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        self.store.payments()
    }
}

fn method_of(kind: &PaymentKind) -> Option<Method> {
    match kind {
        PaymentKind::Spontaneous { .. } => Some(Method::Keysend),
        PaymentKind::Bolt11 { .. } | PaymentKind::Bolt11Jit { .. } => Some(Method::Bolt11),
        PaymentKind::Bolt12Offer { .. } | PaymentKind::Bolt12Refund { .. } => Some(Method::Bolt12),
        _ => None,
    }
}

fn payment_id_hex(id: &PaymentId) -> String {
    hex::encode(id.0)
}

fn parse_payment_id(id: &str) -> Option<PaymentId> {
    let mut b = [0u8; 32];
    hex::decode_to_slice(id, &mut b).ok()?;
    Some(PaymentId(b))
}

impl Lightning {
    /// Builds ldk-node from the box's seed and the config, checks the chain
    /// source, starts the node and the event thread.
    ///
    /// Fails with [`StartError::Chain`] when the chain source cannot be used;
    /// what is owed stays in [`OwedBook`] meanwhile.
    pub fn start(config: LnConfig, seed: &Seed, ledger: Arc<dyn PaymentLedger>) -> Result<Lightning, StartError> {
        chain::probe(
            &config.chain,
            config.network,
            Duration::from_millis(config.chain_timeout_ms),
        )?;
        let store = Store::open(&config.data_dir)?;

        let mut ldk_config = LdkConfig::default();
        ldk_config.storage_dir_path = config.data_dir.join("ldk").display().to_string();
        ldk_config.network = config.network.to_ldk();
        if !config.listen.is_empty() {
            ldk_config.listening_addresses = Some(config.listen.iter().map(|a| SocketAddress::from(*a)).collect());
        }
        let lsp = match &config.lsps2 {
            Some(l) => Some((
                PublicKey::from_str(&l.node_id)
                    .map_err(|e| StartError::Config(format!("LSPS2 provider node id {:?}: {e}", l.node_id)))?,
                l,
            )),
            None => None,
        };
        ldk_config.anchor_channels_config = Some(AnchorChannelsConfig {
            trusted_peers_no_reserve: lsp.iter().map(|(pk, _)| *pk).collect(),
            per_channel_reserve_sats: config.anchor_reserve_sat,
        });
        let mut builder = ldk_node::Builder::from_config(ldk_config);
        builder.set_entropy_bip39_mnemonic(seed.mnemonic().clone(), None);
        builder.set_custom_logger(Arc::new(TracingLogWriter));
        if let Some((pk, l)) = &lsp {
            builder.set_liquidity_source_lsps2(*pk, SocketAddress::from(l.address), l.token.clone());
        }
        match &config.chain {
            ChainSource::Esplora { url } => {
                builder.set_chain_source_esplora(url.clone(), None);
            }
            ChainSource::Electrum { url } => {
                builder.set_chain_source_electrum(url.clone(), None);
            }
            ChainSource::BitcoindRpc {
                host,
                port,
                user,
                password,
            } => {
                builder.set_chain_source_bitcoind_rpc(host.clone(), *port, user.clone(), password.clone());
            }
        }
        // Built and started on a thread of its own: ldk-node adopts any tokio
        // runtime it finds around it, and must own its runtime instead.
        let dir = config.data_dir.display().to_string();
        let node = std::thread::spawn(move || -> Result<ldk_node::Node, StartError> {
            let node = builder.build().map_err(|e| StartError::Build {
                dir,
                reason: e.to_string(),
            })?;
            node.start().map_err(StartError::Start)?;
            Ok(node)
        })
        .join()
        .map_err(|_| StartError::Config("ldk-node panicked while starting".into()))??;

        let (events, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            node,
            store,
            ledger,
            config,
            events,
            record_lock: Mutex::new(()),
            generation: Mutex::new(0),
            changed: Condvar::new(),
        });
        inner.recover_settlements();
        let stop = Arc::new(tokio::sync::Notify::new());
        let events_thread = {
            let inner = Arc::clone(&inner);
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("bunker-ln events".into())
                .spawn(move || inner.event_loop(stop))
                .map_err(|e| StartError::Config(format!("cannot spawn the event thread: {e}")))?
        };
        tracing::info!(node_id = %inner.node.node_id(), network = %inner.config.network, "Lightning node started");
        Ok(Lightning {
            inner,
            events_thread: Some(events_thread),
            stop,
        })
    }

    /// Our node id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node.node_id()
    }

    /// Where we accept peers, as bound.
    pub fn listening_addresses(&self) -> Vec<String> {
        self.inner
            .node
            .listening_addresses()
            .unwrap_or_default()
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    /// A stream of payment and channel events.
    pub fn subscribe(&self) -> broadcast::Receiver<LnEvent> {
        self.inner.events.subscribe()
    }

    /// Whether the chain source answers now.
    pub fn chain_status(&self) -> Result<(), ChainError> {
        let c = &self.inner.config;
        chain::probe(&c.chain, c.network, Duration::from_millis(c.chain_timeout_ms))
    }

    /// Brings the wallets up to the chain tip now instead of at the next
    /// background round.
    pub fn sync(&self) -> Result<(), WalletError> {
        self.inner.node.sync_wallets().map_err(|source| WalletError::Node {
            action: "sync the wallets",
            source,
        })
    }

    /// A fresh on-chain address to fund the wallet.
    pub fn new_onchain_address(&self) -> Result<String, WalletError> {
        self.inner
            .node
            .onchain_payment()
            .new_address()
            .map(|a| a.to_string())
            .map_err(|source| WalletError::Node {
                action: "make an on-chain address",
                source,
            })
    }

    /// The wallet's money.
    pub fn balances(&self) -> Balances {
        let b = self.inner.node.list_balances();
        Balances {
            onchain_total_sat: b.total_onchain_balance_sats,
            onchain_spendable_sat: b.spendable_onchain_balance_sats,
            anchor_reserve_sat: b.total_anchor_channels_reserve_sats,
            lightning_sat: b.total_lightning_balance_sats,
        }
    }

    /// All channels.
    pub fn channels(&self) -> Vec<ChannelSummary> {
        self.inner
            .node
            .list_channels()
            .into_iter()
            .map(|c| ChannelSummary {
                user_channel_id: c.user_channel_id.0,
                counterparty: c.counterparty_node_id.to_string(),
                value_sat: c.channel_value_sats,
                outbound_msat: c.outbound_capacity_msat,
                inbound_msat: c.inbound_capacity_msat,
                next_outbound_htlc_limit_msat: c.next_outbound_htlc_limit_msat,
                ready: c.is_channel_ready,
                usable: c.is_usable,
            })
            .collect()
    }

    /// Connects to a peer (and reconnects after restarts).
    pub fn connect(&self, peer: NodeId, addr: std::net::SocketAddr) -> Result<(), ChannelError> {
        self.inner
            .node
            .connect(peer, SocketAddress::from(addr), true)
            .map_err(|source| ChannelError::Node {
                action: "connect",
                peer: peer.to_string(),
                source,
            })
    }

    /// Opens a private channel of `amount_sat` to `peer`, optionally giving
    /// them `push_msat` of it. Returns our id for the channel.
    pub fn open_channel(
        &self,
        peer: NodeId,
        addr: std::net::SocketAddr,
        amount_sat: u64,
        push_msat: Option<u64>,
    ) -> Result<u128, ChannelError> {
        self.inner
            .node
            .open_channel(peer, SocketAddress::from(addr), amount_sat, push_msat, None)
            .map(|id| id.0)
            .map_err(|source| ChannelError::Node {
                action: "open a channel",
                peer: peer.to_string(),
                source,
            })
    }

    /// Makes sure there is a direct channel to `host` (for a host no route
    /// reaches, or to make paying it free): returns the existing one, or opens
    /// one of `amount_sat`, at most `direct_channel_max_sat`.
    pub fn open_direct_channel(
        &self,
        host: NodeId,
        addr: std::net::SocketAddr,
        amount_sat: u64,
    ) -> Result<u128, ChannelError> {
        let cap_sat = self.inner.config.direct_channel_max_sat;
        if amount_sat > cap_sat {
            return Err(ChannelError::OverCap {
                amount_sat,
                cap_sat,
                peer: host.to_string(),
            });
        }
        if let Some(c) = self
            .inner
            .node
            .list_channels()
            .iter()
            .find(|c| c.counterparty_node_id == host)
        {
            return Ok(c.user_channel_id.0);
        }
        self.open_channel(host, addr, amount_sat, None)
    }

    /// Closes a channel cooperatively.
    pub fn close_channel(&self, user_channel_id: u128, peer: NodeId) -> Result<(), ChannelError> {
        if !self
            .inner
            .node
            .list_channels()
            .iter()
            .any(|c| c.user_channel_id.0 == user_channel_id)
        {
            return Err(ChannelError::UnknownChannel {
                user_channel_id,
                peer: peer.to_string(),
            });
        }
        self.inner
            .node
            .close_channel(&UserChannelId(user_channel_id), peer)
            .map_err(|source| ChannelError::Node {
                action: "close the channel",
                peer: peer.to_string(),
                source,
            })
    }

    /// The largest single payment the usable channels can send right now.
    pub fn sendable_msat(&self) -> u64 {
        self.inner
            .node
            .list_channels()
            .iter()
            .filter(|c| c.is_usable)
            .map(|c| c.next_outbound_htlc_limit_msat)
            .fold(0u64, u64::saturating_add)
    }

    fn check_amount(&self, amount_msat: u64) -> Result<(), PayError> {
        if amount_msat == 0 || amount_msat > MAX_MSAT {
            return Err(PayError::InvalidAmount { amount_msat });
        }
        let sendable_msat = self.sendable_msat();
        if amount_msat > sendable_msat {
            return Err(PayError::OverChannelLimit {
                amount_msat,
                sendable_msat,
            });
        }
        Ok(())
    }

    fn route_params(&self, amount_msat: u64) -> RouteParametersConfig {
        let max_fee = (amount_msat as u128 * self.inner.config.max_fee_ppm as u128 / 1_000_000) as u64;
        RouteParametersConfig {
            max_total_routing_fee_msat: Some(max_fee),
            ..Default::default()
        }
    }

    /// Pays `amount_msat` to `payee` by keysend, with `contract` in the
    /// payment's TLV so the host can tell what it is for. Returns the payment
    /// id; the outcome arrives as a ledger record.
    pub fn pay_keysend(
        &self,
        payee: NodeId,
        amount_msat: u64,
        contract: Option<ContractId>,
    ) -> Result<String, PayError> {
        self.check_amount(amount_msat)?;
        let preimage = PaymentPreimage(rand::random::<[u8; 32]>());
        let id = payment_id_hex(&PaymentId(PaymentHash::from(preimage).0));
        let rec = PaymentRecord {
            id: id.clone(),
            direction: Direction::Outbound,
            method: Method::Keysend,
            contract,
            counterparty: Some(payee.to_string()),
            amount_msat: Some(amount_msat),
            fee_msat: None,
            status: Status::Pending,
            failure: None,
            updated_at: now_secs(),
        };
        self.inner.record(&rec)?;
        match self.send_keysend(payee, amount_msat, contract, preimage) {
            Ok(()) => Ok(id),
            Err(e) => {
                self.inner.record(&failed(&rec, &e.to_string()))?;
                Err(PayError::Node(e))
            }
        }
    }

    fn send_keysend(
        &self,
        payee: NodeId,
        amount_msat: u64,
        contract: Option<ContractId>,
        preimage: PaymentPreimage,
    ) -> Result<(), ldk_node::NodeError> {
        let tlvs = contract
            .map(|c| {
                vec![CustomTlvRecord {
                    type_num: CONTRACT_TLV_TYPE,
                    value: c.0.to_vec(),
                }]
            })
            .unwrap_or_default();
        self.inner
            .node
            .spontaneous_payment()
            .send_with_preimage_and_custom_tlvs(
                amount_msat,
                payee,
                tlvs,
                preimage,
                Some(self.route_params(amount_msat)),
            )
            .map(|_| ())
    }

    /// A BOLT11 invoice for `amount_msat`, valid for `expiry_secs`.
    pub fn invoice(&self, amount_msat: u64, description: &str, expiry_secs: u32) -> Result<String, ReceiveError> {
        if amount_msat == 0 || amount_msat > MAX_MSAT {
            return Err(ReceiveError::InvalidAmount { amount_msat });
        }
        let description = Description::new(description.to_string()).map_err(|_| ReceiveError::DescriptionTooLong {
            len: description.len(),
            max: MAX_DESCRIPTION,
        })?;
        self.inner
            .node
            .bolt11_payment()
            .receive(amount_msat, &Bolt11InvoiceDescription::Direct(description), expiry_secs)
            .map(|i| i.to_string())
            .map_err(|source| ReceiveError::Node {
                what: "invoice",
                source,
            })
    }

    /// A BOLT11 invoice paid through the configured LSPS2 provider, which
    /// opens a channel to us just in time and keeps at most
    /// `max_lsp_fee_msat` (if given) of the payment.
    pub fn invoice_via_lsp(
        &self,
        amount_msat: u64,
        description: &str,
        expiry_secs: u32,
        max_lsp_fee_msat: Option<u64>,
    ) -> Result<String, ReceiveError> {
        if self.inner.config.lsps2.is_none() {
            return Err(ReceiveError::NoLiquiditySource);
        }
        if amount_msat == 0 || amount_msat > MAX_MSAT {
            return Err(ReceiveError::InvalidAmount { amount_msat });
        }
        let description = Description::new(description.to_string()).map_err(|_| ReceiveError::DescriptionTooLong {
            len: description.len(),
            max: MAX_DESCRIPTION,
        })?;
        self.inner
            .node
            .bolt11_payment()
            .receive_via_jit_channel(
                amount_msat,
                &Bolt11InvoiceDescription::Direct(description),
                expiry_secs,
                max_lsp_fee_msat,
            )
            .map(|i| i.to_string())
            .map_err(|source| ReceiveError::Node {
                what: "invoice through the LSP",
                source,
            })
    }

    /// A BOLT12 offer; `None` lets the payer choose the amount.
    pub fn offer(&self, amount_msat: Option<u64>, description: &str) -> Result<String, ReceiveError> {
        let p = self.inner.node.bolt12_payment();
        let offer = match amount_msat {
            Some(a) if a == 0 || a > MAX_MSAT => return Err(ReceiveError::InvalidAmount { amount_msat: a }),
            Some(a) => p.receive(a, description, None, None),
            None => p.receive_variable_amount(description, None),
        };
        offer
            .map(|o| o.to_string())
            .map_err(|source| ReceiveError::Node { what: "offer", source })
    }

    /// Pays a BOLT11 invoice (text as pasted). `amount_msat` is needed only
    /// when the invoice names none.
    pub fn pay_invoice(&self, text: &str, amount_msat: Option<u64>) -> Result<String, PayError> {
        let text = text.trim();
        if text.len() > MAX_PAYMENT_TEXT {
            return Err(PayError::TooLong {
                what: "invoice",
                len: text.len(),
                max: MAX_PAYMENT_TEXT,
            });
        }
        let invoice =
            Bolt11Invoice::from_str(text).map_err(|e| PayError::MalformedInvoice { reason: e.to_string() })?;
        let ours = self.inner.config.network;
        if invoice.network() != ours.to_ldk() {
            return Err(PayError::WrongNetwork {
                what: "invoice",
                found: invoice.network().to_string(),
                expected: ours,
            });
        }
        if invoice.is_expired() {
            let ago_secs = invoice
                .expires_at()
                .map(|at| std::time::SystemTime::UNIX_EPOCH + at)
                .and_then(|at| at.elapsed().ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Err(PayError::Expired {
                what: "invoice",
                ago_secs,
            });
        }
        let amount = match (invoice.amount_milli_satoshis(), amount_msat) {
            (Some(a), _) => a,
            (None, Some(a)) => a,
            (None, None) => return Err(PayError::NoAmount { what: "invoice" }),
        };
        self.check_amount(amount)?;
        let id = payment_id_hex(&PaymentId(*invoice.payment_hash().as_byte_array()));
        let rec = PaymentRecord {
            id: id.clone(),
            direction: Direction::Outbound,
            method: Method::Bolt11,
            contract: None,
            counterparty: Some(invoice.recover_payee_pub_key().to_string()),
            amount_msat: Some(amount),
            fee_msat: None,
            status: Status::Pending,
            failure: None,
            updated_at: now_secs(),
        };
        let p = self.inner.node.bolt11_payment();
        let params = Some(self.route_params(amount));
        let sent = match invoice.amount_milli_satoshis() {
            Some(_) => p.send(&invoice, params),
            None => p.send_using_amount(&invoice, amount, params),
        };
        match sent {
            Ok(_) => {
                self.inner.record(&rec)?;
                Ok(id)
            }
            // Already paid or in flight: ldk-node records nothing new.
            Err(e @ ldk_node::NodeError::DuplicatePayment) => Err(PayError::Node(e)),
            Err(e) => {
                // ldk-node stored it as failed; so does the ledger.
                self.inner.record(&failed(&rec, &e.to_string()))?;
                Err(PayError::Node(e))
            }
        }
    }

    /// Pays a BOLT12 offer (text as pasted). `amount_msat` is needed only
    /// when the offer names none.
    pub fn pay_offer(&self, text: &str, amount_msat: Option<u64>) -> Result<String, PayError> {
        let text = text.trim();
        if text.len() > MAX_PAYMENT_TEXT {
            return Err(PayError::TooLong {
                what: "offer",
                len: text.len(),
                max: MAX_PAYMENT_TEXT,
            });
        }
        let offer = Offer::from_str(text).map_err(|e| PayError::MalformedOffer {
            reason: format!("{e:?}"),
        })?;
        let ours = self.inner.config.network;
        if !offer.supports_chain(ChainHash::using_genesis_block(ours.to_ldk())) {
            let found = offer
                .chains()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(PayError::WrongNetwork {
                what: "offer",
                found: format!("chain {found}"),
                expected: ours,
            });
        }
        if offer.is_expired() {
            let ago_secs = offer
                .absolute_expiry()
                .map(|at| std::time::SystemTime::UNIX_EPOCH + at)
                .and_then(|at| at.elapsed().ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            return Err(PayError::Expired {
                what: "offer",
                ago_secs,
            });
        }
        let offer_amount = match offer.amount() {
            Some(OfferAmount::Bitcoin { amount_msats }) => Some(amount_msats),
            Some(_) => {
                return Err(PayError::MalformedOffer {
                    reason: "the offer is priced in a currency, not bitcoin".into(),
                })
            }
            None => None,
        };
        let amount = match (offer_amount, amount_msat) {
            (Some(a), _) => a,
            (None, Some(a)) => a,
            (None, None) => return Err(PayError::NoAmount { what: "offer" }),
        };
        self.check_amount(amount)?;
        let p = self.inner.node.bolt12_payment();
        let params = Some(self.route_params(amount));
        let sent = match offer_amount {
            Some(_) => p.send(&offer, None, None, params),
            None => p.send_using_amount(&offer, amount, None, None, params),
        };
        let id = match sent {
            Ok(id) => payment_id_hex(&id),
            Err(e) => return Err(PayError::Node(e)),
        };
        let rec = PaymentRecord {
            id: id.clone(),
            direction: Direction::Outbound,
            method: Method::Bolt12,
            contract: None,
            counterparty: None,
            amount_msat: Some(amount),
            fee_msat: None,
            status: Status::Pending,
            failure: None,
            updated_at: now_secs(),
        };
        self.inner.record(&rec)?;
        Ok(id)
    }

    /// Adds `amount_msat` to what `contract` owes `payee` (durably). Call
    /// [`Lightning::settle_due`] to pay what has passed the threshold.
    pub fn owe(&self, contract: ContractId, payee: &NodeId, amount_msat: u64) -> Result<u64, OweError> {
        let total = self.inner.store.owe(contract, &payee.to_string(), amount_msat)?;
        self.inner.bump();
        Ok(total)
    }

    /// Everything owed and in flight, per contract.
    pub fn owed(&self) -> Result<Vec<Owed>, StoreError> {
        self.inner.store.owed()
    }

    /// Pays every contract whose amount owed has reached the settle
    /// threshold, each by one keysend carrying the contract id, for exactly
    /// the amount owed. Does nothing (and says why) while the chain source is
    /// unusable.
    pub fn settle_due(&self) -> Result<SettleReport, StoreError> {
        let mut report = SettleReport::default();
        if let Err(e) = self.chain_status() {
            tracing::warn!(error = %e, "settlements deferred");
            report.deferred = Some(e);
            return Ok(report);
        }
        let threshold = self.inner.config.settle_threshold_msat.max(1);
        for contract in self.inner.store.due(threshold)? {
            let preimage = PaymentPreimage(rand::random::<[u8; 32]>());
            let id = payment_id_hex(&PaymentId(PaymentHash::from(preimage).0));
            let Some((settlement, pending)) = self.inner.store.begin_settlement(contract, threshold, &id)? else {
                continue;
            };
            self.inner.announce(&pending);
            let payee = match NodeId::from_str(&settlement.payee) {
                Ok(p) => p,
                Err(e) => {
                    let reason = format!("payee {} is not a node id: {e}", settlement.payee);
                    self.inner.record(&failed(&pending, &reason))?;
                    report.refused.push((contract, reason));
                    continue;
                }
            };
            match self.send_keysend(payee, settlement.amount_msat, Some(contract), preimage) {
                Ok(()) => {
                    self.inner.store.settlement_sent(&id)?;
                    tracing::info!(%contract, amount_msat = settlement.amount_msat, payment = %id, "settlement sent");
                    report.sent.push((contract, id, settlement.amount_msat));
                }
                Err(e) => {
                    tracing::warn!(%contract, error = %e, "settlement refused; amount owed again");
                    self.inner.record(&failed(&pending, &e.to_string()))?;
                    report.refused.push((contract, e.to_string()));
                }
            }
        }
        Ok(report)
    }

    /// The ledger as bunker-ln stored it.
    pub fn payments(&self) -> Result<Vec<PaymentRecord>, StoreError> {
        self.inner.store.payments()
    }

    /// Hands every stored record to the engine's ledger again, oldest first.
    ///
    /// Outcomes that come from ldk-node events are retried until the ledger
    /// takes them; records made directly by a call (a payment refused at
    /// once, a pending settlement) are offered once. Calling this after the
    /// engine's ledger was unavailable, or restored from an older snapshot,
    /// brings it level. Returns how many records were offered.
    pub fn replay_ledger(&self) -> Result<usize, LedgerSinkError> {
        let records = self.inner.store.payments().map_err(|e| LedgerSinkError {
            payment_id: "*".into(),
            reason: e.to_string(),
        })?;
        let _order = self.inner.record_lock.lock().unwrap_or_else(|p| p.into_inner());
        for r in &records {
            self.inner.ledger.record(r)?;
        }
        Ok(records.len())
    }

    /// One payment from the ledger.
    pub fn payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        self.inner.store.get(id)
    }

    /// ldk-node's own payment store (for cross-checks and the admin page's
    /// raw view).
    pub fn ldk_payments(&self) -> Vec<PaymentDetails> {
        self.inner.node.list_payments()
    }

    /// Waits until payment `id` has succeeded or failed.
    pub fn wait_payment(&self, id: &str, timeout: Duration) -> Result<PaymentRecord, WaitTimeout> {
        self.wait_until(&format!("payment {id}"), timeout, || {
            self.inner
                .store
                .get(id)
                .ok()
                .flatten()
                .filter(|r| r.status != Status::Pending)
        })
    }

    /// Waits until a usable channel with `peer` can send at least
    /// `amount_msat` in one payment.
    pub fn wait_sendable(&self, peer: &NodeId, amount_msat: u64, timeout: Duration) -> Result<(), WaitTimeout> {
        self.wait_until(&format!("{amount_msat} msat sendable to {peer}"), timeout, || {
            self.inner
                .node
                .list_channels()
                .iter()
                .any(|c| {
                    c.counterparty_node_id == *peer && c.is_usable && c.next_outbound_htlc_limit_msat >= amount_msat
                })
                .then_some(())
        })
    }

    /// Waits until `check` returns something, re-checking on every change
    /// and at least every 200 ms (channel state changes without an event).
    pub fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Option<T>,
    ) -> Result<T, WaitTimeout> {
        let start = Instant::now();
        loop {
            let seen = *self.inner.generation.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = check() {
                return Ok(v);
            }
            let elapsed = start.elapsed();
            if elapsed >= timeout {
                return Err(WaitTimeout {
                    what: what.to_string(),
                    waited_ms: elapsed.as_millis() as u64,
                });
            }
            let left = (timeout - elapsed).min(Duration::from_millis(200));
            let g = self.inner.generation.lock().unwrap_or_else(|p| p.into_inner());
            if *g == seen {
                let _ = self.inner.changed.wait_timeout(g, left);
            }
        }
    }

    /// Stops the node (also done on drop).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(t) = self.events_thread.take() {
            self.stop.notify_one();
            let _ = t.join();
            if let Err(e) = self.inner.node.stop() {
                tracing::warn!(error = %e, "ldk-node did not stop cleanly");
            }
        }
    }
}

impl Drop for Lightning {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn failed(rec: &PaymentRecord, reason: &str) -> PaymentRecord {
    PaymentRecord {
        status: Status::Failed,
        failure: Some(reason.to_string()),
        updated_at: now_secs(),
        ..rec.clone()
    }
}

impl Inner {
    fn bump(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        self.changed.notify_all();
    }

    /// Stores the record, hands the merged result to the engine's ledger and
    /// the event stream.
    fn record(&self, rec: &PaymentRecord) -> Result<PaymentRecord, StoreError> {
        let merged = {
            let _order = self.record_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.store.apply(rec)?
        };
        self.announce(&merged);
        Ok(merged)
    }

    /// Tells the engine's ledger and listeners about a stored record. A
    /// ledger failure here is logged; the event loop (which retries) is the
    /// path that guarantees delivery of outcomes.
    fn announce(&self, merged: &PaymentRecord) {
        {
            let _order = self.record_lock.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = self.ledger.record(merged) {
                tracing::warn!(error = %e, "payment ledger did not take a record");
            }
        }
        let _ = self.events.send(LnEvent::Payment(merged.clone()));
        self.bump();
    }

    /// Stores and delivers the record; the error means "try the event again".
    fn record_for_event(&self, rec: &PaymentRecord) -> Result<(), LedgerSinkError> {
        let _order = self.record_lock.lock().unwrap_or_else(|p| p.into_inner());
        let merged = self.store.apply(rec).map_err(|e| LedgerSinkError {
            payment_id: rec.id.clone(),
            reason: e.to_string(),
        })?;
        self.ledger.record(&merged)?;
        drop(_order);
        let _ = self.events.send(LnEvent::Payment(merged));
        self.bump();
        Ok(())
    }

    /// After a crash: settlements taken out of `owed` but never handed to
    /// ldk-node are owed again; those ldk-node knows follow its store.
    fn recover_settlements(&self) {
        let unresolved = match self.store.unresolved_settlements() {
            Ok(u) => u,
            Err(e) => {
                tracing::error!(error = %e, "cannot read unresolved settlements");
                return;
            }
        };
        for (id, _handed_over) in unresolved {
            let Some(pid) = parse_payment_id(&id) else { continue };
            let Some(rec) = self.store.get(&id).ok().flatten() else {
                continue;
            };
            let outcome = match self.node.payment(&pid) {
                None => Some(failed(&rec, "never sent (interrupted before ldk-node had it)")),
                Some(d) if d.status == ldk_node::payment::PaymentStatus::Succeeded => Some(PaymentRecord {
                    status: Status::Succeeded,
                    fee_msat: d.fee_paid_msat,
                    updated_at: now_secs(),
                    ..rec.clone()
                }),
                Some(d) if d.status == ldk_node::payment::PaymentStatus::Failed => Some(failed(&rec, "failed")),
                Some(_) => None,
            };
            if let Some(o) = outcome {
                if let Err(e) = self.record(&o) {
                    tracing::error!(error = %e, payment = %id, "cannot resolve settlement");
                }
            }
        }
    }

    /// The ledger record an ldk-node event stands for, if any.
    fn record_of(&self, event: &Event) -> Option<PaymentRecord> {
        let now = now_secs();
        match event {
            Event::PaymentSuccessful {
                payment_id,
                payment_hash,
                fee_paid_msat,
                ..
            } => {
                let pid = payment_id.unwrap_or(PaymentId(payment_hash.0));
                let details = self.node.payment(&pid);
                let known = self.store.get(&payment_id_hex(&pid)).ok().flatten();
                Some(PaymentRecord {
                    id: payment_id_hex(&pid),
                    direction: Direction::Outbound,
                    method: known
                        .as_ref()
                        .map(|k| k.method)
                        .or_else(|| details.as_ref().and_then(|d| method_of(&d.kind)))
                        .unwrap_or(Method::Keysend),
                    contract: known.as_ref().and_then(|k| k.contract),
                    counterparty: known.as_ref().and_then(|k| k.counterparty.clone()),
                    amount_msat: details.as_ref().and_then(|d| d.amount_msat),
                    fee_msat: fee_paid_msat.or_else(|| details.as_ref().and_then(|d| d.fee_paid_msat)),
                    status: Status::Succeeded,
                    failure: None,
                    updated_at: now,
                })
            }
            Event::PaymentFailed {
                payment_id,
                payment_hash,
                reason,
            } => {
                let pid = payment_id.or_else(|| payment_hash.map(|h| PaymentId(h.0)))?;
                let details = self.node.payment(&pid);
                let known = self.store.get(&payment_id_hex(&pid)).ok().flatten();
                Some(PaymentRecord {
                    id: payment_id_hex(&pid),
                    direction: Direction::Outbound,
                    method: known
                        .as_ref()
                        .map(|k| k.method)
                        .or_else(|| details.as_ref().and_then(|d| method_of(&d.kind)))
                        .unwrap_or(Method::Keysend),
                    contract: known.as_ref().and_then(|k| k.contract),
                    counterparty: known.as_ref().and_then(|k| k.counterparty.clone()),
                    amount_msat: details.as_ref().and_then(|d| d.amount_msat),
                    fee_msat: None,
                    status: Status::Failed,
                    failure: Some(reason.map(|r| format!("{r:?}")).unwrap_or_else(|| "unknown".into())),
                    updated_at: now,
                })
            }
            Event::PaymentReceived {
                payment_id,
                payment_hash,
                amount_msat,
                custom_records,
            } => {
                let pid = payment_id.unwrap_or(PaymentId(payment_hash.0));
                let details = self.node.payment(&pid);
                Some(PaymentRecord {
                    id: payment_id_hex(&pid),
                    direction: Direction::Inbound,
                    method: details
                        .as_ref()
                        .and_then(|d| method_of(&d.kind))
                        .unwrap_or(Method::Keysend),
                    contract: ContractId::from_custom_records(custom_records),
                    counterparty: None,
                    amount_msat: Some(*amount_msat),
                    fee_msat: None,
                    status: Status::Succeeded,
                    failure: None,
                    updated_at: now,
                })
            }
            _ => None,
        }
    }

    /// Handles one event; `Err` means "not done, offer it again later".
    fn handle(&self, event: &Event) -> Result<(), LedgerSinkError> {
        if let Some(rec) = self.record_of(event) {
            self.record_for_event(&rec)?;
            return Ok(());
        }
        let lnev = match event {
            Event::ChannelReady {
                user_channel_id,
                counterparty_node_id,
                ..
            } => Some(LnEvent::ChannelReady {
                user_channel_id: user_channel_id.0,
                counterparty: counterparty_node_id.map(|n| n.to_string()),
            }),
            Event::ChannelClosed {
                user_channel_id,
                counterparty_node_id,
                reason,
                ..
            } => Some(LnEvent::ChannelClosed {
                user_channel_id: user_channel_id.0,
                counterparty: counterparty_node_id.map(|n| n.to_string()),
                reason: reason.as_ref().map(|r| r.to_string()),
            }),
            _ => None,
        };
        if let Some(e) = lnev {
            let _ = self.events.send(e);
        }
        self.bump();
        Ok(())
    }

    fn event_loop(self: Arc<Self>, stop: Arc<tokio::sync::Notify>) {
        // Only waits for the next event here; ldk-node's own calls
        // (event_handled) run outside this runtime, on ldk-node's.
        let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the event runtime; payments will not be recorded");
                return;
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            let event = rt.block_on(async {
                tokio::select! {
                    _ = stop.notified() => None,
                    e = self.node.next_event_async() => Some(e),
                }
            });
            let Some(event) = event else { return };
            match self.handle(&event) {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    if let Err(e) = self.node.event_handled() {
                        tracing::error!(error = %e, "ldk-node could not mark an event handled");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "event not recorded; retrying");
                    let stopped = rt.block_on(async {
                        tokio::select! {
                            _ = stop.notified() => true,
                            _ = tokio::time::sleep(backoff) => false,
                        }
                    });
                    if stopped {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_with_an_unreachable_chain_source_is_a_clear_error_and_builds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let chain = ChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port,
            user: "u".into(),
            password: "hunter2".into(),
        };
        let config = LnConfig::new(dir.path(), crate::Network::Regtest, chain);
        let seed = Seed::from_entropy(&[3; 32]);
        let err = Lightning::start(config, &seed, Arc::new(crate::NoExternalLedger))
            .err()
            .unwrap();
        assert!(
            matches!(err, StartError::Chain(ChainError::Unreachable { .. })),
            "{err}"
        );
        assert!(err.to_string().contains("unreachable"), "{err}");
        assert!(!dir.path().join("ldk").exists());
    }

    #[test]
    fn owed_book_works_without_a_node() {
        let dir = tempfile::tempdir().unwrap();
        let book = OwedBook::open(dir.path()).unwrap();
        let payee = NodeId::from_str("02eec7245d6b7d2ccb30380bfbe2a3648cd7a942653f5aa340edcea1f283686619").unwrap();
        let c = ContractId([1; 32]);
        assert_eq!(book.owe(c, &payee, 123).unwrap(), 123);
        assert_eq!(book.owe(c, &payee, 877).unwrap(), 1000);
        drop(book);
        let book = OwedBook::open(dir.path()).unwrap();
        assert_eq!(book.owed().unwrap()[0].owed_msat, 1000);
    }
}
