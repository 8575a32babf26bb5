//! Hostile peers: oversize messages, garbage, stalls and stream floods each get an error or a
//! cut-off, and the node keeps serving everyone else.

mod common;

use std::time::Duration;

use bunker_net::*;
use common::*;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{noise, swarm::dial_opts::DialOpts, tcp, yamux, StreamProtocol, SwarmBuilder};

/// A bare libp2p peer that speaks no bunker protocol properly: it opens raw streams and writes
/// whatever the test wants.
async fn raw_peer(target: &Node) -> (PeerId, libp2p_stream::Control) {
    let mut swarm = SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, || {
            let mut c = yamux::Config::default();
            c.set_max_num_streams(4096);
            c
        })
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let id = *swarm.local_peer_id();
    let control = swarm.behaviour().new_control();
    swarm.dial(DialOpts::peer_id(target.id).addresses(vec![tcp_addr(target)]).build()).unwrap();
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (id, control)
}

async fn open(control: &mut libp2p_stream::Control, peer: PeerId, p: &'static str) -> libp2p::Stream {
    tokio::time::timeout(Duration::from_secs(10), control.open_stream(peer, StreamProtocol::new(p)))
        .await
        .expect("open in time")
        .expect("stream opens")
}

/// Reads until EOF or error, within `secs`; returns what was read (an honest answer would be a
/// non-empty frame).
async fn read_answer(s: &mut libp2p::Stream, secs: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(secs), s.read_to_end(&mut out)).await;
    assert!(r.is_ok(), "the node must close a bad stream, not leave it hanging");
    out
}

async fn still_serves(host: &Node) {
    let honest = node().await;
    connect(&honest, host).await;
    let offer = honest
        .net
        .offer(host.id, OfferRequest { bytes: 1, term_secs: 1, swap_offered_bytes: 0 })
        .await
        .unwrap();
    assert_eq!(offer, offer_of(&host.id));
    let data = vec![5u8; 300_000];
    let header = StoreHeader { contract_id: [2; 32], object_root: [0x5E; 32], total_len: data.len() as u64 };
    honest.net.store(host.id, header, &data[..]).await.unwrap();
    assert_eq!(host.state.lock().unwrap().objects.get(&[0x5E; 32]), Some(&data));
}

