//! Idle daemon: resident memory and CPU of a real `bunkerd` that has nothing
//! to do, against the targets (≤ 80 MiB RSS, ≤ 1 % of one core).
//!
//! Starts the `bunkerd` next to this binary (build both with `cargo build
//! --release -p bunkerd -p bunker-tests --bins`) with the default config
//! (only the data dir, the admin page's port and the swarm's listen port
//! chosen here, so that it does not clash with another box on this
//! machine), waits until `/healthz` answers, lets it settle, then samples
//! `/proc/<pid>/status` (VmRSS) every second and `/proc/<pid>/stat`
//! (utime + stime) at both ends of the window. Then the same with Lightning
//! on a regtest bitcoind (`--ln`, or both with `--all`).
//!
//!     target/release/idle_bench [--ln | --all] [--settle SECS] [--secs SECS]
//!
//! Defaults: 30 s settle, 60 s measured. Prints one markdown table row per
//! scenario and exits non-zero if a target is missed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bunker_ln::regtest::Bitcoind;
use bunker_ln::ChainSource;
use bunker_tests::{free_port, http_get, START_TIMEOUT};

const RSS_TARGET_MIB: f64 = 80.0;
const CPU_TARGET_PCT: f64 = 1.0;

struct Args {
    plain: bool,
    ln: bool,
    settle: Duration,
    secs: Duration,
}

fn args() -> Result<Args> {
    let mut a = Args { plain: true, ln: false, settle: Duration::from_secs(30), secs: Duration::from_secs(60) };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<Duration> {
            let v = it.next().ok_or_else(|| anyhow!("{name} needs a number of seconds"))?;
            Ok(Duration::from_secs(v.parse().with_context(|| format!("{name} {v}"))?))
        };
        match arg.as_str() {
            "--ln" => (a.plain, a.ln) = (false, true),
            "--all" => (a.plain, a.ln) = (true, true),
            "--settle" => a.settle = num("--settle")?,
            "--secs" => a.secs = num("--secs")?,
            // `cargo bench` passes --bench; nothing else is expected.
            "--bench" => {}
            other => bail!("unknown argument {other}; usage: idle_bench [--ln | --all] [--settle SECS] [--secs SECS]"),
        }
    }
    if a.secs < Duration::from_secs(1) {
        bail!("--secs must be at least 1");
    }
    Ok(a)
}

