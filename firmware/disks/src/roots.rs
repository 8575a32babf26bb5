//! Where the kernel's views of the machine are read from.
//!
//! Every read of sysfs, `/dev` and procfs goes through a [`Roots`], so tests
//! build fake trees in a temporary directory (a Pi 4's device tree, a USB
//! disk's sysfs path) and the real box passes [`Roots::system`].

use std::path::{Path, PathBuf};

/// The roots of sysfs, the device directory, procfs and /run (udev's database).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// sysfs, normally `/sys`.
    pub sys: PathBuf,
    /// device nodes, normally `/dev`.
    pub dev: PathBuf,
    /// procfs, normally `/proc`.
    pub proc: PathBuf,
    /// normally `/run`: udev's database of what it learned about each device.
    pub run: PathBuf,
}

impl Roots {
    /// The running machine's `/sys`, `/dev`, `/proc` and `/run`.
    pub fn system() -> Roots {
        Roots {
            sys: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
            proc: PathBuf::from("/proc"),
            run: PathBuf::from("/run"),
        }
    }

    /// `dir/sys`, `dir/dev`, `dir/proc` and `dir/run`: a fake machine for tests.
    pub fn under(dir: &Path) -> Roots {
        Roots {
            sys: dir.join("sys"),
            dev: dir.join("dev"),
            proc: dir.join("proc"),
            run: dir.join("run"),
        }
    }

    /// This process's mount table.
    pub(crate) fn mountinfo(&self) -> PathBuf {
        self.proc.join("self/mountinfo")
    }
}

/// Reads a small text file (sysfs attribute, /proc entry), trimmed of
/// whitespace and the NUL that device-tree strings end with. `None` when it
/// does not exist or cannot be read: sysfs attributes come and go with devices.
pub(crate) fn read_attr(path: &Path) -> Option<String> {
    // sysfs and procfs attributes are at most a page; cap what we read anyway.
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    f.take(64 * 1024).read_to_end(&mut buf).ok()?;
    let s = String::from_utf8_lossy(&buf);
    Some(
        s.trim_matches(|c: char| c == '\0' || c.is_whitespace())
            .to_string(),
    )
}
