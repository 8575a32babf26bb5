//! The typed API against a real SQLite file: what the engine will call.

mod common;

use bunker_manifest::*;
use common::*;

#[test]
fn opened_database_uses_wal_foreign_keys_and_current_schema() {
    let (dir, m) = open_temp();
    assert_eq!(m.schema_version().unwrap(), SCHEMA_VERSION);
    assert!(m.integrity_problems().unwrap().is_empty());
    drop(m);
    // WAL leaves its marker in the file header (bytes 18/19 == 2).
    let header = std::fs::read(dir.path().join("MANIFEST.db")).unwrap();
    assert_eq!((header[18], header[19]), (2, 2), "journal mode is not WAL");
    // Re-opening an up-to-date file migrates nothing and keeps the data.
    let m = Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
    assert_eq!(m.schema_version().unwrap(), SCHEMA_VERSION);
}

#[test]
fn files_list_by_folder_with_subfolders_and_replica_counts() {
    let (_d, mut m) = open_temp();
    let a = peer(1);
    let b = peer(2);
    m.put_file(
        &file("/photos/2024/b.jpg", 1),
        &[replica(0, a, 10), replica(1, b, 20)],
    )
    .unwrap();
    m.put_file(&file("/photos/2024/a.jpg", 2), &[replica(0, a, 30)])
        .unwrap();
    m.put_file(&file("/photos/readme.txt", 3), &[]).unwrap();
    m.put_file(&file("/top.txt", 4), &[]).unwrap();

    let root = m.list_folder(&FolderPath::root()).unwrap();
    assert_eq!(root.folders, vec!["photos".to_string()]);
    assert_eq!(
        root.files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>(),
        ["top.txt"]
    );

    let photos = m
        .list_folder(&FolderPath::parse("/photos").unwrap())
        .unwrap();
    assert_eq!(photos.folders, vec!["2024".to_string()]);
    assert_eq!(photos.files.len(), 1);

    let y = m
        .list_folder(&FolderPath::parse("/photos/2024/").unwrap())
        .unwrap();
    let names: Vec<_> = y
        .files
        .iter()
        .map(|f| (f.name.as_str(), f.active_replicas))
        .collect();
    assert_eq!(names, [("a.jpg", 1), ("b.jpg", 2)]);

    let unknown = m.list_folder(&FolderPath::parse("/nope").unwrap()).unwrap();
    assert!(unknown.files.is_empty() && unknown.folders.is_empty());

    let rec = m
        .file(&FilePath::parse("/photos/2024/b.jpg").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(rec.size, 1001);
    assert_eq!(rec.path, "/photos/2024/b.jpg");
    assert_eq!(rec.plaintext_blake3, file("/x", 1).plaintext_blake3);
    let reps = m.replicas_of(rec.id).unwrap();
    assert_eq!(reps.len(), 2);
    assert_eq!(reps[1].host, b);
    assert_eq!(m.replicas_on_host(&a).unwrap().len(), 2);
}

#[test]
fn duplicate_path_and_replica_index_are_refused_atomically() {
    let (_d, mut m) = open_temp();
    m.put_file(&file("/a/x", 1), &[]).unwrap();
    let err = m.put_file(&file("/a/x", 2), &[]).unwrap_err();
    assert!(matches!(err, QueryError::AlreadyExists { .. }), "{err}");
    assert!(
        err.to_string().contains("/a/x"),
        "error names the path: {err}"
    );

    // Two replicas with one index: nothing of the file stays behind.
    let p = peer(1);
    let err = m
        .put_file(&file("/a/y", 3), &[replica(0, p, 1), replica(0, p, 2)])
        .unwrap_err();
    assert!(matches!(err, QueryError::AlreadyExists { .. }), "{err}");
    assert!(m.file(&FilePath::parse("/a/y").unwrap()).unwrap().is_none());

    // A batch with one bad file stores none of it.
    let f1 = file("/b/1", 1);
    let f2 = file("/a/x", 2);
    let err = m.put_files([(&f1, &[][..]), (&f2, &[][..])]).unwrap_err();
    assert!(matches!(err, QueryError::AlreadyExists { .. }));
    assert!(m.file(&FilePath::parse("/b/1").unwrap()).unwrap().is_none());
}

#[test]
fn unknown_contract_or_disk_is_a_clear_not_found() {
    let (_d, mut m) = open_temp();
    let mut r = replica(0, peer(1), 5);
    r.contract = Some(ContractId([9; 32]));
    let err = m.put_file(&file("/c", 1), &[r]).unwrap_err();
    assert!(matches!(err, QueryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("0909"), "{err}");
    let mut f = file("/d", 1);
    f.local = Some(LocalCopy {
        disk: DiskId(77),
        rel_path: "x".into(),
    });
    let err = m.put_file(&f, &[]).unwrap_err();
    assert!(matches!(err, QueryError::NotFound { .. }), "{err}");
}

#[test]
fn removing_a_file_returns_its_replicas_and_drops_their_audits() {
    let (_d, mut m) = open_temp();
    let id = m
        .put_file(
            &file("/r/x", 1),
            &[replica(0, peer(1), 5), replica(1, peer(2), 5)],
        )
        .unwrap();
    let reps = m.replicas_of(id).unwrap();
    m.record_audit(&audit(reps[0].id, AuditOutcome::Passed, 100))
        .unwrap();
    let removed = m.remove_file(&FilePath::parse("/r/x").unwrap()).unwrap();
    assert_eq!(removed.len(), 2);
    assert!(m.replicas_of(id).unwrap().is_empty());
    assert!(m.recent_audits(10).unwrap().is_empty());
    assert!(matches!(
        m.remove_file(&FilePath::parse("/r/x").unwrap()),
        Err(QueryError::NotFound { .. })
    ));
}

fn audit(replica: ReplicaId, outcome: AuditOutcome, at: i64) -> AuditReport {
    AuditReport {
        replica,
        at,
        kind: AuditKind::Segment,
        segment: Some(3),
        outcome,
        latency_ms: 42,
        detail: format!("{outcome}"),
        next_audit_at: Some(at + 3600),
    }
}

#[test]
fn due_audits_come_oldest_first_and_audits_move_the_schedule() {
    let (_d, mut m) = open_temp();
    let p = peer(3);
    let id = m
        .put_file(
            &file("/due/x", 1),
            &[replica(0, p, 300), replica(1, p, 100), replica(2, p, 900)],
        )
        .unwrap();
    let reps = m.replicas_of(id).unwrap();
    m.set_replica_state(reps[2].id, ReplicaState::Lost).unwrap();

    let due = m.replicas_due_for_audit(500, 10).unwrap();
    assert_eq!(
        due.iter().map(|d| d.next_audit_at).collect::<Vec<_>>(),
        [100, 300]
    );
    assert_eq!(due[0].segment_size, 65536);
    assert_eq!(m.replicas_due_for_audit(1000, 1).unwrap().len(), 1);
    assert!(
        m.replicas_due_for_audit(50, 10).unwrap().is_empty(),
        "lost replica must not be due"
    );

    let r1 = reps[1].id;
    assert_eq!(
        m.record_audit(&audit(r1, AuditOutcome::Failed, 100))
            .unwrap(),
        1
    );
    assert_eq!(
        m.record_audit(&audit(r1, AuditOutcome::Timeout, 200))
            .unwrap(),
        2
    );
    let rep = m.replica(r1).unwrap();
    assert_eq!(rep.consecutive_failures, 2);
    assert_eq!(rep.last_audit_at, Some(200));
    assert_eq!(rep.next_audit_at, 3800);
    assert_eq!(
        m.record_audit(&audit(r1, AuditOutcome::Passed, 300))
            .unwrap(),
        0
    );

    let mut full = audit(r1, AuditOutcome::Passed, 400);
    full.kind = AuditKind::Full;
    full.next_audit_at = None;
    m.record_audit(&full).unwrap();
    let rep = m.replica(r1).unwrap();
    assert_eq!(
        (rep.last_full_check_at, rep.last_audit_at, rep.next_audit_at),
        (Some(400), Some(300), 3900)
    );

    let hist = m.audits_of_replica(r1, 10).unwrap();
    assert_eq!(
        hist.iter().map(|a| a.at).collect::<Vec<_>>(),
        [400, 300, 200, 100]
    );
    assert_eq!(hist[3].outcome, AuditOutcome::Failed);
    assert_eq!(hist[3].segment, Some(3));

    assert!(matches!(
        m.record_audit(&audit(ReplicaId(9999), AuditOutcome::Passed, 1)),
        Err(QueryError::NotFound { .. })
    ));
}

#[test]
fn peers_keep_addresses_bounded_and_scores() {
    let (_d, mut m) = open_temp();
    let p = peer(5);
    m.upsert_peer(&PeerSighting {
        peer: p,
        addresses: vec!["/ip4/127.0.0.1/tcp/1".into()],
        ln_node_id: None,
        seen_at: 10,
    })
    .unwrap();
    let ln = format!("02{}", "ab".repeat(32));
    m.upsert_peer(&PeerSighting {
        peer: p,
        addresses: (0..20)
            .map(|i| format!("/ip4/127.0.0.1/tcp/{}", 100 + i))
            .collect(),
        ln_node_id: Some(ln.clone()),
        seen_at: 20,
    })
    .unwrap();
    let rec = m.peer(&p).unwrap().unwrap();
    assert_eq!((rec.first_seen_at, rec.last_seen_at), (10, 20));
    assert_eq!(rec.ln_node_id.as_deref(), Some(ln.as_str()));
    assert_eq!(rec.addresses.len(), MAX_ADDRESSES_PER_PEER);
    m.set_peer_score(&p, 4.5, 0.5).unwrap();
    let rec = m.peer(&p).unwrap().unwrap();
    assert_eq!((rec.successes, rec.failures), (4.5, 0.5));
    assert!(matches!(
        m.set_peer_score(&p, f64::NAN, 0.0),
        Err(QueryError::InvalidValue { .. })
    ));
    assert!(matches!(
        m.set_peer_score(&peer(6), 1.0, 0.0),
        Err(QueryError::NotFound { .. })
    ));
    let bad = PeerSighting {
        peer: p,
        addresses: vec!["x".repeat(300)],
        ln_node_id: None,
        seen_at: 1,
    };
    assert!(matches!(
        m.upsert_peer(&bad),
        Err(QueryError::InvalidValue {
            field: "address",
            ..
        })
    ));
    let bad = PeerSighting {
        peer: p,
        addresses: vec![],
        ln_node_id: Some("zz".into()),
        seen_at: 1,
    };
    assert!(matches!(
        m.upsert_peer(&bad),
        Err(QueryError::InvalidValue {
            field: "ln_node_id",
            ..
        })
    ));
    assert_eq!(m.peers().unwrap().len(), 1);
}

#[test]
fn contracts_in_both_directions_with_owed_amounts() {
    let (_d, mut m) = open_temp();
    let p = peer(7);
    let ours = contract(1, p, ContractDirection::OursOnPeer);
    let theirs = contract(2, p, ContractDirection::TheirsOnUs);
    m.insert_contract(&ours).unwrap();
    m.insert_contract(&theirs).unwrap();
    assert!(matches!(
        m.insert_contract(&ours),
        Err(QueryError::AlreadyExists { .. })
    ));

    let got = m.contract(&ours.id).unwrap().unwrap();
    assert_eq!(got.contract, ours);
    assert_eq!(got.state, ContractState::Active);
    assert_eq!(
        m.contracts(ContractDirection::TheirsOnUs, ContractState::Active)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(m.contracts_with_peer(&p).unwrap().len(), 2);

    assert_eq!(m.accrue_owed(&ours.id, 700).unwrap(), 700);
    assert_eq!(m.accrue_owed(&ours.id, 500).unwrap(), 1200);
    assert_eq!(m.settle_owed(&ours.id, 1000, 55).unwrap(), 200);
    assert_eq!(m.settle_owed(&ours.id, 1000, 56).unwrap(), 0);
    assert_eq!(
        m.contract(&ours.id).unwrap().unwrap().last_paid_at,
        Some(56)
    );

    m.set_contract_state(&ours.id, ContractState::Broken, 99)
        .unwrap();
    let got = m.contract(&ours.id).unwrap().unwrap();
    assert_eq!((got.state, got.ended_at), (ContractState::Broken, Some(99)));
    // Final: a late retry cannot reopen it, and the first end time stays.
    m.set_contract_state(&ours.id, ContractState::Ending, 100).unwrap();
    m.set_contract_state(&ours.id, ContractState::Active, 101).unwrap();
    m.set_contract_state(&ours.id, ContractState::Broken, 102).unwrap();
    let got = m.contract(&ours.id).unwrap().unwrap();
    assert_eq!((got.state, got.ended_at), (ContractState::Broken, Some(99)));
    assert!(matches!(
        m.set_contract_state(&ContractId([0xee; 32]), ContractState::Ended, 1),
        Err(QueryError::NotFound { .. })
    ));

    let mut bad = contract(3, p, ContractDirection::OursOnPeer);
    bad.terms = vec![0; MAX_TERMS_LEN + 1];
    assert!(matches!(
        m.insert_contract(&bad),
        Err(QueryError::InvalidValue { field: "terms", .. })
    ));
    let mut bad = contract(4, p, ContractDirection::OursOnPeer);
    bad.size_bytes = u64::MAX;
    assert!(matches!(
        m.insert_contract(&bad),
        Err(QueryError::InvalidValue {
            field: "size_bytes",
            ..
        })
    ));

    // A replica can be attached to the contract afterwards.
    let fid = m.put_file(&file("/k", 1), &[replica(0, p, 1)]).unwrap();
    let rid = m.replicas_of(fid).unwrap()[0].id;
    m.set_replica_contract(rid, &ours.id).unwrap();
    assert_eq!(m.replica(rid).unwrap().contract, Some(ours.id));
}

#[test]
fn payments_move_only_from_pending_and_tolerate_repeated_events() {
    let (_d, mut m) = open_temp();
    let p = peer(8);
    let c = contract(1, p, ContractDirection::OursOnPeer);
    m.insert_contract(&c).unwrap();
    let pay = NewPayment {
        id: PaymentId([1; 32]),
        direction: PaymentDirection::Outgoing,
        amount_msat: 5_000,
        contract: Some(c.id),
        payment_hash: Some([2; 32]),
        created_at: 100,
    };
    m.insert_payment(&pay).unwrap();
    assert!(matches!(
        m.insert_payment(&pay),
        Err(QueryError::AlreadyExists { .. })
    ));
    assert_eq!(m.pending_payments().unwrap().len(), 1);
    m.finish_payment(&pay.id, PaymentState::Succeeded, Some(1_000), "", 110)
        .unwrap();
    m.finish_payment(&pay.id, PaymentState::Succeeded, Some(1_000), "", 111)
        .unwrap();
    let err = m
        .finish_payment(&pay.id, PaymentState::Failed, None, "late", 112)
        .unwrap_err();
    assert!(matches!(err, QueryError::InvalidTransition { .. }), "{err}");
    assert!(
        err.to_string().contains("succeeded") && err.to_string().contains("failed"),
        "{err}"
    );

    let got = m.payment(&pay.id).unwrap().unwrap();
    assert_eq!(
        (got.state, got.fee_msat, got.updated_at),
        (PaymentState::Succeeded, Some(1_000), 110)
    );
    assert_eq!(got.contract, Some(c.id));

    let inbound = NewPayment {
        id: PaymentId([3; 32]),
        direction: PaymentDirection::Incoming,
        amount_msat: 9_000,
        contract: None,
        payment_hash: None,
        created_at: 200,
    };
    m.insert_payment(&inbound).unwrap();
    m.finish_payment(&inbound.id, PaymentState::Failed, None, "no route", 201)
        .unwrap();
    assert_eq!(
        m.payments_total_msat(PaymentDirection::Outgoing).unwrap(),
        5_000
    );
    assert_eq!(
        m.payments_total_msat(PaymentDirection::Incoming).unwrap(),
        0
    );
    let all = m.payments(None, 10).unwrap();
    assert_eq!(
        all.iter().map(|p| p.created_at).collect::<Vec<_>>(),
        [200, 100]
    );
    assert_eq!(m.payments(Some(200), 10).unwrap().len(), 1);
    assert_eq!(m.payments_for_contract(&c.id).unwrap().len(), 1);
    assert!(m.pending_payments().unwrap().is_empty());
    assert!(matches!(
        m.finish_payment(&PaymentId([9; 32]), PaymentState::Failed, None, "", 1),
        Err(QueryError::NotFound { .. })
    ));
}

#[test]
fn disks_hosted_objects_and_allocation() {
    let (_d, mut m) = open_temp();
    let info = DiskInfo {
        uuid: "1111-2222".into(),
        label: "usb1".into(),
        mount_path: "/srv/disk1".into(),
        total_bytes: 1 << 40,
        free_bytes: 1 << 39,
        reserved_bytes: 1 << 30,
        state: DiskState::Active,
        seen_at: 10,
    };
    let disk = m.upsert_disk(&info).unwrap();
    let again = m
        .upsert_disk(&DiskInfo {
            free_bytes: 5,
            seen_at: 20,
            ..info.clone()
        })
        .unwrap();
    assert_eq!(disk, again);
    let disks = m.disks().unwrap();
    assert_eq!(
        (disks.len(), disks[0].info.free_bytes, disks[0].added_at),
        (1, 5, 10)
    );
    m.set_disk_scrubbed(disk, 30).unwrap();
    assert_eq!(m.disks().unwrap()[0].last_scrub_at, Some(30));

    let mut f = file("/local/x", 1);
    f.local = Some(LocalCopy {
        disk,
        rel_path: "files/x".into(),
    });
    let fid = m.put_file(&f, &[]).unwrap();

    let owner = peer(9);
    let c = contract(5, owner, ContractDirection::TheirsOnUs);
    m.insert_contract(&c).unwrap();
    let obj = NewHostedObject {
        contract: c.id,
        owner,
        root: [4; 32],
        disk,
        rel_path: "hosted/04".into(),
        bytes: 3000,
        state: HostedState::Stored,
        created_at: 40,
    };
    let hid = m.insert_hosted_object(&obj).unwrap();
    assert!(matches!(
        m.insert_hosted_object(&obj),
        Err(QueryError::AlreadyExists { .. })
    ));
    assert_eq!(
        m.hosted_object(&owner, &[4; 32]).unwrap().unwrap().object,
        obj
    );
    assert_eq!(m.hosted_objects_for_contract(&c.id).unwrap().len(), 1);
    assert_eq!(m.hosted_objects_on_disk(disk).unwrap().len(), 1);

    let alloc = m.disk_allocation().unwrap();
    assert_eq!((alloc[0].local_bytes, alloc[0].hosted_bytes), (1001, 3000));
    m.set_hosted_state(hid, HostedState::Released, 3000)
        .unwrap();
    assert_eq!(m.disk_allocation().unwrap()[0].hosted_bytes, 0);
    m.set_local_copy(fid, None).unwrap();
    assert_eq!(m.disk_allocation().unwrap()[0].local_bytes, 0);
    m.remove_hosted_object(hid).unwrap();
    assert!(m.hosted_object(&owner, &[4; 32]).unwrap().is_none());
    let mut bad = obj.clone();
    bad.disk = DiskId(42);
    assert!(matches!(
        m.insert_hosted_object(&bad),
        Err(QueryError::NotFound { .. })
    ));
}

#[test]
fn consistent_copy_is_a_standalone_sound_database() {
    let (dir, mut m) = open_temp();
    for i in 0..50 {
        m.put_file(&file(&format!("/copy/f{i}"), i), &[replica(0, peer(1), 5)])
            .unwrap();
    }
    let dest = dir.path().join("download.db");
    let size = m.write_consistent_copy(&dest).unwrap();
    assert_eq!(size, std::fs::metadata(&dest).unwrap().len());
    let mut buf = Vec::new();
    let n = m.copy_to_writer(&mut buf).unwrap();
    assert_eq!(n as usize, buf.len());
    assert_eq!(&buf[..16], b"SQLite format 3\0");
    // Rollback-journal file: no WAL needed beside it (header bytes 18/19 == 1).
    assert_eq!((buf[18], buf[19]), (1, 1));
    let copy = Manifest::open(&dest).unwrap();
    assert!(copy.integrity_problems().unwrap().is_empty());
    assert_eq!(
        copy.list_folder(&FolderPath::parse("/copy").unwrap())
            .unwrap()
            .files
            .len(),
        50
    );
    assert!(!dir.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".manifest-copy-")));
}

#[test]
fn files_can_be_renamed_across_folders_but_not_onto_another_file() {
    let (_d, mut m) = open_temp();
    let id = m
        .put_file(&file("/a/x", 1), &[replica(0, peer(1), 5)])
        .unwrap();
    m.put_file(&file("/b/y", 2), &[]).unwrap();
    let from = FilePath::parse("/a/x").unwrap();
    let err = m
        .rename_file(&from, &FilePath::parse("/b/y").unwrap())
        .unwrap_err();
    assert!(matches!(err, QueryError::AlreadyExists { .. }), "{err}");
    m.rename_file(&from, &FilePath::parse("/c/d/z").unwrap())
        .unwrap();
    assert!(m.file(&from).unwrap().is_none());
    let moved = m
        .file(&FilePath::parse("/c/d/z").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(moved.id, id);
    assert_eq!(m.replicas_of(id).unwrap().len(), 1);
    assert_eq!(
        m.list_folder(&FolderPath::parse("/c").unwrap())
            .unwrap()
            .folders,
        ["d"]
    );
    assert!(matches!(
        m.rename_file(&from, &FilePath::parse("/q").unwrap()),
        Err(QueryError::NotFound { .. })
    ));
}

#[test]
fn under_replicated_files_are_found_in_pages() {
    let (_d, mut m) = open_temp();
    let p = peer(1);
    // redundancy 3 (from the builder): 3 active, 2 active, 3 with one lost, 0.
    let full = m
        .put_file(
            &file("/u/full", 1),
            &[replica(0, p, 1), replica(1, p, 1), replica(2, p, 1)],
        )
        .unwrap();
    let two = m
        .put_file(&file("/u/two", 2), &[replica(0, p, 1), replica(1, p, 1)])
        .unwrap();
    let lost = m
        .put_file(
            &file("/u/lost", 3),
            &[replica(0, p, 1), replica(1, p, 1), replica(2, p, 1)],
        )
        .unwrap();
    let none = m.put_file(&file("/u/none", 4), &[]).unwrap();
    let r = m.replicas_of(lost).unwrap()[2].id;
    m.set_replica_state(r, ReplicaState::Lost).unwrap();
    let all = m.under_replicated_files(None, 10).unwrap();
    assert_eq!(all, vec![(two, 3, 2), (lost, 3, 2), (none, 3, 0)]);
    assert!(!all.iter().any(|(id, _, _)| *id == full));
    let page = m.under_replicated_files(Some(two), 1).unwrap();
    assert_eq!(page, vec![(lost, 3, 2)]);
}

#[test]
fn contracts_ending_soon_are_listed_soonest_first() {
    let (_d, mut m) = open_temp();
    let p = peer(2);
    let mut a = contract(1, p, ContractDirection::OursOnPeer);
    a.term_end_at = 5_000;
    let mut b = contract(2, p, ContractDirection::TheirsOnUs);
    b.term_end_at = 3_000;
    let mut c = contract(3, p, ContractDirection::OursOnPeer);
    c.term_end_at = 4_000;
    for x in [&a, &b, &c] {
        let mut x = x.clone();
        x.term_start_at = 1_000;
        m.insert_contract(&x).unwrap();
    }
    m.set_contract_state(&c.id, ContractState::Ended, 10)
        .unwrap();
    let ending: Vec<_> = m
        .contracts_ending_before(6_000)
        .unwrap()
        .into_iter()
        .map(|r| r.contract.id)
        .collect();
    assert_eq!(ending, [b.id, a.id]);
    assert!(m.contracts_ending_before(3_000).unwrap().is_empty());
}

#[test]
fn a_file_that_is_not_a_database_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("MANIFEST.db");
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = Manifest::open(&path).unwrap_err();
    assert!(matches!(err, OpenError::Sqlite { .. }), "{err:?}");
    assert!(err.to_string().contains("MANIFEST.db"), "{err}");
}

#[test]
fn a_second_handle_reads_while_the_first_writes() {
    let (dir, mut writer) = open_temp();
    let reader = Manifest::open(dir.path().join("MANIFEST.db")).unwrap();
    let folder = FolderPath::parse("/shared").unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..200 {
            writer
                .put_file(
                    &file(&format!("/shared/f{i}"), i),
                    &[replica(0, peer(1), 1)],
                )
                .unwrap();
        }
        writer
    });
    let mut last = 0;
    while last < 200 {
        let n = reader.list_folder(&folder).unwrap().files.len();
        assert!(n >= last, "a reader saw rows disappear");
        last = n;
        if t.is_finished() {
            break;
        }
    }
    t.join().unwrap();
    assert_eq!(reader.list_folder(&folder).unwrap().files.len(), 200);
}

