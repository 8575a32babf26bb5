//! The panel's button and screen-care rules, driven with synthetic timestamps.

mod support;

use std::time::Duration;

use bunker_panel::screens::{Screen, ShutdownStage};
use bunker_panel::{Alert, Panel, PanelAction, PanelConfig, ScreenPower};
use support::fixtures;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Presses button `index` at `t` for `hold`, with a little contact bounce, ticking as the
/// loop would; returns the actions and the time after release.
fn press(
    panel: &mut Panel,
    index: usize,
    t: Duration,
    hold: Duration,
) -> (Vec<PanelAction>, Duration) {
    let mut actions = panel.button_edge(index, true, t);
    actions.extend(panel.button_edge(index, false, t + ms(2)));
    actions.extend(panel.button_edge(index, true, t + ms(4)));
    let mut now = t + ms(4);
    let release = t + hold;
    while let Some(d) = panel.next_deadline(now).filter(|d| *d < release) {
        now = d;
        actions.extend(panel.tick(now));
    }
    actions.extend(panel.button_edge(index, false, release));
    let end = release + ms(100);
    actions.extend(panel.tick(end));
    (actions, end)
}

fn short(panel: &mut Panel, index: usize, t: Duration) -> (Vec<PanelAction>, Duration) {
    press(panel, index, t, ms(150))
}

fn long(panel: &mut Panel, index: usize, t: Duration) -> (Vec<PanelAction>, Duration) {
    press(panel, index, t, ms(2000))
}

#[test]
fn short_presses_walk_every_screen_and_wrap() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    let mut seen = vec![p.view().screen];
    let mut t = ms(1000);
    for _ in 0..5 {
        let (actions, end) = short(&mut p, 0, t);
        assert!(actions.is_empty());
        seen.push(p.view().screen);
        t = end;
    }
    assert_eq!(
        seen,
        vec![
            Screen::Status,
            Screen::Alerts,
            Screen::Network,
            Screen::Disks,
            Screen::Shutdown,
            Screen::Status
        ]
    );
}

#[test]
fn second_button_walks_back() {
    let config = PanelConfig {
        buttons: 2,
        ..Default::default()
    };
    let mut p = Panel::new(config, fixtures::healthy(), ms(0));
    short(&mut p, 1, ms(1000));
    assert_eq!(p.view().screen, Screen::Shutdown);
}

#[test]
fn setup_and_recovery_screens_appear_only_while_they_run() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::setup(), ms(0));
    short(&mut p, 0, ms(1000));
    assert_eq!(p.view().screen, Screen::Setup);
    // Setup finishes while its screen is up: back to the status screen.
    p.set_status(fixtures::healthy(), ms(2000));
    assert_eq!(p.view().screen, Screen::Status);
}

/// The local API sends whole presses at once, with future timestamps: a press
/// that begins after another button's release must act on the screen that
/// release led to, not count as held through the change.
#[test]
fn presses_sent_ahead_of_time_act_in_the_order_they_happen() {
    let config = PanelConfig { buttons: 2, ..Default::default() };
    let mut p = Panel::new(config, fixtures::healthy(), ms(0));
    let t = ms(1000);
    // Back (button 1) from 1.0 s to 1.1 s, then select (button 0) held
    // from 1.15 s to 3.15 s: all four edges delivered before any tick.
    let mut actions = p.button_edge(1, true, t);
    actions.extend(p.button_edge(1, false, t + ms(100)));
    actions.extend(p.button_edge(0, true, t + ms(150)));
    actions.extend(p.button_edge(0, false, t + ms(2150)));
    actions.extend(p.tick(t + ms(2300)));
    assert!(actions.is_empty());
    assert_eq!(p.view().screen, Screen::Shutdown);
    assert_eq!(p.view().shutdown, ShutdownStage::Confirming, "the long press on the shutdown screen counts");
}

#[test]
fn shutdown_needs_a_long_press_and_a_confirmation() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    let mut t = ms(1000);
    while p.view().screen != Screen::Shutdown {
        t = short(&mut p, 0, t).1;
    }
    let (actions, t) = long(&mut p, 0, t);
    assert!(actions.is_empty(), "one long press must not shut down");
    assert_eq!(p.view().shutdown, ShutdownStage::Confirming);
    let (actions, _) = long(&mut p, 0, t + ms(500));
    assert_eq!(actions, vec![PanelAction::Shutdown]);
    assert_eq!(p.view().shutdown, ShutdownStage::Idle);
}

#[test]
fn short_press_or_silence_cancels_the_shutdown_question() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    let mut t = ms(1000);
    while p.view().screen != Screen::Shutdown {
        t = short(&mut p, 0, t).1;
    }
    let (_, t) = long(&mut p, 0, t);
    let (actions, t) = short(&mut p, 0, t);
    assert!(actions.is_empty());
    assert_eq!(
        p.view().screen,
        Screen::Shutdown,
        "cancel stays on the screen"
    );
    assert_eq!(p.view().shutdown, ShutdownStage::Idle);

    let (_, t) = long(&mut p, 0, t);
    assert_eq!(p.view().shutdown, ShutdownStage::Confirming);
    let deadline = p.next_deadline(t).unwrap();
    assert!(deadline <= t + Duration::from_secs(10));
    p.tick(t + Duration::from_secs(11));
    assert_eq!(p.view().shutdown, ShutdownStage::Idle);
    // A long press after the time-out asks again rather than shutting down.
    let (actions, _) = long(&mut p, 0, t + Duration::from_secs(12));
    assert!(actions.is_empty());
}

