//! What the daemon's config file says about Lightning.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The Bitcoin network the box's wallet lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// Real money.
    Bitcoin,
    /// testnet3.
    Testnet,
    /// Signet.
    Signet,
    /// A local regtest chain (tests, the sandbox).
    Regtest,
}

impl Network {
    pub(crate) fn to_ldk(self) -> ldk_node::bitcoin::Network {
        match self {
            Network::Bitcoin => ldk_node::bitcoin::Network::Bitcoin,
            Network::Testnet => ldk_node::bitcoin::Network::Testnet,
            Network::Signet => ldk_node::bitcoin::Network::Signet,
            Network::Regtest => ldk_node::bitcoin::Network::Regtest,
        }
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Network::Bitcoin => "bitcoin",
            Network::Testnet => "testnet",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        })
    }
}

/// Where the wallet learns about the chain and sends its transactions.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChainSource {
    /// An Esplora HTTP API, e.g. `https://blockstream.info/api`.
    Esplora {
        /// Base URL of the API.
        url: String,
    },
    /// An Electrum server, e.g. `ssl://electrum.blockstream.info:50002`.
    Electrum {
        /// `tcp://host:port` or `ssl://host:port`.
        url: String,
    },
    /// A Bitcoin Core (or Knots) node's JSON-RPC, such as the owner's own full
    /// node.
    BitcoindRpc {
        /// Host name or IP address.
        host: String,
        /// RPC port.
        port: u16,
        /// RPC user (`__cookie__` for cookie authentication).
        user: String,
        /// RPC password. Never logged.
        password: String,
    },
}

impl std::fmt::Debug for ChainSource {
    // The RPC password must not reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainSource::Esplora { url } => f.debug_struct("Esplora").field("url", url).finish(),
            ChainSource::Electrum { url } => f.debug_struct("Electrum").field("url", url).finish(),
            ChainSource::BitcoindRpc { host, port, user, .. } => f
                .debug_struct("BitcoindRpc")
                .field("host", host)
                .field("port", port)
                .field("user", user)
                .field("password", &"<hidden>")
                .finish(),
        }
    }
}

impl std::fmt::Display for ChainSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainSource::Esplora { url } => write!(f, "Esplora at {url}"),
            ChainSource::Electrum { url } => write!(f, "Electrum server at {url}"),
            ChainSource::BitcoindRpc { host, port, .. } => write!(f, "bitcoind RPC at {host}:{port}"),
        }
    }
}

/// An LSPS2 liquidity provider: for a new box with no inbound capacity, it
/// opens a channel just in time when the box's first invoice is paid, and
/// keeps a fee out of that payment.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lsps2Source {
    /// The provider's node id, hex.
    pub node_id: String,
    /// Where to reach it.
    pub address: SocketAddr,
    /// Access token, if the provider wants one. Never logged.
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for Lsps2Source {
    // The token must not reach a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lsps2Source")
            .field("node_id", &self.node_id)
            .field("address", &self.address)
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// Lightning settings of one box.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LnConfig {
    /// Directory for ldk-node's state and bunker-ln's own ledger (a
    /// subdirectory of the box's data root, never the SD card's root).
    pub data_dir: PathBuf,
    /// The network; must match the chain source.
    pub network: Network,
    /// Where the chain comes from.
    pub chain: ChainSource,
    /// Where to accept Lightning peer connections (e.g. `0.0.0.0:9735`).
    /// Empty: accept none; the box still opens channels outward.
    #[serde(default)]
    pub listen: Vec<SocketAddr>,
    /// Settle what a contract is owed once it reaches this many millisatoshi.
    /// See [`default_settle_threshold_msat`] for why the default is what it is.
    #[serde(default = "default_settle_threshold_msat")]
    pub settle_threshold_msat: u64,
    /// Largest share of a settlement that may go to routing fees, in parts
    /// per million of the amount (10_000 = 1%). Routes dearer than that are
    /// not taken; the amount stays owed.
    #[serde(default = "default_max_fee_ppm")]
    pub max_fee_ppm: u64,
    /// On-chain reserve kept per anchor channel, in satoshi. ldk-node refuses
    /// to open or accept anchor channels without it.
    #[serde(default = "default_anchor_reserve_sat")]
    pub anchor_reserve_sat: u64,
    /// Largest channel the engine may open on its own to a host it cannot
    /// route to ([`crate::Lightning::open_direct_channel`]), in satoshi. A
    /// direct channel makes micro-payments to that host free; the cap keeps
    /// the on-chain money such channels tie up bounded.
    #[serde(default = "default_direct_channel_max_sat")]
    pub direct_channel_max_sat: u64,
    /// Optional LSPS2 provider for just-in-time inbound channels. It is
    /// trusted for zero-confirmation channels and to get closing transactions
    /// confirmed (a new box has no on-chain funds for an anchor reserve).
    #[serde(default)]
    pub lsps2: Option<Lsps2Source>,
    /// How long to wait for the chain source to answer at start and before
    /// each settlement round, in milliseconds.
    #[serde(default = "default_chain_timeout_ms")]
    pub chain_timeout_ms: u64,
}

