//! `sandbox`: four Bunker boxes on this machine, paying each other on a
//! private regtest Bitcoin chain. Started by `tests/sandbox.sh` (the README's
//! run command), which builds the release binaries first.
//!
//! What it does, in order: starts a regtest bitcoind (Bitcoin Knots, fetched
//! and cached by `firmware/ln/regtest/fetch-bitcoind.sh`), starts N
//! `bunkerd` on loopback — box 1's admin page on http://localhost:8080, the
//! others on 8081… — each bootstrapped to the boxes before it, with short
//! audit/settlement intervals; then funds every box's Lightning wallet and
//! opens a channel between every pair of boxes through each daemon's own
//! local API (`POST /api/wallet/address`, `POST /api/wallet/channels`, the
//! same calls the admin page and `bunker wallet` make). Ctrl-C stops the
//! boxes (SIGTERM, waiting for each), then the chain.
//!
//! Usage: `sandbox --bin-dir DIR [--boxes N] [--dir DIR]`
//! (`--dir` defaults to `$BUNKER_SANDBOX_DIR` or `~/.local/share/bunker-sandbox`).
//!
//! The chain lives only while the sandbox runs, so every start begins with
//! fresh boxes: Lightning state made on a chain that is gone is worthless.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bunker_ln::regtest::Bitcoind;
use bunker_ln::ChainSource;
use serde_json::{json, Value};

/// First admin page port; box i (from 0) gets `WEB_PORT + i`.
const WEB_PORT: u16 = 8080;
/// First libp2p TCP port.
const NET_PORT: u16 = 47411;
/// First Lightning port.
const LN_PORT: u16 = 49735;
/// On-chain sats given to each box per channel it opens (and one more lot).
const FUND_SAT: u64 = 1_000_000;
/// Channel size between two boxes; half is pushed to the other side so both can pay.
const CHANNEL_SAT: u64 = 500_000;
const WAIT: Duration = Duration::from_secs(120);

struct Args {
    bin_dir: PathBuf,
    boxes: usize,
    dir: PathBuf,
}

fn args() -> Result<Args> {
    let mut bin_dir = None;
    let mut boxes = 4;
    let mut dir = std::env::var_os("BUNKER_SANDBOX_DIR").map(PathBuf::from);
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or_else(|| anyhow!("{a} needs a value"));
        match a.as_str() {
            "--bin-dir" => bin_dir = Some(PathBuf::from(value()?)),
            "--boxes" => boxes = value()?.parse().context("--boxes takes a number")?,
            "--dir" => dir = Some(PathBuf::from(value()?)),
            other => bail!("unknown argument {other:?} (usage: sandbox --bin-dir DIR [--boxes N] [--dir DIR])"),
        }
    }
    let bin_dir = match bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?.parent().context("executable's directory")?.to_path_buf(),
    };
    let dir = match dir {
        Some(d) => d,
        None => PathBuf::from(std::env::var("HOME").context("HOME is not set; pass --dir")?).join(".local/share/bunker-sandbox"),
    };
    if !(1..=9).contains(&boxes) {
        bail!("--boxes takes 1 to 9");
    }
    Ok(Args { bin_dir, boxes, dir })
}

/// One running box.
struct SandboxBox {
    index: usize,
    dir: PathBuf,
    child: Child,
    web_port: u16,
    net_port: u16,
    ln_port: u16,
    peer_id: String,
    ln_node_id: Option<String>,
}

impl SandboxBox {
    fn socket(&self) -> PathBuf {
        self.dir.join("bunkerd.sock")
    }

    fn name(&self) -> String {
        format!("box{}", self.index + 1)
    }
}

