//! A fake SSD1306 on a fake I2C bus: decodes the controller's command and data stream into its
//! display RAM and shows what the glass would show.
//!
//! It implements embedded-hal 1.0's `I2c`, so [`crate::display::Ssd1306Display`] (the code that
//! runs on the box) drives it unchanged. The decoder follows the SSD1306 datasheet, not the
//! driver crate: control bytes (Co, D/C#), multi-byte commands split across writes, the three
//! addressing modes with their column/page windows, segment remap, COM scan direction and COM
//! pin layout, start line, charge pump, display on/off, invert and contrast. A command it does
//! not know is recorded rather than ignored, so a test can insist there were none.
//!
//! Mounting model: like the common 0.96" modules, the glass is mounted so that segment remap on
//! (0xA1) and COM scan reversed (0xC8) show RAM column 0 / row 0 at the top-left.

use std::sync::{Arc, Mutex, MutexGuard};

use embedded_hal::i2c::{ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation};

use crate::frame::{Frame, HEIGHT, WIDTH};

const PAGES: usize = (HEIGHT / 8) as usize;
const COLS: usize = WIDTH as usize;

/// The fake bus's error: what a real bus would say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FakeI2cError(pub ErrorKind);

impl embedded_hal::i2c::Error for FakeI2cError {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

/// The controller's state, as decoded so far.
#[derive(Debug, Clone)]
pub struct Ssd1306State {
    /// Display RAM: 8 pages × 128 columns, bit 0 the top row of a page.
    pub ram: [[u8; COLS]; PAGES],
    /// 0xAF seen last (vs 0xAE).
    pub display_on: bool,
    /// Contrast (0x81).
    pub contrast: u8,
    /// 0xA7 (inverse) vs 0xA6.
    pub inverted: bool,
    /// 0xA5 (all pixels on) vs 0xA4.
    pub entire_on: bool,
    /// 0x8D with 0x14 enables the internal charge pump; without it the glass stays dark.
    pub charge_pump: bool,
    /// Multiplex ratio + 1 (rows driven).
    pub mux_rows: u8,
    /// 0x40..=0x7F.
    pub start_line: u8,
    /// 0xD3.
    pub display_offset: u8,
    /// 0xA1 vs 0xA0.
    pub segment_remap: bool,
    /// 0xC8 vs 0xC0.
    pub com_reversed: bool,
    /// 0xDA argument; 0x12 (alternative COM pins) is what a 128×64 glass is wired for.
    pub com_pins: u8,
    /// 0x20 argument: 0 horizontal, 1 vertical, 2 page.
    pub addressing_mode: u8,
    /// Column window (0x21).
    pub col_window: (u8, u8),
    /// Page window (0x22).
    pub page_window: (u8, u8),
    /// Write pointer.
    pub col: u8,
    /// Write pointer.
    pub page: u8,
    /// Commands the decoder does not know (first byte of each).
    pub unknown_commands: Vec<u8>,
    /// I2C write transactions seen.
    pub writes: u64,
    /// Display data bytes written.
    pub data_bytes: u64,
    /// A command whose argument bytes have not all arrived yet.
    pending: Vec<u8>,
}

impl Default for Ssd1306State {
    fn default() -> Self {
        // Reset values from the datasheet.
        Self {
            ram: [[0; COLS]; PAGES],
            display_on: false,
            contrast: 0x7F,
            inverted: false,
            entire_on: false,
            charge_pump: false,
            mux_rows: 64,
            start_line: 0,
            display_offset: 0,
            segment_remap: false,
            com_reversed: false,
            com_pins: 0x12,
            addressing_mode: 2,
            col_window: (0, 127),
            page_window: (0, 7),
            col: 0,
            page: 0,
            unknown_commands: Vec::new(),
            writes: 0,
            data_bytes: 0,
            pending: Vec::new(),
        }
    }
}

impl Ssd1306State {
    /// What the glass shows now.
    pub fn screen(&self) -> Frame {
        let mut frame = Frame::new();
        if !self.display_on || !self.charge_pump {
            return frame;
        }
        for y in 0..HEIGHT {
            // COM line driving physical row y, then the RAM row that line shows.
            let com = if self.com_reversed { y } else { HEIGHT - 1 - y };
            if com >= u32::from(self.mux_rows) {
                continue;
            }
            let com = if self.com_pins & 0x10 == 0 {
                // Sequential COM pins on a glass wired for the alternative layout: rows
                // interleave, the classic symptom of a wrong 0xDA setting.
                if com % 2 == 0 {
                    com / 2
                } else {
                    32 + com / 2
                }
            } else {
                com
            };
            let row = (com + u32::from(self.start_line) + u32::from(self.display_offset)) % HEIGHT;
            for x in 0..WIDTH {
                let col = if self.segment_remap { x } else { WIDTH - 1 - x };
                let bit = self.ram[(row / 8) as usize][col as usize] >> (row % 8) & 1 == 1;
                let lit = (bit || self.entire_on) != self.inverted;
                frame.set_pixel(x, y, lit);
            }
        }
        frame
    }

