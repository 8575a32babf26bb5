//! The front panel as the daemon drives it on a machine without one: the
//! simulator, reached through the local API and the `bunker panel` command.

use std::time::{Duration, Instant};

use bunker_tests::{run, BoxProcess, LOOPBACK_NET, SMALL_RESERVES};

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

fn screenshot(data: &str, dir: &std::path::Path, name: &str) -> Vec<u8> {
    let file = dir.join(name);
    let out = run("bunker", &["--data-dir", data, "panel", "screenshot", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(file).unwrap()
}

fn press(data: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--data-dir", data, "panel", "press"];
    all.extend_from_slice(args);
    run("bunker", &all, &[])
}

#[test]
fn without_hardware_the_box_runs_the_simulator_and_says_so_once() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("box");
    let data = data_dir.to_str().unwrap();
    let node = BoxProcess::start(&data_dir, &[]);

    let first = screenshot(data, tmp.path(), "1.png");
    assert_eq!(png_size(&first), (512, 256));
    assert!(data_dir.join("panel.png").exists(), "the simulator keeps its picture in the data dir");

    // A short press walks to the next screen: the picture changes. The
    // panel loop draws on its own thread, after the simulated release; on a
    // loaded machine that can be seconds later, so the picture is polled
    // (a fixed 300 ms sleep was a race).
    assert!(press(data, &[]).status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let second = screenshot(data, tmp.path(), "2.png");
        if second != first {
            break;
        }
        assert!(Instant::now() < deadline, "a press must change the screen (same picture 15 s after the press)");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A button the panel does not have is refused with a clear message.
    let out = press(data, &["--button", "7"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("button 7 does not exist"), "{err}");

    let log = node.log();
    assert_eq!(log.matches("no front panel hardware").count(), 1, "{log}");
    let code = String::from_utf8(run("bunker", &["--data-dir", data, "pairing-code"], &[]).stdout).unwrap();
    assert!(!log.contains(code.trim()), "the pairing code on the panel must not reach the log");
    assert!(node.stop().success());
}

#[test]
fn a_shutdown_confirmed_on_the_panel_stops_the_daemon_cleanly_and_runs_the_command() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("box");
    let data = data_dir.to_str().unwrap();
    let marker = tmp.path().join("powered-off");
    let command = format!("panel.shutdown_command=[\"touch\", {:?}]", marker.to_str().unwrap());
    // The store on a RAM file system, not on this machine's system disk: the
    // "data on SD card" alert would otherwise bring up the alerts screen
    // mid-way through the button presses below (a new alert takes the screen).
    let shm = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let store = format!("storage.root={:?}", shm.path().to_str().unwrap());
    let mut node = BoxProcess::start(
        &data_dir,
        &["--set", "panel.backend=\"simulator\"", "--set", &command, "--set", &store],
    );

    // Back from the first screen wraps to the last one: shutdown.
    assert!(press(data, &["--button", "1"]).status.success());
    // A long press asks for confirmation; nothing stops yet.
    assert!(press(data, &["--long"]).status.success());
    std::thread::sleep(Duration::from_millis(500));
    assert!(node.wait_exit(Duration::from_millis(10)).is_none(), "one long press must not shut down");
    // The second long press confirms.
    assert!(press(data, &["--long"]).status.success());
    let exit = node
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("daemon did not stop within 10 s of the confirmed shutdown:\n{}", node.log()));
    assert!(exit.success(), "{exit}: {}", node.log());
    assert!(node.log().contains("shutdown confirmed on the panel"), "{}", node.log());
    assert!(marker.exists(), "panel.shutdown_command did not run: {}", node.log());
}

#[test]
fn with_the_panel_off_there_is_no_panel_api() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("box");
    let node = BoxProcess::start(&data_dir, &["--set", "panel.backend=\"off\""]);
    let out = press(data_dir.to_str().unwrap(), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("404"));
    assert!(!data_dir.join("panel.png").exists());
    assert!(node.stop().success());
}

#[test]
fn hardware_required_but_absent_is_one_clear_line() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("box");
    // The daemon starts its engine (and swarm) before the panel: on the
    // default net.listen (0.0.0.0:4001, fixed) it failed with "address in
    // use" instead whenever anything else held port 4001 (seen with two
    // test runs at once). Loopback on a random port, as every test box.
    let mut args = vec!["--data-dir", data.to_str().unwrap(), "--web-addr", "127.0.0.1:0"];
    args.extend_from_slice(&LOOPBACK_NET);
    args.extend_from_slice(&SMALL_RESERVES);
    args.extend_from_slice(&["--set", "panel.backend=\"hardware\""]);
    let out = run("bunkerd", &args, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("bunkerd: ")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("panel.backend is \"hardware\""), "{err}");
}
