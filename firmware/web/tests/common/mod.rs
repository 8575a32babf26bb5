//! One box for the engine-API tests: a real engine (loopback swarm, real
//! MANIFEST.db, Lightning off) behind both routers, and the requests and
//! answers the tests exchange with it.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use bunker_web::password::PasswordCost;
use bunker_web::rate_limit::{Bucket, RateLimits};
use bunker_web::{
    admin_router, local_api_router, with_engine, Admin, AdminOptions, EngineApi, NodeStatus, Router, SeedWords,
    StatusSource,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

pub const HOST: &str = "127.0.0.1:8080";
pub const ORIGIN: &str = "http://127.0.0.1:8080";
pub const PASSWORD: &str = "correct horse battery";

pub struct NoWords;
impl SeedWords for NoWords {
    fn words(&self) -> Result<Vec<String>, String> {
        Err("no words in this test".into())
    }
}

pub struct Status;
impl StatusSource for Status {
    fn status(&self) -> NodeStatus {
        NodeStatus { version: "0".into(), state: "running".into(), uptime_secs: 0, peer_id: None, data_dir_space: None, disks: vec![], alerts: vec![] }
    }
}

/// One box: a real engine behind both routers.
pub struct TestBox {
    pub dir: tempfile::TempDir,
    pub store: std::path::PathBuf,
    pub admin: Arc<Admin>,
    pub admin_router: Router,
    pub local: Router,
    pub node: bunker_node::Node,
}

pub async fn new_box() -> TestBox {
    new_box_with(|_| {}).await
}

/// A box whose engine settings `tweak` changes first.
pub async fn new_box_with(tweak: impl FnOnce(&mut bunker_node::NodeConfig)) -> TestBox {
    new_box_from(|_| {}, tweak).await
}

/// A box whose MANIFEST.db `prepare` fills and whose engine settings
/// `tweak` changes before the engine starts.
pub async fn new_box_from(
    prepare: impl FnOnce(&mut bunker_manifest::Manifest),
    tweak: impl FnOnce(&mut bunker_node::NodeConfig),
) -> TestBox {
    let dir = tempfile::tempdir().unwrap();
    let seed = bunker_core::Seed::generate();
    let keys = bunker_core::Keys::from_seed(&seed);
    let (net, inbound) = bunker_net::Net::start(bunker_net::NetConfig::loopback(keys.identity())).await.unwrap();
    let mut manifest = bunker_manifest::Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
    prepare(&mut manifest);
    let store = dir.path().join("store");
    let mut config = bunker_node::NodeConfig::new(&store);
    tweak(&mut config);
    let node = bunker_node::Node::start(bunker_node::NodeParts { seed, config, manifest, net, inbound, ln: None })
        .await
        .unwrap();
    let admin = Arc::new(Admin::open(fast_admin_options(dir.path()), Arc::new(NoWords)).unwrap());
    let api = EngineApi { node: node.clone(), store_root: store.clone(), scratch_dir: dir.path().to_owned() };
    let admin_router = with_engine(admin_router(admin.clone(), Arc::new(Status)), api.clone());
    let local = with_engine(local_api_router(admin.clone(), Arc::new(Status)), api);
    TestBox { dir, store, admin, admin_router, local, node }
}

/// The admin page's state under `data_dir/admin`, with a password hash
/// cheap enough for tests and rate limits no test reaches.
pub fn fast_admin_options(data_dir: &std::path::Path) -> AdminOptions {
    let mut opts = AdminOptions::new(data_dir.join("admin"));
    opts.password_cost = PasswordCost { memory_kib: 64, iterations: 1, parallelism: 1 };
    opts.rate_limits = RateLimits {
        per_ip: Bucket { burst: 1000, refill: Duration::from_millis(1) },
        global: Bucket { burst: 1000, refill: Duration::from_millis(1) },
    };
    std::fs::create_dir_all(data_dir.join("admin")).unwrap();
    opts
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn error(&self) -> String {
        let v = self.json();
        v["error"].as_str().unwrap_or_else(|| panic!("no error field: {v}")).to_string()
    }

    /// The session cookie the answer sets, as a `Cookie` header value.
    pub fn cookie(&self) -> Option<String> {
        self.headers.get(header::SET_COOKIE).map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
    }
}

/// Sends `req` as if from 127.0.0.1 and reads the whole answer.
pub async fn send(router: &Router, mut req: Request<Body>) -> Answer {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000)));
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
    Answer { status, headers, body }
}

/// A request from the admin page's own origin.
pub fn req(method: Method, uri: &str) -> axum::http::request::Builder {
    Request::builder().method(method).uri(uri).header(header::HOST, HOST).header(header::ORIGIN, ORIGIN)
}

/// Claims the box; returns the session cookie.
pub async fn claim(b: &TestBox) -> String {
    let code = b.admin.pairing_code().unwrap();
    let a = send(
        &b.admin_router,
        req(Method::POST, "/api/setup/claim")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({ "pairing_code": code, "password": PASSWORD }).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    a.cookie().expect("a session cookie")
}
