//! The admin URL as a QR code that a phone camera reads off the 64-pixel-high panel.
//!
//! A phone needs modules of at least 2 pixels on a 0.96" panel, so the code must stay small:
//! error correction Low (boosted when it costs no size), and a URL made only of scheme, host and
//! port is upper-cased so it fits the denser alphanumeric mode (scheme and host are
//! case-insensitive, so `HTTP://192.168.1.23:8080/` opens the same page). The quiet zone is lit
//! (the panel's dark border would read as modules); it is 2 modules where that keeps 2-pixel
//! modules, never less than 1. Not the 4 of the standard: phone readers cope with 2, and the
//! pixels saved leave room for the IP address in the body font beside the code.

use embedded_graphics::prelude::Point;
use qrcodegen::{QrCode, QrCodeEcc, QrSegment, Version};

use crate::frame::{Frame, HEIGHT};

/// The largest QR version that still fits the panel's height at 1 pixel per module
/// (version 11 is 61 modules, plus a 1-module quiet zone on each side = 63 pixels).
const MAX_VERSION: u8 = 11;

/// Why a URL cannot be shown as a QR code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum QrError {
    /// The URL needs a code larger than the panel can show.
    #[error("URL of {len} bytes is too long for a QR code on a 64-pixel panel")]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Nothing to encode.
    #[error("the admin URL is empty")]
    Empty,
}

/// A QR code laid out for the panel.
pub struct QrImage {
    code: QrCode,
    /// Pixels per module.
    pub module_px: u32,
    /// Quiet zone width in modules.
    pub quiet_modules: u32,
}

impl std::fmt::Debug for QrImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QrImage")
            .field("version", &self.code.version().value())
            .field("modules", &self.code.size())
            .field("module_px", &self.module_px)
            .field("quiet_modules", &self.quiet_modules)
            .finish()
    }
}

impl QrImage {
    /// Encodes `url` in the smallest code that holds it and picks the largest module size that
    /// fits `max_side` pixels (at most the panel height).
    pub fn for_url(url: &str, max_side: u32) -> Result<QrImage, QrError> {
        if url.is_empty() {
            return Err(QrError::Empty);
        }
        let max_side = max_side.min(HEIGHT);
        let upper = url.to_ascii_uppercase();
        let segments = if only_case_insensitive_parts(url) && QrSegment::is_alphanumeric(&upper) {
            vec![QrSegment::make_alphanumeric(&upper)]
        } else {
            vec![QrSegment::make_bytes(url.as_bytes())]
        };
        let code = QrCode::encode_segments_advanced(
            &segments,
            QrCodeEcc::Low,
            Version::MIN,
            Version::new(MAX_VERSION),
            None,
            true,
        )
        .map_err(|_| QrError::TooLong { len: url.len() })?;
        let size = code.size() as u32;
        for module_px in (1..=4u32).rev() {
            for quiet_modules in (1..=2u32).rev() {
                if (size + 2 * quiet_modules) * module_px <= max_side {
                    // Prefer 2-pixel modules with a thin quiet zone over 1-pixel modules.
                    return Ok(QrImage {
                        code,
                        module_px,
                        quiet_modules,
                    });
                }
            }
        }
        Err(QrError::TooLong { len: url.len() })
    }

    /// QR version (1..=40) of the code.
    pub fn version(&self) -> u8 {
        self.code.version().value()
    }

    /// Side of the drawn square in pixels, quiet zone included.
    pub fn side_px(&self) -> u32 {
        (self.code.size() as u32 + 2 * self.quiet_modules) * self.module_px
    }

    /// Draws the code with its quiet zone, top-left corner at `at`.
    pub fn draw(&self, frame: &mut Frame, at: Point) {
        let (x0, y0) = (at.x.max(0) as u32, at.y.max(0) as u32);
        let side = self.side_px();
        for y in 0..side {
            for x in 0..side {
                let mx = (x / self.module_px) as i32 - self.quiet_modules as i32;
                let my = (y / self.module_px) as i32 - self.quiet_modules as i32;
                // get_module answers false (light) outside the code: that is the quiet zone.
                let dark = self.code.get_module(mx, my);
                frame.set_pixel(x0 + x, y0 + y, !dark);
            }
        }
    }
}

/// True when the URL has no path, query or fragment beyond a lone `/`, i.e. every character of
/// it may change case without changing where it leads.
fn only_case_insensitive_parts(url: &str) -> bool {
    let Some((_, rest)) = url.split_once("://") else {
        return false;
    };
    match rest.find('/') {
        None => true,
        Some(i) => &rest[i..] == "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_urls_get_two_pixel_modules() {
        for url in [
            "http://192.168.1.23:8080/",
            "http://192.168.100.200:8080/",
            "http://bunker.local/",
            "https://bunker-7f3a.local:8443/",
        ] {
            let qr = QrImage::for_url(url, 64).unwrap();
            assert!(qr.module_px >= 2, "{url}: {qr:?}");
            assert!(qr.side_px() <= 64, "{url}: {qr:?}");
        }
    }

    #[test]
    fn paths_keep_their_case() {
        assert!(only_case_insensitive_parts("http://a.b:1/"));
        assert!(only_case_insensitive_parts("http://a.b:1"));
        assert!(!only_case_insensitive_parts("http://a.b/Setup?k=X"));
        assert!(!only_case_insensitive_parts("a.b"));
    }

    #[test]
    fn too_long_is_an_error() {
        let url = format!("http://x/{}", "a".repeat(400));
        assert_eq!(
            QrImage::for_url(&url, 64).unwrap_err(),
            QrError::TooLong { len: url.len() }
        );
        assert_eq!(QrImage::for_url("", 64).unwrap_err(), QrError::Empty);
    }
}