fn small_manifest_limits() -> Limits {
    let mut l = Limits::default();
    l.manifest.max_request = 1 << 20;
    l
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_message_is_rejected_and_node_keeps_serving() {
    let a = node_with(small_manifest_limits()).await;
    // A peer configured with a larger cap sends 2 MiB where A accepts 1 MiB.
    let mut big = Limits::default();
    big.manifest.max_request = 8 << 20;
    let h = node_with(big).await;
    connect(&h, &a).await;
    let err = h
        .net
        .manifest(a.id, ManifestRequest::Store { version: 1, snapshot: vec![0; 2 << 20] })
        .await
        .unwrap_err();
    assert!(matches!(err, RequestError::Closed { .. } | RequestError::Stream { .. }), "{err}");
    assert!(a.state.lock().unwrap().manifests.is_empty(), "oversize message must not reach the engine");

    // Our own side refuses to send above the cap it knows, with an error naming the sizes.
    let err = a
        .net
        .manifest(h.id, ManifestRequest::Store { version: 1, snapshot: vec![0; 2 << 20] })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("exceeds the cap"), "{err}");

    // A raw frame announcing 4 GiB gets the stream closed without an answer.
    let (_, mut ctl) = raw_peer(&a).await;
    let mut s = open(&mut ctl, a.id, "/bunker/offer/1").await;
    s.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    s.flush().await.unwrap();
    assert!(read_answer(&mut s, 10).await.is_empty());

    // A store header announcing more than max_object_bytes is refused before any body.
    let (_, mut ctl) = raw_peer(&a).await;
    let mut s = open(&mut ctl, a.id, "/bunker/store/2").await;
    let header = StoreHeader { contract_id: [1; 32], object_root: [1; 32], total_len: u64::MAX };
    let body = postcard::to_stdvec(&header).unwrap();
    s.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    s.flush().await.unwrap();
    let answer = read_answer(&mut s, 10).await;
    assert!(String::from_utf8_lossy(&answer).contains("exceeds the limit"), "{answer:?}");

    still_serves(&a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_no_answer_and_repeated_garbage_cuts_the_peer_off() {
    let limits = Limits { max_bad_messages_per_peer: 4, ..Default::default() };
    let a = node_with(limits).await;
    let (hid, mut ctl) = raw_peer(&a).await;
    let mut garbage = 6u32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[0xFF; 6]);
    // Request-response protocols: the stream is closed without an answer. (libp2p does not
    // report which peer sent an undecodable request, so these are not counted as strikes.)
    for p in [
        "/bunker/offer/1",
        "/bunker/contract/2",
        "/bunker/holdings/1",
        "/bunker/audit/1",
        "/bunker/manifest/1",
        "/bunker/recover/1",
        "/bunker/release/1",
    ] {
        let mut s = open(&mut ctl, a.id, p).await;
        s.write_all(&garbage).await.unwrap();
        s.flush().await.unwrap();
        assert!(read_answer(&mut s, 10).await.is_empty(), "garbage on {p} must get no answer");
    }
    // Bulk protocols: each garbage header is a strike; the fourth cuts the peer off.
    for (i, p) in
        ["/bunker/store/2", "/bunker/fetch/2", "/bunker/store/2", "/bunker/fetch/2"].iter().enumerate()
    {
        let mut s = open(&mut ctl, a.id, p).await;
        let _ = s.write_all(&garbage).await;
        let _ = s.flush().await;
        assert!(read_answer(&mut s, 10).await.is_empty(), "garbage #{i} on {p} must get no answer");
    }
    assert_eq!(a.state.lock().unwrap().requests_seen, 0, "garbage must never reach the engine");
    let blocked = eventually(10, || async {
        let p = a.net.peers().await.unwrap();
        p.blocked.contains(&hid.to_string()) && !p.connected.iter().any(|c| c.peer_id == hid.to_string())
    })
    .await;
    assert!(blocked, "a peer sending garbage again and again is cut off");
    // Cut off means its new streams fail too.
    let again = tokio::time::timeout(
        Duration::from_secs(10),
        ctl.open_stream(a.id, StreamProtocol::new("/bunker/offer/1")),
    )
    .await;
    assert!(!matches!(again, Ok(Ok(_))), "a blocked peer must not get a stream");
    still_serves(&a).await;
}

fn fast_timeouts() -> Limits {
    Limits {
        stream_header_timeout: Duration::from_secs(1),
        stream_idle_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalling_streams_time_out_on_both_sides() {
    let a = node_with(fast_timeouts()).await;

    // A stream that never sends its header is closed after the header timeout.
    let (_, mut ctl) = raw_peer(&a).await;
    let mut s = open(&mut ctl, a.id, "/bunker/store/2").await;
    let t0 = std::time::Instant::now();
    assert!(read_answer(&mut s, 10).await.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(8));

    // An owner that stops sending after 1 MiB of 4: the host's read fails with a stall error.
    let h = node_with(fast_timeouts()).await;
    connect(&h, &a).await;
    let header = StoreHeader { contract_id: [1; 32], object_root: [0x51; 32], total_len: 4 << 20 };
    let body = StallingReader { inner: PatternReader { pos: 0, len: 4 << 20 }, stall_after: 1 << 20 };
    let err = tokio::time::timeout(Duration::from_secs(15), h.net.store(a.id, header, body))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("gave no data"), "{err}");
    assert!(
        eventually(10, || async {
            let st = a.state.lock().unwrap();
            st.store_errors.iter().any(|e| e.contains("stalled") || e.contains("ended after"))
        })
        .await,
        "{:?}",
        a.state.lock().unwrap().store_errors
    );
    assert!(a.state.lock().unwrap().objects.is_empty());

    // A host that stops sending mid-object (its own timeouts are the default 30 s): our fetch
    // read fails within our 1 s idle timeout.
    let slow_host = node().await;
    connect(&a, &slow_host).await;
    let t0 = std::time::Instant::now();
    let request = FetchRequest { contract_id: [1; 32], object_root: [0x57; 32] };
    let mut obj = a.net.fetch(slow_host.id, request, 1 << 30).await.unwrap();
    let mut sink = Vec::new();
    let err =
        tokio::time::timeout(Duration::from_secs(15), obj.read_to_end(&mut sink)).await.unwrap().unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut, "{err}");
    assert_eq!(sink.len(), 1 << 20);
    assert!(t0.elapsed() < Duration::from_secs(12), "gave up after {:?}", t0.elapsed());

    still_serves(&a).await;
}

/// An owner that takes the lane offer, says it will send on the lane and never connects: the
/// host gives up after its header timeout, stores nothing, and still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lane_that_never_comes_fails_the_store_in_time() {
    let a = node_with(fast_timeouts()).await;
    let (_, mut ctl) = raw_peer(&a).await;
    let mut s = open(&mut ctl, a.id, "/bunker/store/2").await;
    let header = StoreHeader { contract_id: [1; 32], object_root: [0x3C; 32], total_len: 1000 };
    let body = postcard::to_stdvec(&header).unwrap();
    s.write_all(&(body.len() as u32).to_be_bytes()).await.unwrap();
    s.write_all(&body).await.unwrap();
    s.flush().await.unwrap();
    // The answer frame: postcard variant 2 (`AcceptLane`), a port and a 32-byte ticket.
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut ready = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut ready).await.unwrap();
    assert_eq!(ready[0], 2, "the host offers its lane: {ready:?}");
    // "Lane" (variant 0) — and then nothing on any lane.
    s.write_all(&[0, 0, 0, 1, 0]).await.unwrap();
    s.flush().await.unwrap();
    let t0 = std::time::Instant::now();
    assert!(read_answer(&mut s, 10).await.is_empty(), "no verdict without a body");
    assert!(t0.elapsed() < Duration::from_secs(8));
    assert!(
        eventually(10, || async { a.state.lock().unwrap().store_errors.iter().any(|e| e.contains("stalled")) })
            .await,
        "{:?}",
        a.state.lock().unwrap().store_errors
    );
    assert!(a.state.lock().unwrap().objects.is_empty());
    still_serves(&a).await;
}