/// The daemon under measurement; killed when dropped.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(bunkerd: &Path, dir: &Path, set: &[String]) -> Result<Daemon> {
    let web = format!("127.0.0.1:{}", free_port());
    let log = dir.join("bunkerd.log");
    let out = std::fs::File::create(&log)?;
    let mut cmd = Command::new(bunkerd);
    cmd.arg("--data-dir").arg(dir).arg("--web-addr").arg(&web);
    for s in set {
        cmd.arg("--set").arg(s);
    }
    let child = cmd
        .env_remove("BUNKER_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("spawn {}", bunkerd.display()))?;
    let mut d = Daemon { child, log };
    let addr = web.parse().context("web addr")?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok((200, _)) = http_get(addr, "/healthz") {
            return Ok(d);
        }
        if let Some(st) = d.child.try_wait()? {
            bail!("bunkerd exited ({st}) before it was ready:\n{}", std::fs::read_to_string(&d.log).unwrap_or_default());
        }
        if Instant::now() > deadline {
            bail!("bunkerd not ready within {START_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Clock ticks per second of /proc/<pid>/stat's times.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of `pid`, in ticks.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map(|(_, r)| r).ok_or_else(|| anyhow!("odd /proc/{pid}/stat"))?;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let field = |i: usize| -> Result<u64> { Ok(f.get(i - 3).ok_or_else(|| anyhow!("short stat"))?.parse()?) };
    Ok(field(14)? + field(15)?)
}

/// The number on a line of /proc/<pid>/status ("VmRSS:  1234 kB" → 1234).
fn status_value(pid: u32, key: &str) -> Result<f64> {
    let f = std::fs::File::open(format!("/proc/{pid}/status"))?;
    for line in BufReader::new(f).lines() {
        let line = line?;
        if let Some(rest) = line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            let number = rest.split_whitespace().next().ok_or_else(|| anyhow!("empty {key}"))?;
            return Ok(number.parse()?);
        }
    }
    bail!("no {key} in /proc/{pid}/status")
}

/// A `kB` line of /proc/<pid>/status, in MiB.
fn status_mib(pid: u32, key: &str) -> Result<f64> {
    Ok(status_value(pid, key)? / 1024.0)
}

struct Figures {
    rss_mean: f64,
    rss_max: f64,
    hwm: f64,
    cpu_pct: f64,
    threads: f64,
}

fn measure(d: &mut Daemon, a: &Args) -> Result<Figures> {
    let pid = d.child.id();
    std::thread::sleep(a.settle);
    let ticks = clock_ticks();
    let (t0, c0) = (Instant::now(), cpu_ticks(pid)?);
    let mut rss = Vec::new();
    while t0.elapsed() < a.secs {
        if let Some(st) = d.child.try_wait()? {
            bail!("bunkerd exited ({st}) while measured");
        }
        rss.push(status_mib(pid, "VmRSS")?);
        std::thread::sleep(Duration::from_secs(1).min(a.secs.saturating_sub(t0.elapsed())));
    }
    let (wall, c1) = (t0.elapsed().as_secs_f64(), cpu_ticks(pid)?);
    rss.push(status_mib(pid, "VmRSS")?);
    Ok(Figures {
        rss_mean: rss.iter().sum::<f64>() / rss.len() as f64,
        rss_max: rss.iter().cloned().fold(0.0, f64::max),
        hwm: status_mib(pid, "VmHWM")?,
        cpu_pct: 100.0 * (c1 - c0) as f64 / ticks / wall,
        threads: status_value(pid, "Threads").unwrap_or(0.0),
    })
}

fn row(name: &str, f: &Figures, a: &Args) -> bool {
    let ok = f.rss_max <= RSS_TARGET_MIB && f.cpu_pct <= CPU_TARGET_PCT;
    println!(
        "| {name} | {:.1} | {:.1} | {:.1} | {:.2} % | {:.0} | {} s | {} |",
        f.rss_mean,
        f.rss_max,
        f.hwm,
        f.cpu_pct,
        f.threads,
        a.secs.as_secs(),
        if ok { "yes" } else { "**no**" }
    );
    ok
}

fn chain_key(source: &ChainSource) -> Result<String> {
    match source {
        ChainSource::BitcoindRpc { host, port, user, password } => Ok(format!("bitcoind:{user}:{password}@{host}:{port}")),
        other => bail!("unexpected chain source {other}"),
    }
}

fn main() -> Result<()> {
    let a = args()?;
    let exe = std::env::current_exe()?;
    let bunkerd = exe.with_file_name("bunkerd");
    if !bunkerd.is_file() {
        bail!("{} not found: cargo build --release -p bunkerd --bins", bunkerd.display());
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "idle_bench: {} (settle {} s, measure {} s); load average {} at start",
        bunkerd.display(),
        a.settle.as_secs(),
        a.secs.as_secs(),
        load.split_whitespace().next().unwrap_or("?")
    );
    println!("| scenario | RSS mean MiB | RSS max MiB | VmHWM MiB | CPU (of one core) | threads | window | targets (≤ {RSS_TARGET_MIB} MiB, ≤ {CPU_TARGET_PCT} %) met |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut all_ok = true;
    let tmp = tempfile::tempdir()?;
    // Only the swarm's port differs from the default config (TCP and QUIC
    // on 4001): a fixed port could be taken by another box on this machine.
    let port = free_port();
    let listen = format!("net.listen=[\"/ip4/0.0.0.0/tcp/{port}\", \"/ip4/0.0.0.0/udp/{port}/quic-v1\"]");
    if a.plain {
        let dir = tmp.path().join("plain");
        std::fs::create_dir_all(&dir)?;
        let mut d = start(&bunkerd, &dir, std::slice::from_ref(&listen))?;
        let f = measure(&mut d, &a)?;
        all_ok &= row("default config, no Lightning chain", &f, &a);
    }
    if a.ln {
        let chain = Bitcoind::start().context("regtest bitcoind")?;
        chain.mine(101).context("mining")?;
        let key = chain_key(&chain.chain_source())?;
        let dir = tmp.path().join("ln");
        std::fs::create_dir_all(&dir)?;
        let set = vec![
            listen.clone(),
            "ln.network=\"regtest\"".to_string(),
            format!("ln.chain=\"{key}\""),
            format!("ln.listen=[\"127.0.0.1:{}\"]", free_port()),
        ];
        let mut d = start(&bunkerd, &dir, &set)?;
        let f = measure(&mut d, &a)?;
        let log = std::fs::read_to_string(&d.log).unwrap_or_default();
        if !log.contains("Lightning node started") {
            eprintln!("idle_bench: the log does not say Lightning started:\n{log}");
            all_ok = false;
        }
        all_ok &= row("default config + Lightning (regtest bitcoind)", &f, &a);
        drop(d);
    }
    println!("load average {} at end", std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?"));
    if !all_ok {
        std::process::exit(1);
    }
    Ok(())
}
