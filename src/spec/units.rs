//! Units as people write and read them: sizes (`512m`, `1.5g`) and
//! durations (`90s`, `1.5m`) parsed the one way every flag and profile key
//! takes them, and bytes and ages shown the one way every command prints
//! them.

use crate::error::Expected;
use std::time::Duration;

const SIZE: &str =
    "expected a size: a number of bytes, or with a k, m, g or t suffix (1024-based), e.g. 512m";

/// `512m`, `1G`, `1.5g`, `4096`, `2MiB`.
pub fn parse_size(s: &str) -> Result<u64, Expected> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower
        .strip_suffix("ib")
        .or_else(|| {
            lower
                .strip_suffix('b')
                .filter(|b| b.ends_with(['k', 'm', 'g', 't']))
        })
        .unwrap_or(&lower);
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1 << 20),
        Some('g') => (&body[..body.len() - 1], 1 << 30),
        Some('t') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    let n: f64 = num.parse().map_err(|_| SIZE.to_string())?;
    if !n.is_finite() || n < 0.0 || (mult == 1 && num.contains('.')) {
        return Err(SIZE.into());
    }
    let bytes = n * mult as f64;
    if bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(SIZE.into());
    }
    Ok(bytes as u64)
}

const DURATION: &str = "expected a duration: a number of seconds, or with an ms, s, m, h or d suffix, e.g. 90s or 1.5m";

/// `10`, `10s`, `1.5m`, `2h`, `1d`, `500ms` (timeout(1)'s forms, and ms).
pub fn parse_duration(s: &str) -> Result<Duration, Expected> {
    let t = s.trim();
    let (num, unit) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else if let Some(n) = t.strip_suffix('d') {
        (n, 86400.0)
    } else {
        (t, 1.0)
    };
    let n: f64 = num.parse().map_err(|_| DURATION.to_string())?;
    let secs = n * unit;
    if !secs.is_finite() || secs <= 0.0 || secs > 1e9 {
        return Err(DURATION.into());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// An age or uptime as people read it: 45s, 12m, 5h, 3d.
pub fn human_age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86400),
    }
}

/// Bytes as people read them: 50 MiB, 1.5 GiB.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 || v.fract() < 0.05 {
        format!("{v:.0} {}", UNITS[i])
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("50M"), Ok(50 << 20));
        assert_eq!(parse_size("2MiB"), Ok(2 << 20));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        for bad in ["", "m", "-1m", "1.5", "ten", "1x", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(human_bytes(50 << 20), "50 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(100), "100 B");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        for bad in ["", "0", "-1s", "soon", "1w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
