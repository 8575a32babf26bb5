//! Harness for end-to-end tests: starts real `bunkerd` processes with their
//! own data dirs and ports, talks to them over HTTP and their CLI, and stops
//! them with real signals.
//!
//! The binaries are the workspace's own build: `target/<profile>/bunkerd`
//! next to the test executable, built on demand if a test runs first.
#![deny(missing_docs)]

pub mod cluster;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// How long a box may take to answer `/healthz` after it is started.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Path of a workspace binary (`bunkerd` or `bunker`), building it first if
/// this test run has not.
pub fn bin(name: &str) -> PathBuf {
    static BUILD: Once = Once::new();
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>
    let dir = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let path = dir.join(name);
    BUILD.call_once(|| {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-p", "bunkerd", "--bins"]);
        if release {
            cmd.arg("--release");
        }
        if let Some(target) = dir.parent() {
            cmd.env("CARGO_TARGET_DIR", target);
        }
        let status = cmd.status().expect("run cargo build -p bunkerd");
        assert!(status.success(), "cargo build -p bunkerd failed");
    });
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// A free TCP port on loopback for a daemon to listen on, from below the
/// kernel's ephemeral range so that no outgoing connection takes it before
/// the daemon binds it ([`bunker_ln::regtest::free_listen_port`]).
pub fn free_port() -> u16 {
    bunker_ln::regtest::free_listen_port().expect("free port")
}

/// The `--set` flags that keep a test box's swarm on loopback: a random
/// TCP port on 127.0.0.1, no multicast discovery, no router port mapping.
pub const LOOPBACK_NET: [&str; 6] = [
    "--set",
    "net.listen=[\"/ip4/127.0.0.1/tcp/0\"]",
    "--set",
    "net.mdns=false",
    "--set",
    "net.upnp=false",
];

/// The `--set` flags that let a test box write on a nearly full test
/// machine: the appliance's defaults keep 2 GiB (hosting) and at least
/// 1 GiB per disk free, more than a CI runner may have. `extra` can
/// override them.
pub const SMALL_RESERVES: [&str; 6] = [
    "--set",
    "reserves.safety_margin=\"16 MiB\"",
    "--set",
    "reserves.disk=\"16 MiB\"",
    "--set",
    "reserves.disk_percent=0",
];

/// A running `bunkerd`.
pub struct BoxProcess {
    child: Child,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Where its admin page listens.
    pub web_addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl BoxProcess {
    /// Starts `bunkerd --data-dir DIR --web-addr 127.0.0.1:<free>` plus
    /// `extra` args, and waits until `/healthz` answers. Its swarm listens
    /// on a random loopback port without mDNS or UPnP ([`LOOPBACK_NET`]),
    /// so boxes of parallel tests never meet; `extra` can override it.
    pub fn start(data_dir: &Path, extra: &[&str]) -> BoxProcess {
        Self::start_with_env(data_dir, extra, &[])
    }

    /// [`BoxProcess::start`] with extra environment variables.
    ///
    /// A port picked here is free when picked but can be taken by any
    /// outbound connection before the daemon binds it: a daemon that exits
    /// with "address in use" is started again on a new port (3 tries).
    pub fn start_with_env(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> BoxProcess {
        let mut tries = 0;
        loop {
            tries += 1;
            match Self::try_start(data_dir, extra, env) {
                Ok(proc) => return proc,
                Err(log) if tries < 3 && lost_its_port(&log) => {
                    eprintln!("bunkerd lost its port to another process; starting it again");
                }
                Err(log) => panic!("bunkerd exited before it was ready:\n{log}"),
            }
        }
    }

    /// One start: the running box, or its log if it exited before ready.
    fn try_start(data_dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Result<BoxProcess, String> {
        let web_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
        let mut child = Command::new(bin("bunkerd"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--web-addr")
            .arg(web_addr.to_string())
            .args(LOOPBACK_NET)
            .args(SMALL_RESERVES)
            .args(extra)
            .env_remove("BUNKER_CONFIG")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bunkerd");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                sink.lock().expect("log lock").push_str(&(line + "\n"));
            }
        });
        let mut proc = BoxProcess { child, data_dir: data_dir.to_owned(), web_addr, stderr };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok((200, _)) = proc.get("/healthz") {
                return Ok(proc);
            }
            if let Ok(Some(status)) = proc.child.try_wait() {
                // The reader thread may still be draining the pipe.
                std::thread::sleep(Duration::from_millis(200));
                return Err(format!("(exit: {status})\n{}", proc.log()));
            }
            assert!(Instant::now() < deadline, "bunkerd not ready within {START_TIMEOUT:?}:\n{}", proc.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path` on the admin page: status code and body.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http_get(self.web_addr, path)
    }

    /// The daemon's status as `bunker status --json` reports it over the
    /// local socket (the admin page's `/api/status` needs a login).
    pub fn status(&self) -> serde_json::Value {
        let out = run("bunker", &["--data-dir", self.data_dir.to_str().expect("utf-8 path"), "status", "--json"], &[]);
        assert!(out.status.success(), "bunker status: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// Everything the daemon logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().expect("log lock").clone()
    }

    /// Sends `signal` to the daemon.
    pub fn signal(&self, signal: Signal) {
        nix::sys::signal::kill(Pid::from_raw(self.child.id() as i32), signal).expect("kill");
    }

    /// Waits up to `timeout` for the daemon to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Stops the daemon with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(10)).unwrap_or_else(|| panic!("bunkerd did not stop:\n{}", self.log()))
    }
}

impl Drop for BoxProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a daemon's log says it could not bind a port. Linux says
/// "Address already in use" (an earlier check for "address in use" never
/// matched it, so the retry above never ran).
fn lost_its_port(log: &str) -> bool {
    let log = log.to_lowercase();
    log.contains("address already in use") || log.contains("address in use")
}

/// Runs a workspace binary to completion (with a 30 s limit).
pub fn run(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(bin(name))
        .args(args)
        .env_remove("BUNKER_CONFIG")
        .env_remove("BUNKER_DATA_DIR")
        .env_remove("BUNKER_WEB_ADDR")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Drained while the program runs: one that writes more than a pipe
    // holds (a file to stdout) would otherwise wait for ever.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{name} {args:?} did not finish within 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// A minimal HTTP/1.1 GET: enough for `/healthz` and JSON APIs, without a
/// client library that would hide what the daemon really sends.
pub fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    Ok((code, body.to_string()))
}

#[cfg(test)]
mod tests {
    use super::lost_its_port;

    #[test]
    fn a_port_taken_before_the_daemon_bound_it_is_recognised() {
        // bunkerd's own lines for its web and swarm ports.
        assert!(lost_its_port("bunkerd: cannot listen on web.addr 127.0.0.1:38147: Address already in use (os error 98)"));
        assert!(lost_its_port(
            "bunkerd: cannot start the peer-to-peer network on net.listen [/ip4/127.0.0.1/tcp/38147]: \
             cannot listen on /ip4/127.0.0.1/tcp/38147: Address already in use (os error 98)"
        ));
        assert!(!lost_its_port("bunkerd: the data directory /tmp/x is in use by another bunkerd"));
    }
}
