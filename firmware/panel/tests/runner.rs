//! The panel loop on its thread, with the simulator and with the hardware code path on a fake
//! SSD1306: same pixels, buttons from the local API, actions back to the daemon.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bunker_panel::display::{DisplayError, PanelDisplay, Ssd1306Display, DEFAULT_ADDRESS};
use bunker_panel::fake_ssd1306::FakeSsd1306;
use bunker_panel::runner::{PanelInputError, MAX_SIMULATED_HOLD};
use bunker_panel::screens::{render, Screen, ShutdownStage, View};
use bunker_panel::{spawn, Frame, PanelAction, PanelConfig, ScreenPower, SimPanel};
use support::fixtures;

/// Polls `cond` until it holds or 10 s pass (the loop is asynchronous to the test).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn sim_panel(
    config: PanelConfig,
) -> (
    SimPanel,
    bunker_panel::PanelHandle,
    mpsc::Receiver<PanelAction>,
) {
    let sim = SimPanel::new(None);
    let (tx, rx) = mpsc::channel();
    let handle = spawn(
        config,
        fixtures::healthy(),
        Box::new(sim.display()),
        Some(Box::new(sim.led())),
        move |a| {
            let _ = tx.send(a);
        },
    )
    .unwrap();
    (sim, handle, rx)
}

#[test]
fn simulator_shows_the_status_screen_and_follows_presses() {
    let (sim, handle, _rx) = sim_panel(PanelConfig::default());
    let status_frame = render(&View::of(Screen::Status), &fixtures::healthy());
    wait_until("first frame", || sim.frame() == status_frame);
    assert_eq!(sim.power(), ScreenPower::On);

    handle.press(0, Duration::from_millis(120)).unwrap();
    let alerts = render(&View::of(Screen::Alerts), &fixtures::healthy());
    wait_until("alerts screen", || sim.frame() == alerts);

    // A new snapshot is drawn; older ones that were never drawn are skipped.
    for i in 0..50 {
        let mut s = fixtures::healthy();
        s.sats = i;
        handle.set_status(s);
    }
    let mut last = fixtures::healthy();
    last.sats = 49;
    handle.set_status(last.clone());
    // Back round to the status screen (alerts, network, disks, shutdown, status): it shows
    // the newest figures.
    for _ in 0..4 {
        handle.press(0, Duration::from_millis(100)).unwrap();
    }
    let newest = render(&View::of(Screen::Status), &last);
    wait_until("newest snapshot on the status screen", || {
        sim.frame() == newest
    });
    let png = sim.png(2).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    handle.stop();
}

#[test]
fn shutdown_from_the_simulated_buttons_reaches_the_daemon() {
    let (sim, handle, rx) = sim_panel(PanelConfig::default());
    let shutdown = View::of(Screen::Shutdown);
    for _ in 0..4 {
        handle.press(0, Duration::from_millis(100)).unwrap();
    }
    let want = render(&shutdown, &fixtures::healthy());
    wait_until("shutdown screen", || sim.frame() == want);
    handle.press(0, Duration::from_secs(2)).unwrap();
    let confirm = render(
        &View {
            shutdown: ShutdownStage::Confirming,
            ..shutdown
        },
        &fixtures::healthy(),
    );
    wait_until("confirmation", || sim.frame() == confirm);
    assert!(
        rx.try_recv().is_err(),
        "no shutdown before the confirmation"
    );
    handle.press(0, Duration::from_secs(2)).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(5)).unwrap(),
        PanelAction::Shutdown
    );
    handle.set_status(fixtures::stopping());
    let stopping = render(&View::of(Screen::Shutdown), &fixtures::stopping());
    wait_until("shutting-down screen", || sim.frame() == stopping);
}

#[test]
fn led_follows_the_status() {
    let (sim, handle, _rx) = sim_panel(PanelConfig::default());
    handle.set_status(fixtures::recovery());
    wait_until("steady LED", || sim.led_on());
    // Steady: still on a while later.
    std::thread::sleep(Duration::from_millis(300));
    assert!(sim.led_on());
    // Heartbeat: goes dark for most of each 2 s period.
    handle.set_status(fixtures::healthy());
    wait_until("heartbeat pause", || !sim.led_on());
}

