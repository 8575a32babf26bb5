//! The engine over several data disks, driven by bunker-disks' real watcher
//! (probe, alerts) on real file systems: two ext4 images on loop devices
//! mounted under `DATA_ROOT/disks/UUID` when this machine lets the test
//! mount (root with CAP_SYS_ADMIN), else two directories. Peers are real
//! bunker-net swarms on loopback. `BUNKER_TEST_DIR_DISKS=1` runs them on
//! directories even where ext4 could be mounted.
//!
//! - objects land on both disks, MANIFEST.db says which;
//! - a yanked disk raises the alert, its objects are answered "unavailable"
//!   to the auditing owner (from the disk's state), the other disk's pass;
//!   back, every audit passes and every byte is there;
//! - full disks: new contracts and stores are refused with the reason;
//! - the owner's own get falls back to peers while its local copy's disk is away.

mod owner_common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bunker_core::{verify_segment, Descriptor, FileId, Keys, NoLeaves, ObjectId, Proof, Sealer, Seed};
use bunker_disks::{Disks, Fault, ReservePolicy, Roots};
use bunker_manifest::{DiskState, FilePath, Manifest};
use bunker_net::*;
use bunker_node::{DiskHealth, DiskStatus, HostingTerms, Node, NodeConfig, NodeParts, Policy};
use futures::AsyncReadExt;

const SEGMENT: u32 = 4096;
/// sign.rs's domain label for contract terms.
const IMG_BYTES: u64 = 48 << 20;

// ---- the disks: ext4 on loop devices where possible, directories else ----

struct TestDisk {
    /// Where its objects live (a mount point or a directory).
    root: PathBuf,
    /// The ext4 image, when it is one.
    img: Option<PathBuf>,
    /// bunker-disks' id for it.
    id: String,
}

/// Two data disks and bunker-disks' watcher over them; the store root (on
/// the same file system as the test's temporary directory) plays the SD card.
struct Kit {
    store: PathBuf,
    disks: Vec<TestDisk>,
    watcher: Disks,
}

fn run(cmd: &mut Command) -> Result<String, String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn mount_loop(img: &Path, at: &Path) -> Result<(), String> {
    run(Command::new("mount").arg("-o").arg("loop").arg(img).arg(at)).map(|_| ())
}

fn ext4_disks(top: &Path, data_root: &Path) -> Result<Vec<TestDisk>, String> {
    if std::env::var_os("BUNKER_TEST_DIR_DISKS").is_some() {
        return Err("BUNKER_TEST_DIR_DISKS is set".into());
    }
    if !bunker_disks::adopt::can_mount(&Roots::system()) {
        return Err("not running with CAP_SYS_ADMIN".into());
    }
    let mut out = Vec::new();
    for i in 0..2 {
        let img = top.join(format!("disk{i}.img"));
        std::fs::File::create(&img).and_then(|f| f.set_len(IMG_BYTES)).map_err(|e| e.to_string())?;
        run(Command::new("mkfs.ext4").args(["-q", "-F", "-m", "0"]).arg(&img))?;
        let uuid = run(Command::new("blkid").args(["-o", "value", "-s", "UUID"]).arg(&img))?;
        let root = data_root.join("disks").join(&uuid);
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        mount_loop(&img, &root)?;
        out.push(TestDisk { root, img: Some(img), id: uuid });
    }
    Ok(out)
}

