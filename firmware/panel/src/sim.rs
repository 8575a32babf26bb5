//! The simulator backend: the panel without hardware, for the sandbox, tests and the web page's
//! panel mirror.
//!
//! [`SimPanel`] is a shared window onto the simulated glass and LED. Its [`SimDisplay`] and
//! [`SimLed`] go to [`crate::runner::spawn`] like the real ones; buttons come in through the
//! [`crate::runner::PanelHandle`] (`press`, `button_edge`), which the daemon's local API calls.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::display::{DisplayError, LedError, PanelDisplay, StatusLed};
use crate::frame::{Frame, PngError};
use crate::ui::ScreenPower;

/// Grey level of a lit pixel at full and at dimmed brightness in simulator PNGs.
const LIT: u8 = 255;
const LIT_DIM: u8 = 96;
/// Scale of the PNG the simulator keeps on disk: big enough to read on a laptop screen.
pub const FILE_SCALE: u32 = 4;

#[derive(Debug)]
struct Glass {
    frame: Frame,
    power: ScreenPower,
    led: bool,
    frames_shown: u64,
    png_path: Option<PathBuf>,
}

/// The simulated panel; clones share one glass.
#[derive(Debug, Clone)]
pub struct SimPanel {
    glass: Arc<Mutex<Glass>>,
}

impl SimPanel {
    /// A dark panel; with `png_path`, every shown frame is also written there as a PNG
    /// (atomically, so a reader never sees half a file).
    pub fn new(png_path: Option<PathBuf>) -> Self {
        Self {
            glass: Arc::new(Mutex::new(Glass {
                frame: Frame::new(),
                power: ScreenPower::On,
                led: false,
                frames_shown: 0,
                png_path,
            })),
        }
    }

    fn glass(&self) -> MutexGuard<'_, Glass> {
        self.glass.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The display half, for [`crate::runner::spawn`].
    pub fn display(&self) -> SimDisplay {
        SimDisplay {
            panel: self.clone(),
        }
    }

    /// The LED half, for [`crate::runner::spawn`].
    pub fn led(&self) -> SimLed {
        SimLed {
            panel: self.clone(),
        }
    }

    /// The last frame sent to the glass (also while the glass is off).
    pub fn frame(&self) -> Frame {
        self.glass().frame.clone()
    }

    /// Brightness of the glass.
    pub fn power(&self) -> ScreenPower {
        self.glass().power
    }

    /// Whether the LED is lit.
    pub fn led_on(&self) -> bool {
        self.glass().led
    }

    /// Frames drawn so far (the loop draws only on change).
    pub fn frames_shown(&self) -> u64 {
        self.glass().frames_shown
    }

    /// The glass as a person sees it, as PNG: dimmed pixels grey, an off screen black.
    pub fn png(&self, scale: u32) -> Result<Vec<u8>, PngError> {
        let g = self.glass();
        glass_png(&g.frame, g.power, scale)
    }
}

fn glass_png(frame: &Frame, power: ScreenPower, scale: u32) -> Result<Vec<u8>, PngError> {
    match power {
        ScreenPower::On => frame.to_png(scale, LIT),
        ScreenPower::Dim => frame.to_png(scale, LIT_DIM),
        ScreenPower::Off => Frame::new().to_png(scale, LIT),
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), DisplayError> {
    let io = |source| DisplayError::SimulatorWrite {
        path: path.to_owned(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// The simulated screen.
#[derive(Debug)]
pub struct SimDisplay {
    panel: SimPanel,
}

impl SimDisplay {
    fn write_file(&self) -> Result<(), DisplayError> {
        let (path, png) = {
            let g = self.panel.glass();
            let Some(path) = g.png_path.clone() else {
                return Ok(());
            };
            (path, glass_png(&g.frame, g.power, FILE_SCALE)?)
        };
        write_atomically(&path, &png)
    }
}

impl PanelDisplay for SimDisplay {
    fn show(&mut self, frame: &Frame) -> Result<(), DisplayError> {
        {
            let mut g = self.panel.glass();
            g.frame = frame.clone();
            g.frames_shown += 1;
        }
        self.write_file()
    }

    fn set_power(&mut self, power: ScreenPower) -> Result<(), DisplayError> {
        self.panel.glass().power = power;
        self.write_file()
    }
}

/// The simulated LED.
#[derive(Debug)]
pub struct SimLed {
    panel: SimPanel,
}

impl StatusLed for SimLed {
    fn set(&mut self, on: bool) -> Result<(), LedError> {
        self.panel.glass().led = on;
        Ok(())
    }
}