#[test]
fn long_press_turns_alert_pages() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::warning(), ms(0));
    assert_eq!(p.view().screen, Screen::Status);
    let t = short(&mut p, 0, ms(1000)).1;
    assert_eq!(p.view().screen, Screen::Alerts);
    let t = long(&mut p, 0, t).1;
    assert_eq!(p.view().page, 1);
    long(&mut p, 0, t);
    assert_eq!(p.view().page, 0, "pages wrap");
}

#[test]
fn press_held_through_a_screen_change_does_nothing_on_the_new_screen() {
    // On the shutdown screen, the owner starts a long press; an alert arrives mid-press and
    // the panel switches to the alerts screen. The long press must not turn the alert page,
    // and certainly not arm the shutdown.
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    let mut t = ms(1000);
    while p.view().screen != Screen::Shutdown {
        t = short(&mut p, 0, t).1;
    }
    p.button_edge(0, true, t);
    p.tick(t + ms(100));
    p.set_status(fixtures::warning(), t + ms(500));
    assert_eq!(p.view().screen, Screen::Alerts);
    let actions = p.tick(t + ms(2000));
    assert!(actions.is_empty());
    p.button_edge(0, false, t + ms(2500));
    p.tick(t + ms(3000));
    assert_eq!(p.view().screen, Screen::Alerts);
    assert_eq!(p.view().page, 0);
    assert_eq!(p.view().shutdown, ShutdownStage::Idle);

    // Same for a short press released after the change: no screen step.
    let t = t + ms(4000);
    p.button_edge(0, true, t);
    p.tick(t + ms(50));
    let mut s = fixtures::warning();
    s.alerts.push(Alert::Other("new".into()));
    p.set_status(s, t + ms(80));
    assert_eq!(p.view().screen, Screen::Alerts);
    p.button_edge(0, false, t + ms(200));
    p.tick(t + ms(300));
    assert_eq!(p.view().screen, Screen::Alerts);
    // The next press works normally again.
    short(&mut p, 0, t + ms(1000));
    assert_eq!(p.view().screen, Screen::Network);
}

#[test]
fn screen_dims_after_a_minute_and_sleeps_after_five() {
    let p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    assert_eq!(p.power(Duration::from_secs(59)), ScreenPower::On);
    assert_eq!(
        p.next_deadline(Duration::from_secs(1)),
        Some(Duration::from_secs(60))
    );
    assert_eq!(p.power(Duration::from_secs(60)), ScreenPower::Dim);
    assert_eq!(
        p.next_deadline(Duration::from_secs(61)),
        Some(Duration::from_secs(300))
    );
    assert_eq!(p.power(Duration::from_secs(300)), ScreenPower::Off);
    assert_eq!(
        p.next_deadline(Duration::from_secs(301)),
        None,
        "nothing to wake for"
    );
}

#[test]
fn a_press_on_a_dark_screen_only_wakes_it() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    let t = Duration::from_secs(400);
    assert_eq!(p.power(t), ScreenPower::Off);
    let (_, t) = short(&mut p, 0, t);
    assert_eq!(p.power(t), ScreenPower::On);
    assert_eq!(
        p.view().screen,
        Screen::Status,
        "the waking press must not change screens"
    );
    short(&mut p, 0, t);
    assert_eq!(p.view().screen, Screen::Alerts);
}

#[test]
fn a_press_on_a_dimmed_screen_wakes_it_and_acts() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    let t = Duration::from_secs(90);
    assert_eq!(p.power(t), ScreenPower::Dim);
    let (_, t) = short(&mut p, 0, t);
    assert_eq!(p.power(t), ScreenPower::On);
    assert_eq!(p.view().screen, Screen::Alerts);
}

#[test]
fn a_new_alert_wakes_the_screen_but_an_old_one_does_not() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::warning(), ms(0));
    let t = Duration::from_secs(600);
    assert_eq!(p.power(t), ScreenPower::Off);
    p.set_status(fixtures::warning(), t);
    assert_eq!(
        p.power(t),
        ScreenPower::Off,
        "same alerts again are not news"
    );
    let mut s = fixtures::warning();
    s.alerts.push(Alert::LightningOffline);
    s.alerts
        .push(Alert::Other("Disk sdc is failing SMART checks".into()));
    p.set_status(s, t);
    assert_eq!(p.power(t), ScreenPower::On);
    assert_eq!(p.view().screen, Screen::Alerts);
}

#[test]
fn shutting_down_shows_the_shutdown_screen_lit() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    p.set_status(fixtures::stopping(), Duration::from_secs(1000));
    assert_eq!(p.view().screen, Screen::Shutdown);
    assert_eq!(p.power(Duration::from_secs(2000)), ScreenPower::On);
}

#[test]
fn unknown_button_index_is_ignored() {
    let mut p = Panel::new(PanelConfig::default(), fixtures::healthy(), ms(0));
    assert!(p.button_edge(7, true, ms(10)).is_empty());
    assert!(p.tick(ms(5000)).is_empty());
}

#[test]
fn screens_are_found_by_name_and_bad_names_are_refused() {
    for s in Screen::ALL {
        assert_eq!(Screen::from_name(s.name()), Ok(s));
    }
    let err = Screen::from_name("settings").unwrap_err();
    assert!(err.to_string().contains("\"settings\""), "{err}");
}