#[test]
fn audits_recorded_in_a_batch_are_all_or_nothing_and_passes_can_be_pruned() {
    let (_d, mut m) = open_temp();
    let id = m
        .put_file(
            &file("/batch/x", 1),
            &[replica(0, peer(1), 5), replica(1, peer(2), 5)],
        )
        .unwrap();
    let reps = m.replicas_of(id).unwrap();
    let (a, b) = (reps[0].id, reps[1].id);
    let counts = m
        .record_audits(&[
            audit(a, AuditOutcome::Passed, 100),
            audit(b, AuditOutcome::Failed, 100),
            audit(b, AuditOutcome::Unreachable, 200),
        ])
        .unwrap();
    assert_eq!(counts, [0, 1, 2]);
    // One unknown replica in a batch: nothing of the batch is kept.
    let err = m
        .record_audits(&[
            audit(a, AuditOutcome::Failed, 300),
            audit(ReplicaId(999), AuditOutcome::Passed, 300),
        ])
        .unwrap_err();
    assert!(matches!(err, QueryError::NotFound { .. }), "{err}");
    assert_eq!(m.replica(a).unwrap().consecutive_failures, 0);
    assert_eq!(m.recent_audits(10).unwrap().len(), 3);

    m.record_audit(&audit(a, AuditOutcome::Passed, 400))
        .unwrap();
    assert_eq!(m.prune_passed_audits(300).unwrap(), 1);
    let left: Vec<_> = m
        .recent_audits(10)
        .unwrap()
        .into_iter()
        .map(|r| (r.at, r.outcome))
        .collect();
    assert_eq!(
        left,
        [
            (400, AuditOutcome::Passed),
            (200, AuditOutcome::Unreachable),
            (100, AuditOutcome::Failed)
        ]
    );
}

