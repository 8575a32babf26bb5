//! The engine's HTTP API over a real engine (loopback swarm, real
//! MANIFEST.db): who may call it, what bad input gets, and what it serves.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use bunker_web::local_api_router;
use serde_json::{json, Value};

mod common;

use common::*;

const SQLITE_HEADER: &[u8] = b"SQLite format 3\0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_engine_call_needs_a_session_on_the_admin_page() {
    let b = new_box().await;
    for (method, uri) in [
        (Method::GET, "/api/files?folder=/"),
        (Method::GET, "/api/files/detail?path=/a.txt"),
        (Method::GET, "/api/files/content?path=/MANIFEST.db"),
        (Method::PUT, "/api/files/content?path=/a.txt"),
        (Method::DELETE, "/api/files/content?path=/a.txt"),
        (Method::POST, "/api/files/policy"),
        (Method::GET, "/api/node"),
        (Method::GET, "/api/peers"),
        (Method::GET, "/api/contracts"),
        (Method::GET, "/api/audits"),
        (Method::GET, "/api/payments"),
        (Method::GET, "/api/wallet"),
        (Method::POST, "/api/wallet/address"),
        (Method::POST, "/api/wallet/channels"),
        (Method::DELETE, "/api/wallet/channels/1?node_id=02"),
        (Method::POST, "/api/wallet/invoice"),
        (Method::POST, "/api/wallet/pay"),
        (Method::GET, "/api/backup/kit"),
        (Method::GET, "/api/backup/kit.txt"),
    ] {
        let a = send(&b.admin_router, req(method.clone(), uri).header(header::CONTENT_LENGTH, "0").body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{method} {uri}: {}", String::from_utf8_lossy(&a.body));
        assert!(a.error().contains("log in"), "{method} {uri}");
    }
    // A page on another site cannot make a logged-in browser upload or delete.
    let cookie = claim(&b).await;
    for origin in [None, Some("http://evil.example")] {
        let mut r = Request::builder()
            .method(Method::DELETE)
            .uri("/api/files/content?path=/a.txt")
            .header(header::HOST, HOST)
            .header(header::COOKIE, &cookie);
        if let Some(o) = origin {
            r = r.header(header::ORIGIN, o);
        }
        let a = send(&b.admin_router, r.body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "origin {origin:?}");
    }
    // A foreign Host (DNS rebinding) is refused before anything else.
    let a = send(
        &b.admin_router,
        Request::builder().uri("/api/files").header(header::HOST, "evil.example").header(header::COOKIE, &cookie).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manifest_downloads_as_a_consistent_sqlite_copy_on_both_routers() {
    let b = new_box().await;
    let cookie = claim(&b).await;
    let logged_in =
        req(Method::GET, "/api/files/content?path=/MANIFEST.db").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    for (router, request) in [
        (&b.admin_router, logged_in),
        (&b.local, req(Method::GET, "/api/files/content?path=/MANIFEST.db").body(Body::empty()).unwrap()),
    ] {
        let a = send(router, request).await;
        assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
        assert!(a.body.starts_with(SQLITE_HEADER), "not an SQLite file");
        assert_eq!(a.headers[header::CONTENT_LENGTH].to_str().unwrap(), a.body.len().to_string());
        let disposition = a.headers[header::CONTENT_DISPOSITION].to_str().unwrap();
        assert!(disposition.starts_with("attachment; filename=\"MANIFEST.db\""), "{disposition}");
        // The copy opens as a database of its own.
        let copy = b.dir.path().join("downloaded.db");
        std::fs::write(&copy, &a.body).unwrap();
        bunker_manifest::Manifest::open(&copy).expect("the downloaded copy is a usable MANIFEST.db");
        std::fs::remove_file(&copy).unwrap();
    }
    // The scratch copies are gone.
    let leftovers: Vec<_> = std::fs::read_dir(b.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with(".manifest-copy"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_kit_opens_with_the_boxs_own_words_only() {
    let b = new_box().await;
    let a = send(&b.local, req(Method::GET, "/api/backup/kit").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.headers[header::CONTENT_DISPOSITION].to_str().unwrap().contains("bunker-recovery-kit.bin"));
    let kit = b.node.open_recovery_kit(&a.body).expect("the kit opens with this box's words");
    assert_eq!(kit.owner, b.node.peer_id());
    let a = send(&b.local, req(Method::GET, "/api/backup/kit.txt").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::OK);
    let text: Value = serde_json::from_slice(&a.body).unwrap();
    let text = text["text"].as_str().unwrap();
    assert!(text.starts_with(bunker_manifest::KIT_TEXT_PREFIX), "{text}");
    assert_eq!(b.node.open_recovery_kit(text.as_bytes()).unwrap().owner, b.node.peer_id());
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_and_parameters_are_refused_with_a_sentence() {
    let b = new_box().await;
    for uri in [
        "/api/files?folder=photos",
        "/api/files?folder=/a/../b",
        "/api/files?folder=//x",
        "/api/files?folder=/a%00b",
        "/api/files?colour=blue",
        "/api/files/detail",
        "/api/files/detail?path=/",
        "/api/files/detail?path=/a/../../etc/passwd",
        "/api/files/detail?path=..%2Fetc%2Fpasswd",
        "/api/files/detail?path=/a/./b",
        "/api/files/detail?path=/a%00.txt",
        "/api/files/detail?path=/a%0A.txt",
        "/api/files/content?path=%2Fa%2F..%2F..%2Fseed",
        "/api/audits?limit=0",
        "/api/audits?limit=many",
        "/api/payments?limit=99999999",
    ] {
        let a = send(&b.local, req(Method::GET, uri).body(Body::empty()).unwrap()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}: {}", String::from_utf8_lossy(&a.body));
        assert!(!a.error().is_empty(), "{uri}");
    }
    let long = format!("/api/files/detail?path=/{}", "n".repeat(300));
    let a = send(&b.local, req(Method::GET, &long).body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("longer"), "{}", a.error());
    // The manifest is not a file one can delete or overwrite.
    for method in [Method::DELETE, Method::PUT] {
        let a = send(&b.local, req(method.clone(), "/api/files/content?path=/MANIFEST.db").header(header::CONTENT_LENGTH, "1").body(Body::from("x")).unwrap()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{method}");
    }
    // Policy: JSON only, bounded copies, a valid path.
    let policy = |body: Value| {
        req(Method::POST, "/api/files/policy").header(header::CONTENT_TYPE, "application/json").body(Body::from(body.to_string())).unwrap()
    };
    for body in [
        json!({ "path": "/a", "copies": 200, "keep_local": true }),
        json!({ "path": "a", "copies": 2, "keep_local": true }),
        json!({ "path": "/a", "copies": -1, "keep_local": true }),
        json!({ "path": "/a", "copies": 2 }),
    ] {
        let a = send(&b.local, policy(body.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", String::from_utf8_lossy(&a.body));
    }
    // Wallet input is checked before Lightning is asked.
    let a = send(
        &b.local,
        req(Method::POST, "/api/wallet/channels")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(json!({ "node_id": "zz", "address": "127.0.0.1:9735", "sat": 1000 }).to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.error().contains("node id"), "{}", a.error());
    let a = send(&b.local, req(Method::DELETE, "/api/wallet/channels/notanumber?node_id=02").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_need_a_length_that_fits_the_disk() {
    let b = new_box().await;
    // No Content-Length: 411, before any byte is taken.
    let chunks = futures::stream::iter(vec![Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"hello"))]);
    let a = send(&b.local, req(Method::PUT, "/api/files/content?path=/a.txt").body(Body::from_stream(chunks)).unwrap()).await;
    assert_eq!(a.status, StatusCode::LENGTH_REQUIRED, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.error().contains("Content-Length"), "{}", a.error());
    // Larger than the free space: 413, body unread.
    let a = send(
        &b.local,
        req(Method::PUT, "/api/files/content?path=/huge.bin").header(header::CONTENT_LENGTH, (1u64 << 60).to_string()).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.error().contains("free"), "{}", a.error());
    // A bad path or policy is refused before the body is read.
    for uri in ["/api/files/content?path=/a/../b", "/api/files/content?path=/a&copies=99", "/api/files/content?path=/a&keep_local=maybe"] {
        let a = send(&b.local, req(Method::PUT, uri).header(header::CONTENT_LENGTH, "5").body(Body::from("hello")).unwrap()).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{uri}");
    }
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lightning_the_wallet_says_why_and_without_an_engine_everything_says_so() {
    let b = new_box().await;
    let a = send(&b.local, req(Method::GET, "/api/wallet").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.error().contains("Lightning"), "{}", a.error());
    let a = send(&b.local, req(Method::POST, "/api/wallet/address").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    b.node.shutdown().await;

    // A router without an engine answers 503, not a made-up listing.
    let bare = local_api_router(b.admin.clone(), Arc::new(Status));
    let a = send(&bare, req(Method::GET, "/api/files").body(Body::empty()).unwrap()).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(a.error().contains("engine"), "{}", a.error());
}
