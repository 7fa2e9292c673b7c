//! CPU time and memory of a process, and TCP counters of its network namespace, from `/proc`.

use std::process::Command;
use std::sync::OnceLock;

use crate::util::{Error, Result};

/// Clock ticks per second (`getconf CLK_TCK`), 100 when it cannot be asked.
#[must_use]
pub fn clk_tck() -> u64 {
    static TCK: OnceLock<u64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .filter(|&t| t > 0)
            .unwrap_or(100)
    })
}

/// CPU times of a process, in clock ticks, plus the on-CPU nanoseconds of its live threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cpu {
    /// User time.
    pub utime: u64,
    /// System time.
    pub stime: u64,
    /// User time of waited-for children.
    pub cutime: u64,
    /// System time of waited-for children.
    pub cstime: u64,
    /// Sum of `/proc/<pid>/task/*/schedstat` run times (ns): finer than ticks, but threads that
    /// exited in between are missing.
    pub sched_ns: Option<u64>,
}

impl Cpu {
    /// utime + stime in seconds.
    #[must_use]
    pub fn own_secs(&self) -> f64 {
        ticks_to_secs(self.utime + self.stime)
    }

    /// cutime + cstime in seconds.
    #[must_use]
    pub fn children_secs(&self) -> f64 {
        ticks_to_secs(self.cutime + self.cstime)
    }

    /// The difference `self - earlier`.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            utime: self.utime.saturating_sub(earlier.utime),
            stime: self.stime.saturating_sub(earlier.stime),
            cutime: self.cutime.saturating_sub(earlier.cutime),
            cstime: self.cstime.saturating_sub(earlier.cstime),
            sched_ns: match (self.sched_ns, earlier.sched_ns) {
                (Some(a), Some(b)) => Some(a.saturating_sub(b)),
                _ => None,
            },
        }
    }
}

#[allow(clippy::cast_precision_loss)]
fn ticks_to_secs(ticks: u64) -> f64 {
    ticks as f64 / clk_tck() as f64
}

/// Reads `/proc/<pid>/stat` (and the threads' schedstat).
///
/// # Errors
/// The process is gone or the file is not what the kernel writes.
pub fn cpu(pid: u32) -> Result<Cpu> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| Error(format!("cannot read /proc/{pid}/stat: {e}")))?;
    let mut cpu = parse_stat(&text).ok_or_else(|| Error(format!("unexpected /proc/{pid}/stat: {text}")))?;
    cpu.sched_ns = sched_ns(pid);
    Ok(cpu)
}

/// The CPU times in a `stat` line (fields 14-17: utime, stime, cutime, cstime).
#[must_use]
pub fn parse_stat(text: &str) -> Option<Cpu> {
    // The command name (field 2) may hold spaces and parentheses: fields are counted after the
    // last ')'; the first one after it is field 3.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    Some(Cpu { utime: field(14)?, stime: field(15)?, cutime: field(16)?, cstime: field(17)?, sched_ns: None })
}

fn sched_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let path = entry.ok()?.path().join("schedstat");
        let text = std::fs::read_to_string(path).ok()?;
        total += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// One thread's on-CPU time and wake-ups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Task {
    /// Thread name (`comm`).
    pub name: String,
    /// On-CPU nanoseconds (schedstat).
    pub sched_ns: u64,
    /// Voluntary context switches (each one a sleep, so roughly the wake-ups).
    pub switches: u64,
}

/// The threads of a process by thread id.
#[must_use]
pub fn tasks(pid: u32) -> std::collections::BTreeMap<u32, Task> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|t| t.parse().ok()) else { continue };
        let path = entry.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default().trim().to_owned();
        let sched_ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|t| t.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let switches = std::fs::read_to_string(path.join("status"))
            .ok()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?.trim().parse().ok())
            .unwrap_or(0);
        out.insert(tid, Task { name, sched_ns, switches });
    }
    out
}

