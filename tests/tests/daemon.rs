//! The daemon as its users meet it: started, asked, restarted, stopped,
//! and fed bad configuration.

use std::time::{Duration, Instant};

use bunker_tests::{run, BoxProcess};
use nix::sys::signal::Signal;

/// The daemon's status as `bunker status --json` reads it over the local
/// socket (the admin page's `/api/status` needs a login).
fn cli_status(node: &BoxProcess) -> serde_json::Value {
    let out = run("bunker", &["--data-dir", node.data_dir.to_str().unwrap(), "status", "--json"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

#[test]
fn a_box_starts_answers_and_stops_cleanly_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("box");
    let node = BoxProcess::start(&data, &[]);

    assert_eq!(node.get("/healthz").unwrap(), (200, "ok\n".to_string()));
    // Without a login the admin API says nothing.
    let (code, body) = node.get("/api/status").unwrap();
    assert_eq!(code, 401, "{body}");
    let status = cli_status(&node);
    assert_eq!(status["state"], "running");
    assert!(status["peer_id"].as_str().unwrap().starts_with("12D3KooW"), "{status}");
    let (code, page) = node.get("/").unwrap();
    assert_eq!(code, 200);
    assert!(page.contains("<title>Bunker</title>"));

    // The CLI reaches the same daemon over its local socket.
    let out = run("bunker", &["--data-dir", data.to_str().unwrap(), "status"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("state:    running"), "{text}");
    assert!(text.contains(" free of ") && text.contains("(data directory's file system)"), "{text}");
    assert!(text.contains(status["peer_id"].as_str().unwrap()), "{text}");

    let t0 = Instant::now();
    let log_before_stop = node.log();
    let exit = node.stop();
    assert!(exit.success(), "exit status {exit}");
    assert!(t0.elapsed() < Duration::from_secs(5), "took {:?} to stop", t0.elapsed());
    assert!(!data.join("bunkerd.sock").exists(), "socket left behind");
    assert!(log_before_stop.contains("bunkerd is ready"), "{log_before_stop}");
}

#[test]
fn an_unclaimed_box_gives_its_pairing_code_to_the_cli_only_and_keeps_it_across_restarts() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("box");
    let node = BoxProcess::start(&data, &[]);
    let out = run("bunker", &["--data-dir", data.to_str().unwrap(), "pairing-code"], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(&code[4..5], "-", "{code}");
    let (status, claim) = node.get("/api/setup/claim").unwrap();
    assert_eq!(status, 200);
    assert_eq!(claim.trim(), r#"{"claimed":false}"#);
    assert!(node.log().contains("not claimed yet"), "{}", node.log());
    assert!(
        !node.log().contains(&code) && !node.log().contains(&code.replace('-', "")),
        "the log must not show the code"
    );
    assert!(node.stop().success());

    let node = BoxProcess::start(&data, &[]);
    let out = run("bunker", &["--data-dir", data.to_str().unwrap(), "pairing-code"], &[]);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        code,
        "the code on the screen must not change on restart"
    );
    assert!(node.stop().success());
}

#[test]
fn sigint_with_an_open_connection_still_stops_within_five_seconds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut node = BoxProcess::start(&tmp.path().join("box"), &[]);
    // A client that connected and never sent a request must not hold the daemon up.
    let _idle = std::net::TcpStream::connect(node.web_addr).unwrap();
    let t0 = Instant::now();
    node.signal(Signal::SIGINT);
    let exit = node.wait_exit(Duration::from_secs(5)).expect("stopped within 5 s");
    assert!(exit.success(), "exit status {exit}: {}", node.log());
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(node.log().contains("stopped cleanly"), "{}", node.log());
}

#[test]
fn a_second_start_reuses_the_seed_and_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("box");
    let first = BoxProcess::start(&data, &[]);
    let peer_id = cli_status(&first)["peer_id"].clone();
    let seed = std::fs::read_to_string(data.join("seed")).unwrap();
    assert_eq!(seed.split_whitespace().count(), 24);
    let first_words = seed.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    assert!(!first.log().contains(&first_words), "the log must not show the words");
    assert!(first.stop().success());

    let second = BoxProcess::start(&data, &[]);
    assert_eq!(cli_status(&second)["peer_id"], peer_id);
    assert_eq!(std::fs::read_to_string(data.join("seed")).unwrap(), seed);
    assert!(second.log().contains("loaded this box's seed"));
    assert!(second.stop().success());
}

#[test]
fn two_boxes_run_side_by_side_with_their_own_identities() {
    let tmp = tempfile::tempdir().unwrap();
    let a = BoxProcess::start(&tmp.path().join("a"), &[]);
    let b = BoxProcess::start(&tmp.path().join("b"), &[]);
    assert_ne!(a.web_addr, b.web_addr);
    assert_ne!(cli_status(&a)["peer_id"], cli_status(&b)["peer_id"]);
    assert!(a.stop().success());
    assert!(b.stop().success());
}

#[test]
fn a_data_dir_in_use_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("box");
    let _running = BoxProcess::start(&data, &[]);
    let out = run("bunkerd", &["--data-dir", data.to_str().unwrap(), "--web-addr", "127.0.0.1:0"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("in use by another bunkerd"), "{err}");
}

/// Runs bunkerd expecting it to refuse to start; returns its last stderr line.
fn refused(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run("bunkerd", args, env);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "bunkerd accepted {args:?}: {err}");
    assert_ne!(out.status.code(), Some(0));
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("bunkerd: ")).collect();
    assert_eq!(lines.len(), 1, "want one clear line, got: {err}");
    lines[0].to_string()
}

