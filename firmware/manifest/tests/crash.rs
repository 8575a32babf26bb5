//! Crash safety: a child process writing transactions is killed with SIGKILL at
//! random moments; every transaction it reported as committed must survive and
//! the database must pass `integrity_check` every time.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bunker_manifest::*;
use common::*;
use rand::Rng;

const CHILD_DB: &str = "BUNKER_MANIFEST_CRASH_DB";
const CHILD_ROUND: &str = "BUNKER_MANIFEST_CRASH_ROUND";
const ROUNDS: u64 = 50;
const BATCH: u64 = 20;

/// The child: writes transactions forever and reports each one after its
/// commit returned. Run only by `committed_transactions_survive_sigkill`.
#[test]
#[ignore = "child process of committed_transactions_survive_sigkill; does nothing on its own"]
fn crash_writer_child() {
    let (Ok(db), Ok(round)) = (std::env::var(CHILD_DB), std::env::var(CHILD_ROUND)) else {
        eprintln!("crash_writer_child runs only as the child of the SIGKILL test");
        return;
    };
    let round: u64 = round.parse().expect("round number from the parent");
    let mut m = Manifest::open(&db).expect("child opens the manifest");
    let out = std::io::stdout();
    let report = |line: String| {
        let mut o = out.lock();
        writeln!(o, "COMMITTED {line}")
            .and_then(|_| o.flush())
            .expect("report to parent");
    };
    report("ready 0".into());
    let hosts = [peer(1), peer(2), peer(3)];
    for k in 0.. {
        let id = round * 1_000_000 + k;
        match k % 4 {
            0 | 1 => {
                let reps: Vec<_> = (0..3)
                    .map(|i| replica(i, hosts[i as usize], id as i64))
                    .collect();
                m.put_file(&file(&format!("/crash/f{id}"), id), &reps)
                    .expect("put file");
                report(format!("file {id}"));
            }
            2 => {
                let files: Vec<_> = (0..BATCH)
                    .map(|j| file(&format!("/crash/b{id}/{j}"), j))
                    .collect();
                let reps = [replica(0, hosts[0], 1)];
                m.put_files(files.iter().map(|f| (f, &reps[..])))
                    .expect("put batch");
                report(format!("batch {id}"));
            }
            _ => {
                let pid = payment_id(id);
                m.insert_payment(&NewPayment {
                    id: pid,
                    direction: PaymentDirection::Outgoing,
                    amount_msat: id,
                    contract: None,
                    payment_hash: None,
                    created_at: id as i64,
                })
                .expect("insert payment");
                report(format!("payment {id}"));
                m.finish_payment(&pid, PaymentState::Succeeded, Some(1), "", id as i64)
                    .expect("finish payment");
                report(format!("paid {id}"));
            }
        }
    }
}

fn payment_id(id: u64) -> PaymentId {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&id.to_be_bytes());
    PaymentId(b)
}

#[test]
fn committed_transactions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("MANIFEST.db");
    let exe = std::env::current_exe().unwrap();
    let mut rng = rand::thread_rng();
    let mut reported_total = 0usize;
    let mut killed_while_writing = 0usize;

    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([
                "crash_writer_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_DB, &db)
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The harness prints "test crash_writer_child ... " without a newline first.
                if let Some(at) = line.find("COMMITTED ") {
                    if tx.send(line[at + "COMMITTED ".len()..].to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        // Wait until the child has opened the database and committed once (so
        // every round proves something even on a loaded machine), then let it
        // write for a random while.
        let first = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child never became ready");
        assert_eq!(first, "ready 0");
        let first_commit = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("child never committed");
        let deadline = Instant::now() + Duration::from_millis(rng.gen_range(1..120));
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            killed_while_writing += 1;
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let reported: Vec<String> = std::iter::once(first_commit).chain(rx.try_iter()).collect();
        reported_total += reported.len();

        let m = Manifest::open(&db).expect("reopen after SIGKILL");
        let problems = m.integrity_problems().unwrap();
        assert!(
            problems.is_empty(),
            "round {round}: integrity problems {problems:?}"
        );
        for line in &reported {
            let (kind, id) = line.split_once(' ').unwrap();
            let id: u64 = id.parse().unwrap();
            match kind {
                "file" => {
                    let f = m
                        .file(&FilePath::parse(&format!("/crash/f{id}")).unwrap())
                        .unwrap()
                        .unwrap_or_else(|| panic!("round {round}: committed file {id} lost"));
                    assert_eq!(m.replicas_of(f.id).unwrap().len(), 3, "file {id} replicas");
                }
                "batch" => {
                    let listing = m
                        .list_folder(&FolderPath::parse(&format!("/crash/b{id}")).unwrap())
                        .unwrap();
                    assert_eq!(
                        listing.files.len() as u64,
                        BATCH,
                        "round {round}: batch {id} incomplete"
                    );
                }
                "payment" => {
                    assert!(
                        m.payment(&payment_id(id)).unwrap().is_some(),
                        "payment {id} lost"
                    );
                }
                "paid" => {
                    let p = m.payment(&payment_id(id)).unwrap().unwrap();
                    assert_eq!(p.state, PaymentState::Succeeded, "payment {id} state lost");
                }
                other => panic!("unknown report {other}"),
            }
        }
        // Atomicity of the unreported tail too: any batch present is whole.
        let crash = m
            .list_folder(&FolderPath::parse("/crash").unwrap())
            .unwrap();
        for b in &crash.folders {
            let n = m
                .list_folder(&FolderPath::parse(&format!("/crash/{b}")).unwrap())
                .unwrap()
                .files
                .len();
            assert_eq!(n as u64, BATCH, "round {round}: torn batch {b}");
        }
    }
    // The test proves something only if the kills landed mid-write.
    assert!(
        killed_while_writing >= (ROUNDS as usize) * 9 / 10,
        "only {killed_while_writing} kills hit a running writer"
    );
    assert!(
        reported_total >= ROUNDS as usize,
        "children reported only {reported_total} commits"
    );
    eprintln!("{ROUNDS} SIGKILLs, {reported_total} reported commits, all present");
}
