//! Is the chain source there, and is it on our network?
//!
//! ldk-node starts even when its chain source cannot be reached (on regtest
//! and signet it silently falls back to default fee rates), and a box that
//! pays while blind to the chain cannot see a channel being cheated. So
//! bunker-ln asks the source itself, with a timeout, before starting and
//! before each settlement round, and says plainly what is wrong.

use std::time::Duration;

use base64::Engine as _;
use lightning_block_sync::http::{HttpEndpoint, JsonResponse};
use lightning_block_sync::rpc::RpcClient;

use crate::config::{ChainSource, Network};

/// Why the chain source cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChainError {
    /// Nothing answered, or it answered with an error.
    #[error("chain source {source_desc} is unreachable: {detail}")]
    Unreachable {
        /// Which source (never includes a password).
        source_desc: String,
        /// What went wrong, in words.
        detail: String,
    },
    /// It answered, too slowly.
    #[error("chain source {source_desc} did not answer within {timeout_ms} ms")]
    Timeout {
        /// Which source.
        source_desc: String,
        /// The time limit.
        timeout_ms: u64,
    },
    /// It answered for another network.
    #[error("chain source {source_desc} serves {found}, but the box is configured for {expected}")]
    WrongNetwork {
        /// Which source.
        source_desc: String,
        /// Our network.
        expected: Network,
        /// What the source says it is (its genesis block or chain name).
        found: String,
    },
}

/// A JSON value from bitcoind, as `lightning-block-sync`'s RPC client hands
/// it over.
pub(crate) struct RpcValue(pub serde_json::Value);

impl TryFrom<JsonResponse> for RpcValue {
    type Error = std::io::Error;
    fn try_from(r: JsonResponse) -> std::io::Result<RpcValue> {
        Ok(RpcValue(r.0))
    }
}

/// A bitcoind JSON-RPC client: the same HTTP client ldk-node uses, with its
/// 5 s socket timeouts and capped response sizes.
pub(crate) fn rpc_client(host: &str, port: u16, user: &str, password: &str) -> RpcClient {
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    RpcClient::new(&credentials, HttpEndpoint::for_host(host.to_string()).with_port(port))
}

/// bitcoind's name for a network in `getblockchaininfo`.
fn bitcoind_chain_name(network: Network) -> &'static str {
    match network {
        Network::Bitcoin => "main",
        Network::Testnet => "test",
        Network::Signet => "signet",
        Network::Regtest => "regtest",
    }
}

/// Runs `fut` on a private current-thread runtime in its own thread, so
/// that the probe can be called from anywhere, inside an async runtime too.
pub(crate) fn run_async<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> std::io::Result<T> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        Ok(rt.block_on(fut))
    })
    .join()
    .map_err(|_| std::io::Error::other("chain probe thread panicked"))?
}

/// Checks that `source` answers within `timeout` and serves `network`.
pub fn probe(source: &ChainSource, network: Network, timeout: Duration) -> Result<(), ChainError> {
    let source = source.clone();
    let desc = source.to_string();
    let timeout_ms = timeout.as_millis() as u64;
    let d = desc.clone();
    let outcome = run_async(async move {
        match tokio::time::timeout(timeout, probe_inner(&source, network)).await {
            Ok(r) => r,
            Err(_) => Err(ChainError::Timeout {
                source_desc: d,
                timeout_ms,
            }),
        }
    });
    match outcome {
        Ok(r) => r,
        Err(e) => Err(ChainError::Unreachable {
            source_desc: desc,
            detail: e.to_string(),
        }),
    }
}

async fn probe_inner(source: &ChainSource, network: Network) -> Result<(), ChainError> {
    let desc = source.to_string();
    let unreachable = |detail: String| ChainError::Unreachable {
        source_desc: desc.clone(),
        detail,
    };
    let genesis = ldk_node::bitcoin::constants::genesis_block(network.to_ldk()).block_hash();
    match source {
        ChainSource::BitcoindRpc {
            host,
            port,
            user,
            password,
        } => {
            let client = rpc_client(host, *port, user, password);
            let info: RpcValue = client
                .call_method("getblockchaininfo", &[])
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let chain = info.0.get("chain").and_then(|c| c.as_str()).unwrap_or("");
            if chain != bitcoind_chain_name(network) {
                return Err(ChainError::WrongNetwork {
                    source_desc: desc.clone(),
                    expected: network,
                    found: format!("chain {chain:?}"),
                });
            }
            Ok(())
        }
        ChainSource::Esplora { url } => {
            let client = esplora_client::Builder::new(url)
                .timeout(5)
                .max_retries(0)
                .build_async()
                .map_err(|e| unreachable(e.to_string()))?;
            let first = client.get_block_hash(0).await.map_err(|e| unreachable(e.to_string()))?;
            if first != genesis {
                return Err(ChainError::WrongNetwork {
                    source_desc: desc.clone(),
                    expected: network,
                    found: format!("genesis block {first}"),
                });
            }
            Ok(())
        }
        ChainSource::Electrum { url } => {
            use electrum_client::ElectrumApi as _;
            let url = url.clone();
            let header = tokio::task::spawn_blocking(move || {
                let config = electrum_client::ConfigBuilder::new().timeout(Some(5)).retry(0).build();
                let client = electrum_client::Client::from_config(&url, config)?;
                client.block_header(0)
            })
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .map_err(|e| unreachable(e.to_string()))?;
            if header.block_hash() != genesis {
                return Err(ChainError::WrongNetwork {
                    source_desc: desc.clone(),
                    expected: network,
                    found: format!("genesis block {}", header.block_hash()),
                });
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_port_is_reported_as_unreachable_with_the_source_named() {
        // Bind and drop: the port is free and nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let source = ChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port,
            user: "u".into(),
            password: "secret-password".into(),
        };
        let err = probe(&source, Network::Regtest, Duration::from_secs(5)).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ChainError::Unreachable { .. }), "{text}");
        assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
        assert!(!text.contains("secret-password"), "password leaked: {text}");
    }

    #[test]
    fn esplora_on_a_closed_port_is_unreachable() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let source = ChainSource::Esplora {
            url: format!("http://127.0.0.1:{port}"),
        };
        let err = probe(&source, Network::Regtest, Duration::from_secs(5)).unwrap_err();
        assert!(
            matches!(err, ChainError::Unreachable { .. } | ChainError::Timeout { .. }),
            "{err}"
        );
    }

    #[test]
    fn silent_server_times_out() {
        // Accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let source = ChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port,
            user: "u".into(),
            password: "p".into(),
        };
        let err = probe(&source, Network::Regtest, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ChainError::Timeout { timeout_ms: 300, .. }), "{err}");
        drop(listener);
    }
}