impl Kit {
    fn new(top: &Path) -> Kit {
        let data_root = top.join("data");
        let store = top.join("store");
        std::fs::create_dir_all(&store).unwrap();
        let reserve = ReservePolicy { min_bytes: 1 << 20, percent: 0 };
        let (disks, watcher) = match ext4_disks(top, &data_root) {
            Ok(disks) => {
                let watcher = Disks::scan(&Roots::system(), &data_root, reserve).unwrap();
                (disks, watcher)
            }
            Err(why) => {
                eprintln!("NOTE: data disks are directories here, not ext4 on loop devices ({why})");
                let mut watcher = Disks::scan(&Roots::system(), &data_root, reserve).unwrap();
                let mut disks = Vec::new();
                for i in 0..2 {
                    let root = top.join(format!("disk{i}"));
                    std::fs::create_dir_all(&root).unwrap();
                    let id = watcher.add_dir(&root).unwrap();
                    disks.push(TestDisk { root, img: None, id });
                }
                (disks, watcher)
            }
        };
        let mut kit = Kit { store, disks, watcher };
        kit.probe();
        for d in &kit.disks {
            assert_eq!(kit.watcher.get(&d.id).map(|w| w.state), Some(bunker_disks::DiskState::Active), "{}", d.id);
        }
        kit
    }

    fn ext4(&self) -> bool {
        self.disks[0].img.is_some()
    }

    fn probe(&mut self) {
        self.watcher.probe().unwrap();
    }

    /// What bunkerd's disk watcher hands the engine (`disk_watch::engine_disk`).
    fn statuses(&self) -> Vec<DiskStatus> {
        let mut v: Vec<DiskStatus> = self
            .watcher
            .disks()
            .iter()
            .map(|d| DiskStatus {
                id: d.id.clone(),
                label: d.label.clone(),
                root: d.mount_path.clone(),
                health: match d.state {
                    bunker_disks::DiskState::Active => DiskHealth::Active,
                    bunker_disks::DiskState::Missing => DiskHealth::Missing,
                    bunker_disks::DiskState::ReadOnly => DiskHealth::ReadOnly,
                    bunker_disks::DiskState::Full => DiskHealth::Full,
                    bunker_disks::DiskState::Failing => DiskHealth::Failing,
                },
                total_bytes: d.capacity.total_bytes,
                free_bytes: d.capacity.free_bytes,
                reserved_bytes: d.capacity.reserved_bytes,
                on_system_device: d.on_system_device,
            })
            .collect();
        // Directories stand in for USB disks: off the system device, whatever
        // file system the test's temporary directory is on.
        if !self.ext4() {
            v.iter_mut().for_each(|d| d.on_system_device = false);
        }
        // The store root stands for the SD card the box booted from.
        let mut sd = DiskStatus::directory(&self.store);
        sd.on_system_device = true;
        v.push(sd);
        v
    }

    async fn tell(&mut self, node: &Node) {
        self.probe();
        node.set_disks(self.statuses()).await.unwrap();
    }

    fn alerts(&self) -> Vec<String> {
        self.watcher.alerts().into_iter().map(|a| format!("{}: {}", a.short, a.text)).collect()
    }

    /// Pulls disk `i`: unmounted (lazily, as a yanked USB disk leaves it),
    /// or the directory moved away.
    fn yank(&self, i: usize) {
        let d = &self.disks[i];
        match &d.img {
            Some(_) => {
                run(Command::new("umount").arg("-l").arg(&d.root)).unwrap();
            }
            None => std::fs::rename(&d.root, d.root.with_extension("away")).unwrap(),
        }
    }

    fn plug_back(&self, i: usize) {
        let d = &self.disks[i];
        match &d.img {
            Some(img) => mount_loop(img, &d.root).unwrap(),
            None => std::fs::rename(d.root.with_extension("away"), &d.root).unwrap(),
        }
    }

