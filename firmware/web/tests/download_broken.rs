//! A download whose every copy fails after some bytes went out breaks off:
//! the body ends in an error, and over a real HTTP connection the client
//! gets fewer bytes than the Content-Length and a closed connection — never
//! a clean end that would look like a whole, shorter file.
//!
//! A real engine (loopback swarm, MANIFEST.db); the file's only copy is its
//! keep-local one, damaged on disk three quarters in.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use bunker_node::Policy;
use bunker_web::Router;
use http_body_util::BodyExt;
use tower::ServiceExt;

mod common;

use common::new_box_with;

/// An engine holding `data` at `/f.bin` as its keep-local copy only, that
/// copy damaged at three quarters, behind the local API router.
async fn box_with_damaged_file(data: &[u8]) -> (tempfile::TempDir, bunker_node::Node, Router) {
    let b = new_box_with(|c| c.segment_size = 4096).await;
    b.node
        .put("/f.bin", data.len() as u64, Policy { copies: 0, keep_local: true }, std::io::Cursor::new(data.to_vec()))
        .await
        .unwrap();
    let local = std::fs::read_dir(b.store.join("local")).unwrap().next().unwrap().unwrap().path().join("object");
    let mut sealed = std::fs::read(&local).unwrap();
    let at = sealed.len() * 3 / 4;
    sealed[at] ^= 0x5a;
    std::fs::write(&local, &sealed).unwrap();
    (b.dir, b.node, b.local)
}

fn data() -> Vec<u8> {
    (0..(2usize << 20)).map(|i| (i * 31 % 251) as u8).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_whose_copies_all_fail_midway_ends_in_an_error_not_a_short_file() {
    let data = data();
    let (_dir, node, router) = box_with_damaged_file(&data).await;
    let mut req = Request::builder().method(Method::GET).uri("/api/files/content?path=/f.bin").body(Body::empty()).unwrap();
    req.extensions_mut().insert(ConnectInfo(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 50000)));
    let resp = router.oneshot(req).await.unwrap();
    // The headers went out before the damage was met.
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_LENGTH], data.len().to_string().as_str());
    let mut body = resp.into_body();
    let mut got = Vec::new();
    let err = loop {
        match tokio::time::timeout(Duration::from_secs(30), body.frame()).await.expect("body ends") {
            Some(Ok(frame)) => got.extend_from_slice(frame.data_ref().map(|b| &b[..]).unwrap_or_default()),
            Some(Err(e)) => break e.to_string(),
            None => panic!("the body ended cleanly after {} of {} bytes: it looks like a whole file", got.len(), data.len()),
        }
    };
    assert!(err.contains("no copy could be read to the end") && err.contains(&format!("of {} bytes", data.len())), "{err}");
    assert!(got.len() < data.len() && got[..] == data[..got.len()], "{} bytes, all the file's own", got.len());
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_the_client_gets_fewer_bytes_than_announced_and_a_closed_connection() {
    let data = data();
    let (_dir, node, router) = box_with_damaged_file(&data).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(b"GET /api/files/content?path=/f.bin HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut all = Vec::new();
        // Keep-alive would leave the socket open after a whole answer: only a
        // broken-off one ends in EOF here.
        s.read_to_end(&mut all).expect("the connection is closed, not left hanging");
        all
    })
    .await
    .unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("headers") + 4;
    let head = String::from_utf8_lossy(&answer[..split]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains(&format!("content-length: {}", data.len())), "{head}");
    let body = &answer[split..];
    assert!(body.len() < data.len(), "{} of {} bytes", body.len(), data.len());
    assert_eq!(body, &data[..body.len()]);
    server.abort();
    node.shutdown().await;
}