#[test]
fn object_id_is_kept_found_by_row_id_and_never_shared_by_two_files() {
    let (_dir, mut m) = open_temp();
    let a = file("/ids/a", 1);
    let id = m.put_file(&a, &[]).unwrap();
    let rec = m.file(&a.path).unwrap().unwrap();
    assert_eq!(rec.object_id, a.object_id);
    assert_eq!(m.file_by_id(id).unwrap(), Some(rec.clone()));
    assert_eq!(m.file_by_id(FileId(id.0 + 100)).unwrap(), None);

    let mut b = file("/ids/b", 2);
    b.object_id = a.object_id;
    let err = m.put_file(&b, &[]).unwrap_err();
    assert!(
        matches!(&err, QueryError::AlreadyExists { what } if what.contains("object id")),
        "{err}"
    );
    assert!(m.file(&b.path).unwrap().is_none());

    m.set_file_policy(id, false, 4, rec.modified_at + 5).unwrap();
    let changed = m.file_by_id(id).unwrap().unwrap();
    assert_eq!((changed.keep_local, changed.redundancy), (false, 4));
    assert_eq!(changed.object_id, a.object_id, "policy changes keep the id");
    assert_eq!(m.file_totals().unwrap(), (1, a.size));
}

#[test]
fn placed_file_is_recorded_with_its_contracts_all_or_nothing() {
    let (_dir, mut m) = open_temp();
    let host = peer(40);
    let c = contract(40, host, ContractDirection::OursOnPeer);
    let mut r = replica(0, host, 10);
    r.contract = Some(c.id);
    let f = file("/placed/a", 1);
    let id = m.put_file_with_contracts(&f, std::slice::from_ref(&c), std::slice::from_ref(&r)).unwrap();
    assert_eq!(m.replicas_of(id).unwrap()[0].contract, Some(c.id));
    assert_eq!(m.contract(&c.id).unwrap().unwrap().state, ContractState::Active);

    // Same path again: nothing of the second attempt stays, not even its contract.
    let c2 = contract(41, host, ContractDirection::OursOnPeer);
    let mut r2 = replica(0, host, 10);
    r2.contract = Some(c2.id);
    let err = m
        .put_file_with_contracts(&file("/placed/a", 2), std::slice::from_ref(&c2), &[r2])
        .unwrap_err();
    assert!(matches!(err, QueryError::AlreadyExists { .. }), "{err}");
    assert!(m.contract(&c2.id).unwrap().is_none());

    // A repair's replica comes with its contract.
    let c3 = contract(42, peer(41), ContractDirection::OursOnPeer);
    let mut r3 = replica(1, peer(41), 10);
    r3.contract = Some(c3.id);
    let rid = m.add_replica_with_contract(id, &c3, &r3).unwrap();
    assert_eq!(m.replica(rid).unwrap().contract, Some(c3.id));
}

#[test]
fn full_checks_fall_due_by_last_check_or_placement() {
    let (_dir, mut m) = open_temp();
    let host = peer(50);
    let mut early = replica(0, host, 10);
    early.created_at = 100;
    let mut late = replica(1, host, 10);
    late.created_at = 500;
    let id = m.put_file(&file("/full/a", 1), &[early, late]).unwrap();
    let due = m.replicas_due_for_full_check(200, 10).unwrap();
    assert_eq!(due.iter().map(|r| r.index).collect::<Vec<_>>(), [0]);
    let r0 = due[0].id;
    m.record_audit(&AuditReport {
        replica: r0,
        at: 1000,
        kind: AuditKind::Full,
        segment: None,
        outcome: AuditOutcome::Passed,
        latency_ms: 5,
        detail: String::new(),
        next_audit_at: None,
    })
    .unwrap();
    let due = m.replicas_due_for_full_check(600, 10).unwrap();
    assert_eq!(due.iter().map(|r| r.index).collect::<Vec<_>>(), [1]);
    assert_eq!(m.replicas_of(id).unwrap()[0].last_full_check_at, Some(1000));
}