    fn command_byte(&mut self, b: u8) {
        self.pending.push(b);
        let first = self.pending[0];
        let args = match first {
            0x81 | 0x8D | 0x20 | 0xA8 | 0xD3 | 0xD5 | 0xD9 | 0xDA | 0xDB | 0xAD => 1,
            0x21 | 0x22 | 0xA3 => 2,
            0x29 | 0x2A => 5,
            0x26 | 0x27 => 6,
            _ => 0,
        };
        if self.pending.len() < 1 + args {
            return;
        }
        let cmd = std::mem::take(&mut self.pending);
        match cmd[0] {
            0x00..=0x0F => self.col = (self.col & 0xF0) | (cmd[0] & 0x0F),
            0x10..=0x1F => self.col = (self.col & 0x0F) | ((cmd[0] & 0x07) << 4),
            0x20 => self.addressing_mode = cmd[1] & 0x03,
            0x21 => {
                self.col_window = (cmd[1] & 0x7F, cmd[2] & 0x7F);
                self.col = self.col_window.0;
            }
            0x22 => {
                self.page_window = (cmd[1] & 0x07, cmd[2] & 0x07);
                self.page = self.page_window.0;
            }
            0x26 | 0x27 | 0x29 | 0x2A | 0x2E | 0x2F | 0xA3 => {} // scrolling: not used
            0x40..=0x7F => self.start_line = cmd[0] & 0x3F,
            0x81 => self.contrast = cmd[1],
            0x8D => self.charge_pump = cmd[1] & 0x04 != 0,
            0xA0 | 0xA1 => self.segment_remap = cmd[0] & 1 == 1,
            0xA4 | 0xA5 => self.entire_on = cmd[0] & 1 == 1,
            0xA6 | 0xA7 => self.inverted = cmd[0] & 1 == 1,
            0xA8 => self.mux_rows = (cmd[1] & 0x3F) + 1,
            0xAD | 0xD5 | 0xD9 | 0xDB | 0xE3 => {} // timing and analogue settings
            0xAE | 0xAF => self.display_on = cmd[0] & 1 == 1,
            0xB0..=0xB7 => self.page = cmd[0] & 0x07,
            0xC0 | 0xC8 => self.com_reversed = cmd[0] & 0x08 != 0,
            0xD3 => self.display_offset = cmd[1] & 0x3F,
            0xDA => self.com_pins = cmd[1],
            other => self.unknown_commands.push(other),
        }
    }

    fn data_byte(&mut self, b: u8) {
        self.data_bytes += 1;
        self.ram[usize::from(self.page & 0x07)][usize::from(self.col & 0x7F)] = b;
        let (c0, c1) = self.col_window;
        let (p0, p1) = self.page_window;
        match self.addressing_mode {
            0 => {
                if self.col >= c1 {
                    self.col = c0;
                    self.page = if self.page >= p1 { p0 } else { self.page + 1 };
                } else {
                    self.col += 1;
                }
            }
            1 => {
                if self.page >= p1 {
                    self.page = p0;
                    self.col = if self.col >= c1 { c0 } else { self.col + 1 };
                } else {
                    self.page += 1;
                }
            }
            // Page mode: the column wraps within the page.
            _ => self.col = (self.col + 1) & 0x7F,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.writes += 1;
        let mut i = 0;
        while i < bytes.len() {
            let control = bytes[i];
            i += 1;
            let data = control & 0x40 != 0;
            let single = control & 0x80 != 0;
            let end = if single {
                (i + 1).min(bytes.len())
            } else {
                bytes.len()
            };
            for &b in &bytes[i..end] {
                if data {
                    self.data_byte(b);
                } else {
                    self.command_byte(b);
                }
            }
            i = end;
        }
    }
}

/// The fake device on its bus; clones share one controller, so a test keeps a handle while the
/// display code owns another.
#[derive(Debug, Clone)]
pub struct FakeSsd1306 {
    address: u8,
    state: Arc<Mutex<Ssd1306State>>,
}

impl FakeSsd1306 {
    /// A controller in its reset state answering at `address`.
    pub fn new(address: u8) -> Self {
        Self {
            address,
            state: Arc::new(Mutex::new(Ssd1306State::default())),
        }
    }

