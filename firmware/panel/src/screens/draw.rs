//! Drawing helpers shared by the screens: text in the panel's few fonts, the header, bars.

use embedded_graphics::mono_font::{ascii, MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{Line, PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};

use crate::frame::{Frame, WIDTH};

/// The large font of the state word and the pairing code.
pub const BIG: &MonoFont<'static> = &ascii::FONT_9X15_BOLD;
/// Very large: the pairing code.
pub const HUGE: &MonoFont<'static> = &ascii::FONT_10X20;
/// Body text.
pub const BODY: &MonoFont<'static> = &ascii::FONT_6X10;
/// Dense text: alerts, disk names.
pub const SMALL: &MonoFont<'static> = &ascii::FONT_5X8;
/// Smallest legible: URLs beside the QR code.
pub const TINY: &MonoFont<'static> = &ascii::FONT_4X6;

/// Width of `text` in `font`, in pixels.
pub fn text_width(text: &str, font: &MonoFont<'_>) -> u32 {
    text.chars().count() as u32 * (font.character_size.width + font.character_spacing)
}

/// How many characters of `font` fit in `px` pixels.
pub fn columns(px: u32, font: &MonoFont<'_>) -> usize {
    (px / (font.character_size.width + font.character_spacing)) as usize
}

/// Draws `text` with its top-left corner at (`x`, `y`).
pub fn text(frame: &mut Frame, s: &str, x: i32, y: i32, font: &MonoFont<'_>) {
    let style = MonoTextStyle::new(font, BinaryColor::On);
    // Drawing into a Frame cannot fail (its error type is Infallible).
    let _ = Text::with_baseline(s, Point::new(x, y), style, Baseline::Top).draw(frame);
}

/// Draws dark `text` on a lit box: the panel's way to make one thing stand out.
pub fn text_inverted(frame: &mut Frame, s: &str, x: i32, y: i32, font: &MonoFont<'_>) {
    let w = text_width(s, font) + 2;
    fill(frame, x - 1, y - 1, w, font.character_size.height + 1, true);
    let style = MonoTextStyle::new(font, BinaryColor::Off);
    let _ = Text::with_baseline(s, Point::new(x, y), style, Baseline::Top).draw(frame);
}

/// Draws `text` so that it ends at `right` (exclusive).
pub fn text_right(frame: &mut Frame, s: &str, right: i32, y: i32, font: &MonoFont<'_>) {
    let x = right - text_width(s, font) as i32;
    text(frame, s, x, y, font);
}

/// Draws `text` centred on the panel.
pub fn text_centered(frame: &mut Frame, s: &str, y: i32, font: &MonoFont<'_>) {
    let x = (WIDTH as i32 - text_width(s, font) as i32) / 2;
    text(frame, s, x.max(0), y, font);
}

/// Fills a rectangle with lit or dark pixels.
pub fn fill(frame: &mut Frame, x: i32, y: i32, w: u32, h: u32, on: bool) {
    let color = if on {
        BinaryColor::On
    } else {
        BinaryColor::Off
    };
    let _ = Rectangle::new(Point::new(x, y), Size::new(w, h))
        .into_styled(PrimitiveStyle::with_fill(color))
        .draw(frame);
}

/// A one-pixel outline.
pub fn outline(frame: &mut Frame, x: i32, y: i32, w: u32, h: u32) {
    let _ = Rectangle::new(Point::new(x, y), Size::new(w, h))
        .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
        .draw(frame);
}

/// The title row every screen but the status screen starts with: title on the left, a small
/// position marker (`3/6`) on the right, a rule below.
pub fn header(frame: &mut Frame, title: &str, position: Option<(usize, usize)>) {
    text(frame, title, 0, 0, BODY);
    if let Some((index, count)) = position {
        text_right(
            frame,
            &format!("{}/{}", index + 1, count),
            WIDTH as i32,
            1,
            SMALL,
        );
    }
    let _ = Line::new(Point::new(0, 10), Point::new(WIDTH as i32 - 1, 10))
        .into_styled(PrimitiveStyle::with_stroke(BinaryColor::On, 1))
        .draw(frame);
}

/// A horizontal gauge: outline plus a fill proportional to `per_mille` (0..=1000).
pub fn bar(frame: &mut Frame, x: i32, y: i32, w: u32, h: u32, per_mille: u32) {
    outline(frame, x, y, w, h);
    let inner = w.saturating_sub(4);
    let filled = (u64::from(inner) * u64::from(per_mille.min(1000)) / 1000) as u32;
    if filled > 0 {
        fill(frame, x + 2, y + 2, filled, h.saturating_sub(4), true);
    }
}
