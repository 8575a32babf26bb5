//! What the `bunker` CLI tells an owner when the box cannot do what was
//! asked, against a real daemon: a full box refuses `bunker put` with the
//! daemon's "no room" sentence (507) and keeps nothing; a `bunker get` whose
//! every copy fails midway exits non-zero and leaves no file, whole or
//! truncated, under the target name.

use std::path::{Path, PathBuf};

use bunker_tests::{run, BoxProcess};

fn bunker(node: &BoxProcess, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--data-dir", node.data_dir.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    run("bunker", &all, &[])
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Lightning off: these boxes only keep their own files.
const ALONE: [&str; 2] = ["--set", "ln.chain=none"];

fn file(dir: &Path, name: &str, len: usize) -> (PathBuf, Vec<u8>) {
    let data: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
    let p = dir.join(name);
    std::fs::write(&p, &data).unwrap();
    (p, data)
}

#[test]
fn bunker_put_on_a_full_box_says_no_room_and_keeps_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("box");
    // Every disk kept whole in reserve: nothing beyond it for new files.
    let mut args = ALONE.to_vec();
    args.extend(["--set", "reserves.disk_percent=100"]);
    let node = BoxProcess::start(&data_dir, &args);
    let (local, _) = file(tmp.path(), "photo.jpg", 300_000);
    let out = bunker(&node, &["put", local.to_str().unwrap(), "/photo.jpg", "--copies", "0"]);
    let said = text(&out);
    assert!(!out.status.success(), "put on a full box succeeded: {said}");
    assert!(said.contains("507") && said.contains("no room for /photo.jpg"), "{:?}: {said}\n{}", out.status, node.log());
    assert!(said.contains("add a data disk"), "{said}");
    let ls = bunker(&node, &["ls", "/"]);
    assert!(!text(&ls).contains("photo.jpg"), "{}", text(&ls));
    let staging = std::fs::read_dir(data_dir.join("store/staging")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(staging, 0, "nothing left in staging");
}

#[test]
fn bunker_get_of_a_file_no_copy_can_be_read_whole_fails_and_leaves_no_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("box");
    let node = BoxProcess::start(&data_dir, &ALONE);
    let (local, data) = file(tmp.path(), "video.bin", 3 << 20);
    let out = bunker(&node, &["put", local.to_str().unwrap(), "/video.bin", "--copies", "0"]);
    assert!(out.status.success(), "{}", text(&out));

    // Read back whole while the copy is sound.
    let good = tmp.path().join("good.bin");
    let out = bunker(&node, &["get", "/video.bin", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&good).unwrap(), data);

    // The only copy (on this box) damaged three quarters in.
    let object = std::fs::read_dir(data_dir.join("store/local")).unwrap().next().unwrap().unwrap().path().join("object");
    let mut sealed = std::fs::read(&object).unwrap();
    let at = sealed.len() * 3 / 4;
    sealed[at] ^= 0x5a;
    std::fs::write(&object, &sealed).unwrap();

    let target = tmp.path().join("out.bin");
    let out = bunker(&node, &["get", "/video.bin", target.to_str().unwrap()]);
    let said = text(&out);
    assert!(!out.status.success(), "a get that broke off exited 0: {said}");
    assert!(said.contains("broke off") || said.contains("announced"), "{said}");
    assert!(!target.exists(), "a truncated file was left under the target name");
    assert!(!tmp.path().join("out.bin.part").exists(), "the side file was left behind");
    // An existing file of that name is not replaced by a broken download.
    std::fs::write(&target, b"keep me").unwrap();
    let out = bunker(&node, &["get", "/video.bin", target.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(std::fs::read(&target).unwrap(), b"keep me");
}