/// Anyone can connect to a lane. 300 connections that never show a ticket (more than the 64
/// the host keeps waiting) do not stop a real transfer: its connection shows its ticket at
/// once, and the oldest idle ones are dropped to make room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_silent_lane_connections_does_not_block_transfers() {
    let a = node().await;
    let h = node().await;
    connect(&h, &a).await;
    let port = a.net.lane_port().expect("a has a lane");
    let mut idle = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            idle.push(s);
        }
    }
    assert!(idle.len() >= 200, "only {} connections", idle.len());
    let root = [0x4F; 32];
    let object: Vec<u8> = (0..300_000u32).map(|i| (i * 13) as u8).collect();
    let header = StoreHeader { contract_id: [2; 32], object_root: root, total_len: object.len() as u64 };
    h.net.store(a.id, header, &object[..]).await.unwrap();
    assert_eq!(a.state.lock().unwrap().objects.get(&root), Some(&object));
    assert_eq!(a.state.lock().unwrap().lane_stores, 1, "the body came on the lane");
    let mut fetched = h.net.fetch(a.id, FetchRequest { contract_id: [2; 32], object_root: root }, 1 << 20).await.unwrap();
    assert!(fetched.via_lane());
    let mut back = Vec::new();
    fetched.read_to_end(&mut back).await.unwrap();
    assert_eq!(back, object);
    drop(idle);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_opening_1000_streams_is_cut_off_while_others_are_served() {
    // A long header timeout, so that "every flood stream ended before it" can only mean the
    // peer was cut off, even on a loaded machine.
    let a = node_with(Limits { stream_header_timeout: Duration::from_secs(60), ..Default::default() }).await;
    let (hid, ctl) = raw_peer(&a).await;
    let aid = a.id;
    let header_timeout = a.net.limits().stream_header_timeout;
    let t0 = std::time::Instant::now();
    // 1,000 concurrent streams that send nothing and hold on: each would hold a slot until the
    // header timeout (10 s), so without per-peer limits they would pin the node's resources.
    let mut tasks = Vec::new();
    for _ in 0..1000u32 {
        let mut ctl = ctl.clone();
        tasks.push(tokio::spawn(async move {
            let open = tokio::time::timeout(
                Duration::from_secs(20),
                ctl.open_stream(aid, StreamProtocol::new("/bunker/fetch/2")),
            )
            .await;
            let Ok(Ok(mut s)) = open else { return None };
            let mut out = Vec::new();
            let r = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut out)).await;
            Some((r.is_ok(), out.len()))
        }));
    }
    // Others are served while the flood is on.
    still_serves(&a).await;
    let mut opened = 0;
    for t in tasks {
        if let Some((ended, got)) = t.await.unwrap() {
            opened += 1;
            assert!(ended, "a flood stream was left hanging");
            assert_eq!(got, 0, "a flood stream got an answer");
        }
    }
    // Every flood stream ended because the peer was cut off, long before its header timeout.
    assert!(t0.elapsed() < header_timeout, "flood ended only after {:?}", t0.elapsed());
    let p = a.net.peers().await.unwrap();
    assert!(p.blocked.contains(&hid.to_string()), "flooding peer must be blocked: {p:?}");
    assert!(!p.connected.iter().any(|c| c.peer_id == hid.to_string()));
    println!("{opened} of 1000 flood streams were opened before the cut-off");
    still_serves(&a).await;
}