    /// The decoded state (a poisoned lock still yields the state: it is only test data).
    pub fn state(&self) -> MutexGuard<'_, Ssd1306State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What the glass shows now.
    pub fn screen(&self) -> Frame {
        self.state().screen()
    }
}

impl ErrorType for FakeSsd1306 {
    type Error = FakeI2cError;
}

impl I2c for FakeSsd1306 {
    fn transaction(
        &mut self,
        address: u8,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        if address != self.address {
            return Err(FakeI2cError(ErrorKind::NoAcknowledge(
                NoAcknowledgeSource::Address,
            )));
        }
        let mut state = self.state();
        for op in operations {
            match op {
                Operation::Write(bytes) => state.write(bytes),
                // The I2C SSD1306 answers reads with its status byte: bit 6 set = display off.
                Operation::Read(buf) => buf.fill(if state.display_on { 0x00 } else { 0x40 }),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_hand_written_stream() {
        let mut dev = FakeSsd1306::new(0x3C);
        // Init the essentials, then horizontal mode, window col 10..=11, pages 2..=3.
        dev.write(0x3C, &[0x00, 0x8D, 0x14, 0xA1, 0xC8, 0xDA, 0x12, 0xAF])
            .unwrap();
        dev.write(0x3C, &[0x00, 0x20, 0x00, 0x21, 10, 11, 0x22])
            .unwrap();
        dev.write(0x3C, &[0x00, 2, 3]).unwrap(); // arguments in a second write
        dev.write(0x3C, &[0x40, 0x01, 0x80, 0xFF, 0x00]).unwrap();
        let s = dev.state();
        assert_eq!(s.ram[2][10], 0x01);
        assert_eq!(s.ram[2][11], 0x80);
        assert_eq!(s.ram[3][10], 0xFF);
        assert_eq!(s.ram[3][11], 0x00);
        assert!(s.unknown_commands.is_empty());
        let screen = s.screen();
        assert!(screen.pixel(10, 16)); // page 2 bit 0
        assert!(screen.pixel(11, 23)); // page 2 bit 7
        assert!((24..32).all(|y| screen.pixel(10, y)));
        assert_eq!(screen.lit_count(), 10);
    }

    #[test]
    fn wrong_address_is_not_acknowledged_and_dark_without_charge_pump() {
        let mut dev = FakeSsd1306::new(0x3C);
        let err = dev.write(0x3D, &[0x00, 0xAF]).unwrap_err();
        assert_eq!(
            err.0,
            ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address)
        );
        dev.write(0x3C, &[0x00, 0xAF, 0xA5]).unwrap();
        assert_eq!(dev.screen().lit_count(), 0, "no charge pump, no light");
        dev.write(0x3C, &[0x00, 0x8D, 0x14]).unwrap();
        assert_eq!(dev.screen().lit_count(), WIDTH * HEIGHT);
    }

    #[test]
    fn co_bit_and_unknown_commands() {
        let mut dev = FakeSsd1306::new(0x3C);
        // Co=1: one command byte, then a data control byte with one data byte.
        dev.write(0x3C, &[0x80, 0xAF, 0xC0, 0x42]).unwrap();
        dev.write(0x3C, &[0x00, 0xFE]).unwrap();
        let s = dev.state();
        assert!(s.display_on);
        assert_eq!(s.ram[0][0], 0x42);
        assert_eq!(s.unknown_commands, vec![0xFE]);
    }
}
