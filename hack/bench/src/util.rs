//! Small shared pieces: the error type, run ids, durations, statistics, tables and goals.

use std::fmt::{self, Display};
use std::io::Read as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A benchmark failure: a message meant for a human, already carrying its context.
#[derive(Debug)]
pub struct Error(pub String);

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<String> for Error {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self(e.to_string())
    }
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Returns early with a formatted [`Error`].
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::util::Error(format!($($t)*)))
    };
}
pub(crate) use bail;

/// Eight random hex digits from the kernel.
#[must_use]
pub fn random_id() -> String {
    let mut buf = [0u8; 4];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = f.read_exact(&mut buf);
    }
    if buf == [0; 4] {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
        buf = (nanos ^ std::process::id()).to_le_bytes();
    }
    format!("{:08x}", u32::from_le_bytes(buf))
}

/// `1.234 s`.
#[must_use]
pub fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// `1.234 s` from seconds.
#[must_use]
pub fn secs_f(s: f64) -> String {
    format!("{s:.3} s")
}

/// The time of day, UTC (`22:43:34.228Z`), to find a moment in the controller's log.
#[must_use]
pub fn utc_now() -> String {
    utc(SystemTime::now())
}

/// A time of day, UTC (`22:43:34.228Z`).
#[must_use]
pub fn utc(t: SystemTime) -> String {
    let now = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let s = now.as_secs() % 86_400;
    format!("{:02}:{:02}:{:02}.{:03}Z", s / 3600, s / 60 % 60, s % 60, now.subsec_millis())
}

/// A ratio with two decimals and an `x`.
#[must_use]
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 { format!("{:.2}x", a / b) } else { "n/a".to_owned() }
}

/// Parses `500ms`, `2s`, `1m`, `1m30s`.
///
/// # Errors
/// Not a duration of that form.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty duration".to_owned());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let value: f64 = num.parse().map_err(|_| format!("bad duration {text:?} (e.g. 2s, 500ms, 1m30s)"))?;
        let scale = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("bad duration unit {unit:?} in {text:?} (ms, s, m, h)")),
        };
        total += Duration::from_secs_f64(value * scale);
        rest = tail;
    }
    Ok(total)
}

/// A duration as the controller's flags write it (`2s`, `500ms`).
#[must_use]
pub fn flag_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// The median (mean of the middle two for an even count); 0 when empty.
#[must_use]
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => f64::midpoint(v[n / 2 - 1], v[n / 2]),
    }
}

/// The largest value; 0 when empty.
#[must_use]
pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// The `p`-th percentile (0-100) by nearest rank: the smallest value with at least `p` % of
/// the values at or below it; 0 when empty.
#[must_use]
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v: Vec<f64> = values.to_vec();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// `12.34 ms` from seconds.
#[must_use]
pub fn ms_f(s: f64) -> String {
    format!("{:.2} ms", s * 1000.0)
}

