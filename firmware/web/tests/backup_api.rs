//! `/api/backup`: the replication status of MANIFEST.db over real engines
//! (two boxes on a loopback swarm, real MANIFEST.db files): who may ask, and
//! that the figures are the ones a real replication round and a real holder
//! audit produced — nothing before there is something to show.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use bunker_core::FileId;
use bunker_manifest::{FilePath, NewFile};
use serde_json::{json, Value};

mod common;

use common::{claim, new_box_from, send, TestBox, HOST};

/// One box: a real engine (with `files` already in its manifest) behind
/// the admin and local routers.
async fn new_box(files: &[&str], holders_wanted: usize) -> TestBox {
    new_box_from(
        |manifest| {
            for path in files {
                let file = NewFile {
                    path: FilePath::parse(path).unwrap(),
                    object_id: FileId::random(),
                    size: 1234,
                    plaintext_blake3: [7; 32],
                    segment_size: 65536,
                    keep_local: false,
                    redundancy: 2,
                    local: None,
                    created_at: 1_700_000_000,
                    modified_at: 1_700_000_000,
                };
                manifest.put_file(&file, &[]).unwrap();
            }
        },
        |config| {
            config.replication.holders = holders_wanted;
            // The test's temp disk need not keep 2 GiB free to hold a snapshot.
            config.hosting.safety_margin_bytes = 0;
        },
    )
    .await
}

/// A request from the page's origin with an empty body, with `cookie` if given.
fn req(method: Method, uri: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = common::req(method, uri);
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.header(header::CONTENT_LENGTH, "0").body(Body::empty()).unwrap()
}

