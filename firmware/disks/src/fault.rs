//! Making writes fail on demand, the way a full, read-only or dying disk
//! fails them, so every path that handles those errors can be tested without
//! waiting for hardware to break.
//!
//! A [`FaultHook`] is shared by a test and a disk: while a fault is set,
//! every write through a [`FaultyWriter`] or [`FaultyDir`] of that hook fails
//! with the matching errno. The health probe writes through the hook of its
//! disk, so an injected fault is classified by the same code as a real one.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;

/// A failure a disk can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `ENOSPC`: the file system is full.
    NoSpace,
    /// `EIO`: the device failed the request (bad sectors, a dying bridge).
    Io,
    /// `EROFS`: the kernel remounted the file system read-only after errors.
    ReadOnly,
}

impl Fault {
    /// The errno a real disk returns for this failure.
    pub fn errno(self) -> Errno {
        match self {
            Fault::NoSpace => Errno::ENOSPC,
            Fault::Io => Errno::EIO,
            Fault::ReadOnly => Errno::EROFS,
        }
    }

    /// The error a write returns.
    pub fn to_io_error(self) -> io::Error {
        io::Error::from_raw_os_error(self.errno() as i32)
    }
}

/// A switch shared between a test and the code that writes to a disk.
#[derive(Debug, Clone, Default)]
pub struct FaultHook(Arc<Mutex<State>>);

#[derive(Debug, Default)]
struct State {
    fault: Option<Fault>,
    stall: Option<Duration>,
}

impl FaultHook {
    /// A hook with no fault set.
    pub fn new() -> FaultHook {
        FaultHook::default()
    }

    /// From now on, writes fail with `fault`.
    pub fn set(&self, fault: Fault) {
        self.lock().fault = Some(fault);
    }

    /// From now on, each write first hangs for `d`, as on a USB bridge that
    /// stopped answering.
    pub fn set_stall(&self, d: Duration) {
        self.lock().stall = Some(d);
    }

    /// From now on, writes go through at once.
    pub fn clear(&self) {
        *self.lock() = State::default();
    }

    /// The fault in force.
    pub fn current(&self) -> Option<Fault> {
        self.lock().fault
    }

    /// Hangs for the stall if one is set, then `Err` with the fault's errno
    /// while one is set.
    pub fn check(&self) -> io::Result<()> {
        let stall = self.lock().stall;
        if let Some(d) = stall {
            std::thread::sleep(d);
        }
        match self.current() {
            Some(f) => Err(f.to_io_error()),
            None => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking test thread must not wedge the others: the state is
        // plain values, always valid.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A writer whose writes and flushes fail while its hook has a fault set.
#[derive(Debug)]
pub struct FaultyWriter<W> {
    inner: W,
    hook: FaultHook,
}

impl<W> FaultyWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W, hook: FaultHook) -> FaultyWriter<W> {
        FaultyWriter { inner, hook }
    }

    /// The wrapped writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Unwraps.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for FaultyWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hook.check()?;
        self.inner.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.hook.check()?;
        self.inner.flush()
    }
}

impl FaultyWriter<File> {
    /// `fsync`, failing like a write while a fault is set.
    pub fn sync_all(&self) -> io::Result<()> {
        self.hook.check()?;
        self.inner.sync_all()
    }
}

/// A directory whose file creations and writes fail on demand.
#[derive(Debug, Clone)]
pub struct FaultyDir {
    path: PathBuf,
    hook: FaultHook,
}

impl FaultyDir {
    /// `path` with `hook`.
    pub fn new(path: impl Into<PathBuf>, hook: FaultHook) -> FaultyDir {
        FaultyDir {
            path: path.into(),
            hook,
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The hook.
    pub fn hook(&self) -> &FaultHook {
        &self.hook
    }

    /// Creates (truncates) `name` in the directory; fails like a write while
    /// a fault is set (creating a file on a full or read-only file system fails).
    pub fn create(&self, name: &str) -> io::Result<FaultyWriter<File>> {
        self.hook.check()?;
        Ok(FaultyWriter::new(
            File::create(self.path.join(name))?,
            self.hook.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_fail_with_the_injected_errno_and_recover() {
        let dir = tempfile::tempdir().unwrap();
        let d = FaultyDir::new(dir.path(), FaultHook::new());
        let mut w = d.create("a").unwrap();
        w.write_all(b"ok").unwrap();
        for f in [Fault::NoSpace, Fault::Io, Fault::ReadOnly] {
            d.hook().set(f);
            let e = w.write(b"x").unwrap_err();
            assert_eq!(e.raw_os_error(), Some(f.errno() as i32));
            assert!(d.create("b").is_err());
        }
        d.hook().clear();
        w.write_all(b"!").unwrap();
        w.sync_all().unwrap();
        assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), b"ok!");
    }
}