/// 500 sat. A settlement routed over up to three hops that charge the usual
/// 1 sat base and 0.1% each costs about 3 sat + 0.3%; 1% of 500 sat is 5 sat,
/// so from 500 sat on such fees stay under 1% (the exact bound is enforced
/// per payment by [`LnConfig::max_fee_ppm`]). A direct channel costs nothing.
pub fn default_settle_threshold_msat() -> u64 {
    500_000
}

/// 1% of the amount.
pub fn default_max_fee_ppm() -> u64 {
    10_000
}

/// 200,000 sat: at the 10% in-flight limit a receiver accepts, settlements
/// of up to 20,000 sat fit in one payment, 40 times the settle threshold.
pub fn default_direct_channel_max_sat() -> u64 {
    200_000
}

/// ldk-node's own default: 25,000 sat per anchor channel.
pub fn default_anchor_reserve_sat() -> u64 {
    25_000
}

/// 5 s: long enough for a Pi on a slow link, short enough that a dead
/// chain source is reported while the user still looks at the screen.
pub fn default_chain_timeout_ms() -> u64 {
    5_000
}

impl LnConfig {
    /// A configuration with every optional value at its default.
    pub fn new(data_dir: impl Into<PathBuf>, network: Network, chain: ChainSource) -> LnConfig {
        LnConfig {
            data_dir: data_dir.into(),
            network,
            chain,
            listen: Vec::new(),
            settle_threshold_msat: default_settle_threshold_msat(),
            max_fee_ppm: default_max_fee_ppm(),
            anchor_reserve_sat: default_anchor_reserve_sat(),
            direct_channel_max_sat: default_direct_channel_max_sat(),
            lsps2: None,
            chain_timeout_ms: default_chain_timeout_ms(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut c = LnConfig::new(
            "/data/ln",
            Network::Regtest,
            ChainSource::BitcoindRpc {
                host: "127.0.0.1".into(),
                port: 18443,
                user: "u".into(),
                password: "rpc-secret".into(),
            },
        );
        c.lsps2 = Some(Lsps2Source {
            node_id: "02aa".into(),
            address: "127.0.0.1:9735".parse().unwrap(),
            token: Some("lsp-secret".into()),
        });
        let text = format!("{c:?}");
        assert!(!text.contains("rpc-secret") && !text.contains("lsp-secret"), "{text}");
        assert!(text.contains("18443") && text.contains("02aa"), "{text}");
    }

    #[test]
    fn config_reads_from_toml_with_defaults_filled_in() {
        let c: LnConfig = toml::from_str(
            r#"
            data_dir = "/data/ln"
            network = "signet"
            listen = ["0.0.0.0:9735"]
            [chain]
            kind = "esplora"
            url = "https://mempool.space/signet/api"
            "#,
        )
        .unwrap();
        assert_eq!(c.network, Network::Signet);
        assert_eq!(
            c.chain,
            ChainSource::Esplora {
                url: "https://mempool.space/signet/api".into()
            }
        );
        assert_eq!(c.settle_threshold_msat, default_settle_threshold_msat());
        assert_eq!(c.max_fee_ppm, 10_000);
        assert!(c.lsps2.is_none());
        let bad = toml::from_str::<LnConfig>(
            "data_dir = \"/x\"\nnetwork = \"mainnet\"\n[chain]\nkind = \"esplora\"\nurl = \"u\"",
        );
        assert!(bad.unwrap_err().to_string().contains("mainnet"));
    }
}