async fn connect(from: &bunker_node::Node, to: &bunker_node::Node) {
    let addrs = to.net().listen_addrs().await.unwrap();
    let peer = to.peer_id();
    for _ in 0..50 {
        let _ = from.net().dial(peer, addrs.clone()).await;
        if from.net().peers().await.unwrap().connected.iter().any(|p| p.peer_id == peer.to_base58()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {peer}");
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_status_needs_a_session_and_replicating_needs_the_pages_origin() {
    let b = new_box(&["/a.txt"], 1).await;
    for (method, uri) in
        [(Method::GET, "/api/backup"), (Method::POST, "/api/backup/replicate"), (Method::POST, "/api/backup/audit")]
    {
        let a = send(&b.admin_router, req(method.clone(), uri, None)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {uri}: {}", String::from_utf8_lossy(&a.body));
        assert!(a.error().contains("log in"), "{method} {uri}");
    }
    let cookie = claim(&b).await;
    // Another site's page cannot make a logged-in browser start a round.
    let a = send(
        &b.admin_router,
        Request::post("/api/backup/replicate")
            .header(header::HOST, HOST)
            .header(header::ORIGIN, "http://evil.example")
            .header(header::COOKIE, &cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(b.node.replication_status().await.unwrap().last_round_at, None, "no round ran");
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backup_status_shows_the_figures_of_a_real_replication_and_audit() {
    let owner = new_box(&["/photos/cat.jpg", "/notes.txt"], 1).await;
    let holder = new_box(&[], 1).await;
    let cookie = claim(&owner).await;

    // Before any round: nobody holds anything, and the page is told so.
    let a = send(&owner.admin_router, req(Method::GET, "/api/backup", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    let v = a.json();
    assert_eq!(v["state"], "not_replicated", "{v}");
    assert!(v["summary"].as_str().unwrap().starts_with("Not replicated yet"), "{v}");
    assert_eq!(v["latest_version"], 0);
    assert_eq!(v["has_content"], true);
    assert_eq!(v["target_holders"], 1);
    assert_eq!(v["current_holders"], 0);
    assert_eq!(v["holders"], json!([]));
    assert_eq!(v["last_replicated_at"], Value::Null);
    assert_eq!(v["last_round_at"], Value::Null);

    // A round over the admin page, to the one holder that is connected.
    connect(&owner.node, &holder.node).await;
    let before = now();
    let a = send(&owner.admin_router, req(Method::POST, "/api/backup/replicate", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    let v = a.json();
    let holder_id = holder.node.peer_id().to_base58();
    assert_eq!(v["round"]["version"], 1, "{v}");
    assert_eq!(v["round"]["stored"], json!([holder_id]), "{v}");
    let s = &v["status"];
    assert_eq!(s["state"], "up_to_date", "{s}");
    assert_eq!(s["summary"], "Up to date: 1 peer holds the newest snapshot (version 1).");
    assert_eq!(s["latest_version"], 1);
    assert_eq!((s["current_holders"].as_u64(), s["target_holders"].as_u64()), (Some(1), Some(1)));
    let h = &s["holders"][0];
    assert_eq!(h["peer"], holder_id.as_str());
    assert_eq!(h["confirmed_version"], 1);
    let confirmed = h["confirmed_at"].as_i64().unwrap();
    assert!(confirmed >= before && confirmed <= now(), "{h}");
    assert_eq!(s["last_replicated_at"].as_i64(), Some(confirmed));
    assert!(!h["addresses"].as_array().unwrap().is_empty(), "where the holder was reached: {h}");
    assert_eq!(h["last_audit"], Value::Null, "not audited yet");
    assert!(s["last_round_at"].as_i64().unwrap() >= before);
    assert_eq!(s["last_round"], "snapshot 1 stored on 1 of 1 wanted peers");

    // The holder really has version 1: the owner fetches it back and checks it.
    let a = send(&owner.admin_router, req(Method::POST, "/api/backup/audit", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    let v = a.json();
    assert_eq!(v["audits"][0]["outcome"], "passed", "{v}");
    let audit = &v["status"]["holders"][0]["last_audit"];
    assert_eq!(audit["outcome"], "passed", "{v}");
    assert_eq!(audit["served_version"], 1);
    assert!(audit["at"].as_i64().unwrap() >= before);

    // The CLI's socket serves the same figures, and the loop's next round is
    // scheduled in the future (the debounce, at most a day).
    let a = send(&owner.local, Request::get("/api/backup").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    assert_eq!(v["holders"][0]["last_audit"]["outcome"], "passed");
    let next = v["next_due_at"].as_i64().expect("the replication loop publishes its next round");
    assert!(next >= now() - 1 && next <= now() + 86_400, "{v}");

    // Every round is a new version: 2, on the same holder.
    let a = send(&owner.admin_router, req(Method::POST, "/api/backup/replicate", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["status"]["holders"][0]["confirmed_version"], 2);
    assert_eq!(a.json()["status"]["state"], "up_to_date");

    // The holder goes away: the next check finds it unreachable, and the
    // view says so rather than keeping the old "passed".
    holder.node.shutdown().await;
    let a = send(&owner.admin_router, req(Method::POST, "/api/backup/audit", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    let v = a.json();
    assert_eq!(v["audits"][0]["outcome"], "unreachable", "{v}");
    assert_eq!(v["status"]["holders"][0]["last_audit"]["outcome"], "unreachable", "{v}");
    owner.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_box_has_nothing_to_replicate_and_fewer_holders_than_wanted_is_said() {
    let empty = new_box(&[], 3).await;
    let cookie = claim(&empty).await;
    let a = send(&empty.admin_router, req(Method::POST, "/api/backup/replicate", Some(&cookie))).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.error().contains("empty"), "{}", a.error());
    let v = send(&empty.admin_router, req(Method::GET, "/api/backup", Some(&cookie))).await.json();
    assert_eq!(v["state"], "not_replicated");
    assert_eq!(v["has_content"], false);
    assert!(v["summary"].as_str().unwrap().contains("empty"), "{v}");
    assert_eq!(v["last_round"], "nothing to replicate yet: the manifest is empty");

    // Three holders wanted, one reachable: too few.
    let owner = new_box(&["/a.txt"], 3).await;
    let holder = new_box(&[], 1).await;
    connect(&owner.node, &holder.node).await;
    let report = owner.node.replicate_manifest_now(None).await.unwrap();
    assert_eq!(report.stored.len(), 1);
    let v = send(&owner.local, Request::get("/api/backup").body(Body::empty()).unwrap()).await.json();
    assert_eq!(v["state"], "too_few_holders", "{v}");
    assert_eq!(v["summary"], "Too few holders: 1 of the 3 wanted peers holds the newest snapshot (version 1).");
    for b in [empty, owner, holder] {
        b.node.shutdown().await;
    }
}