    /// Fills disk `i`: a real ext4 is written to ENOSPC; a directory gets
    /// an injected ENOSPC on the watcher's test write.
    fn fill(&self, i: usize) {
        let d = &self.disks[i];
        if d.img.is_some() {
            use std::io::Write;
            let mut f = std::fs::File::create(d.root.join("junk")).unwrap();
            let block = vec![0x5a; 1 << 20];
            loop {
                match f.write_all(&block) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("filling {}: {e}", d.root.display()),
                }
            }
            let _ = f.sync_all();
        } else {
            self.watcher.get(&d.id).unwrap().fault_hook().set(Fault::NoSpace);
        }
    }

    fn unfill(&self, i: usize) {
        let d = &self.disks[i];
        if d.img.is_some() {
            std::fs::remove_file(d.root.join("junk")).unwrap();
        } else {
            self.watcher.get(&d.id).unwrap().fault_hook().clear();
        }
    }

    /// Which disk holds hosted object `name` (None: none of the two).
    fn holder(&self, name: &str) -> Option<usize> {
        let on: Vec<usize> =
            (0..self.disks.len()).filter(|&i| self.disks[i].root.join("hosted").join(name).join("object").is_file()).collect();
        assert!(on.len() <= 1, "{name} on several disks: {on:?}");
        on.first().copied()
    }
}

impl Drop for Kit {
    fn drop(&mut self) {
        for d in &self.disks {
            if d.img.is_some() {
                let _ = Command::new("umount").arg("-l").arg(&d.root).output();
            }
        }
    }
}

// ---- boxes ----


struct Host {
    node: Node,
    dir: PathBuf,
    seed: Seed,
}

impl Host {
    fn manifest(&self) -> Manifest {
        Manifest::open(self.dir.join("MANIFEST.db")).unwrap()
    }
}

async fn start_host(top: &Path) -> Host {
    start_host_with(top, Seed::generate()).await
}

/// A host box on `top` with these words: the same box again after a restart.
async fn start_host_with(top: &Path, seed: Seed) -> Host {
    owner_common::init_tracing();
    let keys = Keys::from_seed(&seed);
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.unwrap();
    let manifest = Manifest::open(top.join("MANIFEST.db")).unwrap();
    let mut config = NodeConfig::new(top.join("store"));
    config.hosting = HostingTerms {
        price_msat_per_gib_day: 1000,
        retrieval_msat_per_gib: 5000,
        price_floor_msat_per_gib_day: 100,
        safety_margin_bytes: 1 << 20,
        max_hosted_bytes: Some(64 << 20),
        accept_swaps: true,
        ..HostingTerms::default()
    };
    let seed_again = seed.clone();
    let node = Node::start(NodeParts { seed, config, manifest, net, inbound, ln: None }).await.unwrap();
    Host { node, dir: top.to_path_buf(), seed: seed_again }
}

struct Owner {
    net: Net,
    keys: Keys,
    _inbound: tokio::sync::mpsc::Receiver<InboundRequest>,
}

async fn owner_of(host: &Host) -> Owner {
    let keys = Keys::from_seed(&Seed::generate());
    let (net, inbound) = Net::start(NetConfig::loopback(keys.identity())).await.unwrap();
    let addrs = host.node.net().listen_addrs().await.unwrap();
    net.dial(host.node.peer_id(), addrs).await.unwrap();
    Owner { net, keys, _inbound: inbound }
}

struct Placed {
    terms: ContractTerms,
    bytes: Vec<u8>,
    d: Descriptor,
}

impl Placed {
    fn name(&self, owner: &Owner) -> String {
        format!("{}-{}", owner.keys.peer_id(), hex::encode(self.d.root))
    }
}

fn sealed(owner: &Keys, size: usize) -> (Vec<u8>, Descriptor) {
    let object = ObjectId { file_id: FileId::random(), replica_index: 0 };
    let key = owner.replica_key(&object.file_id, 0);
    let plain: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let mut out = Vec::new();
    let d = Sealer::new(&key, object, size as u64, SEGMENT).unwrap().seal(&plain[..], &mut out, NoLeaves).unwrap();
    (out, d)
}

fn terms(d: &Descriptor, sealed_len: usize) -> ContractTerms {
    ContractTerms {
        contract_id: rand::random(),
        object_root: d.root,
        object_bytes: sealed_len as u64,
        plain_bytes: d.size,
        segment_size: d.segment_size,
        price_msat_per_gib_day: 1000,
        retrieval_msat_per_gib: 5000,
        audit_interval_secs: (60, 120),
        term_secs: 86_400,
        swap: false,
        owner_label: Vec::new(),
    }
}