#[test]
fn hardware_path_and_simulator_show_the_same_pixels() {
    let sim = SimPanel::new(None);
    let fake = FakeSsd1306::new(DEFAULT_ADDRESS);
    let oled = Ssd1306Display::new(fake.clone(), DEFAULT_ADDRESS).unwrap();
    let a = spawn(
        PanelConfig::default(),
        fixtures::warning(),
        Box::new(sim.display()),
        None,
        |_| {},
    )
    .unwrap();
    let b = spawn(
        PanelConfig::default(),
        fixtures::warning(),
        Box::new(oled),
        None,
        |_| {},
    )
    .unwrap();
    for handle in [&a, &b] {
        handle.press(0, Duration::from_millis(100)).unwrap();
        handle.press(0, Duration::from_millis(100)).unwrap();
    }
    let network = render(&View::of(Screen::Network), &fixtures::warning());
    wait_until("simulator on network screen", || sim.frame() == network);
    wait_until("OLED on network screen", || fake.screen() == network);
    assert_eq!(sim.frame(), fake.screen());
}

#[test]
fn bad_button_input_is_refused_with_a_reason() {
    let (_sim, handle, _rx) = sim_panel(PanelConfig::default());
    assert_eq!(
        handle.press(3, Duration::from_millis(100)),
        Err(PanelInputError::NoSuchButton {
            button: 3,
            buttons: 1
        })
    );
    assert!(matches!(
        handle.press(0, MAX_SIMULATED_HOLD + Duration::from_secs(1)),
        Err(PanelInputError::HoldTooLong { .. })
    ));
    assert!(handle.button_edge(1, true).is_err());
}

/// A display whose bus is gone.
struct DeadDisplay(Arc<AtomicU32>);

impl PanelDisplay for DeadDisplay {
    fn show(&mut self, _: &Frame) -> Result<(), DisplayError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(DisplayError::Bus {
            address: 0x3C,
            doing: "sending a frame",
            detail: "EIO".into(),
        })
    }
    fn set_power(&mut self, _: ScreenPower) -> Result<(), DisplayError> {
        Ok(())
    }
}

#[test]
fn failing_display_is_retried_slowly_and_the_led_keeps_going() {
    let attempts = Arc::new(AtomicU32::new(0));
    let sim = SimPanel::new(None);
    let handle = spawn(
        PanelConfig::default(),
        fixtures::warning(),
        Box::new(DeadDisplay(attempts.clone())),
        Some(Box::new(sim.led())),
        |_| {},
    )
    .unwrap();
    // Alerts: the LED blinks at 4 Hz, waking the loop 8 times a second.
    let mut saw = [false, false];
    let deadline = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < deadline {
        saw[usize::from(sim.led_on())] = true;
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        saw,
        [true, true],
        "LED must blink while the display is dead"
    );
    let n = attempts.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&n),
        "{n} display attempts in 1.5 s: must back off"
    );
    handle.stop();
}

#[test]
fn simulator_writes_its_png_file() {
    let dir = std::env::temp_dir().join(format!("bunker-panel-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("panel.png");
    let sim = SimPanel::new(Some(path.clone()));
    let handle = spawn(
        PanelConfig::default(),
        fixtures::healthy(),
        Box::new(sim.display()),
        None,
        |_| {},
    )
    .unwrap();
    wait_until("png file", || {
        std::fs::metadata(&path).is_ok_and(|m| m.len() > 100)
    });
    handle.stop();
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn stopping_the_loop_darkens_the_screen_unless_shutting_down() {
    let sim = SimPanel::new(None);
    let h = spawn(
        PanelConfig::default(),
        fixtures::healthy(),
        Box::new(sim.display()),
        Some(Box::new(sim.led())),
        |_| {},
    )
    .unwrap();
    wait_until("first frame", || sim.frames_shown() > 0);
    h.stop();
    assert_eq!(sim.power(), ScreenPower::Off);
    assert!(!sim.led_on());

    let sim = SimPanel::new(None);
    let h = spawn(
        PanelConfig::default(),
        fixtures::stopping(),
        Box::new(sim.display()),
        None,
        |_| {},
    )
    .unwrap();
    wait_until("first frame", || sim.frames_shown() > 0);
    h.stop();
    assert_eq!(
        sim.power(),
        ScreenPower::On,
        "the shutting-down screen stays up"
    );
}
