//! The `bunker` command line against real daemons: three boxes on loopback
//! that bootstrap to each other (Lightning off, short intervals), driven
//! only through the CLI as an owner would.

use std::path::Path;
use std::time::{Duration, Instant};

use bunker_tests::{run, BoxProcess};
use serde_json::Value;

const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

/// `bunker --data-dir <box> args...`; panics with stderr unless it succeeds.
fn bunker(node: &BoxProcess, args: &[&str]) -> String {
    let out = bunker_raw(node, args);
    assert!(
        out.status.success(),
        "bunker {args:?} failed: {}\n--- daemon log ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        node.log()
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn bunker_raw(node: &BoxProcess, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--data-dir", node.data_dir.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run("bunker", &all, &[])
}

fn bunker_json(node: &BoxProcess, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    serde_json::from_str(&bunker(node, &all)).expect("JSON output")
}

/// Settings every box of these tests runs with: quick background work.
const QUICK: [&str; 10] = [
    "--set",
    "intervals.audit=3s",
    "--set",
    "intervals.settle=5s",
    "--set",
    "intervals.manifest_debounce=2s",
    "--set",
    "reserves.safety_margin=\"64 MiB\"",
    "--set",
    "ln.chain=none",
];

/// Three boxes: A alone, B bootstrapping to A, C to A and B.
struct Trio {
    _tmp: tempfile::TempDir,
    boxes: Vec<BoxProcess>,
    ids: Vec<String>,
}

fn start_trio() -> Trio {
    let tmp = tempfile::tempdir().unwrap();
    let mut boxes: Vec<BoxProcess> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    let mut bootstrap: Vec<String> = Vec::new();
    for name in ["a", "b", "c"] {
        let list = bootstrap.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ");
        let boot = format!("net.bootstrap=[{list}]");
        let mut args: Vec<&str> = vec!["--set", &boot];
        args.extend_from_slice(&QUICK);
        // The swarm listens on a port the kernel picks (LOOPBACK_NET): a port
        // picked here and released could be taken by any outbound connection
        // before the daemon binds it.
        let node = BoxProcess::start(&tmp.path().join(name), &args);
        let id = node.status()["peer_id"].as_str().expect("peer id").to_string();
        bootstrap.push(format!("{}/p2p/{id}", tcp_listen_addr(&node)));
        ids.push(id);
        boxes.push(node);
    }
    Trio { _tmp: tmp, boxes, ids }
}

/// The box's TCP listen address on loopback, once its swarm has one.
fn tcp_listen_addr(node: &BoxProcess) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let peers = bunker_json(node, &["peers"]);
        let found = peers["listen_addrs"]
            .as_array()
            .expect("listen_addrs")
            .iter()
            .filter_map(|a| a.as_str())
            .find(|a| a.starts_with("/ip4/127.0.0.1/tcp/"))
            .map(str::to_owned);
        if let Some(addr) = found {
            return addr;
        }
        assert!(Instant::now() < deadline, "no TCP listen address within 30 s: {peers}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until every box lists the two others as connected in `bunker peers`.
fn wait_connected(trio: &Trio) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for (i, node) in trio.boxes.iter().enumerate() {
        loop {
            let peers = bunker_json(node, &["peers"]);
            let connected: Vec<&str> = peers["peers"]
                .as_array()
                .expect("peers list")
                .iter()
                .filter(|p| p["connected"] == true)
                .filter_map(|p| p["peer"].as_str())
                .collect();
            let others: Vec<&String> = trio.ids.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, id)| id).collect();
            if others.iter().all(|id| connected.contains(&id.as_str())) {
                assert_eq!(peers["local_peer_id"], trio.ids[i].as_str());
                break;
            }
            assert!(Instant::now() < deadline, "box {i} sees {connected:?}, wants {others:?}:\n{}", node.log());
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

#[test]
fn three_boxes_find_each_other_and_serve_their_manifest_through_the_cli() {
    let trio = start_trio();
    wait_connected(&trio);
    let a = &trio.boxes[0];

    // The human table names the others as connected.
    let table = bunker(a, &["peers"]);
    assert!(table.contains(&trio.ids[0]), "{table}");
    for id in &trio.ids[1..] {
        let line = table.lines().find(|l| l.contains(id.as_str())).unwrap_or_else(|| panic!("{id} missing:\n{table}"));
        assert!(line.contains("connected"), "{line}");
    }

    // The root lists /MANIFEST.db first, as a table and as JSON.
    let listing = bunker(a, &["ls", "/"]);
    assert!(listing.contains("MANIFEST.db"), "{listing}");
    let listing = bunker_json(a, &["ls"]);
    assert_eq!(listing["folder"], "/");
    assert_eq!(listing["files"][0]["path"], "/MANIFEST.db", "{listing}");
    assert_eq!(listing["files"][0]["is_manifest"], true);

    // The download is a valid SQLite database, to a file and to stdout.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.db");
    bunker(a, &["get", "/MANIFEST.db", out.to_str().unwrap()]);
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(SQLITE_HEADER), "not SQLite: {:?}", &bytes[..bytes.len().min(16)]);
    assert!(!dir.path().join("out.db.part").exists(), "the side file must be renamed away");
    let piped = bunker_raw(a, &["get", "/MANIFEST.db", "-"]);
    assert!(piped.status.success());
    assert!(piped.stdout.starts_with(SQLITE_HEADER));

    // The status gains the engine's figures.
    let status = bunker_json(a, &["status"]);
    assert_eq!(status["state"], "running");
    assert!(status["engine"].is_object(), "{status}");
    assert_eq!(status["engine"]["peer_id"], trio.ids[0].as_str());
    assert_eq!(status["engine"]["lightning"], "off", "{status}");
    let text = bunker(a, &["status"]);
    assert!(text.contains("state:    running") && text.contains("lightning: off"), "{text}");

    // Without Lightning the wallet says so, with a non-zero exit.
    let wallet = bunker_raw(a, &["wallet"]);
    assert!(!wallet.status.success());
    assert!(String::from_utf8_lossy(&wallet.stderr).contains("Lightning is off"), "{}", String::from_utf8_lossy(&wallet.stderr));

    // Mistakes get one clear line and a non-zero exit.
    for (args, needle) in [
        (vec!["get", "/no/such/file.txt", dir.path().join("x").to_str().unwrap()], "no file"),
        (vec!["ls", "relative/folder"], "start with '/'"),
        (vec!["rm", "/a/../b"], "'..'"),
        (vec!["put", "/nonexistent/local.file", "/x"], "cannot open"),
    ] {
        let out = bunker_raw(a, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(!dir.path().join("x").exists() && !dir.path().join("x.part").exists(), "a failed get leaves no file");

    for node in trio.boxes {
        assert!(node.stop().success());
    }
}

/// Bytes that do not compress and are the same on every run.
fn test_bytes(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn a_file_put_with_two_copies_and_no_local_copy_comes_back_byte_identical() {
    let trio = start_trio();
    wait_connected(&trio);
    let a = &trio.boxes[0];
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("report.bin");
    let content = test_bytes(3 * 1024 * 1024 + 12_345);
    std::fs::write(&original, &content).unwrap();

    let said = bunker(a, &["put", original.to_str().unwrap(), "/docs/report.bin", "--copies", "2", "--no-local"]);
    assert!(said.contains("stored /docs/report.bin") && said.contains("2 copies on peers"), "{said}");
    assert!(!said.contains("one on this box"), "{said}");

    let listing = bunker_json(a, &["ls", "/docs"]);
    let file = &listing["files"][0];
    assert_eq!(file["path"], "/docs/report.bin", "{listing}");
    assert_eq!(file["size"], content.len() as u64);
    assert_eq!(file["has_local"], false);
    assert_eq!(file["active_replicas"], 2);
    let root = bunker(a, &["ls", "/"]);
    assert!(root.contains("docs/"), "{root}");

    // Two contracts, one on each of the other boxes.
    let contracts = bunker_json(a, &["contracts"]);
    let hosts: Vec<&str> = contracts
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["direction"] == "ours_on_peer" && c["state"] == "active")
        .filter_map(|c| c["peer"].as_str())
        .collect();
    assert_eq!(hosts.len(), 2, "{contracts}");
    assert!(hosts.contains(&trio.ids[1].as_str()) && hosts.contains(&trio.ids[2].as_str()), "{contracts}");

    let back = dir.path().join("back.bin");
    bunker(a, &["get", "/docs/report.bin", back.to_str().unwrap()]);
    let got = std::fs::read(&back).unwrap();
    assert_eq!(got.len(), content.len());
    assert!(got == content, "the file came back different");

    bunker(a, &["rm", "/docs/report.bin"]);
    let out = bunker_raw(a, &["get", "/docs/report.bin", dir.path().join("gone").to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no file"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!Path::new(&dir.path().join("gone")).exists());

    for node in trio.boxes {
        assert!(node.stop().success());
    }
}
