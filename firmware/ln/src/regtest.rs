//! A real regtest chain for tests and the local sandbox: Bitcoin Knots'
//! `bitcoind`, fetched by `regtest/fetch-bitcoind.sh` and run through Debian
//! sid's own loader, on free loopback ports with a throw-away data dir.
//!
//! ```no_run
//! use bunker_ln::regtest::Bitcoind;
//! let chain = Bitcoind::start().unwrap();
//! chain.mine(101).unwrap();
//! let source = chain.chain_source(); // for LnConfig
//! # let _ = source;
//! ```
//!
//! Set `BUNKER_BITCOIND_DIR` to use a bundle that is already unpacked
//! somewhere; otherwise the fetch script runs (once per process, cached on
//! disk across runs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::chain::{rpc_client, run_async, RpcValue};
use crate::config::ChainSource;

/// What went wrong with the regtest chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegtestError {
    /// `fetch-bitcoind.sh` did not produce a bundle.
    #[error("cannot get bitcoind: {0}")]
    Fetch(String),
    /// The process did not start.
    #[error("cannot run {exe}: {source}")]
    Spawn {
        /// The loader that was run.
        exe: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// bitcoind exited on its own.
    #[error("bitcoind exited ({status}); end of its log:\n{log_tail}")]
    Exited {
        /// Exit status.
        status: String,
        /// Last lines of debug.log.
        log_tail: String,
    },
    /// An RPC call failed.
    #[error("bitcoind RPC {method} failed: {detail}")]
    Rpc {
        /// The method.
        method: String,
        /// The error.
        detail: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {secs} s waiting for {what}")]
    Timeout {
        /// What.
        what: String,
        /// How long.
        secs: u64,
    },
}

/// The directory holding `bin/bitcoind` and `lib/ld-linux-x86-64.so.2`.
pub fn bundle_dir() -> Result<PathBuf, RegtestError> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(d) = std::env::var_os("BUNKER_BITCOIND_DIR") {
            return Ok(PathBuf::from(d));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("regtest/fetch-bitcoind.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if !out.status.success() {
            return Err(format!("{} failed ({})", script.display(), out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let dir = text.lines().last().unwrap_or("").trim();
        if dir.is_empty() {
            return Err(format!("{} printed no directory", script.display()));
        }
        Ok(PathBuf::from(dir))
    })
    .clone()
    .map_err(RegtestError::Fetch)
}

fn free_port() -> Result<u16, RegtestError> {
    free_listen_port()
}

/// A loopback TCP port that is free now and that the kernel does not hand
/// out on its own, for a process or node that will listen on it: chosen at
/// random below the ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`,
/// 32768–60999 by default), each port once per test process.
///
/// Why not `bind(127.0.0.1:0)`: that port is in the ephemeral range, and once
/// released any outgoing connection (a swarm's dial, an RPC call) can take
/// it before the listener binds it; an ldk-node that cannot bind its listen
/// address does not start, and its engine retries on the same port for
/// ever. A port below the range is only taken by an explicit bind.
pub fn free_listen_port() -> Result<u16, RegtestError> {
    use rand::Rng;
    use std::collections::HashSet;
    use std::sync::Mutex;
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let low_ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|p| p.parse::<u16>().ok()))
        .unwrap_or(32768);
    let bind = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).and_then(|l| l.local_addr()).map(|a| a.port());
    if low_ephemeral > 12_000 {
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
        let handed = handed.get_or_insert_with(HashSet::new);
        let mut rng = rand::thread_rng();
        for _ in 0..200 {
            let port = rng.gen_range(10_000..low_ephemeral);
            if !handed.contains(&port) && bind(port).is_ok() {
                handed.insert(port);
                return Ok(port);
            }
        }
    }
    // An unusual ephemeral range (or no free port below it): the kernel's pick.
    bind(0).map_err(|source| RegtestError::Spawn { exe: "bind 127.0.0.1:0".into(), source })
}

