//! The code that drives the OLED on the box, run against a fake SSD1306 that decodes the I2C
//! command stream back into pixels: the glass must show exactly the simulator's frame.

mod support;

use bunker_panel::display::{DisplayError, PanelDisplay, Ssd1306Display, DEFAULT_ADDRESS};
use bunker_panel::fake_ssd1306::FakeSsd1306;
use bunker_panel::screens::render;
use bunker_panel::{Frame, ScreenPower};
use support::fixtures;

#[test]
fn every_golden_frame_reaches_the_glass_pixel_for_pixel() {
    let fake = FakeSsd1306::new(DEFAULT_ADDRESS);
    let mut display = Ssd1306Display::new(fake.clone(), DEFAULT_ADDRESS).unwrap();
    assert_eq!(
        fake.screen().lit_count(),
        0,
        "init must clear power-on noise"
    );
    // One display, frame after frame: the incremental (dirty-region) updates must add up.
    for (name, status, view) in fixtures::cases() {
        let frame = render(&view, &status);
        display.show(&frame).unwrap();
        let glass = fake.screen();
        assert_eq!(
            glass.diff_count(&frame),
            0,
            "{name}: glass differs\nglass:\n{glass:?}\nwanted:\n{frame:?}"
        );
        // And the golden PNG the simulator path is pinned to.
        let golden = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("tests/golden/{name}.png")),
        )
        .unwrap();
        assert_eq!(Frame::from_png(&golden).unwrap(), glass, "{name}");
    }
    let state = fake.state();
    assert!(
        state.unknown_commands.is_empty(),
        "{:x?}",
        state.unknown_commands
    );
    assert!(state.charge_pump && state.display_on);
    assert_eq!(state.com_pins, 0x12);
}

#[test]
fn unchanged_frame_sends_no_pixels_and_small_change_sends_little() {
    let fake = FakeSsd1306::new(DEFAULT_ADDRESS);
    let mut display = Ssd1306Display::new(fake.clone(), DEFAULT_ADDRESS).unwrap();
    let (_, status, view) = fixtures::cases().remove(0);
    let frame = render(&view, &status);
    display.show(&frame).unwrap();
    let before = fake.state().data_bytes;
    assert!(before >= 1024, "first frame is a full update");
    display.show(&frame).unwrap();
    assert_eq!(fake.state().data_bytes, before, "same frame, nothing sent");
    let mut changed = frame.clone();
    changed.set_pixel(3, 3, !frame.pixel(3, 3));
    display.show(&changed).unwrap();
    let sent = fake.state().data_bytes - before;
    assert!(sent <= 8, "one pixel changed, {sent} bytes sent");
    assert_eq!(fake.screen(), changed);
}

#[test]
fn dimming_and_sleep_reach_the_controller() {
    let fake = FakeSsd1306::new(DEFAULT_ADDRESS);
    let mut display = Ssd1306Display::new(fake.clone(), DEFAULT_ADDRESS).unwrap();
    let (_, status, view) = fixtures::cases().remove(0);
    let frame = render(&view, &status);
    display.show(&frame).unwrap();
    let normal = fake.state().contrast;
    display.set_power(ScreenPower::Dim).unwrap();
    assert!(fake.state().contrast < normal);
    assert_eq!(fake.screen(), frame, "dimmed, not blank");
    display.set_power(ScreenPower::Off).unwrap();
    assert!(!fake.state().display_on);
    assert_eq!(fake.screen().lit_count(), 0);
    display.set_power(ScreenPower::On).unwrap();
    assert_eq!(fake.state().contrast, normal);
    assert_eq!(fake.screen(), frame, "RAM kept while off");
}

#[test]
fn absent_panel_is_a_clear_error() {
    let fake = FakeSsd1306::new(0x3D);
    let err = Ssd1306Display::new(fake, DEFAULT_ADDRESS).unwrap_err();
    assert!(
        matches!(err, DisplayError::NotFound { address: 0x3C, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("0x3c"), "{err}");
}
