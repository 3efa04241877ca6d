//! The few date formats the control plane reads and writes: SigV4's `yyyyMMdd'T'HHmmss'Z'`,
//! ISO 8601 / RFC 3339 UTC timestamps (MSK's `creationTime`, STS's `Expiration`, usage ranges).
//! Pure arithmetic on milliseconds since the Unix epoch, proleptic Gregorian calendar, UTC only.

use fjord_tenancy::calendar::{civil_from_days, days_from_civil, days_in_month};

const MS_PER_DAY: i64 = 86_400_000;

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Milliseconds of a validated date and time of day.
fn to_ms(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    let valid = (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && (0..24).contains(&h)
        && (0..60).contains(&mi)
        && (0..60).contains(&s);
    valid.then(|| days_from_civil(y, mo, d) * MS_PER_DAY + ((h * 60 + mi) * 60 + s) * 1000)
}

/// Parses SigV4's `X-Amz-Date` (`20150830T123600Z`).
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    to_ms(
        digits(s.get(0..4)?)?,
        digits(s.get(4..6)?)?,
        digits(s.get(6..8)?)?,
        digits(s.get(9..11)?)?,
        digits(s.get(11..13)?)?,
        digits(s.get(13..15)?)?,
    )
}

/// Parses an RFC 3339 UTC timestamp (`2026-11-26T04:50:40Z`, optional fraction of a second,
/// `Z` or `+00:00`).
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(['T', 't'])?;
    let mut date_parts = date.splitn(3, '-');
    let (y, mo, d) = (
        digits(date_parts.next()?)?,
        digits(date_parts.next()?)?,
        digits(date_parts.next()?)?,
    );
    let time = time
        .strip_suffix(['Z', 'z'])
        .or_else(|| time.strip_suffix("+00:00"))?;
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let mut parts = hms.splitn(3, ':');
    let (h, mi, sec) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    let mut ms = to_ms(y, mo, d, h, mi, sec)?;
    if let Some(f) = fraction {
        let f = f.get(..f.len().min(3))?;
        let scale = [100, 10, 1];
        for (i, c) in f.bytes().enumerate() {
            if !c.is_ascii_digit() {
                return None;
            }
            ms += i64::from(c - b'0') * scale[i];
        }
    }
    Some(ms)
}

/// Formats milliseconds as RFC 3339 UTC with millisecond precision (`2026-11-26T04:50:40.123Z`).
pub fn format_iso8601(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Formats milliseconds as RFC 3339 UTC, whole seconds (`2026-11-26T04:50:40Z`), as STS does.
pub fn format_iso8601_seconds(ms: i64) -> String {
    let full = format_iso8601(ms.div_euclid(1000) * 1000);
    // `full` ends with `.000Z`; keep everything before the fraction.
    match full.strip_suffix(".000Z") {
        Some(whole) => format!("{whole}Z"),
        None => full,
    }
}

/// The `yyyyMMdd` date of a time, as SigV4 scopes use it.
pub fn scope_date(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    format!("{y:04}{m:02}{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_round_trip() {
        let ms = parse_amz_date("20150830T123600Z").expect("valid");
        assert_eq!(ms, 1_440_938_160_000);
        assert_eq!(scope_date(ms), "20150830");
        assert_eq!(format_iso8601(ms), "2015-08-30T12:36:00.000Z");
        assert_eq!(format_iso8601_seconds(ms + 999), "2015-08-30T12:36:00Z");
        for bad in [
            "20150830T123600",
            "20150230T123600Z",
            "20151330T123600Z",
            "20150830T243600Z",
            "2015083OT123600Z",
            "",
            "20150830T12360ZZ",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn iso8601_parses_what_it_formats() {
        for ms in [0, 1_440_938_160_123, 1_795_000_000_000, 951_782_400_000] {
            assert_eq!(parse_iso8601(&format_iso8601(ms)), Some(ms));
        }
        assert_eq!(parse_iso8601("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(
            parse_iso8601("2015-08-30T12:36:00+00:00"),
            Some(1_440_938_160_000)
        );
        assert_eq!(
            parse_iso8601("2015-08-30T12:36:00.5Z"),
            Some(1_440_938_160_500)
        );
        for bad in [
            "2001-02-29T00:00:00Z",
            "2015-08-30 12:36:00Z",
            "2015-08-30T12:36:00+02:00",
            "x",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
