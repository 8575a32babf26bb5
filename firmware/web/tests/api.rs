//! The admin API as a browser (or an attacker on the LAN) meets it: every
//! endpoint without a session, with bad input, from a foreign origin or
//! host, too often, and the whole first-run setup.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use bunker_web::password::PasswordCost;
use bunker_web::rate_limit::{Bucket, RateLimits};
use bunker_web::{admin_router, local_api_router, Admin, AdminOptions, NodeStatus, Router, SeedWords, StatusSource};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const HOST: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";
const PASSWORD: &str = "correct horse battery";

/// 24 distinct words so that every position is told apart.
fn seed_words() -> Vec<String> {
    "abandon ability able about above absent absorb abstract absurd abuse access accident \
     account accuse achieve acid acoustic acquire across act action actor actress actual"
        .split_whitespace()
        .map(String::from)
        .collect()
}

struct FixedWords;
impl SeedWords for FixedWords {
    fn words(&self) -> Result<Vec<String>, String> {
        Ok(seed_words())
    }
}

struct FixedStatus(std::path::PathBuf);
impl StatusSource for FixedStatus {
    fn status(&self) -> NodeStatus {
        NodeStatus {
            version: "9.9.9".into(),
            state: "running".into(),
            uptime_secs: 42,
            peer_id: Some("12D3KooWTest".into()),
            data_dir_space: bunker_web::disk_space(&self.0).ok(),
            disks: vec![],
            alerts: vec![],
        }
    }
}

struct Box_ {
    dir: tempfile::TempDir,
    admin: Arc<Admin>,
    router: Router,
}

fn options(dir: &std::path::Path) -> AdminOptions {
    let mut opts = AdminOptions::new(dir);
    // Cheap hashing: the default cost is tested in the password module.
    opts.password_cost = PasswordCost { memory_kib: 64, iterations: 1, parallelism: 1 };
    opts.rate_limits = RateLimits {
        per_ip: Bucket { burst: 1000, refill: Duration::from_millis(1) },
        global: Bucket { burst: 1000, refill: Duration::from_millis(1) },
    };
    opts
}

fn new_box() -> Box_ {
    new_box_with(|_| {})
}

fn new_box_with(tweak: impl FnOnce(&mut AdminOptions)) -> Box_ {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    tweak(&mut opts);
    let admin = Arc::new(Admin::open(opts, Arc::new(FixedWords)).unwrap());
    let router = admin_router(admin.clone(), Arc::new(FixedStatus(dir.path().to_owned())));
    Box_ { dir, admin, router }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or_else(|| panic!("no error field: {}", self.json())).to_string()
    }
    /// The session cookie this answer sets, as a `Cookie:` header value.
    fn cookie(&self) -> String {
        let set = self.headers[header::SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_string()
    }
}

/// A request as the page itself would send it, from `ip`.
struct Call<'a> {
    method: Method,
    path: &'a str,
    body: Option<Value>,
    cookie: Option<&'a str>,
    origin: Option<&'a str>,
    host: &'a str,
    ip: IpAddr,
}

fn call<'a>(method: Method, path: &'a str) -> Call<'a> {
    Call {
        method,
        path,
        body: None,
        cookie: None,
        origin: Some(ORIGIN),
        host: HOST,
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

impl<'a> Call<'a> {
    fn body(mut self, v: Value) -> Self {
        self.body = Some(v);
        self
    }
    fn cookie(mut self, c: &'a str) -> Self {
        self.cookie = Some(c);
        self
    }
    fn origin(mut self, o: Option<&'a str>) -> Self {
        self.origin = o;
        self
    }
    fn host(mut self, h: &'a str) -> Self {
        self.host = h;
        self
    }
    fn ip(mut self, last: u8) -> Self {
        self.ip = IpAddr::V4(Ipv4Addr::new(192, 168, 1, last));
        self
    }
    async fn send(self, router: &Router) -> Answer {
        let body = self.body.as_ref().map(|v| v.to_string());
        self.send_raw(router, body.as_deref(), Some("application/json")).await
    }
    async fn send_raw(self, router: &Router, body: Option<&str>, content_type: Option<&str>) -> Answer {
        let mut req = Request::builder().method(self.method).uri(self.path).header(header::HOST, self.host);
        if let Some(o) = self.origin {
            req = req.header(header::ORIGIN, o);
        }
        if let Some(c) = self.cookie {
            req = req.header(header::COOKIE, c);
        }
        if let (Some(t), Some(_)) = (content_type, body) {
            req = req.header(header::CONTENT_TYPE, t);
        }
        let mut req = req.body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty)).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::new(self.ip, 50000)));
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
        Answer { status, headers, body }
    }
}

