//! The Bunker daemon's plumbing, shared by `bunkerd` and the `bunker` CLI:
//! configuration, the data directory and its seed, logging, and the client
//! side of the local API.
#![deny(missing_docs)]

pub mod config;
pub mod data_dir;
pub mod disk_watch;
pub mod front_panel;
pub mod local_api;
pub mod logging;
pub mod restore;
