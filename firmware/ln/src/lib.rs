//! Bunker's Lightning wallet (work in progress).
#![deny(missing_docs)]