#[test]
fn bad_config_files_stop_the_daemon_with_one_line_naming_the_problem() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = tmp.path().join("bunker.toml");
    let data = tmp.path().join("box");
    let data = data.to_str().unwrap();
    let cases = [
        ("[web]\nadress = \"127.0.0.1:1\"\n", "web.adress"),
        ("[intervals]\naudit = 60\n", "intervals.audit"),
        ("[web]\naddr = \"my box\"\n", "web.addr"),
        ("[net]\nlisten = [\"/ip4/1.2.3.4/tcp/x\"]\n", "net.listen"),
        ("[web\n", "line 2"),
    ];
    for (text, needle) in cases {
        // The data dir is set in the file too, so nothing on the command line
        // can mask the bad key.
        std::fs::write(&cfg, format!("data_dir = {data:?}\n{text}")).unwrap();
        let line = refused(&["--config", cfg.to_str().unwrap()], &[]);
        assert!(line.contains(needle), "{text:?}: {line}");
        assert!(line.contains("bunker.toml"), "{line}");
    }
    std::fs::write(&cfg, "data_dir = 5\n").unwrap();
    let line = refused(&["--config", cfg.to_str().unwrap()], &[]);
    assert!(line.contains("`data_dir`") && line.contains("bunker.toml"), "{line}");
    let line = refused(&["--config", "/nonexistent/bunker.toml"], &[]);
    assert!(line.contains("/nonexistent/bunker.toml"), "{line}");
    // The box did not start, so it made no data dir.
    assert!(!std::path::Path::new(data).exists());
}

#[test]
fn bad_flags_and_environment_are_named_too() {
    let line = refused(&["--web-addr", "nowhere"], &[]);
    assert!(line.contains("web.addr") && line.contains("--web-addr"), "{line}");
    let line = refused(&["--set", "intervals.audit=soon"], &[]);
    assert!(line.contains("intervals.audit"), "{line}");
    let line = refused(&["--set", "no.such.key=1"], &[]);
    assert!(line.contains("no.such.key"), "{line}");
    let line = refused(&[], &[("BUNKER_INTERVALS_FULL_CHECK", "0s")]);
    assert!(line.contains("BUNKER_INTERVALS_FULL_CHECK"), "{line}");
    let line = refused(&["--set", "log=info,[["], &[]);
    assert!(line.contains("`log`"), "{line}");
}

#[test]
fn an_unusable_data_dir_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "").unwrap();
    let bad = file.join("data");
    let line = refused(&["--data-dir", bad.to_str().unwrap(), "--web-addr", "127.0.0.1:0"], &[]);
    assert!(line.contains(bad.to_str().unwrap()) && line.contains("cannot create"), "{line}");

    // Read-only even for root: a directory under /proc.
    let line = refused(&["--data-dir", "/proc/bunker-data", "--web-addr", "127.0.0.1:0"], &[]);
    assert!(line.contains("/proc/bunker-data"), "{line}");
}

#[test]
fn a_web_port_in_use_is_one_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let line = refused(&["--data-dir", tmp.path().to_str().unwrap(), "--web-addr", &addr], &[]);
    assert!(line.contains("web.addr") && line.contains(&addr), "{line}");
}

#[test]
fn version_and_help_answer_without_starting_a_box() {
    let out = run("bunkerd", &["--version"], &[]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), format!("bunkerd {}", env!("CARGO_PKG_VERSION")));
    let out = run("bunkerd", &["--help"], &[]);
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in ["--config", "--data-dir", "--web-addr", "--set", "BUNKER_DATA_DIR", "BUNKER_WEB_ADDR"] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
    let out = run("bunker", &["--help"], &[]);
    assert!(String::from_utf8(out.stdout).unwrap().contains("status"));
}

#[test]
fn print_config_shows_the_effective_values() {
    let out = run("bunkerd", &["--print-config", "--web-addr", "0.0.0.0:9999"], &[("BUNKER_INTERVALS_AUDIT", "45s")]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("addr = \"0.0.0.0:9999\""), "{text}");
    assert!(text.contains("audit = \"45s\""), "{text}");
}

#[test]
fn the_cli_says_clearly_when_no_daemon_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run("bunker", &["--data-dir", tmp.path().to_str().unwrap(), "status"], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("cannot reach bunkerd") && err.contains("is the daemon running"), "{err}");
}

#[test]
fn under_systemd_it_reports_ready_and_pings_the_watchdog() {
    let tmp = tempfile::tempdir().unwrap();
    let notify_path = tmp.path().join("notify.sock");
    let notify = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let node = BoxProcess::start_with_env(
        &tmp.path().join("box"),
        &[],
        &[("NOTIFY_SOCKET", notify_path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")],
    );
    let mut messages = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + Duration::from_secs(10);
    while messages.iter().filter(|m: &&String| m.contains("WATCHDOG=1")).count() < 3 && Instant::now() < deadline {
        let n = notify.recv(&mut buf).unwrap_or_else(|e| panic!("no notification within 10 s ({e}); so far {messages:?}:\n{}", node.log()));
        messages.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(messages.iter().any(|m| m.contains("READY=1")), "{messages:?}");
    assert!(messages.iter().filter(|m| m.contains("WATCHDOG=1")).count() >= 3, "{messages:?}");
    assert!(node.stop().success());
}
