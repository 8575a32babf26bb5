//! The running Lightning node: ldk-node built from the box's seed, with
//! bunker-ln's ledger fed from its events.

use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ldk_node::bitcoin::secp256k1::PublicKey;
use ldk_node::config::{AnchorChannelsConfig, Config as LdkConfig};
use ldk_node::lightning::ln::msgs::SocketAddress;
use ldk_node::payment::PaymentDetails;
use ldk_node::UserChannelId;
use tokio::sync::broadcast;

use bunker_core::seed::Seed;

use crate::chain::{self, ChainError};
use crate::config::{ChainSource, LnConfig};
use crate::error::{ChannelError, StartError, WaitTimeout, WalletError};
use crate::ledger::{LedgerSinkError, PaymentLedger, PaymentRecord, Status};
use crate::store::{Store, StoreError};

/// A Lightning node id (secp256k1 public key). Parse with `NodeId::from_str`.
pub type NodeId = PublicKey;

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

/// A running Lightning node.
///
/// Its methods block (like ldk-node's own): from async code call them via
/// `spawn_blocking` or on a multi-threaded runtime. Stops on drop.
pub struct Lightning {
    pub(crate) inner: Arc<Inner>,
    events_thread: Option<JoinHandle<()>>,
    stop: Arc<tokio::sync::Notify>,
}

pub(crate) struct Inner {
    pub(crate) node: ldk_node::Node,
    pub(crate) store: Store,
    pub(crate) ledger: Arc<dyn PaymentLedger>,
    pub(crate) config: LnConfig,
    pub(crate) events: broadcast::Sender<LnEvent>,
    /// Serialises "store, then tell the ledger" so the ledger sees changes in
    /// the order they were stored.
    pub(crate) record_lock: Mutex<()>,
    /// Bumped on every change; waiters sleep on `changed`.
    pub(crate) generation: Mutex<u64>,
    pub(crate) changed: Condvar,
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

        let mut ldk_config = LdkConfig {
            storage_dir_path: config.data_dir.join("ldk").display().to_string(),
            network: config.network.to_ldk(),
            ..LdkConfig::default()
        };
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

impl Inner {
    pub(crate) fn bump(&self) {
        let mut g = self.generation.lock().unwrap_or_else(|p| p.into_inner());
        *g += 1;
        self.changed.notify_all();
    }

    /// Stores the record, hands the merged result to the engine's ledger and
    /// the event stream.
    pub(crate) fn record(&self, rec: &PaymentRecord) -> Result<PaymentRecord, StoreError> {
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
    pub(crate) fn announce(&self, merged: &PaymentRecord) {
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
    pub(crate) fn record_for_event(&self, rec: &PaymentRecord) -> Result<(), LedgerSinkError> {
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
}
