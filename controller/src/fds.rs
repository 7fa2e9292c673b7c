//! File descriptors: the soft `RLIMIT_NOFILE` is raised to the hard limit at start (1,024 is a
//! common soft default, and an HTTP client holding that many idle connections once stopped every
//! git and Docker call), and the HTTP listener gets only what is left after [`RESERVED`]
//! descriptors for the engine, git, probes and files. rustix's safe `setrlimit` does it (the
//! workspace forbids unsafe code, and rustix is already linked through `tar`).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors kept for everything but HTTP clients: engine connections (one per call in flight
/// plus the pool's idle ones and the event stream), git children (three pipes each), readiness
/// probes, the inotify watch, secret and state files.
pub const RESERVED: u64 = 512;

/// The soft limit is raised no higher than this: children (git, ssh) inherit it, and some
/// programs still loop over every possible descriptor or use `select()`, which cannot go past
/// 1,024. This controller needs far fewer.
pub const CEILING: u64 = 65_536;

/// The smallest HTTP budget: even on a starved host the API answers someone.
const MIN_CONNECTIONS: usize = 16;

/// Raises the soft limit towards the hard one (up to [`CEILING`]); returns the soft limit now
/// in force.
#[must_use]
pub fn raise_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    let soft = limit.current.unwrap_or(u64::MAX);
    let target = limit.maximum.unwrap_or(u64::MAX).min(CEILING);
    if soft >= target {
        return soft;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }) {
        Ok(()) => {
            tracing::debug!(from = soft, to = target, "raised the open files limit");
            target
        }
        Err(e) => {
            tracing::warn!(error = %e, soft, "cannot raise the open files limit");
            soft
        }
    }
}

/// How many HTTP connections may be open at once: `wanted`, or fewer if the limit minus
/// [`RESERVED`] is smaller.
#[must_use]
pub fn connection_budget(limit: u64, wanted: usize) -> usize {
    let available = usize::try_from(limit.saturating_sub(RESERVED)).unwrap_or(usize::MAX);
    if available < wanted {
        tracing::warn!(
            open_files_limit = limit,
            reserved = RESERVED,
            max_connections = available.max(MIN_CONNECTIONS),
            "the open files limit is low: fewer HTTP connections allowed than --max-connections"
        );
    }
    wanted.min(available).max(MIN_CONNECTIONS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_should_leave_the_reserve() {
        assert_eq!(connection_budget(1024, 256), 256);
        assert_eq!(connection_budget(600, 256), 88);
        assert_eq!(connection_budget(256, 256), MIN_CONNECTIONS);
        assert_eq!(connection_budget(65_536, 256), 256);
    }

    #[test]
    fn raise_should_reach_the_hard_limit_or_the_ceiling() {
        // The test process's own limit: raising the soft one is harmless.
        let after = raise_limit();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, Some(after));
        let expected = limit.maximum.unwrap_or(u64::MAX).min(CEILING);
        assert!(after >= expected, "{after} < {expected}");
    }
}
