//! Folder locks: `flock(2)` on the folder itself, shared for readers and exclusive for writers,
//! so that a reader never sees half of a batch and recovery never touches a live writer's files.
//!
//! The lock is taken on the folder's own file descriptor, so no lock file is created (a reader
//! changes nothing in the tree). A lock is tied to the process: when a writer dies, the kernel
//! releases it, which is how recovery tells a dead writer from a live one (no PID guessing).
//! Within one process, locks on the same folder are shared through a registry, so a command
//! that holds the tree lock can still write a batch into it.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rustix::fs::FlockOperation;

use super::sys;
use crate::{Error, Refusal, Step};

/// How long a command waits for another kubepki process to release a folder, unless the
/// environment variable `KUBEPKI_LOCK_WAIT` gives another number of seconds ([`lock_wait`]).
pub const LOCK_WAIT: Duration = Duration::from_secs(60);

/// How long a command waits for a folder lock: `KUBEPKI_LOCK_WAIT` seconds if set to a whole
/// number, else [`LOCK_WAIT`].
pub fn lock_wait() -> Duration {
    std::env::var("KUBEPKI_LOCK_WAIT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(LOCK_WAIT, Duration::from_secs)
}

/// Shared (readers) or exclusive (writers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockMode {
    /// Many readers at once; no writer.
    Shared,
    /// One writer; no reader.
    Exclusive,
}

pub(super) struct Locked {
    pub(super) fd: OwnedFd,
    pub(super) path: PathBuf,
    key: (u64, u64),
    exclusive: AtomicBool,
    /// Recovery already ran in this folder under this lock.
    pub(super) recovered: AtomicBool,
}

/// A lock held on a folder; released when the last handle to it in this process is dropped.
#[derive(Clone)]
pub struct FolderLock(pub(super) Arc<Locked>);

impl std::fmt::Debug for FolderLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderLock")
            .field("path", &self.0.path)
            .field("exclusive", &self.is_exclusive())
            .finish()
    }
}

impl FolderLock {
    /// The folder, as it was named when locked.
    pub fn path(&self) -> &Path {
        &self.0.path
    }

    /// Whether this process holds the lock exclusively.
    pub fn is_exclusive(&self) -> bool {
        self.0.exclusive.load(Ordering::SeqCst)
    }

    pub(super) fn fd(&self) -> BorrowedFd<'_> {
        self.0.fd.as_fd()
    }
}

/// A folder's identity (device, inode) and the lock this process holds on it.
type Entry = ((u64, u64), Weak<Locked>);

static REGISTRY: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn registered(key: (u64, u64)) -> Option<Arc<Locked>> {
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|(_, w)| w.strong_count() > 0);
    reg.iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
}

/// The deepest folder locked in this process that `dir` is inside of (by the path it was
/// locked under), with a duplicate of its handle and the rest of `dir` below it. Folders
/// below it are then opened through that handle, so a link swapped in for it later is not
/// followed.
pub(super) fn held_ancestor(dir: &Path) -> Option<(OwnedFd, PathBuf)> {
    let reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    let best = reg
        .iter()
        .filter_map(|(_, w)| w.upgrade())
        .filter(|l| dir.starts_with(&l.path))
        .max_by_key(|l| l.path.components().count())?;
    let rest = dir.strip_prefix(&best.path).ok()?.to_owned();
    let fd = rustix::io::dup(&best.fd).ok()?;
    Some((fd, rest))
}

/// Names of temporary files and journals this process is using now. Recovery leaves exactly
/// these alone: the PID in a name says nothing (in a container every run is PID 1).
static LIVE: Mutex<Vec<std::ffi::OsString>> = Mutex::new(Vec::new());

/// Marks `name` as in use by this process (`live = true`) or no longer (`false`).
pub(super) fn mark_live(name: &std::ffi::OsStr, live: bool) {
    let mut l = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    if live {
        l.push(name.to_owned());
    } else if let Some(i) = l.iter().position(|n| n == name) {
        l.swap_remove(i);
    }
}

/// Whether this process is using `name` now.
pub(super) fn is_live(name: &std::ffi::OsStr) -> bool {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|n| n == name)
}

/// Opens the existing folder `dir`: below a folder this process holds locked (named by the
/// path it was locked under), through that folder's handle without following links, so the
/// path keeps meaning the folder that was checked; elsewhere as named.
pub(super) fn open_existing(dir: &Path) -> std::io::Result<OwnedFd> {
    let plain = |p: &Path| {
        p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    };
    match held_ancestor(dir).filter(|(_, rest)| plain(rest)) {
        Some((mut fd, rest)) => {
            for name in rest.iter() {
                fd = sys::open_dir_at(&fd, name)?;
            }
            Ok(fd)
        }
        None => sys::open_dir(dir),
    }
}

/// Locks the folder `path` (which must exist), waiting up to [`LOCK_WAIT`] for another process
/// to release it.
pub fn lock_folder(path: &Path, mode: LockMode) -> Result<FolderLock, Error> {
    let fd = open_existing(path).map_err(|source| Error::Step {
        path: path.to_owned(),
        step: Step::OpenFolder,
        source,
    })?;
    lock_fd(fd, path, mode)
}

/// Locks the already opened folder `fd`.
pub(super) fn lock_fd(fd: OwnedFd, path: &Path, mode: LockMode) -> Result<FolderLock, Error> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_owned(),
        source,
    };
    let key = sys::identity(&rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?);
    if let Some(held) = registered(key) {
        if mode == LockMode::Exclusive && !held.exclusive.load(Ordering::SeqCst) {
            // flock(2) cannot upgrade atomically (a failed try drops the shared lock): a
            // process that reads a folder first and then writes it takes it for writing from
            // the start.
            return Err(Error::Refused {
                path: path.to_owned(),
                reason: Refusal::HeldForReading,
            });
        }
        return Ok(FolderLock(held));
    }
    let op = match mode {
        LockMode::Shared => FlockOperation::NonBlockingLockShared,
        LockMode::Exclusive => FlockOperation::NonBlockingLockExclusive,
    };
    wait_for(fd.as_fd(), op, path)?;
    let mut reg = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    // Another thread of this process may have locked the same folder meanwhile.
    if let Some(held) = reg
        .iter()
        .find(|(k, _)| *k == key)
        .and_then(|(_, w)| w.upgrade())
        && (mode == LockMode::Shared || held.exclusive.load(Ordering::SeqCst))
    {
        return Ok(FolderLock(held));
    }
    let locked = Arc::new(Locked {
        fd,
        path: path.to_owned(),
        key,
        exclusive: AtomicBool::new(mode == LockMode::Exclusive),
        recovered: AtomicBool::new(false),
    });
    reg.retain(|(k, w)| w.strong_count() > 0 && *k != locked.key);
    reg.push((key, Arc::downgrade(&locked)));
    Ok(FolderLock(locked))
}

fn wait_for(fd: BorrowedFd<'_>, op: FlockOperation, path: &Path) -> Result<(), Error> {
    let start = Instant::now();
    let wait = lock_wait();
    let mut pause = Duration::from_millis(1);
    loop {
        match rustix::fs::flock(fd, op) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::WOULDBLOCK) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(Error::Step {
                    path: path.to_owned(),
                    step: Step::LockFolder,
                    source: e.into(),
                });
            }
        }
        if start.elapsed() >= wait {
            return Err(Error::Busy {
                path: path.to_owned(),
                waited: wait,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}
