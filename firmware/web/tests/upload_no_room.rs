//! A full box answers an upload with 507 Insufficient Storage and a
//! sentence the admin page and the CLI show, on both routers; a file larger
//! than any disk is 413; nothing of the refused upload is kept; a client
//! still sending the body over TCP (as a browser does) reads the 507.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use bunker_node::DiskStatus;
use serde_json::Value;

mod common;

use common::*;

fn upload(uri: &str, data: Vec<u8>) -> Request<Body> {
    req(Method::PUT, uri).header(header::CONTENT_LENGTH, data.len().to_string()).body(Body::from(data)).unwrap()
}

fn free_bytes(p: &std::path::Path) -> u64 {
    let st = nix::sys::statvfs::statvfs(p).unwrap();
    st.blocks_available() as u64 * st.fragment_size() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_box_answers_an_upload_with_507_and_a_sentence_and_keeps_nothing() {
    let b = new_box().await;
    let cookie = claim(&b).await;
    // What fits is stored (201) while there is room.
    let a = send(&b.local, upload("/api/files/content?path=/first.bin&copies=0&keep_local=true", vec![1u8; 50_000])).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&a.body));

    // The disk watcher keeps the whole of the store's disk in reserve.
    let mut full = DiskStatus::directory(&b.store);
    // More than is free, by far: other tests' files come and go on the same
    // file system, and a reserve of "all but 64 KiB" let a 200 kB upload in.
    full.reserved_bytes = free_bytes(&b.store) + (1 << 30);
    b.node.set_disks(vec![full]).await.unwrap();

    let data = vec![7u8; 200_000];
    // The CLI's router.
    let a = send(&b.local, upload("/api/files/content?path=/big.bin&copies=0&keep_local=true", data.clone())).await;
    assert_eq!(a.status, StatusCode::INSUFFICIENT_STORAGE, "{}", String::from_utf8_lossy(&a.body));
    let e = a.error();
    assert!(e.contains("no room for /big.bin") && e.contains("bytes are free") && e.contains("add a data disk"), "{e}");
    // The admin page's router, with its session.
    let page = req(Method::PUT, "/api/files/content?path=/big.bin&copies=0&keep_local=true")
        .header(header::COOKIE, &cookie)
        .header(header::CONTENT_LENGTH, data.len().to_string())
        .body(Body::from(data.clone()))
        .unwrap();
    let a = send(&b.admin_router, page).await;
    assert_eq!(a.status, StatusCode::INSUFFICIENT_STORAGE, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.error().contains("no room for /big.bin"), "{}", a.error());

    // Nothing of it is listed or left in staging; the first file is whole.
    let list = send(&b.local, req(Method::GET, "/api/files?folder=/").body(Body::empty()).unwrap()).await;
    let names: Vec<String> =
        serde_json::from_slice::<Value>(&list.body).unwrap()["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["/MANIFEST.db", "/first.bin"]);
    let staging = std::fs::read_dir(b.store.join("staging")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staging, 0);
    let a = send(&b.local, req(Method::GET, "/api/files/content?path=/first.bin").body(Body::empty()).unwrap()).await;
    assert_eq!((a.status, a.body.len()), (StatusCode::OK, 50_000));

    // Room again (the reserve back to none): the same upload is stored.
    b.node.set_disks(vec![DiskStatus::directory(&b.store)]).await.unwrap();
    let a = send(&b.local, upload("/api/files/content?path=/big.bin&copies=0&keep_local=true", data)).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&a.body));
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_larger_than_any_disk_is_413_before_the_engine_sees_it() {
    let b = new_box().await;
    let too_big = (free_bytes(&b.store) + (1 << 40)).to_string();
    let a = send(
        &b.local,
        req(Method::PUT, "/api/files/content?path=/huge.bin").header(header::CONTENT_LENGTH, too_big).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", String::from_utf8_lossy(&a.body));
    assert!(a.error().contains("largest data disk holds"), "{}", a.error());
    b.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tcp_a_client_still_sending_the_body_reads_the_507() {
    let b = new_box().await;
    let mut full = DiskStatus::directory(&b.store);
    // More than is free, by far: other tests' files come and go on the same
    // file system, and a reserve of "all but 64 KiB" let a 200 kB upload in.
    full.reserved_bytes = free_bytes(&b.store) + (1 << 30);
    b.node.set_disks(vec![full]).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = b.local.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let len = 32usize << 20;
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!("PUT /api/files/content?path=/big.bin&copies=0&keep_local=true HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len}\r\n\r\n");
        s.write_all(head.as_bytes()).unwrap();
        let mut w = s.try_clone().unwrap();
        // The body goes on while the answer is read, as a browser sends it.
        let sender = std::thread::spawn(move || {
            let chunk = vec![7u8; 64 << 10];
            let mut sent = 0;
            while sent < len {
                if w.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len();
            }
            sent
        });
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if got.windows(4).any(|w| w == b"\r\n\r\n") && String::from_utf8_lossy(&got).contains("\"}") {
                        break;
                    }
                }
                Err(e) => panic!("reading the answer: {e} (got {:?})", String::from_utf8_lossy(&got)),
            }
        }
        let sent = sender.join().unwrap();
        (String::from_utf8_lossy(&got).to_string(), sent)
    })
    .await
    .unwrap();
    assert!(answer.0.starts_with("HTTP/1.1 507"), "{answer:?}");
    assert!(answer.0.contains("no room for /big.bin"), "{answer:?}");
    eprintln!("body bytes written before the box stopped reading: {}", answer.1);
    server.abort();
    b.node.shutdown().await;
}
