//! The 128×64 one-bit picture every screen renders into, and its PNG form.
//!
//! The frame is ours rather than the driver's buffer so the screens run without hardware, and so
//! the simulator, the golden tests and the SSD1306 path all compare the very same pixels.

use std::io::Cursor;

use embedded_graphics::pixelcolor::BinaryColor;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Pixel, Size};

/// Panel width in pixels.
pub const WIDTH: u32 = 128;
/// Panel height in pixels.
pub const HEIGHT: u32 = 64;
const BYTES: usize = (WIDTH * HEIGHT / 8) as usize;
/// The largest PNG scale we write: a 16× frame is already 2048×1024.
pub const MAX_PNG_SCALE: u32 = 16;

/// A one-bit picture of the whole panel; `true` is a lit pixel.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// Row-major, most significant bit first, 16 bytes per row (the layout of a 1-bit PNG row).
    bits: [u8; BYTES],
}

impl Default for Frame {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // One text row per pixel row: readable in a failed assertion.
        writeln!(f, "Frame {WIDTH}x{HEIGHT} ({} lit)", self.lit_count())?;
        for y in 0..HEIGHT {
            let row: String = (0..WIDTH)
                .map(|x| if self.pixel(x, y) { '#' } else { '.' })
                .collect();
            writeln!(f, "{row}")?;
        }
        Ok(())
    }
}

/// Why a PNG could not be written or read as a panel frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PngError {
    /// The PNG codec failed while encoding.
    #[error("encoding the panel frame as PNG failed: {0}")]
    Encode(#[from] png::EncodingError),
    /// The PNG codec failed while decoding.
    #[error("decoding a PNG as a panel frame failed: {0}")]
    Decode(#[from] png::DecodingError),
    /// The PNG has another size than the panel.
    #[error("PNG is {width}x{height}, a panel frame is {WIDTH}x{HEIGHT}")]
    WrongSize {
        /// Width found.
        width: u32,
        /// Height found.
        height: u32,
    },
    /// The PNG is not 8-bit greyscale, the only form we write.
    #[error("PNG has colour type {color:?} at depth {depth:?}; expected 8-bit greyscale")]
    WrongFormat {
        /// Colour type found.
        color: png::ColorType,
        /// Bit depth found.
        depth: png::BitDepth,
    },
    /// The requested scale is out of range.
    #[error("PNG scale {0} is outside 1..={MAX_PNG_SCALE}")]
    BadScale(u32),
}

impl Frame {
    /// A dark frame.
    pub const fn new() -> Self {
        Self { bits: [0; BYTES] }
    }

    /// Whether the pixel is lit; pixels outside the panel read as dark.
    pub fn pixel(&self, x: u32, y: u32) -> bool {
        if x >= WIDTH || y >= HEIGHT {
            return false;
        }
        let (i, mask) = Self::index(x, y);
        self.bits[i] & mask != 0
    }

    /// Lights or clears a pixel; pixels outside the panel are ignored (drawing clips).
    pub fn set_pixel(&mut self, x: u32, y: u32, on: bool) {
        if x >= WIDTH || y >= HEIGHT {
            return;
        }
        let (i, mask) = Self::index(x, y);
        if on {
            self.bits[i] |= mask;
        } else {
            self.bits[i] &= !mask;
        }
    }

    fn index(x: u32, y: u32) -> (usize, u8) {
        ((y * (WIDTH / 8) + x / 8) as usize, 0x80 >> (x % 8))
    }

    /// Number of lit pixels (a blank screen is a bug the tests look for).
    pub fn lit_count(&self) -> u32 {
        self.bits.iter().map(|b| b.count_ones()).sum()
    }

    /// Number of pixels that differ from `other`.
    pub fn diff_count(&self, other: &Frame) -> u32 {
        self.bits
            .iter()
            .zip(other.bits.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    }

    /// The frame in SSD1306 page order: 8 pages of 128 column bytes, bit 0 the top row of the
    /// page. This is what the controller's RAM holds after a full update.
    pub fn to_pages(&self) -> [u8; BYTES] {
        let mut pages = [0u8; BYTES];
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                if self.pixel(x, y) {
                    pages[((y / 8) * WIDTH + x) as usize] |= 1 << (y % 8);
                }
            }
        }
        pages
    }

    /// Encodes the frame as an 8-bit greyscale PNG, each pixel a `scale`×`scale` block; lit
    /// pixels are drawn at `lit_level` (255 for a bright panel, lower to show dimming).
    pub fn to_png(&self, scale: u32, lit_level: u8) -> Result<Vec<u8>, PngError> {
        if scale == 0 || scale > MAX_PNG_SCALE {
            return Err(PngError::BadScale(scale));
        }
        let (w, h) = (WIDTH * scale, HEIGHT * scale);
        let mut data = Vec::with_capacity((w * h) as usize);
        for y in 0..h {
            for x in 0..w {
                data.push(if self.pixel(x / scale, y / scale) {
                    lit_level
                } else {
                    0
                });
            }
        }
        let mut out = Vec::new();
        {
            let mut encoder = png::Encoder::new(&mut out, w, h);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::Eight);
            let mut writer = encoder.write_header()?;
            writer.write_image_data(&data)?;
            writer.finish()?;
        }
        Ok(out)
    }

    /// Reads a 1× PNG written by [`Frame::to_png`]; any non-zero grey level counts as lit.
    pub fn from_png(bytes: &[u8]) -> Result<Frame, PngError> {
        let decoder = png::Decoder::new(Cursor::new(bytes));
        let mut reader = decoder.read_info()?;
        let info = reader.info();
        let (width, height) = (info.width, info.height);
        if (width, height) != (WIDTH, HEIGHT) {
            return Err(PngError::WrongSize { width, height });
        }
        let (color, depth) = (info.color_type, info.bit_depth);
        if color != png::ColorType::Grayscale || depth != png::BitDepth::Eight {
            return Err(PngError::WrongFormat { color, depth });
        }
        // 128×64 at one byte a pixel: the size was checked above, so this cannot be large.
        let mut buf = vec![0u8; (WIDTH * HEIGHT) as usize];
        reader.next_frame(&mut buf)?;
        let mut frame = Frame::new();
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                frame.set_pixel(x, y, buf[(y * WIDTH + x) as usize] != 0);
            }
        }
        Ok(frame)
    }
}