fn pairing_code(b: &Box_) -> String {
    b.admin.pairing_code().expect("unclaimed box has a code")
}

/// Claims the box; returns the session cookie.
async fn claim(b: &Box_) -> String {
    let a = call(Method::POST, "/api/setup/claim")
        .body(json!({ "pairing_code": pairing_code(b), "password": PASSWORD }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    a.cookie()
}

/// Claims, sees the words, answers them: a box in daily use.
async fn set_up(b: &Box_) -> String {
    let cookie = claim(b).await;
    let shown = call(Method::POST, "/api/setup/words").cookie(&cookie).send(&b.router).await;
    assert_eq!(shown.status, StatusCode::OK);
    let answers = answers_for(&shown.json()["quiz_positions"]);
    let a =
        call(Method::POST, "/api/setup/quiz").cookie(&cookie).body(json!({ "words": answers })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.error());
    cookie
}

fn answers_for(positions: &Value) -> Vec<String> {
    let words = seed_words();
    positions.as_array().unwrap().iter().map(|p| words[p.as_u64().unwrap() as usize - 1].clone()).collect()
}

#[tokio::test]
async fn healthz_answers_ok_to_anyone() {
    let b = new_box();
    for host in [HOST, "evil.example.com"] {
        let a = call(Method::GET, "/healthz").host(host).send(&b.router).await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.body, b"ok\n");
    }
}

#[tokio::test]
async fn every_api_call_but_the_claim_needs_a_session() {
    let b = new_box();
    set_up(&b).await;
    let calls = [
        (Method::GET, "/api/status", None),
        (Method::GET, "/api/session", None),
        (Method::POST, "/api/logout", None),
        (Method::POST, "/api/password", Some(json!({ "old_password": PASSWORD, "new_password": "another password" }))),
        (Method::POST, "/api/setup/words", None),
        (Method::GET, "/api/setup/quiz", None),
        (Method::POST, "/api/setup/quiz", Some(json!({ "words": ["a", "b", "c"] }))),
    ];
    for cookie in [None, Some(format!("bunker_session={}", "ab".repeat(32))), Some("bunker_session=garbage".into())] {
        for (method, path, body) in calls.clone() {
            let mut c = call(method.clone(), path);
            if let Some(cookie) = &cookie {
                c = c.cookie(cookie);
            }
            if let Some(body) = body {
                c = c.body(body);
            }
            let a = c.send(&b.router).await;
            assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {path} with {cookie:?}");
            assert!(a.error().contains("not logged in"), "{}", a.error());
        }
    }
    // The two open calls say nothing beyond whether the box is claimed.
    let a = call(Method::GET, "/api/setup/claim").send(&b.router).await;
    assert_eq!(a.json(), json!({ "claimed": true }));
    let a = call(Method::GET, "/api/nothing-here").send(&b.router).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error(), "no such API call");
}

