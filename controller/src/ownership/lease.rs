//! A stack's lease on this host: the file `<lease dir>/<stack>.lease`, on which the owning
//! controller holds an exclusive `flock` for as long as it runs. The file records who took it
//! ([`Holder`]) and its modification time is the owner's heartbeat, so that the lease outlives a
//! restart of its owner by a time to live (TTL) but not a controller stopped for good.
//!
//! Why a lock file, of the candidates tried for "is the owner live?" on one host without a
//! registry:
//! - `flock` is released by the kernel when its process dies, however it dies (SIGKILL, OOM,
//!   panic): "live" is exactly "holds the lock", with no clock and no timeout to guess, and
//!   taking it is atomic. It costs no engine call, so the no-op resync stays one list call. It
//!   only sees controllers that share the directory: keep the default (or one `--lease-dir`)
//!   for every controller of a host, including one run in a container (bind-mount it).
//! - A heartbeat label on a Docker object was the other candidate (it would also see a
//!   controller in another mount namespace): Docker cannot change a label in place, so a
//!   heartbeat means re-creating a container (or renaming one) every few seconds, an engine
//!   call per beat, and "dead" is only ever "silent for longer than a guess".
//! - Labels alone (`pro.memeit.instance` on what each controller creates) say who *made* a
//!   container, not whether its maker still runs; they are recorded for people and tooling.
//!
//! The TTL is on top of the lock: a stack whose owner is not running is taken by another
//! instance only once the owner's last heartbeat is older than the TTL, so a restart (a
//! crash, an upgrade) keeps the stack with its owner. The directory is created `0700`: anyone who
//! can open a lease file can hold its lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// Who holds (or last held) a lease: what a refused controller tells its operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The instance name.
    pub instance: String,
    /// Its process id when it took the lease.
    pub pid: u32,
    /// The repository it follows.
    pub repo: String,
    /// The manifests folder it follows.
    pub path: String,
    /// When it took the lease, unix seconds.
    pub since: u64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "instance {} (pid {}, {} --path {})", self.instance, self.pid, self.repo, self.path)
    }
}

/// Why a lease was not given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The stack.
    pub stack: String,
    /// Who holds it, when the file says so.
    pub holder: Option<Holder>,
    /// A live process holds the lock (else: its owner is not running but was seen within the TTL).
    pub live: bool,
    /// When not live: how long until the lease expires.
    pub expires_in: Option<Duration>,
    /// The lease file, for the operator's hand-over.
    pub file: PathBuf,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let holder = self.holder.as_ref().map_or_else(|| "another controller".to_owned(), Holder::to_string);
        if self.live {
            write!(
                f,
                "stack {} is managed by {holder}, which is running: this controller changes nothing in it. \
                 Run one controller per stack; to hand the stack over, stop that controller, then remove {} \
                 (or wait for its lease to expire)",
                self.stack,
                self.file.display()
            )
        } else {
            let expires = self.expires_in.map_or_else(String::new, |d| format!(" in {}s", d.as_secs().max(1)));
            write!(
                f,
                "stack {} belongs to {holder}, which stopped recently: its lease expires{expires}, then this \
                 controller takes the stack over (to hand over at once, remove {})",
                self.stack,
                self.file.display()
            )
        }
    }
}

/// A lease held: the open, locked file. Dropping it unlocks (the file stays, with the holder
/// and heartbeat, so that the owner keeps the stack through a restart).
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Who held it before, when another instance did (a take-over).
    pub previous: Option<Holder>,
}

impl Lease {
    /// Whether the lease file at its path is still the one locked (an operator who removed it
    /// handed the stack over).
    #[must_use]
    pub fn still_held(&self) -> bool {
        std::fs::metadata(&self.path).is_ok_and(|m| m.dev() == self.dev && m.ino() == self.ino)
    }

    /// The heartbeat: touches the file. `false` when the lease was lost.
    ///
    /// # Errors
    /// The file cannot be touched.
    pub fn renew(&self) -> std::io::Result<bool> {
        if !self.still_held() {
            return Ok(false);
        }
        self.file.set_modified(SystemTime::now())?;
        Ok(true)
    }

    /// Gives the lease up for good: removes the file (when still ours), then unlocks.
    pub fn release(self) {
        if self.still_held()
            && let Err(e) = std::fs::remove_file(&self.path)
        {
            tracing::warn!(file = %self.path.display(), error = %e, "cannot remove a released lease file");
        }
    }
}

/// The lease file of `stack` in `dir`.
#[must_use]
pub fn file_of(dir: &Path, stack: &str) -> PathBuf {
    dir.join(format!("{stack}.lease"))
}