impl OriginDimensions for Frame {
    fn size(&self) -> Size {
        Size::new(WIDTH, HEIGHT)
    }
}

impl DrawTarget for Frame {
    type Color = BinaryColor;
    type Error = core::convert::Infallible;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        for Pixel(p, color) in pixels {
            if p.x >= 0 && p.y >= 0 {
                self.set_pixel(p.x as u32, p.y as u32, color.is_on());
            }
        }
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        self.bits.fill(if color.is_on() { 0xff } else { 0 });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_keeps_every_pixel() {
        let mut f = Frame::new();
        for i in 0..64 {
            f.set_pixel(i * 2, i, true);
            f.set_pixel(127 - i, i, true);
        }
        let back = Frame::from_png(&f.to_png(1, 255).unwrap()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.lit_count(), 128);
    }

    #[test]
    fn scaled_png_is_rejected_as_a_frame() {
        let png = Frame::new().to_png(4, 255).unwrap();
        assert!(matches!(
            Frame::from_png(&png),
            Err(PngError::WrongSize {
                width: 512,
                height: 256
            })
        ));
        assert!(matches!(
            Frame::new().to_png(0, 255),
            Err(PngError::BadScale(0))
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(matches!(
            Frame::from_png(b"not a png"),
            Err(PngError::Decode(_))
        ));
    }

    #[test]
    fn pages_put_row_zero_in_bit_zero() {
        let mut f = Frame::new();
        f.set_pixel(5, 0, true);
        f.set_pixel(5, 9, true);
        let p = f.to_pages();
        assert_eq!(p[5], 0b1);
        assert_eq!(p[128 + 5], 0b10);
        f.set_pixel(500, 500, true); // clipped, no panic
        assert_eq!(f.lit_count(), 2);
    }
}
