//! What board the box runs on and the numbers the engine is tuned with, so
//! the same firmware runs on a Pi Zero 2 W with 512 MiB as on a Pi 4 or a PC;
//! and the Pi firmware's undervoltage flag, the most common cause of USB
//! disks dropping off.

use std::path::Path;

use crate::alert::{Alert, Severity};
use crate::health::ReservePolicy;
use crate::roots::{read_attr, Roots};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The board and the numbers tuned for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceProfile {
    /// Board name: the device tree's model on a Pi ("Raspberry Pi 4 Model B
    /// Rev 1.5"), the DMI product or CPU model elsewhere.
    pub model: String,
    /// Whether it is a Raspberry Pi (GPIO, OLED, firmware undervoltage flag).
    pub raspberry_pi: bool,
    /// MemTotal.
    pub mem_total_bytes: u64,
    /// CPUs online.
    pub cores: usize,
    /// Threads sealing (encrypting and hashing) files in parallel.
    pub seal_threads: usize,
    /// Objects sent to peers at once.
    pub upload_concurrency: usize,
    /// Audits and fetches answered at once for peers.
    pub serve_concurrency: usize,
    /// SQLite page cache of MANIFEST.db (for `PRAGMA cache_size = -KIB`).
    pub sqlite_cache_kib: u32,
    /// Buffer of each file stream (upload, download, seal): bigger is faster
    /// on USB, but all streams together must fit a small board's memory.
    pub io_buffer_bytes: usize,
    /// Kept free on every data disk.
    pub disk_reserve: ReservePolicy,
}

impl DeviceProfile {
    /// Reads the board from `/proc` and `/sys` under `roots`, and tunes.
    pub fn detect(roots: &Roots) -> DeviceProfile {
        let dt_model = read_attr(&roots.proc.join("device-tree/model"))
            .or_else(|| read_attr(&roots.sys.join("firmware/devicetree/base/model")))
            .filter(|s| !s.is_empty());
        let model = dt_model
            .clone()
            .or_else(|| {
                read_attr(&roots.sys.join("class/dmi/id/product_name")).filter(|s| !s.is_empty())
            })
            .or_else(|| cpu_model(&roots.proc))
            .unwrap_or_else(|| "unknown".into());
        let raspberry_pi = dt_model.is_some_and(|m| m.starts_with("Raspberry Pi"));
        let mem = mem_total(&roots.proc).unwrap_or(512 * MIB);
        let cores = cores_online(roots).max(1);
        DeviceProfile::tuned(model, raspberry_pi, mem, cores)
    }

    /// The numbers for a board with `mem` bytes and `cores` CPUs. One rule for
    /// all boards, scaled by memory, so a new board needs no new table:
    /// 512 MiB leaves ~300 MiB after the OS, ldk-node and libp2p, and every
    /// buffer the engine holds at once must fit well inside that.
    pub fn tuned(model: String, raspberry_pi: bool, mem: u64, cores: usize) -> DeviceProfile {
        let small = mem <= GIB;
        let io_buffer_bytes = if small { 256 << 10 } else { 1 << 20 };
        // Sealing is CPU-bound: one thread per core, but each holds a segment
        // and its buffers, so a small board keeps two.
        let seal_threads = cores.min(if small { 2 } else { 4 }).max(1);
        // Uploads wait on the network, not the CPU: one per 256 MiB, 2..=8.
        let upload_concurrency = (mem / (256 * MIB)).clamp(2, 8) as usize;
        let serve_concurrency = (mem / (128 * MIB)).clamp(4, 16) as usize;
        // 1/64 of memory, 4..=64 MiB: 8 MiB on a Zero 2 W keeps the manifest's
        // hot pages (folders, disks, due audits) cached.
        let sqlite_cache_kib = ((mem / 64).clamp(4 * MIB, 64 * MIB) / 1024) as u32;
        DeviceProfile {
            model,
            raspberry_pi,
            mem_total_bytes: mem,
            cores,
            seal_threads,
            upload_concurrency,
            serve_concurrency,
            sqlite_cache_kib,
            io_buffer_bytes,
            disk_reserve: ReservePolicy {
                min_bytes: GIB,
                percent: 2,
            },
        }
    }

    /// Bytes of stream buffers in flight at the most (each stream double-buffers).
    pub fn buffer_budget_bytes(&self) -> u64 {
        ((self.seal_threads + self.upload_concurrency + self.serve_concurrency)
            * self.io_buffer_bytes
            * 2) as u64
    }
}

