//! Bunker's USB data disks and the device profile (DESIGN §6, §9).
//!
//! - [`discovery`]: USB disks and the system device from sysfs, file systems
//!   from their superblocks.
//! - [`adopt()`]: format (only with the owner's [`Confirmation`]) and mount a
//!   disk under `DATA_ROOT/disks/UUID`.
//! - [`Disks`]: the adopted disks' health ([`DiskState`]), where new data
//!   goes ([`Disks::choose_for`]) and the [`Alert`]s for the OLED and the
//!   admin page.
//! - [`DeviceProfile`]: the board, its memory and cores, the numbers the
//!   engine is tuned with, and the undervoltage flag.
//!
//! Everything is blocking: the engine calls it from blocking threads. Every
//! read of the machine goes through [`Roots`], so tests run on fake trees.
//!
//! ```no_run
//! use bunker_disks::{Disks, ReservePolicy, Roots};
//! let roots = Roots::system();
//! let mut disks = Disks::scan(&roots, "/var/lib/bunker".as_ref(), ReservePolicy { min_bytes: 1 << 30, percent: 2 })?;
//! let target = disks.choose_for(10 << 20)?;
//! println!("new data goes to {}", target.mount_path.display());
//! for change in disks.probe()? { println!("{} is now {}", change.disk, change.to); }
//! for alert in disks.alerts() { println!("{}", alert.text); }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

pub mod adopt;
pub mod alert;
pub mod discovery;
mod disks;
pub mod fault;
pub mod health;
pub mod mountinfo;
pub mod profile;
mod roots;
pub mod superblock;

pub use adopt::{adopt, AdoptError, Adopted, Confirmation, MountError};
pub use alert::{Alert, Severity};
pub use discovery::{BlockDevice, DiscoveryError, Partition, SystemReason};
pub use disks::{Disks, NoRoom, StateChange, DEFAULT_PROBE_TIMEOUT};
pub use fault::{Fault, FaultHook, FaultyDir, FaultyWriter};
pub use health::{Capacity, DataDisk, DiskState, ReservePolicy};
pub use profile::{DeviceProfile, Throttled};
pub use roots::Roots;
