//! The Raspberry Pi backend: the OLED on rppal's I2C, buttons and LED on rppal's GPIO.
//!
//! Everything that can be absent is probed up front, so that a box without a panel (or a
//! development machine) gets one [`HardwareError`] that names the missing part; the daemon logs
//! it once and runs without the panel.

use rppal::gpio::{Gpio, InputPin, OutputPin, Trigger};
use rppal::i2c::I2c;

use crate::display::{DisplayError, LedError, Ssd1306Display, StatusLed, DEFAULT_ADDRESS};
use crate::runner::{spawn, PanelHandle, SpawnError};
use crate::status::PanelStatus;
use crate::ui::{PanelAction, PanelConfig};

/// Longest a single I2C transaction may take, in ms (the kernel's resolution is 10 ms).
const I2C_TIMEOUT_MS: u32 = 100;

/// Where the panel's parts are wired. Pins are BCM GPIO numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardwareConfig {
    /// I2C bus number (`/dev/i2c-N`); bus 1 is the header's SDA/SCL on every Pi since the B+.
    pub i2c_bus: u8,
    /// The OLED's I2C address.
    pub i2c_address: u8,
    /// Buttons, wired from the pin to ground (internal pull-ups): first = next/select, second
    /// (optional) = previous.
    pub button_pins: Vec<u8>,
    /// The status LED (through a resistor to ground), if fitted.
    pub led_pin: Option<u8>,
}

impl Default for HardwareConfig {
    fn default() -> Self {
        // GPIO 17 (header pin 11) and 27 (pin 13): free of I2C, SPI, UART and PWM functions.
        Self {
            i2c_bus: 1,
            i2c_address: DEFAULT_ADDRESS,
            button_pins: vec![17],
            led_pin: Some(27),
        }
    }
}

/// Why the panel hardware could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HardwareError {
    /// The I2C bus could not be opened (not a Pi, I2C not enabled, no permission).
    #[error("opening I2C bus {bus} for the panel: {source}")]
    I2cBus {
        /// Bus number.
        bus: u8,
        /// rppal's reason.
        source: rppal::i2c::Error,
    },
    /// The bus opened but the OLED did not work.
    #[error("panel OLED on I2C bus {bus}: {source}")]
    Display {
        /// Bus number.
        bus: u8,
        /// What failed.
        source: DisplayError,
    },
    /// The GPIO controller could not be opened.
    #[error("opening GPIO for the panel's buttons and LED: {0}")]
    Gpio(#[source] rppal::gpio::Error),
    /// One pin could not be set up.
    #[error("setting up GPIO {pin} as {role}: {source}")]
    Pin {
        /// BCM pin number.
        pin: u8,
        /// "button" or "LED".
        role: &'static str,
        /// rppal's reason.
        source: rppal::gpio::Error,
    },
    /// No button configured: the panel would be unusable.
    #[error("the panel needs at least one button pin")]
    NoButtons,
    /// The panel thread could not start.
    #[error(transparent)]
    Spawn(#[from] SpawnError),
}

/// The status LED on a GPIO output.
#[derive(Debug)]
pub struct GpioLed {
    pin: OutputPin,
}

impl StatusLed for GpioLed {
    fn set(&mut self, on: bool) -> Result<(), LedError> {
        // Memory-mapped GPIO writes cannot fail once the pin is claimed.
        if on {
            self.pin.set_high();
        } else {
            self.pin.set_low();
        }
        Ok(())
    }
}

/// Opens the OLED, buttons and LED and starts the panel loop on them. `config.buttons` is taken
/// from `hw.button_pins`.
pub fn spawn_hardware(
    hw: &HardwareConfig,
    mut config: PanelConfig,
    status: PanelStatus,
    on_action: impl FnMut(PanelAction) + Send + 'static,
) -> Result<PanelHandle, HardwareError> {
    if hw.button_pins.is_empty() {
        return Err(HardwareError::NoButtons);
    }
    let bus = hw.i2c_bus;
    let i2c = I2c::with_bus(bus).map_err(|source| HardwareError::I2cBus { bus, source })?;
    // A wedged bus must not hold the panel thread: one 17-byte write takes < 2 ms at 100 kHz.
    i2c.set_timeout(I2C_TIMEOUT_MS)
        .map_err(|source| HardwareError::I2cBus { bus, source })?;
    let display = Ssd1306Display::new(i2c, hw.i2c_address)
        .map_err(|source| HardwareError::Display { bus, source })?;

    let gpio = Gpio::new().map_err(HardwareError::Gpio)?;
    let pin = |pin: u8, role| {
        gpio.get(pin)
            .map_err(|source| HardwareError::Pin { pin, role, source })
    };
    let mut buttons: Vec<(u8, InputPin)> = Vec::new();
    for &p in &hw.button_pins {
        buttons.push((p, pin(p, "button")?.into_input_pullup()));
    }
    let led = match hw.led_pin {
        Some(p) => Some(GpioLed {
            pin: pin(p, "LED")?.into_output_low(),
        }),
        None => None,
    };

    config.buttons = buttons.len();
    let mut handle = spawn(
        config,
        status,
        Box::new(display),
        led.map(|l| Box::new(l) as Box<dyn StatusLed>),
        on_action,
    )?;
    for (index, (p, mut input)) in buttons.into_iter().enumerate() {
        let sender = handle
            .edge_sender(index)
            .map_err(|_| HardwareError::NoButtons)?;
        // Debouncing is ours (pure and tested), so the kernel reports every edge.
        input
            .set_async_interrupt(Trigger::Both, None, move |event| {
                // Pull-up wiring: the pin falls when the button closes to ground.
                let pressed = event.trigger == Trigger::FallingEdge;
                if let Err(e) = sender.send(pressed) {
                    tracing::debug!(error = %e, "button edge dropped");
                }
            })
            .map_err(|source| HardwareError::Pin {
                pin: p,
                role: "button",
                source,
            })?;
        // The pin must outlive the loop's use of it: dropping it ends the interrupts.
        handle.keep(Box::new(input));
    }
    tracing::info!(bus, address = hw.i2c_address, buttons = ?hw.button_pins, led = ?hw.led_pin, "panel started");
    Ok(handle)
}