fn mem_total(proc: &Path) -> Option<u64> {
    let text = read_attr(&proc.join("meminfo"))?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line
        .trim_start_matches("MemTotal:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn cpu_model(proc: &Path) -> Option<String> {
    let text = read_attr(&proc.join("cpuinfo"))?;
    text.lines()
        .find(|l| l.starts_with("model name") || l.starts_with("Model"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `/sys/devices/system/cpu/online` ("0-3", "0,2-3"); else cpuinfo's
/// `processor` lines.
fn cores_online(roots: &Roots) -> usize {
    if let Some(list) = read_attr(&roots.sys.join("devices/system/cpu/online")) {
        let n: usize = list
            .split(',')
            .filter_map(|r| match r.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                    b.checked_sub(a).map(|d| d + 1)
                }
                None => r.trim().parse::<usize>().ok().map(|_| 1),
            })
            .sum();
        if n > 0 {
            return n;
        }
    }
    read_attr(&roots.proc.join("cpuinfo"))
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(1)
}

/// The Pi firmware's throttling flags (`vcgencmd get_throttled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Throttled {
    /// The raw bit field.
    pub bits: u32,
}

impl Throttled {
    /// Supply voltage below 4.63 V now.
    pub const UNDER_VOLTAGE_NOW: u32 = 1 << 0;
    /// ARM frequency capped now.
    pub const FREQ_CAPPED_NOW: u32 = 1 << 1;
    /// Throttled now.
    pub const THROTTLED_NOW: u32 = 1 << 2;
    /// Soft temperature limit active now.
    pub const SOFT_TEMP_LIMIT_NOW: u32 = 1 << 3;
    /// Undervoltage has occurred since boot.
    pub const UNDER_VOLTAGE_OCCURRED: u32 = 1 << 16;
    /// Frequency capping has occurred since boot.
    pub const FREQ_CAPPED_OCCURRED: u32 = 1 << 17;
    /// Throttling has occurred since boot.
    pub const THROTTLED_OCCURRED: u32 = 1 << 18;
    /// Soft temperature limit has occurred since boot.
    pub const SOFT_TEMP_LIMIT_OCCURRED: u32 = 1 << 19;

    /// Where the firmware driver publishes the flags.
    const GET_THROTTLED: &'static str = "devices/platform/soc/soc:firmware/get_throttled";

    /// Reads the flags: the firmware's `get_throttled` when present, else the
    /// `rpi_volt` hwmon's `in0_lcrit_alarm` (undervoltage only). `None` when
    /// the board has neither (not a Pi).
    pub fn read(roots: &Roots) -> Option<Throttled> {
        if let Some(s) = read_attr(&roots.sys.join(Self::GET_THROTTLED)) {
            let hex = s.trim_start_matches("0x").trim_start_matches("0X");
            if let Ok(bits) = u32::from_str_radix(hex, 16) {
                return Some(Throttled { bits });
            }
            tracing::warn!(value = %s, "unreadable get_throttled");
        }
        let rd = std::fs::read_dir(roots.sys.join("class/hwmon")).ok()?;
        for e in rd.flatten() {
            if read_attr(&e.path().join("name")).as_deref() != Some("rpi_volt") {
                continue;
            }
            let alarm = read_attr(&e.path().join("in0_lcrit_alarm"))?;
            let bits = if alarm == "1" {
                Self::UNDER_VOLTAGE_NOW | Self::UNDER_VOLTAGE_OCCURRED
            } else {
                0
            };
            return Some(Throttled { bits });
        }
        None
    }

    /// Undervoltage now.
    pub fn under_voltage_now(&self) -> bool {
        self.bits & Self::UNDER_VOLTAGE_NOW != 0
    }

    /// Undervoltage now or earlier since boot.
    pub fn under_voltage_seen(&self) -> bool {
        self.bits & (Self::UNDER_VOLTAGE_NOW | Self::UNDER_VOLTAGE_OCCURRED) != 0
    }

    /// The flags set, in words.
    pub fn describe(&self) -> Vec<&'static str> {
        [
            (Self::UNDER_VOLTAGE_NOW, "under-voltage now"),
            (Self::FREQ_CAPPED_NOW, "frequency capped now"),
            (Self::THROTTLED_NOW, "throttled now"),
            (Self::SOFT_TEMP_LIMIT_NOW, "soft temperature limit now"),
            (Self::UNDER_VOLTAGE_OCCURRED, "under-voltage since boot"),
            (Self::FREQ_CAPPED_OCCURRED, "frequency capped since boot"),
            (Self::THROTTLED_OCCURRED, "throttled since boot"),
            (
                Self::SOFT_TEMP_LIMIT_OCCURRED,
                "soft temperature limit since boot",
            ),
        ]
        .into_iter()
        .filter(|(bit, _)| self.bits & bit != 0)
        .map(|(_, words)| words)
        .collect()
    }

    /// The owner-facing alerts these flags call for.
    pub fn alerts(&self) -> Vec<Alert> {
        let mut out = Vec::new();
        if self.under_voltage_seen() {
            let when = if self.under_voltage_now() {
                "now"
            } else {
                "since boot"
            };
            out.push(Alert::new(
                if self.under_voltage_now() { Severity::Critical } else { Severity::Warning },
                "Undervoltage",
                format!("Undervoltage ({when}): use the official power supply — the most common cause of failing USB disks."),
                None,
            ));
        }
        if self.bits & (Self::SOFT_TEMP_LIMIT_NOW | Self::THROTTLED_NOW) != 0
            && !self.under_voltage_now()
        {
            out.push(Alert::new(
                Severity::Warning,
                "Too hot: throttled",
                "The CPU is throttled to stay cool: give the box air or a heatsink.".into(),
                None,
            ));
        }
        out
    }
}