/// `b - a` in seconds, negative when `b` is earlier.
#[must_use]
pub fn signed_secs(a: SystemTime, b: SystemTime) -> f64 {
    match b.duration_since(a) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Parses an RFC 3339 UTC time as the controller logs it (`2026-11-26T23:15:53.093192Z`,
/// any number of fractional digits, `Z` or `+00:00`).
#[must_use]
pub fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z').or_else(|| text.strip_suffix("+00:00"))?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(str::parse::<i64>);
    let (year, month, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(str::parse::<u64>);
    let (h, m, s) = (t.next()?.ok()?, t.next()?.ok()?, t.next()?.ok()?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{:0<9}", &frac[..frac.len().min(9)]).parse().ok()?;
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    Some(UNIX_EPOCH + Duration::new(days * 86_400 + h * 3600 + m * 60 + s, nanos))
}

/// A plain-text table: first column left-aligned, the others right-aligned.
#[derive(Debug, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    left: usize,
}

impl Table {
    /// A table with these column headers.
    #[must_use]
    pub fn new(headers: &[&str]) -> Self {
        Self { headers: headers.iter().map(|h| (*h).to_owned()).collect(), rows: Vec::new(), left: 1 }
    }

    /// Left-aligns the first `n` columns (default 1).
    #[must_use]
    pub fn left(mut self, n: usize) -> Self {
        self.left = n;
        self
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, with a title line.
    #[must_use]
    pub fn render(&self, title: &str) -> String {
        let cols = self.headers.len().max(self.rows.iter().map(Vec::len).max().unwrap_or(0));
        let mut widths = vec![0; cols];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let line = |row: &[String]| {
            let mut out = String::from("  ");
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                let gap = if i == 0 { "" } else { "  " };
                if i < self.left {
                    out.push_str(&format!("{gap}{cell:<width$}"));
                } else {
                    out.push_str(&format!("{gap}{cell:>width$}"));
                }
            }
            out.trim_end().to_owned() + "\n"
        };
        let mut out = format!("{title}\n");
        out.push_str(&line(&self.headers));
        let total: usize = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        out.push_str(&format!("  {}\n", "-".repeat(total)));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }

    /// Prints the table with a title line and a blank line after.
    pub fn print(&self, title: &str) {
        println!("{}", self.render(title));
    }
}

/// One goal of the issue and what this run measured for it.
#[derive(Clone, Debug)]
pub struct Goal {
    /// The benchmark.
    pub bench: String,
    /// The goal, e.g. `controller/baseline <= 1.0 at N=50`.
    pub goal: String,
    /// What was measured.
    pub measured: String,
    /// Whether the goal was met.
    pub pass: bool,
}

impl Goal {
    /// A goal.
    #[must_use]
    pub fn new(bench: &str, goal: impl Into<String>, measured: impl Into<String>, pass: bool) -> Self {
        Self { bench: bench.to_owned(), goal: goal.into(), measured: measured.into(), pass }
    }

    /// A benchmark that failed to produce its figure.
    #[must_use]
    pub fn error(bench: &str, goal: &str, error: &Error) -> Self {
        let first = error.0.lines().next().unwrap_or_default();
        Self::new(bench, goal, format!("ERROR: {first}"), false)
    }
}

/// Prints the final summary block, one `goal: ... measured: ... PASS/MISS` line per goal.
pub fn print_summary(title: &str, goals: &[Goal]) {
    let bench_w = goals.iter().map(|g| g.bench.len()).max().unwrap_or(0);
    let goal_w = goals.iter().map(|g| g.goal.chars().count()).max().unwrap_or(0);
    let measured_w = goals.iter().map(|g| g.measured.chars().count()).max().unwrap_or(0);
    println!("== {title}");
    for g in goals {
        println!(
            "{:<bench_w$}  goal: {:<goal_w$}  measured: {:<measured_w$}  {}",
            g.bench,
            g.goal,
            g.measured,
            if g.pass { "PASS" } else { "MISS" }
        );
    }
    let passed = goals.iter().filter(|g| g.pass).count();
    println!("{passed}/{} goals met\n", goals.len());
}

/// Removes ANSI escape sequences (colored logs).
#[must_use]
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_should_parse_like_the_controller_flags() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("2x").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(flag_duration(Duration::from_secs(30)), "30s");
        assert_eq!(flag_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn statistics_should_handle_even_odd_and_empty() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < 1e-9);
        assert!((median(&[4.0, 1.0, 2.0, 3.0]) - 2.5).abs() < 1e-9);
        assert!(median(&[]).abs() < 1e-9);
        assert!((max(&[1.0, 5.0, 2.0]) - 5.0).abs() < 1e-9);
    }

    #[test]
    fn percentiles_should_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!((percentile(&v, 99.0) - 99.0).abs() < 1e-9);
        assert!((percentile(&v, 100.0) - 100.0).abs() < 1e-9);
        assert!((percentile(&v, 50.0) - 50.0).abs() < 1e-9);
        assert!((percentile(&[3.0, 1.0, 2.0], 99.0) - 3.0).abs() < 1e-9);
        assert!((percentile(&[7.0], 0.0) - 7.0).abs() < 1e-9);
        assert!(percentile(&[], 99.0).abs() < 1e-9);
    }

    #[test]
    fn log_timestamps_should_parse_to_unix_time() {
        let t = parse_rfc3339("2026-11-26T23:15:53.093192Z").unwrap();
        let d = t.duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(d.as_secs(), 1_795_734_953);
        assert_eq!(d.subsec_nanos(), 93_192_000);
        let epoch = parse_rfc3339("1970-01-01T00:00:00Z").unwrap();
        assert_eq!(epoch, UNIX_EPOCH);
        let leap = parse_rfc3339("2024-02-29T12:00:00.5+00:00").unwrap();
        assert_eq!(leap.duration_since(UNIX_EPOCH).unwrap().as_millis(), 1_709_208_000_500);
        assert!(parse_rfc3339("2026-11-26 23:15:53Z").is_none());
        assert!(parse_rfc3339("INFO").is_none());
        assert!((signed_secs(t, epoch) + 1_795_734_953.093_192).abs() < 1e-3);
    }

    #[test]
    fn tables_should_align_columns() {
        let mut t = Table::new(&["what", "n"]);
        t.row(vec!["a".into(), "10".into()]);
        t.row(vec!["longer".into(), "1".into()]);
        let text = t.render("title");
        assert_eq!(text, "title\n  what     n\n  ----------\n  a       10\n  longer   1\n");
    }

    #[test]
    fn ansi_should_be_stripped() {
        assert_eq!(strip_ansi("\u{1b}[33m WARN\u{1b}[0m x"), " WARN x");
    }
}
