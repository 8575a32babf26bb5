//! The device profile from fake /proc and /sys trees of a Pi 4 and a Pi
//! Zero 2 W, and from this machine's own.

mod common;

use bunker_disks::{DeviceProfile, Roots, Severity, Throttled};
use common::FakeMachine;

const MIB: u64 = 1 << 20;

/// A Pi as its kernel shows it: device-tree model (NUL-terminated),
/// meminfo, CPUs online and the firmware's throttle flags.
fn pi(model: &str, mem_kib: u64, throttled: Option<&str>) -> FakeMachine {
    let m = FakeMachine::new();
    m.write("proc/device-tree/model", format!("{model}\0"));
    m.write(
        "proc/meminfo",
        format!("MemTotal:       {mem_kib} kB\nMemFree:          100000 kB\nMemAvailable:   200000 kB\n"),
    );
    m.write("sys/devices/system/cpu/online", "0-3\n");
    m.write(
        "proc/cpuinfo",
        "processor\t: 0\nBogoMIPS\t: 108.00\nprocessor\t: 1\nprocessor\t: 2\nprocessor\t: 3\nModel\t\t: ignored when the device tree answers\n",
    );
    if let Some(t) = throttled {
        m.write(
            "sys/devices/platform/soc/soc:firmware/get_throttled",
            format!("{t}\n"),
        );
    }
    m
}

#[test]
fn pi_4_with_4_gib_gets_the_full_numbers() {
    // A 4 GiB Pi 4 shows ~3.7 GiB (the GPU keeps the rest).
    let m = pi("Raspberry Pi 4 Model B Rev 1.4", 3_884_328, Some("0x0"));
    let p = DeviceProfile::detect(&m.roots);
    assert_eq!(p.model, "Raspberry Pi 4 Model B Rev 1.4");
    assert!(p.raspberry_pi);
    assert_eq!(p.mem_total_bytes, 3_884_328 * 1024);
    assert_eq!(p.cores, 4);
    assert_eq!(p.seal_threads, 4);
    assert_eq!(p.upload_concurrency, 8);
    assert_eq!(p.serve_concurrency, 16);
    assert_eq!(p.io_buffer_bytes, 1 << 20);
    assert_eq!(p.sqlite_cache_kib, (3_884_328 / 64) as u32);
    assert_eq!(p.disk_reserve.min_bytes, 1 << 30);
    let t = Throttled::read(&m.roots).expect("flags");
    assert_eq!(t.bits, 0);
    assert!(t.alerts().is_empty());
}

#[test]
fn pi_zero_2_w_with_512_mib_fits_its_memory() {
    // 512 MiB board, ~429 MiB visible to Linux.
    let m = pi("Raspberry Pi Zero 2 W Rev 1.0", 439_224, Some("0x50005"));
    let p = DeviceProfile::detect(&m.roots);
    assert_eq!(p.model, "Raspberry Pi Zero 2 W Rev 1.0");
    assert!(p.raspberry_pi);
    assert_eq!(p.cores, 4);
    assert_eq!(p.seal_threads, 2, "two sealers on 512 MiB");
    assert_eq!(p.upload_concurrency, 2);
    assert_eq!(p.serve_concurrency, 4);
    assert_eq!(p.io_buffer_bytes, 256 << 10);
    assert_eq!(p.sqlite_cache_kib, (439_224 / 64) as u32, "~6.7 MiB");
    // Every stream buffer at once stays under 2 % of memory.
    assert!(
        p.buffer_budget_bytes() <= p.mem_total_bytes / 50,
        "{} bytes",
        p.buffer_budget_bytes()
    );
    assert!(u64::from(p.sqlite_cache_kib) * 1024 <= 8 * MIB);

    let t = Throttled::read(&m.roots).expect("flags");
    assert!(t.under_voltage_now());
    assert_eq!(
        t.describe(),
        [
            "under-voltage now",
            "throttled now",
            "under-voltage since boot",
            "throttled since boot"
        ]
    );
    let alerts = t.alerts();
    assert_eq!(
        alerts.len(),
        1,
        "undervoltage explains the throttling: {alerts:?}"
    );
    assert_eq!(alerts[0].severity, Severity::Critical);
    assert_eq!(alerts[0].short, "Undervoltage");
    assert!(
        alerts[0]
            .text
            .contains("use the official power supply — the most common cause of failing USB disks"),
        "{}",
        alerts[0].text
    );
}

#[test]
fn undervoltage_earlier_since_boot_is_a_warning() {
    let m = pi("Raspberry Pi 4 Model B Rev 1.5", 7_997_000, Some("0x50000"));
    let t = Throttled::read(&m.roots).unwrap();
    assert!(!t.under_voltage_now() && t.under_voltage_seen());
    let a = &t.alerts()[0];
    assert_eq!(a.severity, Severity::Warning);
    assert!(
        a.text.starts_with("Undervoltage (since boot)"),
        "{}",
        a.text
    );
}

#[test]
fn hwmon_rpi_volt_alarm_is_read_when_the_firmware_file_is_absent() {
    let m = pi("Raspberry Pi 5 Model B Rev 1.0", 8_000_000, None);
    m.write("sys/class/hwmon/hwmon0/name", "cpu_thermal\n");
    m.write("sys/class/hwmon/hwmon1/name", "rpi_volt\n");
    m.write("sys/class/hwmon/hwmon1/in0_lcrit_alarm", "1\n");
    let t = Throttled::read(&m.roots).expect("hwmon");
    assert!(t.under_voltage_now());
    m.write("sys/class/hwmon/hwmon1/in0_lcrit_alarm", "0\n");
    assert!(Throttled::read(&m.roots).unwrap().alerts().is_empty());
}

#[test]
fn this_machine() {
    let roots = Roots::system();
    let p = DeviceProfile::detect(&roots);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert_eq!(p.mem_total_bytes, kib * 1024);
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    assert!(
        p.cores >= online,
        "{} cores online, {online} usable",
        p.cores
    );
    assert!(!p.model.is_empty() && p.model != "unknown", "{p:?}");
    assert!(p.seal_threads >= 1 && p.seal_threads <= p.cores);
    eprintln!("this machine: {p:?}");
    if !std::path::Path::new("/proc/device-tree/model").exists() {
        assert!(!p.raspberry_pi);
        assert_eq!(Throttled::read(&roots), None, "no Pi firmware here");
    }
}
