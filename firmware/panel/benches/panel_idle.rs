//! CPU cost of the panel loop at idle, measured with getrusage over real seconds.
//!
//! `cargo bench -p bunker-panel --bench panel_idle` (BENCH_SECS=N per scenario, default 10).
//! The loop drives the real hardware code path (ssd1306 driver + our display code) into the
//! fake SSD1306, which also decodes every byte: a pessimistic stand-in for rppal's I2C ioctl.
//! Target: ≤ 1 % of one core in every idle scenario.

use std::time::{Duration, Instant};

use bunker_panel::display::{PanelDisplay, Ssd1306Display, DEFAULT_ADDRESS};
use bunker_panel::fake_ssd1306::FakeSsd1306;
use bunker_panel::screens::{render, Screen, View};
use bunker_panel::{
    spawn, Alert, BoxState, DiskStatus, NetworkInfo, PanelConfig, PanelStatus, SimPanel,
};
use nix::sys::resource::{getrusage, UsageWho};

fn status(sats: u64, alerts: bool) -> PanelStatus {
    PanelStatus {
        state: if alerts {
            BoxState::Warning
        } else {
            BoxState::Healthy
        },
        peers: 12,
        stored_bytes: 1_234_000_000_000,
        hosted_bytes: 340_000_000_000,
        audit_success: Some(0.992),
        sats,
        network: Some(NetworkInfo {
            ip: "192.168.1.23".into(),
            admin_url: "http://192.168.1.23:8080/".into(),
        }),
        disks: vec![DiskStatus {
            name: "sda".into(),
            used_bytes: 1_200_000_000_000,
            capacity_bytes: 2_000_000_000_000,
            missing: false,
        }],
        alerts: if alerts {
            vec![Alert::LightningOffline]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

fn cpu_time() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(u.user_time()) + tv(u.system_time())
}

struct Scenario {
    name: &'static str,
    alerts: bool,
    /// Push a changed snapshot this often (the daemon's cadence); None = never.
    update_every: Option<Duration>,
    /// Let the screen go to sleep (shortened idle times).
    screen_off: bool,
}

fn run(s: &Scenario, secs: u64) -> (f64, u64) {
    let fake = FakeSsd1306::new(DEFAULT_ADDRESS);
    let display = Ssd1306Display::new(fake.clone(), DEFAULT_ADDRESS).expect("fake display");
    let sim = SimPanel::new(None);
    let mut config = PanelConfig::default();
    if s.screen_off {
        config.dim_after = Duration::from_millis(100);
        config.sleep_after = Duration::from_millis(200);
    }
    let handle = spawn(
        config,
        status(0, s.alerts),
        Box::new(display),
        Some(Box::new(sim.led())),
        |_| {},
    )
    .expect("spawn");
    std::thread::sleep(Duration::from_millis(500)); // first frame, settle
    let bytes0 = fake.state().data_bytes;
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let end = t0 + Duration::from_secs(secs);
    let mut sats = 0;
    while Instant::now() < end {
        match s.update_every {
            Some(every) => {
                std::thread::sleep(every.min(end.saturating_duration_since(Instant::now())));
                sats += 1;
                handle.set_status(status(sats, s.alerts));
            }
            None => std::thread::sleep(end.saturating_duration_since(Instant::now())),
        }
    }
    let (cpu, wall) = (cpu_time() - cpu0, t0.elapsed());
    let sent = fake.state().data_bytes - bytes0;
    handle.stop();
    (cpu.as_secs_f64() / wall.as_secs_f64() * 100.0, sent)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported, so ignore args.
    let secs: u64 = std::env::var("BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);

    // Cost of one redraw through the hardware path, to relate CPU to frame rate.
    let fake = FakeSsd1306::new(DEFAULT_ADDRESS);
    let mut display = Ssd1306Display::new(fake, DEFAULT_ADDRESS).expect("fake display");
    let n = 2000u64;
    let cpu0 = cpu_time();
    for i in 0..n {
        let frame = render(&View::of(Screen::Status), &status(i, false));
        display.show(&frame).expect("show");
    }
    let per_frame = (cpu_time() - cpu0) / n as u32;
    let cpu0 = cpu_time();
    for i in 0..n {
        let frame = render(&View::of(Screen::Network), &status(i, false));
        std::hint::black_box(frame);
    }
    let per_network_render = (cpu_time() - cpu0) / n as u32;
    println!("per status-screen redraw (render + ssd1306 flush into fake I2C): {per_frame:?}");
    println!("per network-screen render (QR encode + draw): {per_network_render:?}");

    let scenarios = [
        Scenario {
            name: "healthy, no updates (heartbeat LED only)",
            alerts: false,
            update_every: None,
            screen_off: false,
        },
        Scenario {
            name: "healthy, new snapshot every 1 s",
            alerts: false,
            update_every: Some(Duration::from_secs(1)),
            screen_off: false,
        },
        Scenario {
            name: "alerts (4 Hz LED), new snapshot every 1 s",
            alerts: true,
            update_every: Some(Duration::from_secs(1)),
            screen_off: false,
        },
        Scenario {
            name: "screen asleep, new snapshot every 1 s",
            alerts: false,
            update_every: Some(Duration::from_secs(1)),
            screen_off: true,
        },
    ];
    println!("{secs} s per scenario; CPU of the whole bench process / wall time:");
    let mut worst: f64 = 0.0;
    for s in &scenarios {
        let (pct, sent) = run(s, secs);
        worst = worst.max(pct);
        println!(
            "  {:<45} {:>7.3} % CPU, {:>6} bytes to the OLED",
            s.name, pct, sent
        );
    }
    println!(
        "worst idle scenario: {worst:.3} % of one core (target <= 1 %): {}",
        if worst <= 1.0 { "OK" } else { "OVER" }
    );
}
