//! Restore from the 24 words through the admin page's API, end to end: box A
//! (an engine whose words the test keeps) stores files on an in-process
//! cluster of real engines and replicates its manifest, then is gone. A new
//! box — the real `bunkerd` process, started on an empty data dir, so with a
//! seed of its own — is claimed with its pairing code and handed A's words
//! over HTTP (`POST /api/setup/restore`) as the setup page does. The daemon
//! stops its engine, swaps the seed, starts again and restores; the test
//! follows `GET /api/restore` until done and then reads every file back over
//! the same API, byte for byte, under A's PeerId.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use bunker_core::{Keys, Seed};
use bunker_manifest::Manifest;
use bunker_net::{Multiaddr, Net, NetConfig, PeerId};
use bunker_node::{Node, NodeParts, Policy};
use bunker_tests::cluster::{blocking, random_bytes, test_config, Cluster, ClusterSpec};
use bunker_tests::{run, BoxProcess};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// The lost box: its own engine, dialing the cluster.
async fn start_box(seed: &Seed, dir: &Path, dial: &[(PeerId, Vec<Multiaddr>)]) -> Node {
    std::fs::create_dir_all(dir).unwrap();
    let keys = Keys::from_seed(seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.expect("swarm starts");
    let manifest = Manifest::open(dir.join("MANIFEST.db")).expect("MANIFEST.db opens");
    let seed = Seed::from_phrase(&seed.phrase()).expect("same words");
    let node = Node::start(NodeParts { seed, config: test_config(&dir.join("store")), manifest, net, inbound, ln: None })
        .await
        .expect("engine starts");
    for (peer, addrs) in dial {
        let _ = node.net().dial(*peer, addrs.clone()).await;
    }
    node
}

/// One HTTP/1.1 exchange with the daemon's admin page, as the page makes it
/// (Host and Origin of the page itself, the session cookie): status, the
/// cookie it sets, the body (de-chunked).
struct Http {
    addr: SocketAddr,
    cookie: Option<String>,
}

struct Reply {
    status: u16,
    set_cookie: Option<String>,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Http {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Reply {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {a}\r\nOrigin: http://{a}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len(),
            a = self.addr
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(c) = &self.cookie {
            head.push_str(&format!("Cookie: {c}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read the answer");
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP head");
        let head = String::from_utf8_lossy(&raw[..split]).to_string();
        let mut body = raw[split + 4..].to_vec();
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
            })
        };
        if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            body = dechunk(&body);
        }
        let set_cookie = header("set-cookie").map(|c| c.split(';').next().unwrap_or_default().to_string());
        Reply { status, set_cookie, body }
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..line_end]).split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn encode(path: &str) -> String {
    path.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Starts the real daemon on the empty `data_dir` (with `extra` args),
/// claims it with its pairing code, posts `request` to
/// `POST /api/setup/restore` as the setup page does, and follows
/// `GET /api/restore` until done: the daemon, the final state, the session.
fn claim_and_restore(data_dir: &Path, extra: &[&str], request: Value) -> (BoxProcess, Value, Http) {
    let daemon = BoxProcess::start(data_dir, extra);
    let first_seed = std::fs::read_to_string(data_dir.join("seed")).unwrap();
    assert!(Seed::from_phrase(&first_seed).unwrap() != Seed::from_phrase(request["words"].as_str().unwrap()).unwrap(), "a seed of its own");
    let code = run("bunker", &["--data-dir", data_dir.to_str().unwrap(), "pairing-code"], &[]);
    assert!(code.status.success(), "{}", String::from_utf8_lossy(&code.stderr));
    let code = String::from_utf8_lossy(&code.stdout).trim().to_string();
    let mut http = Http { addr: daemon.web_addr, cookie: None };

    // Claimed, logged in; then the words, through the API.
    let claim = http.call("POST", "/api/setup/claim", Some(&json!({ "pairing_code": code, "password": PASSWORD })));
    assert_eq!(claim.status, 200, "{}", String::from_utf8_lossy(&claim.body));
    http.cookie = claim.set_cookie.clone();
    let accepted = http.call("POST", "/api/setup/restore", Some(&request));
    assert_eq!(accepted.status, 202, "{}", String::from_utf8_lossy(&accepted.body));

    // Followed until done (a few 503s while the engine restarts are fine).
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut seen = Vec::new();
    let done = loop {
        let st = http.call("GET", "/api/restore", None);
        assert_eq!(st.status, 200, "session kept across the engine's restart: {}", String::from_utf8_lossy(&st.body));
        let st = st.json();
        let state = st["state"].as_str().unwrap_or_default().to_string();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        match state.as_str() {
            "done" => break st,
            "failed" => panic!("restore failed: {st}\n{}", daemon.log()),
            _ => {}
        }
        assert!(Instant::now() < deadline, "restore not done within 300 s ({st}):\n{}", daemon.log());
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(seen.last().map(String::as_str), Some("done"), "states seen: {seen:?}");
    (daemon, done, http)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_box_claimed_on_the_admin_page_becomes_the_lost_box_from_its_words() {
    let cluster = Cluster::start(ClusterSpec::new(3).without_lightning()).await;
    let everyone: Vec<(PeerId, Vec<Multiaddr>)> = cluster.boxes.iter().map(|b| (b.peer_id, b.net_addrs.clone())).collect();

    // Box A stores files (some kept locally) on the cluster and replicates its manifest.
    let seed = Seed::generate();
    let lost = tempfile::tempdir().unwrap();
    let a = start_box(&seed, lost.path(), &everyone).await;
    let owner = a.peer_id().to_string();
    let files: Vec<(&str, Vec<u8>, u8, bool)> = vec![
        ("/photos/cat.jpg", random_bytes(200_000), 2, true),
        ("/docs/notes.txt", random_bytes(17), 2, false),
        ("/music/a song.flac", random_bytes(65_537), 2, true),
        ("/video/clip.bin", random_bytes(500_000), 2, false),
    ];
    for (path, bytes, copies, keep_local) in &files {
        let body = std::io::Cursor::new(bytes.clone());
        tokio::time::timeout(Duration::from_secs(120), a.put(path, bytes.len() as u64, Policy { copies: *copies, keep_local: *keep_local }, body))
            .await
            .unwrap_or_else(|_| panic!("put {path}: not done within 120 s"))
            .unwrap_or_else(|e| panic!("put {path}: {e}"));
    }
    let rep = a.replicate_manifest_now(Some(3)).await.expect("manifest replicated");
    assert_eq!(rep.stored.len(), 3, "{rep:?}");
    a.shutdown().await;
    drop(a);
    drop(lost); // the box and its disk are gone

    // A new box: the real daemon on an empty data dir, knowing the cluster.
    let fresh = tempfile::tempdir().unwrap();
    let data_dir = fresh.path().to_owned();
    let bootstrap: Vec<String> = cluster
        .boxes
        .iter()
        .map(|b| format!("{}/p2p/{}", b.net_addrs.iter().find(|a| a.to_string().starts_with("/ip4/127.0.0.1")).unwrap_or(&b.net_addrs[0]), b.peer_id))
        .collect();
    let bootstrap = format!("net.bootstrap={}", serde_json::to_string(&bootstrap).unwrap());
    let words = seed.words().collect::<Vec<_>>().join(" ");
    let (daemon, done, http) = blocking(move || {
        claim_and_restore(&data_dir, &["--set", &bootstrap], json!({ "words": words }))
    })
    .await;

    assert_eq!(done["peer_id"], owner.as_str(), "{done}");
    assert_eq!(done["files"], files.len(), "{done}");
    assert_eq!(done["files_restored"], 2, "both keep-local files fetched eagerly: {done}");
    assert_eq!(done["version"], rep.version, "{done}");

    let files_back = files.clone();
    let mut daemon = blocking(move || {
        let mut daemon = daemon;
        // Same PeerId, every file byte-identical, over the admin page's API.
        let node = http.call("GET", "/api/node", None);
        assert_eq!(node.status, 200, "{}", String::from_utf8_lossy(&node.body));
        assert_eq!(node.json()["peer_id"], owner.as_str());
        for (path, bytes, _, keep_local) in &files_back {
            let got = http.call("GET", &format!("/api/files/content?path={}", encode(path)), None);
            assert_eq!(got.status, 200, "{path}: {}", String::from_utf8_lossy(&got.body[..got.body.len().min(300)]));
            assert!(got.body == *bytes, "{path}: {} bytes back, {} stored, not identical", got.body.len(), bytes.len());
            let detail = http.call("GET", &format!("/api/files/detail?path={}", encode(path)), None);
            assert_eq!(detail.status, 200);
            assert_eq!(detail.json()["file"]["has_local"], *keep_local, "{path}: local copy as before");
        }
        let st = http.call("GET", "/api/restore", None).json();
        assert_eq!(st["state"], "done");
        // The admin page's own status says it is A now.
        let status = http.call("GET", "/api/status", None).json();
        assert_eq!(status["peer_id"], owner.as_str());
        assert!(!daemon.data_dir.join("restore-pending").exists(), "the pending mark is gone once done");
        daemon.signal(Signal::SIGTERM);
        let exit = daemon.wait_exit(Duration::from_secs(15)).expect("stops");
        assert!(exit.success(), "{exit:?}\n{}", daemon.log());
        daemon
    })
    .await;

    // Started again, the box is A from its own seed file.
    let data_dir = daemon.data_dir.clone();
    let again = blocking(move || {
        let again = BoxProcess::start(&data_dir, &[]);
        let status = again.status();
        drop(again);
        status
    })
    .await;
    assert_eq!(again["peer_id"], done["peer_id"], "{again}");
    let _ = daemon.wait_exit(Duration::from_millis(10));
    cluster.shutdown().await;
}

/// Same, with the network's DHT out of reach (the new box knows no peer at
/// all): the recovery kit's text, given with the words on the setup page,
/// names the holders and their addresses.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_no_peer_known_the_recovery_kit_given_on_the_page_finds_the_manifest() {
    let cluster = Cluster::start(ClusterSpec::new(3).without_lightning()).await;
    let everyone: Vec<(PeerId, Vec<Multiaddr>)> = cluster.boxes.iter().map(|b| (b.peer_id, b.net_addrs.clone())).collect();
    let seed = Seed::generate();
    let lost = tempfile::tempdir().unwrap();
    let a = start_box(&seed, lost.path(), &everyone).await;
    let owner = a.peer_id().to_string();
    let kept = random_bytes(150_000);
    let body = std::io::Cursor::new(kept.clone());
    a.put("/kept.bin", kept.len() as u64, Policy { copies: 2, keep_local: true }, body).await.expect("put");
    a.replicate_manifest_now(Some(2)).await.expect("manifest replicated");
    let kit = a.recovery_kit_text().await.expect("a recovery kit");
    a.shutdown().await;
    drop(a);
    drop(lost);

    let fresh = tempfile::tempdir().unwrap();
    let data_dir = fresh.path().to_owned();
    let words = seed.words().collect::<Vec<_>>().join(" ");
    let (daemon, done, http) = blocking(move || {
        // No net.bootstrap: the box meets nobody unless the kit says where.
        claim_and_restore(&data_dir, &[], json!({ "words": words, "kit": kit }))
    })
    .await;
    assert_eq!(done["peer_id"], owner.as_str(), "{done}");
    assert_eq!((done["files"].as_u64(), done["files_restored"].as_u64()), (Some(1), Some(1)), "{done}");
    let got = blocking(move || {
        let got = http.call("GET", "/api/files/content?path=%2Fkept.bin", None);
        drop(daemon);
        got
    })
    .await;
    assert_eq!(got.status, 200);
    assert!(got.body == kept, "byte-identical");
    cluster.shutdown().await;
}