/// HTTP/1.1 over the daemon's local Unix socket (what the `bunker` CLI
/// uses): status code and JSON body.
fn local_api(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
    let mut s = UnixStream::connect(socket).with_context(|| format!("connect {}", socket.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    if let Err(e) = s.read_to_end(&mut raw) {
        // The daemon may close before reading all we sent (a body it does
        // not need): the answer is still whole when its head arrived.
        if !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            return Err(e).with_context(|| format!("{method} {path}"));
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").ok_or_else(|| anyhow!("not an HTTP answer: {text:?}"))?;
    let code: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).ok_or_else(|| anyhow!("no status in {head:?}"))?;
    let payload = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    let value = if payload.trim().is_empty() { Value::Null } else { serde_json::from_str(&payload).unwrap_or(Value::String(payload)) };
    Ok((code, value))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// A local API call that must succeed.
fn api_ok(b: &SandboxBox, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let (code, v) = local_api(&b.socket(), method, path, body).with_context(|| format!("{} {method} {path}", b.name()))?;
    if !(200..300).contains(&code) {
        bail!("{} {method} {path}: {code} {v}", b.name());
    }
    Ok(v)
}

fn wait_for<T>(what: &str, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let start = Instant::now();
    let mut last = String::from("nothing yet");
    loop {
        match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = format!("{e:#}"),
        }
        if start.elapsed() > WAIT {
            bail!("timed out after {WAIT:?} waiting for {what} (last: {last})");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The config keys this bunkerd knows, from `bunkerd --print-config` (the
/// engine's keys arrive over time; an unknown `--set` key is refused).
struct KnownKeys(toml::Table);

impl KnownKeys {
    fn load(bunkerd: &Path) -> Result<KnownKeys> {
        let out = Command::new(bunkerd)
            .arg("--print-config")
            .env_remove("BUNKER_CONFIG")
            .output()
            .with_context(|| format!("run {} --print-config", bunkerd.display()))?;
        if !out.status.success() {
            bail!("{} --print-config failed: {}", bunkerd.display(), String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(KnownKeys(toml::from_str(&text).context("bunkerd --print-config is not TOML")?))
    }

    /// Whether the dotted `key` exists.
    fn has(&self, key: &str) -> bool {
        let mut parts = key.split('.');
        let Some(first) = parts.next() else { return false };
        let mut at = self.0.get(first);
        for p in parts {
            at = at.and_then(|v| v.as_table()).and_then(|t| t.get(p));
        }
        at.is_some()
    }
}

fn chain_key(source: &ChainSource) -> Result<String> {
    match source {
        ChainSource::BitcoindRpc { host, port, user, password } => Ok(format!("bitcoind:{user}:{password}@{host}:{port}")),
        other => bail!("unexpected chain source {other}"),
    }
}

fn start_box(
    args: &Args,
    index: usize,
    earlier: &[SandboxBox],
    chain: Option<&str>,
    keys: &KnownKeys,
) -> Result<SandboxBox> {
    let dir = args.dir.join(format!("box{}", index + 1));
    std::fs::create_dir_all(&dir)?;
    let (web_port, net_port, ln_port) = (WEB_PORT + index as u16, NET_PORT + index as u16, LN_PORT + index as u16);
    let bootstrap: Vec<String> =
        earlier.iter().map(|b| format!("\"/ip4/127.0.0.1/tcp/{}/p2p/{}\"", b.net_port, b.peer_id)).collect();
    let mut wanted = vec![
        ("net.listen", format!("[\"/ip4/127.0.0.1/tcp/{net_port}\"]")),
        ("net.bootstrap", format!("[{}]", bootstrap.join(","))),
        ("intervals.audit", "\"20s\"".to_string()),
        ("net.mdns", "false".to_string()),
        ("net.upnp", "false".to_string()),
        ("intervals.full_check", "\"2m\"".to_string()),
        ("intervals.settle", "\"30s\"".to_string()),
        ("reserves.safety_margin", "\"100 MB\"".to_string()),
        // The most an owner pays by default (placement caps): storage earns
        // little on a few MiB, but each full check pays the retrieval price
        // (≈ 1,000 msat per MiB), so payments show within minutes.
        ("hosting.price_msat_per_gib_day", "100000".to_string()),
        ("hosting.retrieval_msat_per_gib", "1000000".to_string()),
    ];
    if let Some(chain) = chain {
        wanted.push(("ln.network", "\"regtest\"".into()));
        wanted.push(("ln.chain", format!("\"{chain}\"")));
        wanted.push(("ln.listen", format!("[\"127.0.0.1:{ln_port}\"]")));
        wanted.push(("ln.settle_threshold_msat", "1000".into()));
    }
    let mut set = Vec::new();
    for (key, value) in wanted {
        if keys.has(key) {
            set.push(format!("{key}={value}"));
        } else if index == 0 {
            eprintln!("sandbox: this bunkerd has no `{key}` setting yet; left out");
        }
    }
    let log = std::fs::File::create(dir.join("bunkerd.log"))?;
    let mut cmd = Command::new(args.bin_dir.join("bunkerd"));
    cmd.arg("--data-dir").arg(&dir).arg("--web-addr").arg(format!("127.0.0.1:{web_port}"));
    for s in &set {
        cmd.arg("--set").arg(s);
    }
    let child = cmd
        .env_remove("BUNKER_CONFIG")
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: Ctrl-C reaches the sandbox, which stops
        // the boxes in order.
        .process_group(0)
        .spawn()
        .context("spawn bunkerd")?;
    let mut b = SandboxBox { index, dir, child, web_port, net_port, ln_port, peer_id: String::new(), ln_node_id: None };
    let log_path = b.dir.join("bunkerd.log");
    let status = wait_for(&format!("{} to answer", b.name()), || {
        if let Some(st) = b.child.try_wait()? {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            bail!("bunkerd exited ({st}):\n{log}");
        }
        match local_api(&b.socket(), "GET", "/api/status", None) {
            Ok((200, v)) if v["peer_id"].is_string() => Ok(Some(v)),
            Ok((code, v)) => Err(anyhow!("{code} {v}")),
            Err(e) => Err(e),
        }
    })?;
    b.peer_id = status["peer_id"].as_str().unwrap_or_default().to_string();
    Ok(b)
}

/// Funds every wallet and opens a channel between every pair, through the
/// daemons' wallet API. Returns what was opened.
fn fund_and_open(chain: &Bitcoind, boxes: &mut [SandboxBox]) -> Result<usize> {
    for b in boxes.iter_mut() {
        let w = wait_for(&format!("{} Lightning running", b.name()), || {
            let (code, v) = local_api(&b.socket(), "GET", "/api/wallet", None)?;
            Ok((code == 200).then_some(v))
        })?;
        b.ln_node_id = w["node_id"].as_str().map(str::to_string);
    }
    let n = boxes.len();
    for (i, b) in boxes.iter().enumerate() {
        let lots = (n - 1 - i) as u64 + 1;
        for _ in 0..lots {
            let v = api_ok(b, "POST", "/api/wallet/address", None)?;
            let addr = v["address"].as_str().ok_or_else(|| anyhow!("no address in {v}"))?;
            chain.fund(addr, FUND_SAT).with_context(|| format!("funding {}", b.name()))?;
        }
        wait_for(&format!("{} on-chain funds", b.name()), || {
            let v = api_ok(b, "GET", "/api/wallet", None)?;
            Ok((v["balances"]["onchain_spendable_sat"].as_u64().unwrap_or(0) >= lots * FUND_SAT).then_some(()))
        })?;
    }
    // One channel at a time, each mined until both ends can use it: two
    // channels opened back to back by one wallet left one funding
    // transaction unconfirmed for good in our runs.
    let mut opened = 0;
    for i in 0..n {
        for j in (i + 1)..n {
            let (from, to) = (&boxes[i], &boxes[j]);
            let body = json!({
                "node_id": to.ln_node_id.clone().unwrap_or_default(),
                "address": format!("127.0.0.1:{}", to.ln_port),
                "sat": CHANNEL_SAT,
                "push_msat": CHANNEL_SAT * 1000 / 2,
            });
            let v = api_ok(from, "POST", "/api/wallet/channels", Some(&body))
                .with_context(|| format!("opening {}→{}", from.name(), to.name()))?;
            let id = v["user_channel_id"].as_str().unwrap_or_default().to_string();
            let from_node = from.ln_node_id.clone().unwrap_or_default();
            wait_for(&format!("channel {}→{} usable", from.name(), to.name()), || {
                chain.mine(1)?;
                let a = api_ok(from, "GET", "/api/wallet", None)?;
                let b = api_ok(to, "GET", "/api/wallet", None)?;
                let usable_a = a["channels"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["user_channel_id"] == id.as_str() && c["usable"] == true));
                let usable_b = b["channels"]
                    .as_array()
                    .is_some_and(|cs| cs.iter().any(|c| c["counterparty"] == from_node.as_str() && c["usable"] == true));
                std::thread::sleep(Duration::from_millis(500));
                Ok((usable_a && usable_b).then_some(()))
            })?;
            opened += 1;
            eprintln!("sandbox: channel {}→{} usable", from.name(), to.name());
        }
    }
    Ok(opened)
}

fn stop_all(boxes: &mut [SandboxBox]) {
    for b in boxes.iter() {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(b.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
    }
    for b in boxes.iter_mut() {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match b.child.try_wait() {
                Ok(Some(st)) => {
                    eprintln!("sandbox: {} stopped ({st})", b.name());
                    break;
                }
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                _ => {
                    eprintln!("sandbox: {} did not stop within 20 s; killing it", b.name());
                    let _ = b.child.kill();
                    let _ = b.child.wait();
                    break;
                }
            }
        }
    }
}

fn main() -> Result<()> {
    let args = args()?;
    let bunkerd = args.bin_dir.join("bunkerd");
    if !bunkerd.is_file() {
        bail!("{} not found: build it first (cargo build --release -p bunkerd)", bunkerd.display());
    }
    let keys = KnownKeys::load(&bunkerd)?;
    let lightning = keys.has("ln.chain");
    if args.dir.exists() {
        eprintln!("sandbox: starting fresh in {} (the regtest chain lives only while the sandbox runs)", args.dir.display());
        for i in 1..=9 {
            let _ = std::fs::remove_dir_all(args.dir.join(format!("box{i}")));
        }
    }
    std::fs::create_dir_all(&args.dir)?;

    let chain = if lightning {
        eprintln!("sandbox: starting a regtest bitcoind");
        let chain = Bitcoind::start()?;
        chain.mine(101)?;
        Some(chain)
    } else {
        eprintln!("sandbox: this bunkerd has no [ln] settings yet: boxes run without Lightning");
        None
    };
    let chain_key = chain.as_ref().map(|c| chain_key(&c.chain_source())).transpose()?;

    let mut boxes: Vec<SandboxBox> = Vec::new();
    let result = (|| -> Result<()> {
        for i in 0..args.boxes {
            let b = start_box(&args, i, &boxes, chain_key.as_deref(), &keys)?;
            eprintln!("sandbox: {} up: http://localhost:{} (peer {})", b.name(), b.web_port, b.peer_id);
            boxes.push(b);
        }
        if let Some(chain) = &chain {
            eprintln!("sandbox: funding wallets and opening channels between every pair of boxes…");
            match fund_and_open(chain, &mut boxes) {
                Ok(n) => eprintln!("sandbox: {n} channels open and usable"),
                Err(e) => eprintln!("sandbox: Lightning set-up failed, boxes keep running without channels: {e:#}"),
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        stop_all(&mut boxes);
        return Err(e);
    }

    let bunker = args.bin_dir.join("bunker");
    println!();
    println!("Bunker sandbox: {} boxes on this machine{}.", boxes.len(), if chain.is_some() { ", paying each other on a regtest chain" } else { "" });
    for b in &boxes {
        println!("  {}: admin page http://localhost:{}  data {}  log {}", b.name(), b.web_port, b.dir.display(), b.dir.join("bunkerd.log").display());
    }
    let d1 = boxes[0].dir.display();
    println!();
    println!("Try (box 1 stores on the others; its pairing code claims its admin page):");
    println!("  {} --data-dir {d1} pairing-code", bunker.display());
    println!("  {} --data-dir {d1} put ./some-file /docs/some-file --copies 2 --no-local", bunker.display());
    println!("  {} --data-dir {d1} ls /docs", bunker.display());
    println!("  {} --data-dir {d1} contracts   (also: peers, audits, payments, wallet)", bunker.display());
    println!("  {} --data-dir {d1} get /docs/some-file ./back", bunker.display());
    println!("  ({} --help lists every command)", bunker.display());
    println!();
    println!("Ctrl-C stops all boxes and the chain.");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    })?;
    eprintln!("\nsandbox: stopping…");
    stop_all(&mut boxes);
    drop(chain);
    eprintln!("sandbox: stopped");
    Ok(())
}
