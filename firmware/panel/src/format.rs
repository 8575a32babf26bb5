//! Numbers as a person reads them on a 25-column screen.

/// Bytes in decimal units (disks are sold that way): `0 B`, `999 B`, `1.2 kB`, `340 GB`, `12 TB`.
/// Three significant figures at most so a value never takes more than 6 columns.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut value = n as f64;
    let mut unit = "B";
    for u in UNITS {
        if value < 1000.0 {
            break;
        }
        value /= 1000.0;
        unit = u;
    }
    // Round first, then pick the precision, so 9.96 kB shows as "10 kB" not "10.0 kB".
    if (value * 10.0).round() < 100.0 {
        format!("{:.1} {unit}", value)
    } else {
        format!("{:.0} {unit}", value)
    }
}

/// An integer with thin groups of three: `12,345,678`.
// `is_multiple_of` is newer than the workspace's rust-version (1.85).
#[allow(clippy::manual_is_multiple_of)]
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A fraction `0.0..=1.0` as a percentage with one decimal below 100; `?` for a value that is
/// not a fraction (the engine's bug must not become a wrong figure on the box).
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() || !(0.0..=1.0).contains(&fraction) {
        return "?".to_owned();
    }
    let p = fraction * 100.0;
    if p >= 99.95 {
        "100%".to_owned()
    } else {
        format!("{p:.1}%")
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with `~`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('~');
    out
}

/// Splits `text` into lines of at most `width` characters, breaking at spaces where it can and
/// inside words where it must (URLs have no spaces).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let line_len = line.chars().count();
        if line_len > 0 && line_len + 1 + word.len() <= width {
            line.push(' ');
            line.extend(word.iter());
            continue;
        }
        if line_len > 0 {
            lines.push(std::mem::take(&mut line));
        }
        while word.len() > width {
            let rest = word.split_off(width);
            lines.push(word.into_iter().collect());
            word = rest;
        }
        line = word.into_iter().collect();
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_use_three_figures() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_000), "1.0 kB");
        assert_eq!(bytes(9_960), "10 kB");
        assert_eq!(bytes(1_234_000_000_000), "1.2 TB");
        assert_eq!(bytes(340_000_000_000), "340 GB");
        assert_eq!(bytes(u64::MAX), "18 EB");
    }

    #[test]
    fn groups_of_three() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(12_345_678), "12,345,678");
    }

    #[test]
    fn percent_refuses_nonsense() {
        assert_eq!(percent(0.992), "99.2%");
        assert_eq!(percent(1.0), "100%");
        assert_eq!(percent(f64::NAN), "?");
        assert_eq!(percent(1.5), "?");
        assert_eq!(percent(-0.1), "?");
    }

    #[test]
    fn wrap_breaks_words_and_urls() {
        assert_eq!(
            wrap("Disk sda missing now", 10),
            vec!["Disk sda", "missing", "now"]
        );
        assert_eq!(
            wrap("http://bunker.local:8080/", 10),
            vec!["http://bun", "ker.local:", "8080/"]
        );
        assert!(wrap("", 5).is_empty());
        assert_eq!(truncate("abcdef", 4), "abc~");
        assert_eq!(truncate("abc", 4), "abc");
    }
}