/// Tries to take the lease of `stack` for `me`, without waiting.
///
/// # Errors
/// The lease file cannot be opened, locked, read or written.
pub fn acquire(dir: &Path, stack: &str, me: &Holder, ttl: Duration) -> std::io::Result<Result<Lease, Refusal>> {
    let path = file_of(dir, stack);
    // Twice at most: a file removed between the open and the lock is opened again.
    for _ in 0..3 {
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).ok().and_then(|text| parse(&text));
                return Ok(Err(Refusal { stack: stack.to_owned(), holder, live: true, expires_in: None, file: path }));
            }
            Err(TryLockError::Error(e)) => return Err(e),
        }
        let locked = file.metadata()?;
        if !std::fs::metadata(&path).is_ok_and(|m| m.dev() == locked.dev() && m.ino() == locked.ino()) {
            continue;
        }
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let previous = parse(&text).filter(|h| h.instance != me.instance);
        if let Some(holder) = &previous {
            let age = locked.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).unwrap_or_default();
            if age < ttl {
                return Ok(Err(Refusal {
                    stack: stack.to_owned(),
                    holder: Some(holder.clone()),
                    live: false,
                    expires_in: Some(ttl - age),
                    file: path,
                }));
            }
        }
        let record = serde_json::to_vec(me).map_err(std::io::Error::other)?;
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&record)?;
        file.write_all(b"\n")?;
        file.sync_data()?;
        file.set_modified(SystemTime::now())?;
        return Ok(Ok(Lease { file, path, dev: locked.dev(), ino: locked.ino(), previous }));
    }
    Err(std::io::Error::other(format!("{}: replaced while being locked, three times", path.display())))
}

fn parse(text: &str) -> Option<Holder> {
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(instance: &str) -> Holder {
        Holder { instance: instance.to_owned(), pid: 1, repo: "/srv/repo".to_owned(), path: "m".to_owned(), since: 0 }
    }

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_held_lease_should_be_refused_to_anyone_else_and_name_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lease = acquire(dir.path(), "s", &holder("a"), TTL).unwrap().unwrap();
        let refusal = acquire(dir.path(), "s", &holder("b"), TTL).unwrap().unwrap_err();
        assert!(refusal.live);
        assert_eq!(refusal.holder, Some(holder("a")));
        let message = refusal.to_string();
        assert!(message.contains("managed by instance a (pid 1, /srv/repo --path m), which is running"), "{message}");
        assert!(message.contains("s.lease"), "{message}");
        // Even the same instance started twice is refused: one process per lease.
        assert!(acquire(dir.path(), "s", &holder("a"), TTL).unwrap().unwrap_err().live);
        // Another stack is another lease.
        assert!(acquire(dir.path(), "t", &holder("b"), TTL).unwrap().is_ok());
        assert!(lease.renew().unwrap());
    }

    #[test]
    fn a_lease_should_stay_with_its_stopped_owner_until_the_ttl_then_go() {
        let dir = tempfile::tempdir().unwrap();
        drop(acquire(dir.path(), "s", &holder("a"), TTL).unwrap().unwrap());
        // The owner stopped (unlocked) a moment ago: another instance waits for the TTL...
        let refusal = acquire(dir.path(), "s", &holder("b"), TTL).unwrap().unwrap_err();
        assert!(!refusal.live);
        assert!(refusal.expires_in.is_some_and(|d| d > Duration::from_secs(50)), "{refusal:?}");
        assert!(refusal.to_string().contains("which stopped recently"), "{refusal}");
        // ...the owner itself, restarted, takes it back at once...
        drop(acquire(dir.path(), "s", &holder("a"), TTL).unwrap().unwrap());
        // ...and once the heartbeat is older than the TTL, the other instance takes it over.
        let taken = acquire(dir.path(), "s", &holder("b"), Duration::ZERO).unwrap().unwrap();
        assert_eq!(taken.previous, Some(holder("a")));
    }

    #[test]
    fn a_removed_lease_file_should_hand_the_stack_over() {
        let dir = tempfile::tempdir().unwrap();
        let old = acquire(dir.path(), "s", &holder("a"), TTL).unwrap().unwrap();
        std::fs::remove_file(file_of(dir.path(), "s")).unwrap();
        assert!(!old.still_held());
        assert!(!old.renew().unwrap(), "the old owner learns it lost the lease");
        let new = acquire(dir.path(), "s", &holder("b"), TTL).unwrap().unwrap();
        assert_eq!(new.previous, None);
        // The old owner's release does not remove the new owner's file.
        old.release();
        assert!(new.still_held());
        new.release();
        assert!(!file_of(dir.path(), "s").exists());
    }
}
