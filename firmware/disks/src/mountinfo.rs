//! `/proc/self/mountinfo`: which file system is mounted where, from which
//! device (major:minor), read-only or not.

use std::path::{Path, PathBuf};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Device numbers of the mounted file system (`st_dev`).
    pub dev: DevNum,
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// Whether the mount is read-only (per-mount or super-block option).
    pub read_only: bool,
    /// File-system type, e.g. `ext4`.
    pub fs_type: String,
    /// Mount source, e.g. `/dev/sda1`.
    pub source: String,
}

/// A block device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevNum {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DevNum {
    /// Parses `"8:17"` as found in sysfs `dev` files and mountinfo.
    pub fn parse(s: &str) -> Option<DevNum> {
        let (a, b) = s.trim().split_once(':')?;
        Some(DevNum {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// From a `st_dev` value.
    pub fn from_st_dev(dev: u64) -> DevNum {
        DevNum {
            major: nix::sys::stat::major(dev) as u32,
            minor: nix::sys::stat::minor(dev) as u32,
        }
    }
}

impl std::fmt::Display for DevNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Reads and parses a mountinfo file; an unreadable file is an empty table.
pub fn read(path: &Path) -> Vec<Mount> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read mount table");
            Vec::new()
        }
    }
}

/// Parses mountinfo text (proc(5)); malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Mount> {
    // id parent maj:min root mount-point options [optional...] - fstype source super-options
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    if l.len() < 6 {
        return None;
    }
    let r: Vec<&str> = right.split(' ').collect();
    if r.len() < 3 {
        return None;
    }
    let ro = |opts: &str| opts.split(',').any(|o| o == "ro");
    Some(Mount {
        dev: DevNum::parse(l[2])?,
        mount_point: PathBuf::from(unescape(l[4])),
        read_only: ro(l[5]) || ro(r[2]),
        fs_type: r[0].to_string(),
        source: unescape(r[1]),
    })
}

/// mountinfo writes space, tab, newline and backslash as `\ooo` octal.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let digits = &b[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_with_optional_fields_and_escapes() {
        let text = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard\n\
                    90 27 8:1 / /var/lib/bunker/disks/my\\040disk rw,nosuid master:3 - ext4 /dev/sda1 ro,errors=remount-ro\n\
                    garbage line\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(
            m[0].dev,
            DevNum {
                major: 254,
                minor: 0
            }
        );
        assert_eq!(m[0].mount_point, PathBuf::from("/"));
        assert!(!m[0].read_only);
        assert_eq!(
            m[1].mount_point,
            PathBuf::from("/var/lib/bunker/disks/my disk")
        );
        assert!(m[1].read_only, "super-block ro counts");
        assert_eq!(m[1].source, "/dev/sda1");
        assert_eq!(m[1].fs_type, "ext4");
    }
}
