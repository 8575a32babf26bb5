//! Restore from the 24 words on the admin page (`POST /api/setup/restore`,
//! `GET /api/restore`) as a browser meets it, over a real engine (loopback
//! swarm, real MANIFEST.db): who may ask, what bad words get, and that a box
//! holding the owner's data is never restored over. The daemon's part (stop
//! the engine, swap the seed, restore) is stood in for by a control that
//! records the seed it is handed and runs the real data check;
//! `tests/tests/restore_web.rs` runs the real daemon end to end.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use bunker_core::Seed;
use bunker_node::{Node, Policy};
use bunker_web::restore::StartFuture;
use bunker_web::{
    admin_router, with_engine, with_restore, Admin, EngineApi, NodeStatus, RestoreControl,
    RestoreState, Router, SeedWords, SetupStage, StatusSource,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

mod common;

const HOST: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";
const PASSWORD: &str = "correct horse battery";

/// The words of the box's first seed, read like the daemon's seed file.
struct FirstWords(Vec<String>);
impl SeedWords for FirstWords {
    fn words(&self) -> Result<Vec<String>, String> {
        Ok(self.0.clone())
    }
}

struct Status;
impl StatusSource for Status {
    fn status(&self) -> NodeStatus {
        NodeStatus { version: "0".into(), state: "running".into(), uptime_secs: 0, peer_id: None, data_dir_space: None, disks: vec![], alerts: vec![] }
    }
}

/// Stands in for the daemon: runs the real "no user data" check on the real
/// engine, then records the seed it was handed and says the restore runs.
struct Recorder {
    node: Node,
    handed: Mutex<Vec<(Seed, Option<Vec<u8>>)>>,
}

impl RestoreControl for Recorder {
    fn start(&self, seed: Seed, kit: Option<Vec<u8>>) -> StartFuture<'_> {
        Box::pin(async move {
            bunker_web::restore::refuse_if_in_use(&self.node).await?;
            self.handed.lock().unwrap().push((seed, kit));
            Ok(())
        })
    }
    fn state(&self) -> RestoreState {
        if self.handed.lock().unwrap().is_empty() {
            RestoreState::Idle
        } else {
            RestoreState::Switching
        }
    }
    fn pending(&self) -> bool {
        false
    }
}

struct TestBox {
    _dir: tempfile::TempDir,
    admin: Arc<Admin>,
    router: Router,
    node: Node,
    control: Arc<Recorder>,
}

async fn new_box() -> TestBox {
    let dir = tempfile::tempdir().unwrap();
    let seed = Seed::generate();
    let words = seed.words().map(String::from).collect();
    let keys = bunker_core::Keys::from_seed(&seed);
    let (net, inbound) = bunker_net::Net::start(bunker_net::NetConfig::loopback(keys.identity())).await.unwrap();
    let manifest = bunker_manifest::Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
    let store = dir.path().join("store");
    let node = Node::start(bunker_node::NodeParts {
        seed,
        config: bunker_node::NodeConfig::new(&store),
        manifest,
        net,
        inbound,
        ln: None,
    })
    .await
    .unwrap();
    let admin = Arc::new(Admin::open(common::fast_admin_options(dir.path()), Arc::new(FirstWords(words))).unwrap());
    let api = EngineApi { node: node.clone(), store_root: store, scratch_dir: dir.path().to_owned() };
    let control = Arc::new(Recorder { node: node.clone(), handed: Mutex::new(Vec::new()) });
    let router = with_restore(with_engine(admin_router(admin.clone(), Arc::new(Status)), api), control.clone());
    TestBox { _dir: dir, admin, router, node, control }
}

struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    cookie: Option<String>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error: {}", self.json())).to_string()
    }
}

async fn send(router: &Router, method: Method, path: &str, cookie: Option<&str>, origin: Option<&str>, body: Option<Value>) -> Answer {
    let mut req = Request::builder().method(method).uri(path).header(header::HOST, HOST);
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    if body.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/json");
    }
    let mut req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000)));
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let cookie = resp.headers().get(header::SET_COOKIE).map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string());
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, body, cookie }
}