async fn propose(owner: &Owner, host: &Host, t: &ContractTerms) -> ContractAnswer {
    let proposal = ContractProposal { terms: t.clone(), owner_signature: bunker_node::sign::sign_terms(&owner.keys, t) };
    owner.net.contract(host.node.peer_id(), proposal).await.unwrap()
}

async fn store(owner: &Owner, host: &Host, p: &Placed) -> Result<StoreReceipt, StreamError> {
    let header = StoreHeader { contract_id: p.terms.contract_id, object_root: p.d.root, total_len: p.bytes.len() as u64 };
    owner.net.store(host.node.peer_id(), header, &p.bytes[..]).await
}

/// A contract accepted (not stored yet).
async fn contract(owner: &Owner, host: &Host, size: usize) -> Placed {
    let (bytes, d) = sealed(&owner.keys, size);
    let t = terms(&d, bytes.len());
    let answer = propose(owner, host, &t).await;
    assert!(matches!(answer, ContractAnswer::Accepted { .. }), "{answer:?}");
    Placed { terms: t, bytes, d }
}

async fn place(owner: &Owner, host: &Host, size: usize) -> Placed {
    let p = contract(owner, host, size).await;
    store(owner, host, &p).await.unwrap();
    p
}

async fn audit(owner: &Owner, host: &Host, p: &Placed, segment: u64) -> AuditResponse {
    owner
        .net
        .audit(host.node.peer_id(), AuditChallenge { object_root: p.d.root, segment, nonce: rand::random() })
        .await
        .unwrap()
}

async fn audit_passes(owner: &Owner, host: &Host, p: &Placed) {
    for segment in [0, p.d.segment_count - 1] {
        match audit(owner, host, p, segment).await {
            AuditResponse::Proof { sealed_segment, proof } => {
                verify_segment(&p.d, segment, &sealed_segment, &Proof::from_bytes(&proof).unwrap()).unwrap()
            }
            other => panic!("audit of segment {segment} did not pass: {other:?}"),
        }
    }
}

async fn fetch(owner: &Owner, host: &Host, p: &Placed) -> Result<Vec<u8>, String> {
    let req = FetchRequest { contract_id: p.terms.contract_id, object_root: p.d.root };
    let mut obj = owner.net.fetch(host.node.peer_id(), req, p.bytes.len() as u64).await.map_err(|e| match e {
        StreamError::Refused { reason, .. } => reason,
        other => other.to_string(),
    })?;
    let mut back = Vec::new();
    obj.read_to_end(&mut back).await.map_err(|e| e.to_string())?;
    let _ = obj.close().await;
    Ok(back)
}

fn manifest_disk_state(m: &Manifest, root: &Path) -> DiskState {
    m.disks().unwrap().into_iter().find(|d| Path::new(&d.info.mount_path) == root).expect("disk row").info.state
}

