//! bunker-node: the engine. The one place where policy lives (DESIGN §1):
//! what to store where, what to answer a peer, when to audit, pay and repair.
//!
//! The mechanisms it drives live below it: `bunker-core` seals and proves,
//! `bunker-manifest` remembers, `bunker-net` carries, `bunker-ln` pays. The
//! daemon (`bunkerd`) builds a [`Node`] from those parts and serves its
//! owner-facing API ([`Node::put`], [`Node::get`], [`Node::list`], …) to the
//! admin page and the `bunker` CLI.
//!
//! Layout:
//! - [`node`]: the [`Node`] handle, start-up, the inbound dispatch loop, shutdown.
//! - `db`: MANIFEST.db behind a mutex, reached from async code through `spawn_blocking`.
//! - `objects`: sealed objects and their proof sidecars on one disk (hosted, local, staging).
//! - `disk_set`, [`data_disks`]: objects spread over the data disks; disk states from the daemon's watcher.
//! - `host`: answers peers — offers (allocation policy), contracts, store, audit, fetch, release.
//! - `owner`: put, get, remove, placement, contracts with hosts, redundancy changes.
//! - `workers`: background loops of one shape — audits, full checks, repair, settlement.
//! - `ledger`: bunker-ln's payment records into MANIFEST.db.
//! - `label`: owner labels, sealed into every contract, from which files are recovered without a manifest.
//! - [`views`]: what the admin page and CLI are shown (serde types, no engine internals).
#![deny(missing_docs)]

pub mod config;
pub mod data_disks;
mod db;
mod disk_set;
pub mod error;
mod host;
mod label;
mod ledger;
pub mod node;
mod objects;
mod owner;
pub mod recovery;
pub mod replication;
/// What each side of a contract signs: public so another implementation (and
/// the tests, which play a foreign owner) signs exactly what a box checks.
pub mod sign;
pub mod views;
mod workers;

pub use config::{HostingTerms, NodeConfig, PlacementTerms, Policy, Tuning};
pub use data_disks::{DiskHealth, DiskStatus};
pub use error::{FileError, PutError, StartError};
pub use node::{FileStream, Node, NodeParts};
