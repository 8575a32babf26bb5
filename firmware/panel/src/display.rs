//! Where frames go: the [`PanelDisplay`] and [`StatusLed`] traits, and the SSD1306 over I2C.
//!
//! [`Ssd1306Display`] is generic over embedded-hal 1.0's `I2c`, so the exact code that drives the
//! OLED on the box (rppal's I2C) also runs in tests against [`crate::fake_ssd1306`], which
//! decodes the controller's command stream back into pixels.

use embedded_hal::i2c::{Error as _, I2c};
use ssd1306::mode::{BufferedGraphicsMode, DisplayConfig};
use ssd1306::prelude::{Brightness, DisplayRotation, DisplaySize128x64, I2CInterface};
use ssd1306::{I2CDisplayInterface, Ssd1306};

use crate::frame::{Frame, HEIGHT, WIDTH};
use crate::ui::ScreenPower;

/// The SSD1306's usual I2C address (0x3D with the address jumper moved).
pub const DEFAULT_ADDRESS: u8 = 0x3C;

/// Why the display could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DisplayError {
    /// Nothing acknowledged at the address: no panel fitted, wrong bus or wrong address.
    #[error("no SSD1306 answered at I2C address {address:#04x}: {kind}")]
    NotFound {
        /// The address probed.
        address: u8,
        /// What the bus reported.
        kind: String,
    },
    /// The panel answered before but a write failed now (loose cable, bus lock-up).
    #[error("I2C write to the SSD1306 at {address:#04x} failed while {doing}: {detail}")]
    Bus {
        /// The panel's address.
        address: u8,
        /// What we were doing.
        doing: &'static str,
        /// The driver's error.
        detail: String,
    },
    /// The simulator could not write its PNG.
    #[error("writing the simulated panel to {path}: {source}")]
    SimulatorWrite {
        /// Target file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The simulator could not encode its PNG.
    #[error(transparent)]
    Png(#[from] crate::frame::PngError),
}

/// Why the LED could not be set.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedError {
    /// The GPIO write failed.
    #[error("setting the status LED on GPIO {pin}: {detail}")]
    Gpio {
        /// BCM pin number.
        pin: u8,
        /// What failed.
        detail: String,
    },
}

/// A screen the panel loop can show frames on.
pub trait PanelDisplay: Send {
    /// Shows `frame` (the display may send only what changed since the last call).
    fn show(&mut self, frame: &Frame) -> Result<(), DisplayError>;
    /// Brightness or off.
    fn set_power(&mut self, power: ScreenPower) -> Result<(), DisplayError>;
}

/// The status LED.
pub trait StatusLed: Send {
    /// Lights or darkens it.
    fn set(&mut self, on: bool) -> Result<(), LedError>;
}

type Driver<I2C> =
    Ssd1306<I2CInterface<I2C>, DisplaySize128x64, BufferedGraphicsMode<DisplaySize128x64>>;

/// An SSD1306 128×64 on I2C, in the driver's buffered graphics mode.
pub struct Ssd1306Display<I2C> {
    driver: Driver<I2C>,
    address: u8,
    /// What the panel's RAM holds, so a new frame sends only the changed region.
    shown: Frame,
    power: ScreenPower,
}

impl<I2C> std::fmt::Debug for Ssd1306Display<I2C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssd1306Display")
            .field("address", &self.address)
            .field("power", &self.power)
            .finish_non_exhaustive()
    }
}

impl<I2C: I2c> Ssd1306Display<I2C> {
    /// Probes `address`, initialises the controller and clears its RAM (power-on RAM is noise).
    pub fn new(mut i2c: I2C, address: u8) -> Result<Self, DisplayError> {
        // A NOP command: the driver's own errors lose the bus's reason, so ask once ourselves.
        i2c.write(address, &[0x00, 0xE3])
            .map_err(|e| DisplayError::NotFound {
                address,
                kind: e.kind().to_string(),
            })?;
        let interface = I2CDisplayInterface::new_custom_address(i2c, address);
        let mut driver = Ssd1306::new(interface, DisplaySize128x64, DisplayRotation::Rotate0)
            .into_buffered_graphics_mode();
        let bus = |doing| {
            move |e| DisplayError::Bus {
                address,
                doing,
                detail: format!("{e:?}"),
            }
        };
        driver.init().map_err(bus("initialising"))?;
        driver.clear_buffer();
        driver.flush().map_err(bus("clearing the screen"))?;
        Ok(Self {
            driver,
            address,
            shown: Frame::new(),
            power: ScreenPower::On,
        })
    }

    fn bus_error<E: std::fmt::Debug>(&self, doing: &'static str) -> impl Fn(E) -> DisplayError {
        let address = self.address;
        move |e| DisplayError::Bus {
            address,
            doing,
            detail: format!("{e:?}"),
        }
    }
}

impl<I2C: I2c + Send> PanelDisplay for Ssd1306Display<I2C> {
    fn show(&mut self, frame: &Frame) -> Result<(), DisplayError> {
        for y in 0..HEIGHT {
            for x in 0..WIDTH {
                let on = frame.pixel(x, y);
                if on != self.shown.pixel(x, y) {
                    self.driver.set_pixel(x, y, on);
                }
            }
        }
        let err = self.bus_error("sending a frame");
        self.driver.flush().map_err(err)?;
        self.shown = frame.clone();
        Ok(())
    }

    fn set_power(&mut self, power: ScreenPower) -> Result<(), DisplayError> {
        if power == self.power {
            return Ok(());
        }
        let err = self.bus_error("changing brightness");
        match power {
            ScreenPower::On => {
                self.driver
                    .set_brightness(Brightness::NORMAL)
                    .map_err(&err)?;
                self.driver.set_display_on(true).map_err(&err)?;
            }
            ScreenPower::Dim => {
                self.driver
                    .set_brightness(Brightness::DIMMEST)
                    .map_err(&err)?;
                self.driver.set_display_on(true).map_err(&err)?;
            }
            ScreenPower::Off => self.driver.set_display_on(false).map_err(&err)?,
        }
        self.power = power;
        Ok(())
    }
}