// ---- the tests ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_spread_over_two_disks_and_a_yanked_disk_is_unavailable_until_it_comes_back() {
    let top = tempfile::tempdir().unwrap();
    let mut kit = Kit::new(top.path());
    let host = start_host(top.path()).await;
    kit.tell(&host.node).await;
    let owner = owner_of(&host).await;

    // Six objects: both disks take some, the SD card none.
    let mut placed = Vec::new();
    for _ in 0..6 {
        placed.push(place(&owner, &host, 200_000).await);
    }
    let on: Vec<usize> = placed.iter().map(|p| kit.holder(&p.name(&owner)).expect("on a data disk")).collect();
    assert!(on.contains(&0) && on.contains(&1), "objects on disks {on:?}");
    assert_eq!(std::fs::read_dir(kit.store.join("hosted")).unwrap().count(), 0, "nothing on the SD card");
    // MANIFEST.db names the disk each object is on.
    let m = host.manifest();
    let rows = m.disks().unwrap();
    for (p, &i) in placed.iter().zip(&on) {
        let held = m.hosted_object(&owner.keys.peer_id(), &p.d.root).unwrap().expect("recorded");
        let row = rows.iter().find(|r| r.id == held.object.disk).expect("its disk row");
        assert_eq!(Path::new(&row.info.mount_path), kit.disks[i].root, "{}", p.name(&owner));
        if kit.ext4() {
            assert_eq!(row.info.uuid, kit.disks[i].id, "adopted disks are keyed by their ext4 UUID");
        }
    }

    // Yank disk 0: the watcher alerts, the engine hears it.
    kit.yank(0);
    kit.tell(&host.node).await;
    let alerts = kit.alerts();
    assert!(alerts.iter().any(|a| a.starts_with("Disk missing")), "{alerts:?}");
    assert_eq!(host.node.disks().iter().find(|d| d.id == kit.disks[0].id).unwrap().health, DiskHealth::Missing);
    assert_eq!(manifest_disk_state(&host.manifest(), &kit.disks[0].root), DiskState::Missing);
    for (p, &i) in placed.iter().zip(&on) {
        if i == 0 {
            match audit(&owner, &host, p, 1).await {
                AuditResponse::Failed { reason } => {
                    assert!(reason.starts_with("unavailable: ") && reason.contains("missing"), "{reason}")
                }
                other => panic!("an object on a yanked disk must be answered unavailable, got {other:?}"),
            }
            let e = fetch(&owner, &host, p).await.unwrap_err();
            assert!(e.starts_with("unavailable: "), "{e}");
        } else {
            audit_passes(&owner, &host, p).await;
        }
    }
    // A new object still lands, on the disk that is here.
    let late = place(&owner, &host, 100_000).await;
    assert_eq!(kit.holder(&late.name(&owner)), Some(1));

    // Back: every audit passes, every byte is there.
    kit.plug_back(0);
    kit.tell(&host.node).await;
    assert!(!kit.alerts().iter().any(|a| a.starts_with("Disk missing")), "{:?}", kit.alerts());
    assert_eq!(manifest_disk_state(&host.manifest(), &kit.disks[0].root), DiskState::Active);
    placed.push(late);
    for p in &placed {
        audit_passes(&owner, &host, p).await;
        assert_eq!(fetch(&owner, &host, p).await.unwrap(), p.bytes, "{}", p.name(&owner));
    }
    host.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_box_restarted_without_a_disk_answers_unavailable_for_what_is_on_it() {
    let top = tempfile::tempdir().unwrap();
    let mut kit = Kit::new(top.path());
    let host = start_host(top.path()).await;
    kit.tell(&host.node).await;
    let owner = owner_of(&host).await;
    let mut placed = Vec::new();
    for _ in 0..4 {
        placed.push(place(&owner, &host, 100_000).await);
    }
    let on: Vec<usize> = placed.iter().map(|p| kit.holder(&p.name(&owner)).unwrap()).collect();
    assert!(on.contains(&0), "{on:?}");

    // Power off, disk 0 pulled, power on: the engine never saw disk 0's
    // objects; MANIFEST.db says they are there.
    host.node.shutdown().await;
    kit.yank(0);
    let host = start_host_with(top.path(), host.seed.clone()).await;
    kit.tell(&host.node).await;
    let addrs = host.node.net().listen_addrs().await.unwrap();
    owner.net.dial(host.node.peer_id(), addrs).await.unwrap();
    for (p, &i) in placed.iter().zip(&on) {
        if i == 0 {
            match audit(&owner, &host, p, 0).await {
                AuditResponse::Failed { reason } => {
                    assert!(reason.starts_with("unavailable: ") && reason.contains("missing"), "{reason}")
                }
                other => panic!("expected unavailable, got {other:?}"),
            }
            assert!(fetch(&owner, &host, p).await.unwrap_err().starts_with("unavailable: "));
        } else {
            audit_passes(&owner, &host, p).await;
        }
    }
    kit.plug_back(0);
    kit.tell(&host.node).await;
    for p in &placed {
        audit_passes(&owner, &host, p).await;
    }
    host.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disks_take_no_new_contracts_and_the_peer_is_told_why() {
    let top = tempfile::tempdir().unwrap();
    let mut kit = Kit::new(top.path());
    let host = start_host(top.path()).await;
    kit.tell(&host.node).await;
    let owner = owner_of(&host).await;
    let kept = place(&owner, &host, 100_000).await;
    let waiting = contract(&owner, &host, 100_000).await;

    kit.fill(0);
    kit.fill(1);
    kit.tell(&host.node).await;
    let alerts = kit.alerts();
    assert_eq!(alerts.iter().filter(|a| a.starts_with("Disk full")).count(), 2, "{alerts:?}");

    // A new contract: refused, naming the full disks.
    let (bytes, d) = sealed(&owner.keys, 100_000);
    let t = terms(&d, bytes.len());
    match propose(&owner, &host, &t).await {
        ContractAnswer::Rejected { reason } => {
            assert!(reason.contains("not enough space") && reason.contains("full"), "{reason}")
        }
        other => panic!("a box with full disks must refuse, got {other:?}"),
    }
    // The upload of a contract accepted before: refused, nothing kept (and
    // not on the SD card either).
    match store(&owner, &host, &waiting).await {
        Err(StreamError::Refused { reason, .. }) => assert!(reason.contains("host disk full"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(kit.holder(&waiting.name(&owner)), None);
    assert_eq!(std::fs::read_dir(kit.store.join("hosted")).unwrap().count(), 0);
    // What is on full disks is still proven and handed back.
    audit_passes(&owner, &host, &kept).await;
    assert_eq!(fetch(&owner, &host, &kept).await.unwrap(), kept.bytes);

    // Room again: the waiting upload and new contracts go through.
    kit.unfill(0);
    kit.unfill(1);
    kit.tell(&host.node).await;
    store(&owner, &host, &waiting).await.unwrap();
    audit_passes(&owner, &host, &waiting).await;
    assert!(matches!(propose(&owner, &host, &t).await, ContractAnswer::Accepted { .. }));
    host.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owners_get_falls_back_to_peers_while_its_local_copys_disk_is_away() {
    let (owner, hosts) = owner_common::swarm(2, |_| {}).await;
    let mut kit = Kit::new(owner.dir.path());
    kit.tell(&owner.node).await;
    let data = owner_common::content(300_000, 7);
    owner_common::put(&owner, "/a/photo.jpg", &data, Policy { copies: 2, keep_local: true }).await.unwrap();

    // The local copy is on a data disk, and MANIFEST.db says which.
    let m = owner.manifest();
    let file = m.file(&FilePath::parse("/a/photo.jpg").unwrap()).unwrap().expect("recorded");
    let local = file.local.expect("kept locally");
    let row = m.disks().unwrap().into_iter().find(|r| r.id == local.disk).expect("its disk row");
    let i = kit.disks.iter().position(|d| Path::new(&row.info.mount_path) == d.root).expect("a data disk, not the SD card");
    assert!(kit.disks[i].root.join("local").join(&local.rel_path).join("object").is_file());

    kit.yank(i);
    kit.tell(&owner.node).await;
    assert_eq!(owner_common::get(&owner, "/a/photo.jpg").await.unwrap(), data, "read from the peers");
    // The record of the local copy is kept: the disk is away, not lost.
    let file = owner.manifest().file(&FilePath::parse("/a/photo.jpg").unwrap()).unwrap().unwrap();
    assert_eq!(file.local.map(|l| l.disk), Some(local.disk));

    kit.plug_back(i);
    kit.tell(&owner.node).await;
    assert_eq!(owner_common::get(&owner, "/a/photo.jpg").await.unwrap(), data);
    owner.node.shutdown().await;
    for h in hosts {
        h.node.shutdown().await;
    }
}
