//! Ages as kubectl prints them (`45s`, `5m3s`, `3h4m`, `3d4h`, `400d`, `3y20d`): a port of
//! apimachinery's `duration.HumanDuration`, at most two units and the smaller one dropped once
//! it no longer matters.

use std::time::{SystemTime, UNIX_EPOCH};

/// What kubectl prints for a timestamp it does not have.
pub const UNKNOWN: &str = "<unknown>";

/// Formats a duration of `seconds` like apimachinery's `HumanDuration`. Up to one second in
/// the future reads as `0s` (clock skew between hosts); further is `<invalid>`.
#[must_use]
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        return match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return match hours % 24 {
            0 => format!("{}d", hours / 24),
            h => format!("{}d{h}h", hours / 24),
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return match (hours / 24) % 365 {
            0 => format!("{}y", hours / 24 / 365),
            d => format!("{}y{d}d", hours / 24 / 365),
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Seconds since the unix epoch (negative before it).
#[must_use]
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// The age at `now` of something that happened at `then`.
#[must_use]
pub fn since(now: SystemTime, then: SystemTime) -> String {
    human_duration(unix_seconds(now).saturating_sub(unix_seconds(then)))
}

/// The age at `now` of a unix timestamp in seconds; `0` (never set) is `<unknown>`, as kubectl
/// prints a zero timestamp.
#[must_use]
pub fn since_unix(now: SystemTime, then: i64) -> String {
    if then == 0 {
        return UNKNOWN.to_owned();
    }
    human_duration(unix_seconds(now).saturating_sub(then))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const MINUTE: i64 = 60;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    const YEAR: i64 = 365 * DAY;

    #[test]
    fn human_duration_should_match_apimachinery() {
        let cases = [
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (45, "45s"),
            (119, "119s"),
            (2 * MINUTE, "2m"),
            (5 * MINUTE + 3, "5m3s"),
            (9 * MINUTE + 59, "9m59s"),
            (10 * MINUTE, "10m"),
            (10 * MINUTE + 59, "10m"),
            (179 * MINUTE + 59, "179m"),
            (3 * HOUR, "3h"),
            (3 * HOUR + 4 * MINUTE, "3h4m"),
            (3 * HOUR + 4 * MINUTE + 59, "3h4m"),
            (7 * HOUR + 59 * MINUTE, "7h59m"),
            (8 * HOUR, "8h"),
            (47 * HOUR + 59 * MINUTE, "47h"),
            (2 * DAY, "2d"),
            (3 * DAY + 4 * HOUR, "3d4h"),
            (7 * DAY + 23 * HOUR, "7d23h"),
            (8 * DAY, "8d"),
            (400 * DAY, "400d"),
            (2 * YEAR - 1, "729d"),
            (2 * YEAR, "2y"),
            (3 * YEAR + 20 * DAY, "3y20d"),
            (8 * YEAR - 1, "7y364d"),
            (8 * YEAR, "8y"),
            (100 * YEAR + 5 * DAY, "100y"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(human_duration(seconds), expected, "{seconds}s");
        }
    }

    #[test]
    fn since_should_measure_from_now_and_mark_unknown_times() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(since(now, now - Duration::from_secs(303)), "5m3s");
        assert_eq!(since(now, now + Duration::from_secs(30)), "<invalid>");
        assert_eq!(since_unix(now, 1_800_000_000 - 3 * DAY - 4 * HOUR), "3d4h");
        assert_eq!(since_unix(now, 0), "<unknown>");
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
