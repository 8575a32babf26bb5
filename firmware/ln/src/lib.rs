//! Bunker's Lightning wallet: how the box pays its hosts and gets paid.
//!
//! A thin, typed layer over [ldk-node](https://docs.rs/ldk-node) 0.7:
//!
//! - the node is built from the box's 24 words ([`bunker_core::seed::Seed`]),
//!   so the same words on a new box give back the same wallet;
//! - the chain source is checked before start and before each settlement
//!   round, with a clear [`ChainError`] when it cannot be used;
//! - every payment becomes a [`PaymentRecord`] in bunker-ln's own store and
//!   in the engine's ledger ([`PaymentLedger`], implemented over
//!   MANIFEST.db), moving from pending to succeeded or failed;
//! - storage is paid per contract: amounts accrue durably
//!   ([`Lightning::owe`], or [`OwedBook`] while the node is down) and are paid
//!   by keysend carrying the [`ContractId`] once they pass a threshold chosen
//!   so routing fees stay under 1% ([`Lightning::settle_due`]).
//!
//! ```no_run
//! use std::sync::Arc;
//! use bunker_ln::{ChainSource, Lightning, LnConfig, Network, NoExternalLedger};
//! # fn seed() -> bunker_core::seed::Seed { bunker_core::seed::Seed::generate() }
//! let config = LnConfig::new(
//!     "/data/bunker/ln",
//!     Network::Bitcoin,
//!     ChainSource::Esplora { url: "https://blockstream.info/api".into() },
//! );
//! let ln = Lightning::start(config, &seed(), Arc::new(NoExternalLedger))?;
//! println!("node id {}", ln.node_id());
//! # Ok::<(), bunker_ln::StartError>(())
//! ```
//!
//! With the `regtest` feature, [`regtest::Bitcoind`] runs a real Bitcoin Knots
//! regtest chain for tests and the sandbox.
#![deny(missing_docs)]

pub mod chain;
pub mod config;
pub mod error;
mod events;
pub mod ledger;
mod node;
mod pay;
mod settle;
pub mod store;

#[cfg(feature = "regtest")]
pub mod regtest;

pub use chain::ChainError;
pub use config::{ChainSource, LnConfig, Lsps2Source, Network};
pub use error::{ChannelError, NodeError, PayError, ReceiveError, StartError, WaitTimeout, WalletError};
pub use ledger::{
    ContractId, Direction, LedgerSinkError, Method, NoExternalLedger, PaymentLedger, PaymentRecord, Status,
    CONTRACT_TLV_TYPE,
};
pub use node::{Balances, ChannelSummary, Lightning, LnEvent, NodeId};
pub use pay::MAX_PAYMENT_TEXT;
pub use settle::{OwedBook, SettleReport};
pub use store::{OweError, Owed, StoreError};