async fn claim(b: &TestBox) -> String {
    let code = b.admin.pairing_code().unwrap();
    let a = send(&b.router, Method::POST, "/api/setup/claim", None, Some(ORIGIN), Some(json!({ "pairing_code": code, "password": PASSWORD }))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    a.cookie.expect("a session cookie")
}

async fn restore(b: &TestBox, cookie: Option<&str>, words: Value) -> Answer {
    send(&b.router, Method::POST, "/api/setup/restore", cookie, Some(ORIGIN), Some(json!({ "words": words }))).await
}

fn phrase(seed: &Seed) -> String {
    seed.words().collect::<Vec<_>>().join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_or_from_another_site_nothing_is_restored() {
    let b = new_box().await;
    let lost = Seed::generate();
    // Unclaimed, no session.
    let a = restore(&b, None, json!(phrase(&lost))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.error());
    let a = send(&b.router, Method::GET, "/api/restore", None, None, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let cookie = claim(&b).await;
    // A forged session, a missing and a foreign Origin.
    let a = restore(&b, Some("bunker_session=0000"), json!(phrase(&lost))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = send(&b.router, Method::POST, "/api/setup/restore", Some(&cookie), None, Some(json!({ "words": phrase(&lost) }))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.error());
    let a = send(&b.router, Method::POST, "/api/setup/restore", Some(&cookie), Some("http://evil.example"), Some(json!({ "words": phrase(&lost) }))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(b.control.handed.lock().unwrap().is_empty(), "nothing reached the daemon");
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_words_are_refused_with_what_is_wrong_and_never_echoed_whole() {
    let b = new_box().await;
    let cookie = claim(&b).await;
    let lost = Seed::generate();
    let words: Vec<&str> = lost.words().collect();

    let a = restore(&b, Some(&cookie), json!(words[..23].join(" "))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("exactly 24 words") && a.error().contains("got 23"), "{}", a.error());

    let mut typo = words.clone();
    typo[6] = "zebraa";
    let a = restore(&b, Some(&cookie), json!(typo.join(" "))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("word 7") && a.error().contains("zebraa"), "{}", a.error());

    // Twenty-four real words that are not a seed: the checksum says so.
    let mut bad_sum = None;
    for i in 0..2048u32 {
        let mut w = words.clone();
        let other = ["abandon", "zoo", "ability", "zone"][(i % 4) as usize];
        w[23] = other;
        if Seed::from_phrase(&w.join(" ")).is_err() {
            bad_sum = Some(w.join(" "));
            break;
        }
    }
    let a = restore(&b, Some(&cookie), json!(bad_sum.expect("a last word that breaks the checksum"))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("checksum"), "{}", a.error());

    // Not JSON of the right shape.
    let a = send(&b.router, Method::POST, "/api/setup/restore", Some(&cookie), Some(ORIGIN), Some(json!({ "seed": "x" }))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(b.control.handed.lock().unwrap().is_empty());

    // A kit that is not one.
    let a = send(&b.router, Method::POST, "/api/setup/restore", Some(&cookie), Some(ORIGIN), Some(json!({ "words": phrase(&lost), "kit": "hello" }))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("not a recovery kit"), "{}", a.error());
    assert!(b.control.handed.lock().unwrap().is_empty());

    // Numbered, one per line, in capitals (copied from paper): accepted, with the kit's text.
    let numbered: String = words.iter().enumerate().map(|(i, w)| format!("{}. {}\n", i + 1, w.to_uppercase())).collect();
    let a = send(&b.router, Method::POST, "/api/setup/restore", Some(&cookie), Some(ORIGIN), Some(json!({ "words": numbered, "kit": " BUNKERKIT1:abc\n" }))).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json()["state"], "switching");
    let handed = b.control.handed.lock().unwrap()[0].clone();
    assert!(handed.0 == lost, "the daemon got the words typed");
    assert_eq!(handed.1.as_deref(), Some(&b"BUNKERKIT1:abc"[..]), "and the kit's text");
    // Setup is complete: the first seed's words are never shown.
    assert_eq!(b.admin.stage(), SetupStage::Complete);
    let a = send(&b.router, Method::POST, "/api/setup/words", Some(&cookie), Some(ORIGIN), None).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = send(&b.router, Method::GET, "/api/restore", Some(&cookie), None, None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["state"], "switching");
    // And a second restore once setup is complete is refused.
    let a = restore(&b, Some(&cookie), json!(words)).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.error().contains("setup is complete"), "{}", a.error());
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_holding_files_is_never_restored_over() {
    let b = new_box().await;
    let cookie = claim(&b).await;
    let bytes = b"the owner's first file".to_vec();
    b.node
        .put("/first.txt", bytes.len() as u64, Policy { copies: 0, keep_local: true }, std::io::Cursor::new(bytes))
        .await
        .expect("a local file");
    let a = restore(&b, Some(&cookie), json!(phrase(&Seed::generate()))).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.error().contains("already holds data") && a.error().contains("1 files"), "{}", a.error());
    assert!(b.control.handed.lock().unwrap().is_empty(), "the daemon was not asked");
    assert_ne!(b.admin.stage(), SetupStage::Complete, "still in setup");
    b.node.shutdown().await;
}