/// [`free_listen_port`] on 127.0.0.1.
pub fn free_listen_addr() -> Result<std::net::SocketAddr, RegtestError> {
    Ok(std::net::SocketAddr::from(([127, 0, 0, 1], free_listen_port()?)))
}

/// Stops bitcoind if this process dies without dropping its [`Bitcoind`]
/// (killed by a timeout, or a `Bitcoind` kept in a `static`): a small shell
/// loop that watches both processes and ends with bitcoind. Not started
/// where `sh` is missing; Drop still stops bitcoind then.
fn watchdog(bitcoind_pid: u32) -> Option<Child> {
    let script = r#"while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
kill -0 "$1" 2>/dev/null || kill "$2" 2>/dev/null"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("bunker-regtest-watchdog")
        .arg(std::process::id().to_string())
        .arg(bitcoind_pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// A running regtest bitcoind with a wallet named `bunker`. Stops (and
/// deletes its data dir) on drop.
pub struct Bitcoind {
    child: Option<Child>,
    watchdog: Option<Child>,
    datadir: tempfile::TempDir,
    rpc_port: u16,
    password: String,
    bundle: PathBuf,
}

const RPC_USER: &str = "bunker";
const READY_TIMEOUT: Duration = Duration::from_secs(60);

impl Bitcoind {
    /// Starts bitcoind on a free loopback port, creates the wallet.
    pub fn start() -> Result<Bitcoind, RegtestError> {
        let bundle = bundle_dir()?;
        let mut datadir = tempfile::Builder::new()
            .prefix("bunker-regtest-")
            .tempdir()
            .map_err(|source| RegtestError::Spawn {
                exe: "mkdtemp".into(),
                source,
            })?;
        let password = hex::encode(rand::random::<[u8; 16]>());
        let mut last = None;
        // Another process can take the port between choosing and binding it.
        for _ in 0..3 {
            let mut b = Bitcoind {
                child: None,
                watchdog: None,
                datadir,
                rpc_port: free_port()?,
                password: password.clone(),
                bundle: bundle.clone(),
            };
            match b.launch() {
                Ok(()) => {
                    b.call("createwallet", &[json!("bunker")])?;
                    return Ok(b);
                }
                Err(e @ RegtestError::Exited { .. }) => {
                    last = Some(e);
                    datadir = std::mem::replace(
                        &mut b.datadir,
                        tempfile::tempdir().map_err(|source| RegtestError::Spawn {
                            exe: "mkdtemp".into(),
                            source,
                        })?,
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(RegtestError::Timeout {
            what: "a free port".into(),
            secs: 0,
        }))
    }

    fn launch(&mut self) -> Result<(), RegtestError> {
        let loader = self.bundle.join("lib/ld-linux-x86-64.so.2");
        let child = Command::new(&loader)
            .arg("--library-path")
            .arg(self.bundle.join("lib"))
            .arg(self.bundle.join("bin/bitcoind"))
            .args([
                "-regtest",
                "-server=1",
                "-listen=0",
                "-dnsseed=0",
                "-fixedseeds=0",
                "-listenonion=0",
                "-natpmp=0",
                "-printtoconsole=0",
                "-rpcbind=127.0.0.1",
                "-rpcallowip=127.0.0.1",
                "-rpcthreads=16",
                "-fallbackfee=0.00001",
            ])
            .arg(format!("-datadir={}", self.datadir.path().display()))
            .arg(format!("-rpcport={}", self.rpc_port))
            .arg(format!("-rpcuser={RPC_USER}"))
            .arg(format!("-rpcpassword={}", self.password))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| RegtestError::Spawn {
                exe: loader.display().to_string(),
                source,
            })?;
        self.watchdog = watchdog(child.id());
        self.child = Some(child);
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(RegtestError::Exited {
                    status: status.to_string(),
                    log_tail: self.log_tail(),
                });
            }
            match self.call("getblockchaininfo", &[]) {
                Ok(_) => return Ok(()),
                Err(_) if start.elapsed() < READY_TIMEOUT => std::thread::sleep(Duration::from_millis(50)),
                Err(e) => {
                    return Err(RegtestError::Timeout {
                        what: format!("bitcoind RPC ({e})"),
                        secs: READY_TIMEOUT.as_secs(),
                    })
                }
            }
        }
    }

    fn log_tail(&self) -> String {
        let log = self.datadir.path().join("regtest/debug.log");
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// The RPC port on 127.0.0.1.
    pub fn rpc_port(&self) -> u16 {
        self.rpc_port
    }

    /// The chain source for an [`crate::LnConfig`].
    pub fn chain_source(&self) -> ChainSource {
        ChainSource::BitcoindRpc {
            host: "127.0.0.1".into(),
            port: self.rpc_port,
            user: RPC_USER.into(),
            password: self.password.clone(),
        }
    }

    /// Calls an RPC method (wallet methods go to the `bunker` wallet).
    pub fn call(&self, method: &str, params: &[Value]) -> Result<Value, RegtestError> {
        let (port, password) = (self.rpc_port, self.password.clone());
        let m = method.to_string();
        let params = params.to_vec();
        let res = run_async(async move {
            let client = rpc_client("127.0.0.1", port, RPC_USER, &password);
            tokio::time::timeout(Duration::from_secs(30), client.call_method::<RpcValue>(&m, &params)).await
        })
        .map_err(|e| RegtestError::Rpc {
            method: method.into(),
            detail: e.to_string(),
        })?;
        match res {
            Ok(Ok(v)) => Ok(v.0),
            Ok(Err(e)) => Err(RegtestError::Rpc {
                method: method.into(),
                detail: e.to_string(),
            }),
            Err(_) => Err(RegtestError::Timeout {
                what: format!("RPC {method}"),
                secs: 30,
            }),
        }
    }

    /// Current block height.
    pub fn height(&self) -> Result<u64, RegtestError> {
        let v = self.call("getblockcount", &[])?;
        v.as_u64().ok_or_else(|| RegtestError::Rpc {
            method: "getblockcount".into(),
            detail: format!("odd answer {v}"),
        })
    }

    /// Mines `n` blocks to the wallet; returns the new height.
    pub fn mine(&self, n: u64) -> Result<u64, RegtestError> {
        let addr = self.call("getnewaddress", &[])?;
        self.call("generatetoaddress", &[json!(n), addr])?;
        self.height()
    }

    /// Sends `sat` from the wallet to `address` and mines 6 blocks over it.
    /// The wallet must hold mature coins (mine 101 blocks first).
    pub fn fund(&self, address: &str, sat: u64) -> Result<String, RegtestError> {
        let btc = format!("{}.{:08}", sat / 100_000_000, sat % 100_000_000);
        let amount: Value = serde_json::from_str(&btc).map_err(|e| RegtestError::Rpc {
            method: "sendtoaddress".into(),
            detail: e.to_string(),
        })?;
        let txid = self.call("sendtoaddress", &[json!(address), amount])?;
        self.mine(6)?;
        Ok(txid.as_str().unwrap_or_default().to_string())
    }

    /// Stops bitcoind (the data dir stays, for [`Bitcoind::restart`]).
    pub fn stop(&mut self) -> Result<(), RegtestError> {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let _ = self.call("stop", &[]);
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if start.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(());
                }
            }
        }
    }

    /// Starts bitcoind again with the same data dir, port and password, as
    /// a chain source that went away and came back.
    pub fn restart(&mut self) -> Result<(), RegtestError> {
        self.stop()?;
        self.launch()?;
        self.call("loadwallet", &[json!("bunker")]).map(|_| ())
    }

    /// Is the process still running?
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .map(|c| matches!(c.try_wait(), Ok(None)))
            .unwrap_or(false)
    }
}

impl Drop for Bitcoind {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