#[tokio::test]
async fn claim_needs_the_right_pairing_code_and_a_real_password() {
    let b = new_box();
    let code = pairing_code(&b);
    assert_eq!(code.len(), 9, "{code}");
    assert_eq!(call(Method::GET, "/api/setup/claim").send(&b.router).await.json(), json!({ "claimed": false }));

    let wrong = if code.starts_with('A') { "BBBB-BBBB" } else { "AAAA-AAAA" };
    let a = call(Method::POST, "/api/setup/claim")
        .body(json!({ "pairing_code": wrong, "password": PASSWORD }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().contains("pairing code is not right"), "{}", a.error());
    assert!(a.headers.get(header::SET_COOKIE).is_none());

    let a = call(Method::POST, "/api/setup/claim")
        .body(json!({ "pairing_code": code, "password": "short" }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("at least 8 characters (it has 5)"), "{}", a.error());

    for (body, needle) in [
        (json!({ "pairing_code": code }), "missing field `password`"),
        (json!({ "pairing_code": code, "password": PASSWORD, "admin": true }), "unknown field `admin`"),
        (json!({ "pairing_code": 12345678, "password": PASSWORD }), "invalid type"),
        (json!([1, 2]), "invalid type"),
    ] {
        let a = call(Method::POST, "/api/setup/claim").body(body.clone()).send(&b.router).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(a.error().contains(needle), "{body}: {}", a.error());
    }
    let a =
        call(Method::POST, "/api/setup/claim").send_raw(&b.router, Some("{not json"), Some("application/json")).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("not what this call takes"), "{}", a.error());
    let a = call(Method::POST, "/api/setup/claim")
        .send_raw(&b.router, Some("password=x"), Some("application/x-www-form-urlencoded"))
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("Content-Type: application/json"), "{}", a.error());
    let huge = json!({ "pairing_code": code, "password": "x".repeat(20_000) }).to_string();
    let a = call(Method::POST, "/api/setup/claim").send_raw(&b.router, Some(&huge), Some("application/json")).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(a.error().contains("larger than 16384 bytes"), "{}", a.error());
    assert!(b.admin.pairing_code().is_some(), "refused claims must leave the box unclaimed");

    // Typed in lower case without the dash: still the code.
    let typed = code.replace('-', "").to_lowercase();
    let a = call(Method::POST, "/api/setup/claim")
        .body(json!({ "pairing_code": typed, "password": PASSWORD }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json(), json!({ "setup": "show_words" }));
    let set_cookie = a.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(set_cookie.starts_with("bunker_session="), "{set_cookie}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(set_cookie.contains(attr), "{set_cookie} lacks {attr}");
    }
    assert!(!set_cookie.contains("Secure"), "plain http on a LAN: a Secure cookie would never come back");

    // Claimed: the code is gone, the hash is argon2id in a private file.
    assert!(b.admin.pairing_code().is_none());
    assert!(!b.dir.path().join("pairing-code").exists());
    let file = b.dir.path().join("admin.json");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("$argon2id$"), "{text}");
    assert!(!text.contains(PASSWORD));

    let session = a.cookie();
    let a = call(Method::GET, "/api/session").cookie(&session).send(&b.router).await;
    assert_eq!(a.json(), json!({ "setup": "show_words" }));
    let a = call(Method::POST, "/api/setup/claim")
        .body(json!({ "pairing_code": code, "password": "someone else's" }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.error().contains("already claimed"), "{}", a.error());
}

#[tokio::test]
async fn the_words_are_shown_once_and_three_must_come_back_right() {
    let b = new_box();
    let cookie = claim(&b).await;
    let a = call(Method::GET, "/api/setup/quiz").cookie(&cookie).send(&b.router).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.error().contains("not been shown yet"), "{}", a.error());

    let shown = call(Method::POST, "/api/setup/words").cookie(&cookie).send(&b.router).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.headers[header::CACHE_CONTROL], "no-store");
    let v = shown.json();
    let words: Vec<String> = serde_json::from_value(v["words"].clone()).unwrap();
    assert_eq!(words, seed_words());
    let positions: Vec<u64> = serde_json::from_value(v["quiz_positions"].clone()).unwrap();
    assert_eq!(positions.len(), 3);
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]) && positions.iter().all(|p| (1..=24).contains(p)),
        "{positions:?}"
    );

    let again = call(Method::POST, "/api/setup/words").cookie(&cookie).send(&b.router).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert!(again.error().contains("already shown once"), "{}", again.error());
    assert!(!String::from_utf8_lossy(&again.body).contains(&words[0]));

    let a = call(Method::GET, "/api/session").cookie(&cookie).send(&b.router).await;
    assert_eq!(a.json(), json!({ "setup": "confirm_words" }));
    let a = call(Method::GET, "/api/setup/quiz").cookie(&cookie).send(&b.router).await;
    assert_eq!(a.json()["positions"], json!(positions));

    let right = answers_for(&json!(positions));
    let mut wrong = right.clone();
    wrong[1] = if wrong[1] == "zoo" { "abandon".into() } else { "zoo".into() };
    let a = call(Method::POST, "/api/setup/quiz").cookie(&cookie).body(json!({ "words": wrong })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("do not match"), "{}", a.error());
    for p in &positions {
        assert!(!a.error().contains(&p.to_string()), "must not say which word was wrong: {}", a.error());
    }
    let a = call(Method::POST, "/api/setup/quiz")
        .cookie(&cookie)
        .body(json!({ "words": right[..2] }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("exactly 3 words"), "{}", a.error());
    let a = call(Method::POST, "/api/setup/quiz")
        .cookie(&cookie)
        .body(json!({ "words": [right[0].clone(), "x".repeat(100), right[2].clone()] }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let a = call(Method::GET, "/api/session").cookie(&cookie).send(&b.router).await;
    assert_eq!(a.json(), json!({ "setup": "confirm_words" }), "wrong answers must not complete setup");

    // As a person types them: capitals, spaces around.
    let typed: Vec<String> = right.iter().map(|w| format!("  {} ", w.to_uppercase())).collect();
    let a = call(Method::POST, "/api/setup/quiz").cookie(&cookie).body(json!({ "words": typed })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(a.json(), json!({ "setup": "complete" }));
    let a = call(Method::POST, "/api/setup/quiz").cookie(&cookie).body(json!({ "words": right })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    let a = call(Method::POST, "/api/setup/words").cookie(&cookie).send(&b.router).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn login_logout_and_a_wrong_password() {
    let b = new_box();
    let a = call(Method::POST, "/api/login").body(json!({ "password": PASSWORD })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "login before claim");
    assert!(a.error().contains("not claimed yet"), "{}", a.error());
    set_up(&b).await;

    let a = call(Method::POST, "/api/login").body(json!({ "password": "not the password" })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.error(), "wrong password");
    assert!(a.headers.get(header::SET_COOKIE).is_none());
    let a = call(Method::POST, "/api/login").body(json!({})).send(&b.router).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);

    let a = call(Method::POST, "/api/login").body(json!({ "password": PASSWORD })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), json!({ "setup": "complete" }));
    let cookie = a.cookie();
    let st = call(Method::GET, "/api/status").cookie(&cookie).send(&b.router).await;
    assert_eq!(st.status, StatusCode::OK);
    let v = st.json();
    assert_eq!(v["version"], "9.9.9");
    assert_eq!(v["peer_id"], "12D3KooWTest");
    assert!(v["data_dir_space"]["total_bytes"].as_u64().unwrap() > 0, "{v}");
    assert_eq!(st.headers[header::CACHE_CONTROL], "no-store");

    // Another cookie besides ours does not confuse the server.
    let with_other = format!("theme=dark; {cookie}; x=y");
    assert_eq!(call(Method::GET, "/api/session").cookie(&with_other).send(&b.router).await.status, StatusCode::OK);

    let out = call(Method::POST, "/api/logout").cookie(&cookie).send(&b.router).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let a = call(Method::GET, "/api/status").cookie(&cookie).send(&b.router).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "a logged-out session must be dead on the server too");
}

#[tokio::test]
async fn state_changing_calls_from_another_origin_or_none_are_refused() {
    let b = new_box();
    let code = pairing_code(&b);
    let body = json!({ "pairing_code": code, "password": PASSWORD });
    for (origin, needle) in [
        (None, "must carry an Origin header"),
        (Some("http://evil.example.com"), "from origin http://evil.example.com"),
        (Some("https://127.0.0.1:8080"), "not from this box's own page http://127.0.0.1:8080"),
        (Some("http://127.0.0.1:8081"), "from origin"),
        (Some("null"), "from origin null"),
    ] {
        let a = call(Method::POST, "/api/setup/claim").origin(origin).body(body.clone()).send(&b.router).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{origin:?}");
        assert!(a.error().contains(needle), "{origin:?}: {}", a.error());
    }
    assert!(b.admin.pairing_code().is_some(), "no refused request may claim the box");
    let cookie = set_up(&b).await;
    for path in ["/api/logout", "/api/password", "/api/setup/quiz", "/api/login"] {
        let a = call(Method::POST, path)
            .cookie(&cookie)
            .origin(Some("http://evil.example.com"))
            .body(json!({ "password": PASSWORD }))
            .send(&b.router)
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(call(Method::GET, "/api/status").cookie(&cookie).send(&b.router).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_foreign_host_name_is_refused_even_with_a_session() {
    let b = new_box_with(|o| o.allowed_hosts = vec!["mybox.example.org".into()]);
    let cookie = set_up(&b).await;
    // DNS rebinding: the attacker's name resolves to the box; the browser
    // sends the attacker's name as Host and as Origin.
    for path in ["/", "/api/status", "/api/setup/claim"] {
        let a = call(Method::GET, path).cookie(&cookie).host("rebind.evil.example.com").send(&b.router).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        assert!(a.error().contains("does not answer to host name"), "{}", a.error());
    }
    let a = call(Method::POST, "/api/login")
        .host("rebind.evil.example.com")
        .origin(Some("http://rebind.evil.example.com"))
        .body(json!({ "password": PASSWORD }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    for host in ["bunker.local", "mybox.example.org:8080", "[::1]:8080", "localhost"] {
        let a = call(Method::GET, "/api/status").cookie(&cookie).host(host).send(&b.router).await;
        assert_eq!(a.status, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn guessing_is_slowed_per_address_and_for_the_whole_box() {
    let b = new_box_with(|o| {
        o.rate_limits = RateLimits {
            per_ip: Bucket { burst: 3, refill: Duration::from_secs(60) },
            global: Bucket { burst: 3, refill: Duration::from_secs(30) },
        }
    });
    // Successful attempts (the claim, the words) are given back: only
    // failures count against a person.
    set_up(&b).await;
    let bad = json!({ "password": "not the password" });
    for _ in 0..2 {
        let a = call(Method::POST, "/api/login").ip(10).body(bad.clone()).send(&b.router).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    }
    let a = call(Method::POST, "/api/login").ip(11).body(bad.clone()).send(&b.router).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // Global bucket empty now: even the right password from a fresh address waits.
    let a = call(Method::POST, "/api/login").ip(12).body(json!({ "password": PASSWORD })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert!(a.error().contains(&format!("try again in {retry} s")), "{}", a.error());

    let b = new_box_with(|o| {
        o.rate_limits = RateLimits {
            per_ip: Bucket { burst: 2, refill: Duration::from_secs(60) },
            global: Bucket { burst: 100, refill: Duration::from_secs(1) },
        }
    });
    let code = pairing_code(&b);
    for _ in 0..2 {
        let a = call(Method::POST, "/api/setup/claim")
            .ip(20)
            .body(json!({ "pairing_code": "0000-0000", "password": PASSWORD }))
            .send(&b.router)
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN);
    }
    // Out of attempts: even the right code waits, so guessing gains nothing.
    let a = call(Method::POST, "/api/setup/claim")
        .ip(20)
        .body(json!({ "pairing_code": code, "password": PASSWORD }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = a.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry), "{retry}");
    // The owner at another address is not locked out by the guesser.
    let a = call(Method::POST, "/api/setup/claim")
        .ip(21)
        .body(json!({ "pairing_code": code, "password": PASSWORD }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn changing_the_password_needs_the_old_one_and_ends_other_sessions() {
    let b = new_box();
    let mine = set_up(&b).await;
    let other = call(Method::POST, "/api/login").body(json!({ "password": PASSWORD })).send(&b.router).await.cookie();

    let change = |old: &str, new: &str| json!({ "old_password": old, "new_password": new });
    let a = call(Method::POST, "/api/password")
        .cookie(&mine)
        .body(change("wrong old one", "a new password"))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.error().contains("current password is not right"), "{}", a.error());
    let a = call(Method::POST, "/api/password").cookie(&mine).body(change(PASSWORD, "short")).send(&b.router).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("at least 8"), "{}", a.error());
    let a = call(Method::POST, "/api/password")
        .cookie(&mine)
        .body(json!({ "new_password": "a new password" }))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("old_password"), "{}", a.error());

    let a = call(Method::POST, "/api/password")
        .cookie(&mine)
        .body(change(PASSWORD, "a new password"))
        .send(&b.router)
        .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(call(Method::GET, "/api/status").cookie(&mine).send(&b.router).await.status, StatusCode::OK);
    assert_eq!(call(Method::GET, "/api/status").cookie(&other).send(&b.router).await.status, StatusCode::UNAUTHORIZED);
    let a = call(Method::POST, "/api/login").body(json!({ "password": PASSWORD })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = call(Method::POST, "/api/login").body(json!({ "password": "a new password" })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn a_restart_keeps_the_password_and_setup_stage_but_no_sessions() {
    let b = new_box();
    let cookie = claim(&b).await;
    let shown = call(Method::POST, "/api/setup/words").cookie(&cookie).send(&b.router).await;
    assert_eq!(shown.status, StatusCode::OK);
    let positions = shown.json()["quiz_positions"].clone();

    let admin = Arc::new(Admin::open(options(b.dir.path()), Arc::new(FixedWords)).unwrap());
    assert!(admin.pairing_code().is_none());
    let router = admin_router(admin, Arc::new(FixedStatus(b.dir.path().to_owned())));
    assert_eq!(call(Method::GET, "/api/session").cookie(&cookie).send(&router).await.status, StatusCode::UNAUTHORIZED);
    let cookie = call(Method::POST, "/api/login").body(json!({ "password": PASSWORD })).send(&router).await.cookie();
    assert_eq!(
        call(Method::GET, "/api/session").cookie(&cookie).send(&router).await.json(),
        json!({ "setup": "confirm_words" })
    );
    assert_eq!(call(Method::POST, "/api/setup/words").cookie(&cookie).send(&router).await.status, StatusCode::CONFLICT);
    assert_eq!(call(Method::GET, "/api/setup/quiz").cookie(&cookie).send(&router).await.json()["positions"], positions);
}

#[tokio::test]
async fn a_damaged_admin_file_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.json"), "{ nope").unwrap();
    let err = Admin::open(options(dir.path()), Arc::new(FixedWords)).unwrap_err();
    assert!(err.to_string().contains("admin.json"), "{err}");
}

#[tokio::test]
async fn the_page_is_served_with_security_headers_and_no_traversal() {
    let b = new_box();
    let a = call(Method::GET, "/").send(&b.router).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(a.headers[header::X_FRAME_OPTIONS], "DENY");
    assert!(a.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("default-src 'self'"));
    let html = String::from_utf8(a.body).unwrap();
    assert!(html.contains("<title>Bunker</title>"), "{html}");
    for asset in ["/app.js", "/style.css"] {
        assert!(html.contains(asset), "page does not reference {asset}");
        assert_eq!(call(Method::GET, asset).send(&b.router).await.status, StatusCode::OK, "{asset}");
    }
    for path in ["/nope.js", "/../Cargo.toml", "/%2e%2e/Cargo.toml", "/.."] {
        assert_eq!(call(Method::GET, path).send(&b.router).await.status, StatusCode::NOT_FOUND, "{path}");
    }
}

#[tokio::test]
async fn the_local_socket_api_gives_the_owner_the_pairing_code_until_the_claim() {
    let b = new_box();
    let local = local_api_router(b.admin.clone(), Arc::new(FixedStatus(b.dir.path().to_owned())));
    let a = call(Method::GET, "/api/pairing-code").send(&local).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["pairing_code"], pairing_code(&b));
    // The web page has no such call.
    assert_eq!(call(Method::GET, "/api/pairing-code").send(&b.router).await.status, StatusCode::NOT_FOUND);
    let a = call(Method::GET, "/api/status").send(&local).await;
    assert_eq!(a.json()["state"], "running");
    claim(&b).await;
    let a = call(Method::GET, "/api/pairing-code").send(&local).await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert!(a.error().contains("already claimed"), "{}", a.error());
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_body_gets_408_not_a_stuck_task() {
    let b = new_box();
    let body = Body::from_stream(futures::stream::pending::<Result<axum::body::Bytes, std::io::Error>>());
    let mut req = Request::post("/api/login")
        .header(header::HOST, HOST)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000)));
    let resp = b.router.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&body).contains("took too long"), "{body:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_claims_at_once_make_exactly_one_owner() {
    let b = new_box();
    let code = pairing_code(&b);
    let claim_as = |password: &'static str, ip: u8| {
        let router = b.router.clone();
        let code = code.clone();
        async move {
            call(Method::POST, "/api/setup/claim")
                .ip(ip)
                .body(json!({ "pairing_code": code, "password": password }))
                .send(&router)
                .await
        }
    };
    let (first, second) = tokio::join!(claim_as("first owner's password", 1), claim_as("second owner's password", 2));
    let mut codes = [first.status, second.status];
    codes.sort();
    assert_eq!(codes, [StatusCode::OK, StatusCode::CONFLICT]);
    let winner = if first.status == StatusCode::OK { "first owner's password" } else { "second owner's password" };
    let loser = if first.status == StatusCode::OK { "second owner's password" } else { "first owner's password" };
    let a = call(Method::POST, "/api/login").body(json!({ "password": winner })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = call(Method::POST, "/api/login").body(json!({ "password": loser })).send(&b.router).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