/// Per thread name: (on-CPU ns, voluntary switches) between two [`tasks`] snapshots, busiest
/// first. Threads that appeared in between count from zero; threads that exited are missing.
#[must_use]
pub fn tasks_delta(
    before: &std::collections::BTreeMap<u32, Task>,
    after: &std::collections::BTreeMap<u32, Task>,
) -> Vec<(String, u64, u64, usize)> {
    let mut by_name: std::collections::BTreeMap<String, (u64, u64, usize)> = std::collections::BTreeMap::new();
    for (tid, task) in after {
        let base = before.get(tid).cloned().unwrap_or_default();
        let entry = by_name.entry(task.name.clone()).or_default();
        entry.0 += task.sched_ns.saturating_sub(base.sched_ns);
        entry.1 += task.switches.saturating_sub(base.switches);
        entry.2 += 1;
    }
    let mut out: Vec<(String, u64, u64, usize)> = by_name.into_iter().map(|(n, (c, s, k))| (n, c, s, k)).collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// Prints a per-thread table of a [`tasks_delta`] over `window` (and `periods` resyncs, if any).
pub fn print_tasks(title: &str, delta: &[(String, u64, u64, usize)], window: std::time::Duration, periods: usize) {
    let secs = window.as_secs_f64().max(1e-9);
    let mut table =
        crate::util::Table::new(&["thread", "threads", "CPU ms", "CPU % of a core", "wake-ups/s", "CPU ms/resync"]);
    for (name, ns, switches, count) in delta {
        table.row(vec![
            name.clone(),
            count.to_string(),
            format!("{:.2}", *ns as f64 / 1e6),
            format!("{:.3} %", *ns as f64 / 1e9 / secs * 100.0),
            format!("{:.1}", *switches as f64 / secs),
            if periods > 0 { format!("{:.2}", *ns as f64 / 1e6 / periods as f64) } else { "-".to_owned() },
        ]);
    }
    table.print(title);
}

/// `VmRSS` of a process, KiB.
///
/// # Errors
/// The process is gone.
pub fn rss_kib(pid: u32) -> Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| Error(format!("cannot read /proc/{pid}/status: {e}")))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| Error(format!("no VmRSS in /proc/{pid}/status")))
}

/// The number of threads of a process.
#[must_use]
pub fn threads(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|v| v.trim().parse().ok())
}

/// The 1-minute load average.
#[must_use]
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// TCP segments retransmitted in the network namespace of process `pid` (`RetransSegs` of
/// `/proc/<pid>/net/snmp`): a container's own TCP stack, e.g. a proxy's connections to its
/// upstreams. `None` when it cannot be read.
#[must_use]
pub fn tcp_retransmits(pid: u32) -> Option<u64> {
    parse_retransmits(&std::fs::read_to_string(format!("/proc/{pid}/net/snmp")).ok()?)
}

fn parse_retransmits(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let at = names.split_whitespace().position(|n| n == "RetransSegs")?;
    values.split_whitespace().nth(at)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retransmits_should_be_read_from_the_tcp_lines() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin ActiveOpens RetransSegs InErrs\n\
                    Tcp: 1 200 17 42 0\nUdp: InDatagrams\nUdp: 3\n";
        assert_eq!(parse_retransmits(snmp), Some(42));
        assert_eq!(parse_retransmits("Ip: x\nIp: 1\n"), None);
    }

    #[test]
    fn stat_lines_should_parse_even_with_odd_names() {
        let line = "1234 (meme (x) ctl) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 3 4 20 0 9 0 100 0 0";
        let cpu = parse_stat(line).unwrap();
        assert_eq!((cpu.utime, cpu.stime, cpu.cutime, cpu.cstime), (250, 75, 3, 4));
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn this_process_should_be_readable() {
        let pid = std::process::id();
        assert!(cpu(pid).is_ok());
        assert!(rss_kib(pid).unwrap() > 0);
        assert!(clk_tck() > 0);
    }
}
