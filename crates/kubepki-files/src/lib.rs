//! Crash-safe file writing, folder locks and bounded file reading.
//!
//! Every file is first written to a temporary file in its own folder, created with its final
//! mode (never wider; `O_EXCL`, never through a link), made durable, then linked into place (or
//! renamed, for a batch that replaces) and the folder fsynced. A batch makes all its temporary
//! files durable at once, usually with one `syncfs(2)` per file system rather than one `fsync`
//! per file (see [`FileBatch::commit`]); no file is linked or renamed before that returns. A
//! [`FileBatch`] does this for several files as one unit: if any step fails, every file the
//! batch created is removed and pre-existing files are untouched. Every step acts on the folder
//! through the handle that was opened when the batch first staged a file there
//! (`openat`/`linkat`/`renameat`/`unlinkat`), so swapping the folder for a link halfway changes
//! nothing. While a batch writes into a folder it
//! holds an exclusive lock on it ([`lock_folder`]); readers take a shared one. If the process is
//! killed while files are moved into place, a journal lets the next writer complete the batch
//! ([`recover`]); readers only report it ([`pending`]).
//!
//! Every error is an [`Error`] naming the file or folder at fault; a failed system call is its
//! `source`, a refusal a [`Refusal`] (`docs/architecture.md`, "Writing files").
//!
//! ```
//! use kubepki_files::{Error, FileBatch, MODE_PUBLIC, read_limited};
//!
//! let dir = std::env::temp_dir().join(format!("kubepki-files-doc-{}", std::process::id()));
//! let mut batch = FileBatch::new();
//! batch.stage(&dir.join("ca.crt"), b"certificate", MODE_PUBLIC)?;
//! batch.commit()?; // both durable and in place, or neither
//! assert_eq!(&read_limited(&dir.join("ca.crt"))?[..], b"certificate");
//!
//! let mut again = FileBatch::new(); // never overwrites unless `FileBatch::overwriting`
//! let refused = again.stage(&dir.join("ca.crt"), b"other", MODE_PUBLIC);
//! assert!(matches!(refused, Err(Error::Exists { .. })));
//! # std::fs::remove_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
//! # Ok::<(), Error>(())
//! ```

#![forbid(unsafe_code)]

mod error;
mod lock;
mod recover;
mod sys;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::FileType;
use zeroize::Zeroizing;

pub use lock::{FolderLock, LOCK_WAIT, LockMode, lock_folder, lock_wait};
pub use recover::{lock_for_reading, pending, recover};

pub use error::{Error, JournalStep, Refusal, Step};
use kubepki_keys::pem::MAX_INPUT_LEN;
use kubepki_keys::{hex, sha256};

/// Mode for private keys, kubeconfigs and `sa.pub` (kubeadm writes them 0600).
pub const MODE_SECRET: u32 = 0o600;
/// Mode for certificates.
pub const MODE_PUBLIC: u32 = 0o644;

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads a file of at most [`MAX_INPUT_LEN`] bytes (larger files are refused without being
/// read). Only regular files are read: a FIFO, device or socket is refused without blocking.
pub fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let io = io_err(path);
    // Look before opening: opening a device (a link to /dev/... planted in a tree) can have
    // effects of its own, so only a regular file is ever opened.
    let before = rustix::fs::stat(path).map_err(|e| io(e.into()))?;
    if sys::kind(&before) != FileType::RegularFile {
        return Err(Error::Refused {
            path: path.to_owned(),
            reason: Refusal::NotRegularFile {
                kind: sys::kind_name(sys::kind(&before)),
            },
        });
    }
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
    let kind = sys::kind(&st);
    if kind != FileType::RegularFile {
        return Err(Error::Refused {
            path: path.to_owned(),
            reason: Refusal::NotRegularFile {
                kind: sys::kind_name(kind),
            },
        });
    }
    if sys::identity(&st) != sys::identity(&before) {
        return Err(Error::Refused {
            path: path.to_owned(),
            reason: Refusal::Replaced,
        });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(
        (st.st_size.max(0) as u64).min(MAX_INPUT_LEN as u64) as usize,
    ));
    File::from(fd)
        .take(MAX_INPUT_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(&io)?;
    if buf.len() > MAX_INPUT_LEN {
        return Err(Error::Refused {
            path: path.to_owned(),
            reason: Refusal::TooLarge { max: MAX_INPUT_LEN },
        });
    }
    Ok(buf)
}

/// A folder a batch writes into: its path as given (for messages) and the locked handle that
/// every step uses.
struct Folder {
    path: PathBuf,
    lock: FolderLock,
    journal: Option<OsString>,
}

/// A folder the batch created: removed again (if still empty) when the batch fails.
struct Created {
    parent: Arc<OwnedFd>,
    name: OsString,
}

struct Staged {
    folder: usize,
    name: OsString,
    temp: OsString,
    id: (u64, u64),
    linked: bool,
    /// The temporary name is gone (moved into place): nothing to remove on drop.
    temp_gone: bool,
    /// Overwriting batches: a second name for the file being replaced, kept until the whole
    /// batch is in place so that a failure halfway can put the old files back.
    backup: Option<OsString>,
    /// The rollback could not put the old file back: its second name must stay.
    keep_backup: bool,
    /// The SHA-256 of the contents, for the journal (recovery checks the file against it).
    digest: [u8; 32],
    /// The owner and group to give the file once it is in place
    /// ([`FileBatch::keeping_owner_and_mode`]); the temporary file stays the running user's,
    /// so that recovery can tell it is kubepki's.
    owner: Option<(u32, u32)>,
}

/// Several files written as one unit. Dropping it without [`FileBatch::commit`] removes the
/// temporary files (and the folders it created).
#[derive(Default)]
pub struct FileBatch {
    folders: Vec<Folder>,
    staged: Vec<Staged>,
    overwrite: bool,
    /// Folders this batch created, outermost first.
    created: Vec<Created>,
    committed: bool,
    /// Mode for folders the batch creates; `None` = 0755.
    dir_mode: Option<u32>,
    /// Files recovery completed in this batch's folders before it staged anything.
    recovered: Vec<PathBuf>,
    /// A replaced file keeps its owner, group and mode ([`FileBatch::keeping_owner_and_mode`]).
    keep_attrs: bool,
    /// Every folder of this batch is recovered together with the others
    /// ([`FileBatch::recovered_together`]).
    together: bool,
    /// Tests: the process "died" at a crash point ([`crash_point`]); nothing is cleaned up.
    #[cfg(test)]
    crashed: std::sync::atomic::AtomicBool,
}

impl FileBatch {
    /// A batch that refuses to overwrite existing files.
    pub fn new() -> Self {
        FileBatch::default()
    }

    /// A batch that replaces existing files (atomically, by rename).
    pub fn overwriting() -> Self {
        let mut b = FileBatch::default();
        b.overwrite = true;
        b
    }

    /// For a batch that replaces files in place of the tool that made them (renewal, as kubeadm
    /// rewrites them): a replaced file keeps its owner, group and mode, except that a secret
    /// (staged with [`MODE_SECRET`]) never stays readable by others. Files that did not exist
    /// get the mode they are staged with.
    pub fn keeping_owner_and_mode(mut self) -> Self {
        self.keep_attrs = true;
        self
    }

    /// For a batch whose folders are always recovered together before anything is written
    /// into them — [`recover`] given every one of them, as a command that writes a whole tree
    /// does for its certificate, etcd and kubeconfig folders: a batch over several folders
    /// then makes its journals durable with its files, by the same flush (one flush fewer).
    /// Without it, a batch over several folders arms its journals only once its files are
    /// durable, so that each folder can be recovered alone (by the next batch that writes
    /// into it). A batch in one folder always takes the shorter way.
    pub fn recovered_together(mut self) -> Self {
        self.together = true;
        self
    }

    /// Folders this batch creates get `mode` instead of 0755 (kubeadm makes the CSR folder
    /// 0700).
    pub fn with_dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = Some(mode);
        self
    }

    /// Files that an interrupted earlier batch had left half-moved in this batch's folders and
    /// that were completed when this batch first locked them.
    pub fn recovered(&self) -> &[PathBuf] {
        &self.recovered
    }

    /// Writes `contents` to a temporary file next to `target` with `mode` ([`FileBatch::commit`]
    /// makes it durable, with every other staged file, before any is moved into place).
    /// Creates missing parent folders; they are removed again if the batch fails. The first
    /// file staged in a folder locks it exclusively and completes what an interrupted kubepki
    /// left there.
    pub fn stage(&mut self, target: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
        let Some(name) = target.file_name().map(OsStr::to_owned) else {
            return Err(Error::Refused {
                path: target.to_owned(),
                reason: Refusal::NotAFileName,
            });
        };
        let dir = parent(target);
        let folder = self.folder(&dir)?;
        if self
            .staged
            .iter()
            .any(|s| s.folder == folder && s.name == name)
        {
            return Err(Error::Refused {
                path: target.to_owned(),
                reason: Refusal::NamedTwice,
            });
        }
        let fd = self.folders[folder].lock.fd();
        check_target(fd, &name, target, self.overwrite)?;
        // See `keeping_owner_and_mode`.
        let replaced = if self.overwrite && self.keep_attrs {
            sys::stat_at(fd, &name).map_err(io_err(target))?
        } else {
            None
        };
        let mode = match &replaced {
            Some(old) if mode == MODE_SECRET => (old.st_mode & 0o770) | 0o600,
            Some(old) => old.st_mode & 0o777,
            None => mode,
        };
        let mut rnd = [0u8; 6];
        let mut attempt = 0u32;
        let (temp, file) = loop {
            aws_lc_rs::rand::fill(&mut rnd).map_err(|_| Error::Random)?;
            let temp = recover::temp_name(&name, std::process::id(), &hex(&rnd));
            match sys::create_at(fd, &temp, mode) {
                Ok(f) => {
                    lock::mark_live(&temp, true);
                    break (temp, File::from(f));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(io_err(&dir.join(&temp))(e)),
            }
        };
        let temp_path = dir.join(&temp);
        let io = io_err(&temp_path);
        let st = rustix::fs::fstat(&file).map_err(|e| io(e.into()));
        self.staged.push(Staged {
            folder,
            name,
            temp,
            id: st.as_ref().map(sys::identity).unwrap_or((0, 0)),
            linked: false,
            temp_gone: false,
            backup: None,
            keep_backup: false,
            owner: replaced.as_ref().map(|old| (old.st_uid, old.st_gid)),
            digest: sha256(contents),
        });
        st?;
        // The umask may have narrowed the mode; it never widens it. Set it exactly.
        rustix::fs::fchmod(&file, rustix::fs::Mode::from_raw_mode(mode))
            .map_err(|e| io(e.into()))?;
        let mut file = file;
        // Not flushed here: `commit` flushes every staged file at once before the first is
        // moved into place (see `flush_staged`).
        file.write_all(contents).map_err(&io)?;
        Ok(())
    }

    /// The index of the folder `dir` in this batch: opened (created if missing), locked and
    /// recovered the first time.
    fn folder(&mut self, dir: &Path) -> Result<usize, Error> {
        if let Some(i) = self.folders.iter().position(|f| f.path == dir) {
            return Ok(i);
        }
        let fd = self.open_folder(dir)?;
        let lock = lock::lock_fd(fd, dir, LockMode::Exclusive)?;
        self.recovered
            .extend(recover::recover_locked(&[&lock], false)?);
        // The same folder reached under another name: one handle.
        if let Some(i) = self
            .folders
            .iter()
            .position(|f| Arc::ptr_eq(&f.lock.0, &lock.0))
        {
            return Ok(i);
        }
        self.folders.push(Folder {
            path: dir.to_owned(),
            lock,
            journal: None,
        });
        Ok(self.folders.len() - 1)
    }

    /// Opens `dir`, creating what is missing. Below a folder this process already holds locked
    /// (the tree lock, or a folder of this batch), every step goes through that folder's handle
    /// and never follows a link; elsewhere `dir` is opened as named, from its deepest existing
    /// ancestor down.
    fn open_folder(&mut self, dir: &Path) -> Result<OwnedFd, Error> {
        let plain = |p: &Path| {
            p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        };
        if let Some((base, rest)) = lock::held_ancestor(dir).filter(|(_, r)| plain(r)) {
            return self.open_below(base, dir, &rest);
        }
        let mut below = Vec::new();
        for a in dir.ancestors() {
            match sys::open_dir(a) {
                Ok(fd) => {
                    let rest: PathBuf = below.iter().rev().collect();
                    return if plain(&rest) {
                        self.open_below(fd, dir, &rest)
                    } else {
                        Err(Error::Refused {
                            path: dir.to_owned(),
                            reason: Refusal::DotFolder,
                        })
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match a.file_name() {
                    Some(n) => below.push(n.to_owned()),
                    // `..` or `.` at the end of a missing path: no folder name to create.
                    None => {
                        return Err(Error::Refused {
                            path: dir.to_owned(),
                            reason: Refusal::DotFolder,
                        });
                    }
                },
                Err(e) => {
                    return Err(Error::Step {
                        path: if a.as_os_str().is_empty() {
                            PathBuf::from(".")
                        } else {
                            a.to_owned()
                        },
                        step: Step::OpenFolder,
                        source: e,
                    });
                }
            }
        }
        Err(Error::Refused {
            path: dir.to_owned(),
            reason: Refusal::NoFolderAbove,
        })
    }

    /// Opens (creating where missing) each component of `rest` below `base`, never following a
    /// link; returns the handle of the last one (`dir`).
    fn open_below(&mut self, base: OwnedFd, dir: &Path, rest: &Path) -> Result<OwnedFd, Error> {
        let mut current = Arc::new(base);
        for name in rest.iter() {
            let here = || Error::Refused {
                path: dir.to_owned(),
                reason: Refusal::CannotOpenFolder(name.to_owned()),
            };
            let next = match sys::open_dir_at(&*current, name) {
                Ok(fd) => fd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    match sys::mkdir_at(&*current, name, self.dir_mode.unwrap_or(0o755)) {
                        Ok(()) => self.created.push(Created {
                            parent: Arc::clone(&current),
                            name: name.to_owned(),
                        }),
                        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(e) => {
                            return Err(Error::Step {
                                path: dir.to_owned(),
                                step: Step::CreateFolder(name.to_owned()),
                                source: e,
                            });
                        }
                    }
                    sys::open_dir_at(&*current, name).map_err(|_| here())?
                }
                Err(e) => {
                    return Err(Error::Step {
                        path: dir.to_owned(),
                        step: Step::OpenFolderNoFollow(name.to_owned()),
                        source: e,
                    });
                }
            };
            current = Arc::new(next);
        }
        Arc::try_unwrap(current).or_else(|shared| {
            rustix::io::dup(&*shared).map_err(|e| Error::Io {
                path: dir.to_owned(),
                source: e.into(),
            })
        })
    }

    /// The targets staged so far.
    pub fn targets(&self) -> impl Iterator<Item = PathBuf> + '_ {
        self.staged
            .iter()
            .map(|s| self.folders[s.folder].path.join(&s.name))
    }

    /// Moves every staged file into place: each folder gets its journal (the moves and each
    /// file's digest), then every staged file, however long ago it was staged, is made durable
    /// with the journals (one `syncfs(2)` per file system, or parallel `fsync`s; see
    /// `flush_staged` in the source), then the files are moved (or renamed) into place and
    /// made durable again: two flushes per file system, however many files (three for a batch
    /// over several folders that is not [`FileBatch::recovered_together`]). On failure, files this batch put in place are
    /// removed again and the error is returned; nothing pre-existing is changed unless the
    /// batch is [`FileBatch::overwriting`] (where a replaced file is replaced atomically).
    pub fn commit(self) -> Result<(), Error> {
        self.commit_keep().map(|_| ())
    }

    /// Like [`FileBatch::commit`], but the files can still be taken back while the returned
    /// value lives ([`Committed::undo`]); the batch's folders stay locked until then. Only for
    /// a batch that does not overwrite (there is nothing to put back otherwise).
    pub fn commit_undoable(self) -> Result<Committed, Error> {
        if self.overwrite {
            return Err(Error::Refused {
                path: self.targets().next().unwrap_or_default(),
                reason: Refusal::NotUndoable,
            });
        }
        self.commit_keep()
    }

    fn commit_keep(mut self) -> Result<Committed, Error> {
        if let Err(e) = self.commit_inner() {
            if !self.crashed() {
                self.roll_back();
            }
            return Err(e);
        }
        self.committed = true;
        Ok(Committed {
            folders: self.folders.iter().map(|f| f.lock.clone()).collect(),
            files: self
                .staged
                .iter()
                .map(|s| (s.folder, s.name.clone(), s.id))
                .collect(),
            created: std::mem::take(&mut self.created),
        })
    }

    /// Undoes what a failed [`FileBatch::commit_inner`] did: removes the files it put in place,
    /// puts replaced files back.
    fn roll_back(&mut self) {
        // First the files not moved yet go, so that a crash during this rollback leaves a
        // journal whose replay moves nothing more (its temporary files are gone).
        for s in &self.staged {
            if !s.linked {
                let fd = self.folders[s.folder].lock.fd();
                let _ = sys::unlink_at(fd, &s.temp);
            }
        }
        for f in &self.folders {
            let _ = sys::sync(f.lock.fd());
        }
        // Replaced files: a journal of the way back (each old file's second name renamed
        // onto its name), armed before the first rename back, so a crash halfway through
        // the rollback is completed by the next writer.
        if self.overwrite {
            self.write_rollback_journals();
        }
        for s in &mut self.staged {
            let fd = self.folders[s.folder].lock.fd();
            // Only a file that is still the one this batch wrote.
            let ours = || {
                sys::stat_at(fd, &s.name)
                    .ok()
                    .flatten()
                    .is_some_and(|st| sys::identity(&st) == s.id)
            };
            match (&s.backup, s.linked) {
                // Replaced: the old file goes back (its second name is then gone; if the
                // rename fails, the second name stays, never removed).
                (Some(b), true) => {
                    if sys::rename_at(fd, b, &s.name).is_ok() {
                        lock::mark_live(b, false);
                        s.backup = None;
                    } else {
                        s.keep_backup = true;
                    }
                }
                (None, true) if ours() => {
                    let _ = sys::unlink_at(fd, &s.name);
                }
                _ => {}
            }
        }
        for f in &self.folders {
            let _ = sys::sync(f.lock.fd());
        }
        self.remove_journals();
    }

    fn path_of(&self, s: &Staged) -> PathBuf {
        self.folders[s.folder].path.join(&s.name)
    }

    fn commit_inner(&mut self) -> Result<(), Error> {
        if !self.staged.is_empty() {
            kubepki_keys::progress::writing(self.staged.len());
        }
        let overwrite = self.overwrite;
        for s in &self.staged {
            check_target(
                self.folders[s.folder].lock.fd(),
                &s.name,
                &self.path_of(s),
                overwrite,
            )?;
        }
        if overwrite {
            // Keep a second name for each file about to be replaced (a hard link, so nothing is
            // copied): a failure halfway puts the old files back, and a file that cannot even be
            // linked (immutable, another file system's rules) stops the batch before any change.
            for idx in 0..self.staged.len() {
                let (fd, target) = {
                    let s = &self.staged[idx];
                    (self.folders[s.folder].lock.fd(), self.path_of(s))
                };
                if sys::stat_at(fd, &self.staged[idx].name)
                    .map_err(io_err(&target))?
                    .is_none()
                {
                    continue;
                }
                let mut rnd = [0u8; 6];
                aws_lc_rs::rand::fill(&mut rnd).map_err(|_| Error::Random)?;
                let backup =
                    recover::temp_name(&self.staged[idx].name, std::process::id(), &hex(&rnd));
                sys::link_at(fd, &self.staged[idx].name, &backup).map_err(|e| Error::Step {
                    path: target.clone(),
                    step: Step::KeepOld,
                    source: e,
                })?;
                lock::mark_live(&backup, true);
                self.staged[idx].backup = Some(backup);
                self.crash_point()?;
            }
        }
        let batch = journal_name()?;
        let used: Vec<usize> = (0..self.folders.len())
            .filter(|i| self.staged.iter().any(|s| s.folder == *i))
            .collect();
        // One journal per folder, each listing only the moves inside that folder, all with one
        // batch name. Of a batch in one folder, or one whose folders are all recovered
        // together (`recovered_together`), each journal lists the digest of each file and is
        // written whole and armed: recovery tells from the digests, seeing every journal of
        // the batch, whether the flush below completed (see `recover`). Of a batch whose
        // folders may be recovered one at a time, a folder alone cannot tell whether another
        // folder's files and journal were made durable: its journals have no digests and are
        // armed only after the flush, as an armed journal then proves.
        let digests = used.len() == 1 || self.together;
        for &i in &used {
            let moves: Vec<recover::Move> = self
                .staged
                .iter()
                .filter(|s| s.folder == i)
                .map(|s| recover::Move {
                    replace: overwrite,
                    temp: s.temp.clone(),
                    name: s.name.clone(),
                    digest: digests.then_some(s.digest),
                })
                .collect();
            let mut text =
                recover::journal_text(used.len(), &moves).map_err(|reason| Error::Refused {
                    path: self.folders[i].path.join(&moves[0].name),
                    reason,
                })?;
            if digests {
                text.push_str(recover::ARM);
            }
            write_journal(&mut self.folders[i], &batch, text.as_bytes(), Journal::Body)?;
            self.crash_point()?;
        }
        // Every staged file, every journal and their folders' entries durable at once, before
        // the first move (see `flush_staged`). One way of flushing for the whole batch.
        let kind = flush_kind();
        self.flush_staged(&used, kind)?;
        self.crash_point()?;
        if !digests {
            self.arm_journals(&used, &batch, kind)?;
        }
        for idx in 0..self.staged.len() {
            let (fd, target) = {
                let s = &self.staged[idx];
                (self.folders[s.folder].lock.fd(), self.path_of(s))
            };
            let s = &self.staged[idx];
            let io = io_err(&target);
            if overwrite {
                check_target(fd, &s.name, &target, overwrite)?;
                sys::rename_at(fd, &s.temp, &s.name).map_err(&io)?;
            } else {
                // No-clobber even under a race: `renameat2(RENAME_NOREPLACE)`, or where the
                // file system lacks it, link(2) (which fails with EEXIST instead of replacing)
                // then unlink.
                let exists = |e: std::io::Error| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        // Say what is in the way (a link, a folder, a file).
                        match check_target(fd, &s.name, &target, false) {
                            Err(refused) => refused,
                            Ok(()) => Error::Exists {
                                path: target.clone(),
                            },
                        }
                    } else {
                        io(e)
                    }
                };
                if !rename_noreplace_at(fd, &s.temp, &s.name).map_err(exists)? {
                    sys::link_at(fd, &s.temp, &s.name).map_err(exists)?;
                    let temp = s.temp.clone();
                    self.staged[idx].linked = true;
                    self.crash_point()?;
                    sys::unlink_at(fd, &temp).map_err(&io)?;
                }
            }
            self.staged[idx].linked = true;
            self.staged[idx].temp_gone = true;
            self.crash_point()?;
        }
        // A replaced file gets its owner back, now that it is in place (only root can; a
        // file that is no longer the one written is left alone).
        for s in &self.staged {
            let fd = self.folders[s.folder].lock.fd();
            if let Some((uid, gid)) = s.owner
                && sys::stat_at(fd, &s.name)
                    .ok()
                    .flatten()
                    .is_some_and(|st| sys::identity(&st) == s.id)
            {
                let _ = rustix::fs::chownat(
                    fd,
                    &s.name,
                    Some(rustix::fs::Uid::from_raw(uid)),
                    Some(rustix::fs::Gid::from_raw(gid)),
                    rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
                );
            }
        }
        // Every link durable before any journal goes.
        let all: Vec<usize> = (0..self.folders.len()).collect();
        match kind {
            Flush::FileSystem => self.sync_file_systems(&all)?,
            Flush::EachFile => self.sync_folders(&all)?,
        }
        self.crash_point()?;
        for i in 0..self.folders.len() {
            if let Some(j) = self.folders[i].journal.clone() {
                let removed = sys::unlink_at(self.folders[i].lock.fd(), &j);
                if removed.is_ok() {
                    self.folders[i].journal = None;
                    lock::mark_live(&j, false);
                }
                removed.map_err(io_err(&self.folders[i].path.join(&j)))?;
                self.crash_point()?;
            }
        }
        // The journals' removal is not flushed: the batch is complete and durable already. If a
        // crash undoes a removal, the journal comes back with every move done (its temporary
        // files are gone, durably, since the flush above); the next writer's recovery finds
        // nothing to move and removes it; readers do not count it as pending when the batch had one
        // folder (`pending`; of a batch of several they cannot tell it from one interrupted).
        // The batch is complete: the old files' second names go (best effort: a leftover is a
        // dead process's temporary file to the next recovery).
        for s in &mut self.staged {
            if let Some(b) = s.backup.take() {
                let _ = sys::unlink_at(self.folders[s.folder].lock.fd(), &b);
                lock::mark_live(&b, false);
            }
        }
        Ok(())
    }

    /// Arms the journal `batch` of each folder `used` (appends its `end` line) and makes that
    /// durable: for a batch whose journals have no digests, after its files are durable
    /// (`flush_staged`) and before the first move.
    fn arm_journals(&mut self, used: &[usize], batch: &OsStr, kind: Flush) -> Result<(), Error> {
        let mut armed = Vec::new();
        for &i in used {
            let path = self.folders[i].path.join(batch);
            let f = sys::append_at(self.folders[i].lock.fd(), batch).map_err(io_err(&path))?;
            let mut f = File::from(f);
            f.write_all(recover::ARM.as_bytes())
                .map_err(io_err(&path))?;
            armed.push((f, path));
        }
        // Each `end` line durable before the first move: the journal's body and folder entry
        // already are (`flush_staged`).
        match kind {
            Flush::FileSystem => self.sync_file_systems(used)?,
            Flush::EachFile => sync_each(
                armed
                    .iter()
                    .map(|(f, p)| (f.as_fd(), p.as_path()))
                    .collect(),
            )?,
        }
        self.crash_point()
    }

    /// Makes every staged file durable, with the journals and the folder entries of both,
    /// before any file is moved into place. Runs in
    /// `commit`, after the last `stage`: every staged file is covered, however long ago it was
    /// staged, and nothing is moved before it returns.
    ///
    /// Instead of one `fsync` per file, one `syncfs(2)` per file system the batch's folders are
    /// on ([`Flush::FileSystem`]). It is as durable: `syncfs` writes out and waits for every
    /// dirty page and inode of the file system (each temporary file's contents and inode, the
    /// journals, the new folder entries), then commits the file system's log and flushes
    /// the device's write cache — what `fsync` does for one file, for all of them at once. Since
    /// Linux 5.8 it also reports a write-back error of any file of that file system since the
    /// folder handle was opened (before the batch wrote its first file), so a lost write fails
    /// the batch as an `fsync` error would.
    ///
    /// `syncfs` also waits for everything *other* programs have written to that file system
    /// and not yet flushed. So when the system holds much unwritten data (see [`flush_kind`]),
    /// and on kernels before 5.8 (where `syncfs` returns success even after a lost write), each
    /// file, journal and folder is fsynced instead, the files' fsyncs issued in parallel
    /// ([`Flush::EachFile`]).
    fn flush_staged(&self, used: &[usize], kind: Flush) -> Result<(), Error> {
        match kind {
            Flush::FileSystem => self.sync_file_systems(used),
            Flush::EachFile => self.flush_each(used),
        }
    }

    /// One `syncfs(2)` per file system of the folders `which`: everything written there so far
    /// durable at once (file contents, inodes, folder entries; see `flush_staged`). In
    /// [`Flush::FileSystem`] mode the batch's last step uses it too, after the moves, so a batch
    /// costs two flushes per file system, however many files and folders it has (the
    /// journals' removal needs none: see `commit_inner`).
    fn sync_file_systems(&self, which: &[usize]) -> Result<(), Error> {
        let mut devices: Vec<u64> = Vec::new();
        for &i in which {
            let f = &self.folders[i];
            let st = rustix::fs::fstat(f.lock.fd()).map_err(|e| io_err(&f.path)(e.into()))?;
            let dev = sys::identity(&st).0;
            if !devices.contains(&dev) {
                devices.push(dev);
                sys::sync_file_system(f.lock.fd()).map_err(io_err(&f.path))?;
            }
        }
        Ok(())
    }

    /// [`Flush::EachFile`]: each staged file and journal fsynced (reopened read-only by name
    /// through its folder's handle, never through a link), several at a time, then each folder.
    fn flush_each(&self, used: &[usize]) -> Result<(), Error> {
        let mut todo: Vec<(usize, &OsStr)> = self
            .staged
            .iter()
            .map(|s| (s.folder, s.temp.as_os_str()))
            .collect();
        todo.extend(
            used.iter()
                .filter_map(|&i| self.folders[i].journal.as_deref().map(|j| (i, j))),
        );
        let one = |&(i, name): &(usize, &OsStr)| -> Result<(), Error> {
            let f = &self.folders[i];
            let path = f.path.join(name);
            let fd = sys::open_read_at(f.lock.fd(), name).map_err(io_err(&path))?;
            sys::sync_uncounted(&fd).map_err(io_err(&path))
        };
        let next = AtomicUsize::new(0);
        let work = || {
            let mut r = Ok(());
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = todo.get(n) else { break };
                if let Err(e) = one(item) {
                    r = Err(e);
                }
            }
            r
        };
        // The flushes wait on the device, not the CPU: more threads than cores.
        let results: Vec<Result<(), Error>> = std::thread::scope(|sc| {
            let helpers: Vec<_> = (1..todo.len().min(FLUSH_THREADS))
                .map(|_| sc.spawn(work))
                .collect();
            let mut results = vec![work()];
            results.extend(helpers.into_iter().map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Refused {
                        path: PathBuf::new(),
                        reason: Refusal::FlushPanicked,
                    })
                })
            }));
            results
        });
        sys::add_flushes(todo.len() as u64);
        results.into_iter().collect::<Result<(), Error>>()?;
        self.sync_folders(used)
    }

    /// fsyncs the folders `which`.
    fn sync_folders(&self, which: &[usize]) -> Result<(), Error> {
        sync_each(
            which
                .iter()
                .map(|&i| (self.folders[i].lock.fd(), self.folders[i].path.as_path()))
                .collect(),
        )
    }

    /// Replaces each folder's journal by one that renames the second names of the files
    /// already replaced back onto their names (armed at once). Best effort: without it the
    /// rollback is still done, only not crash-safe.
    fn write_rollback_journals(&mut self) {
        self.remove_journals();
        let Ok(batch) = journal_name() else {
            return;
        };
        let used: Vec<usize> = (0..self.folders.len())
            .filter(|i| {
                self.staged
                    .iter()
                    .any(|s| s.folder == *i && s.linked && s.backup.is_some())
            })
            .collect();
        for &i in &used {
            let moves: Vec<recover::Move> = self
                .staged
                .iter()
                .filter(|s| s.folder == i && s.linked)
                .filter_map(|s| {
                    s.backup.as_ref().map(|b| recover::Move {
                        replace: true,
                        temp: b.clone(),
                        name: s.name.clone(),
                        digest: None,
                    })
                })
                .collect();
            if let Ok(text) = recover::journal_text(used.len(), &moves) {
                let text = text + recover::ARM;
                let _ = write_journal(
                    &mut self.folders[i],
                    &batch,
                    text.as_bytes(),
                    Journal::Whole,
                );
            }
        }
    }

    fn remove_journals(&mut self) {
        for f in &mut self.folders {
            if let Some(j) = f.journal.take() {
                let _ = sys::unlink_at(f.lock.fd(), &j);
                let _ = sys::sync(f.lock.fd());
                lock::mark_live(&j, false);
            }
        }
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: how many crash points [`FileBatch::crash_point`] passes before the process
    /// "dies" (SIGKILL: what was written stays, unflushed or not; nothing more happens).
    static CRASH_AFTER: std::cell::Cell<Option<u32>> = const { std::cell::Cell::new(None) };
}

impl FileBatch {
    /// Tests: a point where a SIGKILL may stop the batch ([`CRASH_AFTER`]).
    #[cfg(test)]
    fn crash_point(&self) -> Result<(), Error> {
        let left = CRASH_AFTER.with(|c| c.get());
        match left {
            Some(0) => {
                self.crashed.store(true, Ordering::SeqCst);
                CRASH_AFTER.with(|c| c.set(None));
                Err(Error::Io {
                    path: PathBuf::new(),
                    source: std::io::Error::other("simulated crash"),
                })
            }
            Some(n) => {
                CRASH_AFTER.with(|c| c.set(Some(n - 1)));
                Ok(())
            }
            None => Ok(()),
        }
    }

    #[cfg(not(test))]
    fn crash_point(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Tests: the batch "died": nothing more is done (the names are only no longer this
    /// process's live ones, as they would not be after a real crash).
    #[cfg(test)]
    fn crashed(&self) -> bool {
        if self.crashed.load(Ordering::SeqCst) {
            for s in &self.staged {
                lock::mark_live(&s.temp, false);
                if let Some(b) = &s.backup {
                    lock::mark_live(b, false);
                }
            }
            for f in &self.folders {
                if let Some(j) = &f.journal {
                    lock::mark_live(j, false);
                }
            }
        }
        self.crashed.load(Ordering::SeqCst)
    }

    #[cfg(not(test))]
    fn crashed(&self) -> bool {
        false
    }
}

#[cfg(test)]
thread_local! {
    /// Tests: act as on a file system without `renameat2(RENAME_NOREPLACE)`.
    static NO_RENAME_NOREPLACE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`sys::rename_noreplace_at`] (tests can make it unsupported, [`NO_RENAME_NOREPLACE`]).
fn rename_noreplace_at(dir: impl AsFd, from: &OsStr, to: &OsStr) -> std::io::Result<bool> {
    #[cfg(test)]
    if NO_RENAME_NOREPLACE.with(|f| f.get()) {
        return Ok(false);
    }
    sys::rename_noreplace_at(dir, from, to)
}

/// fsyncs `fds` one after the other, naming the path of the first that fails. (Flushing them
/// side by side, one thread each, was measured too: no faster on the 2-core test machine,
/// slower when its cores were busy.)
fn sync_each(fds: Vec<(std::os::fd::BorrowedFd<'_>, &Path)>) -> Result<(), Error> {
    for (fd, path) in fds {
        sys::sync(fd).map_err(io_err(path))?;
    }
    Ok(())
}

/// How [`FileBatch::flush_staged`] makes a batch's files durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flush {
    /// One `syncfs(2)` per file system.
    FileSystem,
    /// One `fsync` per file and journal (in parallel), then one per folder.
    EachFile,
}

/// At most this many threads fsync a batch's files at once ([`Flush::EachFile`]).
const FLUSH_THREADS: usize = 16;

/// Above this much unwritten data in the whole system (`Dirty` + `Writeback` in
/// `/proc/meminfo`), `syncfs` would mostly wait for other programs' data: a batch flushes its
/// own files instead. Measured on the test machine (`docs/performance.md`), an ECDSA-P256
/// `init` right after another program wrote a file of 16 MB took about as long either way
/// (medians of 5: 26 ms with `syncfs`, 28 ms with parallel fsyncs); after 64 MB, 41 ms against
/// 14.5 ms; after 300 MB, about 95 ms against 11 ms.
const DIRTY_LIMIT_KB: u64 = 16 * 1024;

#[cfg(test)]
thread_local! {
    /// Tests force one way or the other.
    static FORCE_FLUSH: std::cell::Cell<Option<Flush>> = const { std::cell::Cell::new(None) };
}

/// [`Flush::FileSystem`] when `syncfs(2)` reports write-back errors (Linux 5.8 and later) and
/// the system holds little unwritten data; [`Flush::EachFile`] otherwise, or when either
/// cannot be read.
fn flush_kind() -> Flush {
    #[cfg(test)]
    if let Some(f) = FORCE_FLUSH.with(|f| f.get()) {
        return f;
    }
    static NEW_KERNEL: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let new_kernel = *NEW_KERNEL.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .and_then(|r| {
                let mut it = r.trim().split(['.', '-']);
                let major: u32 = it.next()?.parse().ok()?;
                let minor: u32 = it.next()?.parse().ok()?;
                Some((major, minor) >= (5, 8))
            })
            .unwrap_or(false)
    });
    let unwritten_kb = || -> Option<u64> {
        let info = std::fs::read_to_string("/proc/meminfo").ok()?;
        let field = |name: &str| -> Option<u64> {
            let line = info.lines().find(|l| l.starts_with(name))?;
            line[name.len()..]
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        };
        Some(field("Dirty:")? + field("Writeback:")?)
    };
    if new_kernel && unwritten_kb().is_some_and(|kb| kb <= DIRTY_LIMIT_KB) {
        Flush::FileSystem
    } else {
        Flush::EachFile
    }
}

/// Checks that the folder `dir`, if it exists, is one only the running user can change: a
/// folder owned by the running user, not writable by its group or others. For a folder that
/// receives new private keys, or hands over keys to be installed (renewal through an external
/// CA): anyone else who can write there could swap a key and its CSR for their own.
pub fn check_private_folder(dir: &Path) -> Result<(), Error> {
    let st = match rustix::fs::stat(dir) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io_err(dir)(e.into())),
    };
    let refuse = |reason: Refusal| Error::Refused {
        path: dir.to_owned(),
        reason,
    };
    if sys::kind(&st) != FileType::Directory {
        return Err(refuse(Refusal::NotFolder {
            kind: sys::kind_name(sys::kind(&st)),
        }));
    }
    if !sys::owned_by_me(&st) {
        return Err(refuse(Refusal::OwnedByOther { uid: st.st_uid }));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(refuse(Refusal::WritableByOthers {
            mode: st.st_mode & 0o7777,
        }));
    }
    Ok(())
}

/// How many flush calls (`fsync`, `fdatasync`, `syncfs`) the calling thread has made through
/// this module so far: for tests that check a batch flushes once per folder, not per file.
#[doc(hidden)]
pub fn flush_count() -> u64 {
    sys::flushes()
}

/// A fresh name for the journals of one batch: `.kubepki-journal-PID-HEX`.
fn journal_name() -> Result<OsString, Error> {
    let mut rnd = [0u8; 6];
    aws_lc_rs::rand::fill(&mut rnd).map_err(|_| Error::Random)?;
    Ok(OsString::from(format!(
        "{}{}-{}",
        recover::JOURNAL_PREFIX,
        std::process::id(),
        hex(&rnd)
    )))
}

/// The files of a committed batch, which can still be taken back ([`Committed::undo`]); the
/// batch's folders stay locked while this value lives.
pub struct Committed {
    folders: Vec<FolderLock>,
    files: Vec<(usize, OsString, (u64, u64))>,
    created: Vec<Created>,
}

impl Committed {
    /// The files the batch put in place.
    pub fn files(&self) -> Vec<PathBuf> {
        self.files
            .iter()
            .map(|(f, n, _)| self.folders[*f].path().join(n))
            .collect()
    }

    /// Removes the batch's files again, through the folders' handles and only those that are
    /// still the very files it wrote (same inode), then the folders it created if they are
    /// empty.
    pub fn undo(mut self) -> Result<(), Error> {
        for (f, name, id) in &self.files {
            let fd = self.folders[*f].fd();
            if sys::stat_at(fd, name)
                .ok()
                .flatten()
                .is_some_and(|st| sys::identity(&st) == *id)
            {
                sys::unlink_at(fd, name).map_err(io_err(&self.folders[*f].path().join(name)))?;
            }
        }
        for f in &self.folders {
            let _ = sys::sync(f.fd());
        }
        for c in std::mem::take(&mut self.created).iter().rev() {
            let _ = sys::rmdir_at(&*c.parent, &c.name);
        }
        Ok(())
    }
}

/// How [`write_journal`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Journal {
    /// A new batch's journal, not flushed: [`FileBatch::flush_staged`] makes it and its
    /// folder entry durable together with the staged files. Armed already when it has
    /// digests (they tell recovery whether that flush happened), else armed after it
    /// ([`FileBatch::arm_journals`]).
    Body,
    /// A new, armed journal (a rollback's), flushed with its folder at once.
    Whole,
}

/// Writes `bytes` to the new journal `name` in `folder` and flushes as [`Journal`] says.
fn write_journal(
    folder: &mut Folder,
    name: &OsStr,
    bytes: &[u8],
    how: Journal,
) -> Result<(), Error> {
    let path = folder.path.join(name);
    let io = io_err(&path);
    let fd = folder.lock.fd();
    let file = sys::create_at(fd, name, MODE_SECRET).map_err(&io)?;
    // Ours from now on: removed on rollback, even if writing it fails halfway.
    lock::mark_live(name, true);
    folder.journal = Some(name.to_owned());
    let mut f = File::from(file);
    f.write_all(bytes)
        .and_then(|()| match how {
            Journal::Body => Ok(()),
            Journal::Whole => sys::sync(&f).and_then(|()| sys::sync(fd)),
        })
        .map_err(io)
}

impl Drop for FileBatch {
    fn drop(&mut self) {
        if self.crashed() {
            return;
        }
        for s in &self.staged {
            if !s.temp_gone {
                let _ = sys::unlink_at(self.folders[s.folder].lock.fd(), &s.temp);
            }
            lock::mark_live(&s.temp, false);
            if let Some(b) = &s.backup {
                if !s.keep_backup {
                    let _ = sys::unlink_at(self.folders[s.folder].lock.fd(), b);
                }
                lock::mark_live(b, false);
            }
        }
        self.remove_journals();
        if !self.committed {
            // Innermost first; rmdir only removes empty folders.
            for c in self.created.iter().rev() {
                let _ = sys::rmdir_at(&*c.parent, &c.name);
            }
        }
    }
}

fn parent(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    }
}

fn check_target(dir: impl AsFd, name: &OsStr, target: &Path, overwrite: bool) -> Result<(), Error> {
    match sys::stat_at(dir, name).map_err(io_err(target))? {
        Some(m) if sys::kind(&m) == FileType::Symlink => Err(Error::Symlink {
            path: target.to_owned(),
        }),
        Some(m) if sys::kind(&m) != FileType::RegularFile => Err(Error::Refused {
            path: target.to_owned(),
            reason: Refusal::WrongKind {
                kind: sys::kind_name(sys::kind(&m)),
            },
        }),
        Some(_) if !overwrite => Err(Error::Exists {
            path: target.to_owned(),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let mut rnd = [0u8; 6];
        let _ = aws_lc_rs::rand::fill(&mut rnd);
        let d = std::env::temp_dir().join(format!("kubepki-files-{tag}-{}", hex(&rnd)));
        let _ = fs::create_dir_all(&d);
        d
    }

    #[test]
    fn batch_writes_with_modes_and_leaves_no_temp() -> Result<(), Error> {
        let d = tmpdir("ok");
        let mut b = FileBatch::new();
        b.stage(&d.join("a.key"), b"secret", MODE_SECRET)?;
        b.stage(&d.join("sub/a.crt"), b"public", MODE_PUBLIC)?;
        b.commit()?;
        let mode = |p: &Path| fs::metadata(p).map(|m| m.permissions().mode() & 0o777).ok();
        assert_eq!(mode(&d.join("a.key")), Some(0o600));
        assert_eq!(mode(&d.join("sub/a.crt")), Some(0o644));
        let names: Vec<_> = fs::read_dir(&d)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 2, "{names:?}");
        let _ = fs::remove_dir_all(&d);
        Ok(())
    }

    /// Stages `per_folder` files in each of a tree's three folders (`pki`, `pki/etcd`, the
    /// kubeconfig folder) with flushing forced to `how`, commits, checks every file, and
    /// returns how many flush calls the batch made.
    fn flushes_for(how: Flush, per_folder: usize) -> Result<u64, Error> {
        flushes_of(how, per_folder, true)
    }

    /// [`flushes_for`], the batch [`FileBatch::recovered_together`] or not.
    fn flushes_of(how: Flush, per_folder: usize, together: bool) -> Result<u64, Error> {
        let d = tmpdir("flushes");
        let folders = [d.join("kc/pki"), d.join("kc/pki/etcd"), d.join("kc")];
        FORCE_FLUSH.with(|f| f.set(Some(how)));
        let before = flush_count();
        let mut b = FileBatch::new();
        if together {
            b = b.recovered_together();
        }
        for f in &folders {
            for i in 0..per_folder {
                b.stage(
                    &f.join(format!("f{i}.key")),
                    f.to_string_lossy().as_bytes(),
                    MODE_SECRET,
                )?;
            }
        }
        b.commit()?;
        let flushes = flush_count() - before;
        FORCE_FLUSH.with(|f| f.set(None));
        for f in &folders {
            for i in 0..per_folder {
                let got = fs::read(f.join(format!("f{i}.key"))).unwrap_or_default();
                assert_eq!(got, f.to_string_lossy().as_bytes());
            }
            let scratch = fs::read_dir(f)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".kubepki-"))
                .count();
            assert_eq!(scratch, 0, "journal or temp left in {}", f.display());
        }
        let _ = fs::remove_dir_all(&d);
        Ok(flushes)
    }

    #[test]
    fn a_batch_flushes_once_per_folder_not_once_per_file() -> Result<(), Error> {
        // The shape of an `init` tree (27 files in 3 folders), and ten times as many files.
        let tree = flushes_for(Flush::FileSystem, 9)?;
        let big = flushes_for(Flush::FileSystem, 90)?;
        // One syncfs (one file system) for the staged files with their journals, one after
        // the moves (the journals' removal is not flushed).
        assert_eq!(tree, 2, "flush calls for 27 files in 3 folders");
        assert_eq!(big, tree, "270 files need no more flushes than 27");
        // Folders that may be recovered one at a time: the journals are armed after the
        // files' flush, and that flushed too.
        assert_eq!(flushes_of(Flush::FileSystem, 9, false)?, 3);
        Ok(())
    }

    #[test]
    fn the_fallback_flushes_every_file_in_parallel_and_writes_the_same() -> Result<(), Error> {
        // Each file and journal, each folder before the moves, each folder after them.
        assert_eq!(flushes_for(Flush::EachFile, 9)?, 27 + 3 + 3 + 3);
        assert_eq!(flushes_for(Flush::EachFile, 1)?, 3 + 3 + 3 + 3);
        Ok(())
    }

    /// The journals' removal is not flushed, so a crash right after a batch can bring one back.
    /// Such a journal (armed, every temporary file gone) is nothing pending to readers, and the
    /// next writer removes it without touching the files; one with a temporary file left is.
    #[test]
    fn a_journal_back_after_a_completed_batch_is_not_pending() -> Result<(), Error> {
        let d = tmpdir("back");
        let mut b = FileBatch::new();
        b.stage(&d.join("a.crt"), b"new", MODE_PUBLIC)?;
        b.commit()?;
        let temp = recover::temp_name(OsStr::new("a.crt"), 4_000_001, "0a0b");
        let moves = [recover::Move {
            replace: false,
            temp: temp.clone(),
            name: "a.crt".into(),
            digest: Some(sha256(b"new")),
        }];
        let text = recover::journal_text(1, &moves).map_err(|reason| Error::Refused {
            path: d.clone(),
            reason,
        })? + recover::ARM;
        let journal = d.join(".kubepki-journal-4000001-0a0b");
        let io = |source: std::io::Error| Error::Io {
            path: d.clone(),
            source,
        };
        fs::write(&journal, &text).map_err(io)?;
        assert_eq!(
            pending(&d)?,
            Vec::<PathBuf>::new(),
            "a completed batch's journal"
        );
        // With its temporary file still there, the batch is not complete: pending.
        fs::write(d.join(&temp), b"other").map_err(io)?;
        assert_eq!(pending(&d)?, vec![journal.clone()]);
        fs::remove_file(d.join(&temp)).map_err(io)?;
        assert_eq!(recover(&[&d])?, Vec::<PathBuf>::new(), "nothing to move");
        assert!(!journal.exists(), "the writer removes it");
        assert_eq!(fs::read(d.join("a.crt")).map_err(io)?, b"new");
        let _ = fs::remove_dir_all(&d);
        Ok(())
    }

    /// A batch spanning two folders, interrupted after its moves in `a`
    /// but before those in `b` (the moves are flushed only after all of them, so any subset can
    /// survive a crash). `a`'s journal is armed and its temporary file gone, so `pending(a)` says
    /// nothing is pending there, while `b` still waits for the same batch: a reader of `a` alone
    /// (a folder a kubeconfig names outside the tree's four folders is read but never checked)
    /// sees half a batch as settled. Before issue 21 the journal of `a` was reported.
    #[test]
    fn a_folder_of_an_unfinished_multi_folder_batch_is_pending()
    -> Result<(), Box<dyn std::error::Error>> {
        let root = std::env::temp_dir().join(format!("kubepki-pending-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir(&root)?;
        let (a, b) = (root.join("a"), root.join("b"));
        fs::create_dir(&a)?;
        fs::create_dir(&b)?;
        let batch = "4000001-0a0b";
        let journal = format!(".kubepki-journal-{batch}");
        let temp = |n: &str| format!(".{n}.kubepki-{batch}.tmp");
        // a: moved (the temporary file is gone, a.crt is the new file).
        fs::write(a.join("a.crt"), b"new")?;
        fs::write(
            a.join(&journal),
            format!("folders 2\nR\t{}\ta.crt\nend\n", temp("a.crt")),
        )?;
        // b: not moved yet.
        fs::write(b.join("b.crt"), b"old")?;
        fs::write(b.join(temp("b.crt")), b"new")?;
        fs::write(
            b.join(&journal),
            format!("folders 2\nR\t{}\tb.crt\nend\n", temp("b.crt")),
        )?;
        assert_eq!(pending(&b)?, vec![b.join(&journal)]);
        assert_eq!(
            pending(&a)?,
            vec![a.join(&journal)],
            "the batch is unfinished (b has not moved), yet a's journal is not pending"
        );
        fs::remove_dir_all(&root)?;
        Ok(())
    }

    #[test]
    fn existing_file_aborts_whole_batch() {
        let d = tmpdir("exists");
        let _ = fs::write(d.join("b.crt"), b"old");
        let mut b = FileBatch::new();
        let first = b.stage(&d.join("a.key"), b"x", MODE_SECRET);
        assert!(first.is_ok());
        assert!(matches!(
            b.stage(&d.join("b.crt"), b"new", MODE_PUBLIC),
            Err(Error::Exists { .. })
        ));
        drop(b);
        assert!(!d.join("a.key").exists());
        assert_eq!(fs::read(d.join("b.crt")).ok().as_deref(), Some(&b"old"[..]));
        assert_eq!(fs::read_dir(&d).map(|r| r.count()).unwrap_or(0), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn failed_batch_removes_the_folders_it_created() {
        let d = tmpdir("dirs");
        let _ = fs::write(d.join("taken"), b"old");
        let mut b = FileBatch::new();
        assert!(
            b.stage(&d.join("new/deeper/a.key"), b"x", MODE_SECRET)
                .is_ok()
        );
        assert!(b.stage(&d.join("taken"), b"x", MODE_PUBLIC).is_err());
        drop(b);
        assert!(!d.join("new").exists());
        assert_eq!(fs::read_dir(&d).map(|r| r.count()).unwrap_or(0), 1);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn refuses_dangling_symlink() {
        let d = tmpdir("link");
        let _ = std::os::unix::fs::symlink(d.join("elsewhere"), d.join("x.key"));
        let mut b = FileBatch::new();
        assert!(matches!(
            b.stage(&d.join("x.key"), b"x", MODE_SECRET),
            Err(Error::Symlink { .. })
        ));
        assert!(!d.join("elsewhere").exists());
        let _ = fs::remove_dir_all(&d);
    }

    /// Names every file below `d` with its bytes, for before/after comparisons.
    fn snapshot(d: &Path) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![d.to_path_buf()];
        while let Some(p) = stack.pop() {
            for e in fs::read_dir(&p).into_iter().flatten().flatten() {
                let path = e.path();
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => stack.push(path),
                    _ => out.push((path.clone(), fs::read(&path).unwrap_or_default())),
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn recover_completes_a_dead_process_batch_and_removes_its_temps() -> Result<(), Error> {
        let d = tmpdir("recover");
        // pid_max on Linux is at most 4194304: this owner is never alive. Liveness is not
        // what recovery relies on anyway (the folder lock is).
        let dead = 4_194_999u32;
        let temp = format!(".a.crt.kubepki-{dead}-00.tmp");
        let _ = fs::write(d.join(&temp), b"new");
        let _ = fs::write(d.join(format!(".b.key.kubepki-{dead}-01.tmp")), b"secret");
        let _ = fs::write(
            d.join(format!(".kubepki-journal-{dead}-02")),
            format!("folders 1\nL\t{temp}\ta.crt\nend\n"),
        );
        let done = recover(&[&d])?;
        assert_eq!(done, [d.join("a.crt")]);
        assert_eq!(fs::read(d.join("a.crt")).ok().as_deref(), Some(&b"new"[..]));
        let left: Vec<_> = fs::read_dir(&d)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(left, ["a.crt"], "temps or journal left");
        let _ = fs::remove_dir_all(&d);
        Ok(())
    }

    #[test]
    fn a_batch_over_two_folders_is_replayed_whole_or_not_at_all() -> Result<(), Error> {
        let dead = 4_194_999u32;
        for armed_in_b in [false, true] {
            let root = tmpdir("twofolders");
            let (a, b) = (root.join("pki"), root.join("pki/etcd"));
            let _ = fs::create_dir_all(&b);
            for (d, name, armed) in [(&a, "apiserver.crt", true), (&b, "ca.crt", armed_in_b)] {
                let temp = format!(".{name}.kubepki-{dead}-0a.tmp");
                let _ = fs::write(d.join(&temp), name);
                let end = if armed { "end\n" } else { "" };
                let _ = fs::write(
                    d.join(format!(".kubepki-journal-{dead}-5e")),
                    format!("folders 2\nL\t{temp}\t{name}\n{end}"),
                );
            }
            let done = recover(&[&a, &b])?;
            // Not every journal armed: the batch never moved a file, and none is moved now.
            assert_eq!(done.len(), if armed_in_b { 2 } else { 0 });
            assert_eq!(a.join("apiserver.crt").exists(), armed_in_b);
            assert_eq!(b.join("ca.crt").exists(), armed_in_b);
            for d in [&a, &b] {
                let scratch = fs::read_dir(d)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().contains(".kubepki-"))
                    .count();
                assert_eq!(scratch, 0, "journal or temp left in {}", d.display());
            }
            let _ = fs::remove_dir_all(&root);
        }
        Ok(())
    }

    /// A journal of the form a batch writes now: armed at once, each move with the SHA-256 of
    /// what the batch wrote (`contents`), in folder `d` of a batch spanning `folders`.
    fn digest_journal(
        d: &Path,
        folders: usize,
        moves: &[(&str, &[u8])],
        replace: bool,
    ) -> Result<(), Error> {
        let moves: Vec<recover::Move> = moves
            .iter()
            .map(|(name, contents)| recover::Move {
                replace,
                temp: recover::temp_name(OsStr::new(name), 4_194_999, "0d"),
                name: OsString::from(name),
                digest: Some(sha256(contents)),
            })
            .collect();
        let text = recover::journal_text(folders, &moves).map_err(|reason| Error::Refused {
            path: d.to_owned(),
            reason,
        })? + recover::ARM;
        fs::write(d.join(".kubepki-journal-4194999-0d"), text).map_err(|source| Error::Io {
            path: d.to_owned(),
            source,
        })
    }

    /// `root/a` and `root/b`, made.
    fn two_folders(root: &Path) -> Result<(PathBuf, PathBuf), Error> {
        let (a, b) = (root.join("a"), root.join("b"));
        for f in [&a, &b] {
            fs::create_dir_all(f).map_err(|source| Error::Io {
                path: f.clone(),
                source,
            })?;
        }
        Ok((a, b))
    }

    fn put(d: &Path, name: &str, contents: &[u8]) -> Result<(), Error> {
        fs::write(d.join(name), contents).map_err(|source| Error::Io {
            path: d.join(name),
            source,
        })
    }

    fn temp_of(name: &str) -> String {
        recover::temp_name(OsStr::new(name), 4_194_999, "0d")
            .to_string_lossy()
            .into_owned()
    }

    /// A batch's journal is armed before its flush: a crash (a power loss) before the flush
    /// completed can leave it with a temporary file torn or missing. Such a batch never moved
    /// a file and is dropped; one whose files are all intact is replayed (after a SIGKILL
    /// every written file is intact); a batch a move of which was made is completed.
    #[test]
    fn digests_tell_a_batch_whose_flush_did_not_complete() -> Result<(), Error> {
        type Setup = fn(&Path) -> Result<(), Error>;
        type Want = Vec<(&'static str, Option<&'static [u8]>)>;
        let cases: [(&str, Setup, Want); 5] = [
            (
                "intact, nothing moved: replayed",
                |d| {
                    digest_journal(d, 1, &[("a.crt", b"A"), ("b.key", b"B")], false)?;
                    put(d, &temp_of("a.crt"), b"A")?;
                    put(d, &temp_of("b.key"), b"B")
                },
                vec![("a.crt", Some(b"A")), ("b.key", Some(b"B"))],
            ),
            (
                "one torn, nothing moved: dropped",
                |d| {
                    digest_journal(d, 1, &[("a.crt", b"A"), ("b.key", b"B")], false)?;
                    put(d, &temp_of("a.crt"), b"A")?;
                    put(d, &temp_of("b.key"), b"")
                },
                vec![("a.crt", None), ("b.key", None)],
            ),
            (
                "one missing, nothing moved: dropped",
                |d| {
                    digest_journal(d, 1, &[("a.crt", b"A"), ("b.key", b"B")], false)?;
                    put(d, &temp_of("a.crt"), b"A")
                },
                vec![("a.crt", None), ("b.key", None)],
            ),
            (
                "one moved, one left: completed",
                |d| {
                    digest_journal(d, 1, &[("a.crt", b"A"), ("b.key", b"B")], false)?;
                    put(d, "a.crt", b"A")?;
                    put(d, &temp_of("b.key"), b"B")
                },
                vec![("a.crt", Some(b"A")), ("b.key", Some(b"B"))],
            ),
            (
                "replacing, one torn, nothing moved: dropped, the old files stay",
                |d| {
                    digest_journal(d, 1, &[("a.crt", b"A"), ("b.key", b"B")], true)?;
                    put(d, "a.crt", b"old a")?;
                    put(d, "b.key", b"old b")?;
                    put(d, &temp_of("a.crt"), b"A")?;
                    put(d, &temp_of("b.key"), b"B, cut sh")
                },
                vec![("a.crt", Some(b"old a")), ("b.key", Some(b"old b"))],
            ),
        ];
        for (what, setup, want) in cases {
            let d = tmpdir("digests");
            setup(&d)?;
            recover(&[&d])?;
            for (name, contents) in want {
                assert_eq!(
                    fs::read(d.join(name)).ok().as_deref(),
                    contents,
                    "{what}: {name}"
                );
            }
            let scratch = fs::read_dir(&d)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().contains(".kubepki-"))
                .count();
            assert_eq!(scratch, 0, "{what}: journal or temp left");
            let _ = fs::remove_dir_all(&d);
        }
        Ok(())
    }

    /// What a crash cannot leave is refused, with nothing done: a torn temporary file in a
    /// batch a move of which was made (its flush had completed), and a batch missing one of
    /// its folders' journals while moves are left after a move was made.
    #[test]
    fn a_torn_file_after_a_move_is_refused() -> Result<(), Error> {
        let d = tmpdir("torn");
        digest_journal(&d, 1, &[("a.crt", b"A"), ("b.key", b"B")], false)?;
        put(&d, "a.crt", b"A")?;
        put(&d, &temp_of("b.key"), b"changed")?;
        let before = snapshot(&d);
        assert!(matches!(recover(&[&d]), Err(Error::Journal { .. })));
        assert_eq!(snapshot(&d), before, "nothing done");
        let _ = fs::remove_dir_all(&d);

        let root = tmpdir("halfgroup");
        let (a, b) = two_folders(&root)?;
        // b's journal never written (or lost), yet a moved one file and has one left.
        digest_journal(&a, 2, &[("a.crt", b"A"), ("b.crt", b"B")], false)?;
        put(&a, "a.crt", b"A")?;
        put(&a, &temp_of("b.crt"), b"B")?;
        let before = snapshot(&a);
        assert!(matches!(recover(&[&a, &b]), Err(Error::Journal { .. })));
        assert_eq!(snapshot(&a), before, "nothing done");
        let _ = fs::remove_dir_all(&root);
        Ok(())
    }

    /// A batch over two folders whose second journal was never written (a crash while the
    /// journals were being written): nothing was moved, so nothing is, in either folder; and
    /// once every move of a batch was made, a journal left in one folder is simply removed.
    #[test]
    fn a_digest_batch_missing_a_journal_is_dropped_or_finished() -> Result<(), Error> {
        let root = tmpdir("twodigest");
        let (a, b) = two_folders(&root)?;
        digest_journal(&a, 2, &[("a.crt", b"A")], false)?;
        put(&a, &temp_of("a.crt"), b"A")?;
        put(&b, &temp_of("b.crt"), b"B")?;
        assert_eq!(recover(&[&a, &b])?, Vec::<PathBuf>::new());
        assert!(!a.join("a.crt").exists() && !b.join("b.crt").exists());
        assert!(
            snapshot(&a).is_empty() && snapshot(&b).is_empty(),
            "scratch left"
        );

        // Every move made; only a's journal is left (its removal was not flushed).
        digest_journal(&a, 2, &[("a.crt", b"A")], false)?;
        put(&a, "a.crt", b"A")?;
        assert_eq!(recover(&[&a, &b])?, Vec::<PathBuf>::new());
        assert_eq!(snapshot(&a).len(), 1, "only a.crt is left");
        fs::remove_file(a.join("a.crt")).map_err(|source| Error::Io {
            path: a.join("a.crt"),
            source,
        })?;

        // A kill between creating a's journal and writing it: b's is whole and armed, a's
        // (the first folder recovery reads) empty (found by
        // `rotation_phases_killed_at_random_moments`: it was refused as two journals that
        // disagree on the folder count). Nothing was moved: dropped.
        digest_journal(&b, 2, &[("b.crt", b"B")], false)?;
        put(&b, &temp_of("b.crt"), b"B")?;
        put(&a, ".kubepki-journal-4194999-0d", b"")?;
        put(&a, &temp_of("a.crt"), b"A")?;
        assert_eq!(recover(&[&a, &b])?, Vec::<PathBuf>::new());
        assert!(!a.join("a.crt").exists() && !b.join("b.crt").exists());
        assert!(
            snapshot(&a).is_empty() && snapshot(&b).is_empty(),
            "scratch left"
        );
        let _ = fs::remove_dir_all(&root);
        Ok(())
    }

    /// The files below `d` whose names are kubepki's scratch (temporary files, journals).
    fn scratch(d: &Path) -> Vec<PathBuf> {
        snapshot(d)
            .into_iter()
            .map(|(p, _)| p)
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().contains(".kubepki-"))
            })
            .collect()
    }

    /// One run of [`a_kill_at_any_step_of_a_commit_leaves_all_or_nothing`]: returns whether
    /// the commit was killed (false once `at` is past its last crash point).
    fn kill_and_recover(
        overwrite: bool,
        together: bool,
        fallback: bool,
        per_folder: bool,
        at: u32,
    ) -> Result<bool, Box<dyn std::error::Error>> {
        let what = format!(
            "overwrite {overwrite}, together {together}, fallback {fallback}, per folder {per_folder}, killed at {at}"
        );
        let root = tmpdir("kill");
        let dirs = [root.join("pki"), root.join("pki/etcd"), root.join("kc")];
        for d in &dirs {
            fs::create_dir_all(d)?;
        }
        let files: Vec<(PathBuf, Vec<u8>)> = [
            (0, "ca.crt"),
            (0, "ca.key"),
            (1, "ca.crt"),
            (2, "admin.conf"),
        ]
        .iter()
        .map(|&(i, n)| (dirs[i].join(n), format!("new {i} {n}").into_bytes()))
        .collect();
        let old = |p: &Path| format!("old {}", p.display()).into_bytes();
        if overwrite {
            for (p, _) in &files {
                fs::write(p, old(p))?;
            }
        }
        let mut batch = if overwrite {
            FileBatch::overwriting()
        } else {
            FileBatch::new()
        };
        if together {
            batch = batch.recovered_together();
        }
        for (p, contents) in &files {
            let mode = if p.extension().is_some_and(|e| e == "key") {
                MODE_SECRET
            } else {
                MODE_PUBLIC
            };
            batch.stage(p, contents, mode)?;
        }
        NO_RENAME_NOREPLACE.with(|f| f.set(fallback));
        CRASH_AFTER.with(|c| c.set(Some(at)));
        let r = batch.commit();
        let killed = CRASH_AFTER.with(|c| c.get()).is_none();
        CRASH_AFTER.with(|c| c.set(None));
        NO_RENAME_NOREPLACE.with(|f| f.set(false));
        match (&r, killed) {
            (Err(Error::Io { source, .. }), true) if source.to_string() == "simulated crash" => {}
            (Ok(()), false) => {}
            _ => return Err(format!("{what}: {r:?}").into()),
        }
        // The next writers: each recovers the one folder it writes into (a batch over
        // several folders it cannot decide alone is refused, never half done), or a tree
        // command recovers all folders together.
        let mut refused = false;
        if per_folder {
            for d in &dirs {
                let mut probe = FileBatch::new();
                match probe.stage(&d.join("probe"), b"probe", MODE_PUBLIC) {
                    Ok(()) => {}
                    Err(Error::Journal { .. }) if together => refused = true,
                    Err(e) => return Err(format!("{what}: {e}").into()),
                }
            }
        }
        if refused || !per_folder {
            recover(&[&dirs[0], &dirs[1], &dirs[2]])?;
        }
        let now: Vec<Option<Vec<u8>>> = files.iter().map(|(p, _)| fs::read(p).ok()).collect();
        let all_new = files
            .iter()
            .zip(&now)
            .all(|((_, c), n)| n.as_ref() == Some(c));
        let all_old = files.iter().zip(&now).all(|((p, _), n)| {
            if overwrite {
                n.as_deref() == Some(&old(p)[..])
            } else {
                n.is_none()
            }
        });
        if !(all_new || (killed && all_old)) {
            return Err(format!("{what}: half a batch: {now:?}").into());
        }
        let left = scratch(&root);
        if !left.is_empty() {
            return Err(format!("{what}: scratch left: {left:?}").into());
        }
        fs::remove_dir_all(&root)?;
        Ok(killed)
    }

    /// A batch over a tree's three folders killed (SIGKILL) at every step of its commit, on
    /// file systems with and without `renameat2(RENAME_NOREPLACE)`, then recovered by writers
    /// of one folder each, or all together: never half a batch.
    #[test]
    fn a_kill_at_any_step_of_a_commit_leaves_all_or_nothing()
    -> Result<(), Box<dyn std::error::Error>> {
        for overwrite in [false, true] {
            for together in [false, true] {
                for fallback in [false, true] {
                    for per_folder in [false, true] {
                        let mut at = 0;
                        while kill_and_recover(overwrite, together, fallback, per_folder, at)? {
                            at += 1;
                        }
                        assert!(at > 8, "only {at} crash points");
                    }
                }
            }
        }
        Ok(())
    }

    /// A batch over two folders, its moves in `a` made, those in `b` not (a kill between
    /// them). A writer into `a` alone, or into `b` alone, must not settle it: before issue 21's
    /// review, recovering `a` alone removed a's journal (all its moves made) and recovering `b`
    /// alone then dropped b's moves (no move seen, a journal missing): half a batch for good.
    #[test]
    fn a_batch_over_two_folders_is_not_settled_by_a_writer_of_one()
    -> Result<(), Box<dyn std::error::Error>> {
        for first in [0, 1] {
            let root = tmpdir("halfseen");
            let dirs = [root.join("a"), root.join("b")];
            for d in &dirs {
                fs::create_dir_all(d)?;
            }
            digest_journal(&dirs[0], 2, &[("a.crt", b"A")], false)?;
            put(&dirs[0], "a.crt", b"A")?;
            digest_journal(&dirs[1], 2, &[("b.crt", b"B")], false)?;
            put(&dirs[1], &temp_of("b.crt"), b"B")?;
            let mut writer = FileBatch::new();
            let r = writer.stage(&dirs[first].join("other.crt"), b"x", MODE_PUBLIC);
            assert!(matches!(r, Err(Error::Journal { .. })), "{first}: {r:?}");
            drop(writer);
            recover(&[&dirs[0], &dirs[1]])?;
            assert_eq!(fs::read(dirs[1].join("b.crt"))?, b"B", "{first}");
            assert!(scratch(&root).is_empty());
            fs::remove_dir_all(&root)?;
        }
        Ok(())
    }

    /// A batch killed before its flush (every file intact, nothing moved) is replayed by
    /// recovery. Its journals were armed before the flush: every temporary file and journal
    /// of the batch, in every folder, must be durable before recovery's first move, or a power
    /// loss during recovery could keep a's move and lose b's file or journal.
    #[test]
    fn recovery_flushes_a_whole_batch_before_its_first_move()
    -> Result<(), Box<dyn std::error::Error>> {
        let root = tmpdir("flushfirst");
        let dirs = [root.join("a"), root.join("b")];
        for d in &dirs {
            fs::create_dir_all(d)?;
        }
        digest_journal(&dirs[0], 2, &[("a.crt", b"A")], false)?;
        put(&dirs[0], &temp_of("a.crt"), b"A")?;
        digest_journal(&dirs[1], 2, &[("b.crt", b"B")], false)?;
        put(&dirs[1], &temp_of("b.crt"), b"B")?;
        recover::TRACE.with(|t| t.borrow_mut().clear());
        recover(&[&dirs[0], &dirs[1]])?;
        let trace = recover::TRACE.with(|t| t.take());
        let first_move = trace.iter().position(|s| s.starts_with("move "));
        let last_sync = trace.iter().rposition(|s| s.starts_with("sync "));
        assert!(first_move.is_some() && last_sync < first_move, "{trace:?}");
        for name in [temp_of("a.crt"), temp_of("b.crt")] {
            assert!(trace.contains(&format!("sync {name}")), "{name}: {trace:?}");
        }
        let journal = ".kubepki-journal-4194999-0d";
        assert_eq!(
            trace
                .iter()
                .filter(|s| *s == &format!("sync {journal}"))
                .count(),
            2,
            "{trace:?}"
        );
        assert_eq!(fs::read(dirs[1].join("b.crt"))?, b"B");
        fs::remove_dir_all(&root)?;
        Ok(())
    }

    /// `holds` never follows a link: a symbolic link at a target whose temporary file is
    /// gone (planted by someone who can write the folder) is not the moved file, and is not
    /// an error that stops recovery either.
    #[test]
    fn a_link_at_a_target_is_not_a_moved_file() -> Result<(), Box<dyn std::error::Error>> {
        let root = tmpdir("holdslink");
        let d = root.join("pki");
        fs::create_dir_all(&d)?;
        fs::write(root.join("elsewhere"), b"A")?;
        digest_journal(&d, 1, &[("a.crt", b"A"), ("b.key", b"B")], false)?;
        std::os::unix::fs::symlink(root.join("elsewhere"), d.join("a.crt"))?;
        put(&d, &temp_of("b.key"), b"B")?;
        // No move made (a.crt is not the file of the digest): the batch never moved a file
        // and is dropped; the link is left alone.
        assert_eq!(recover(&[&d])?, Vec::<PathBuf>::new());
        assert!(fs::symlink_metadata(d.join("a.crt"))?.is_symlink());
        assert!(!d.join("b.key").exists());
        assert!(scratch(&root).is_empty());
        fs::remove_dir_all(&root)?;
        Ok(())
    }

    #[test]
    fn a_journal_of_a_reused_live_pid_is_still_replayed() -> Result<(), Error> {
        // PID 1 is alive (init), but it holds no lock on this folder: the batch is dead.
        let d = tmpdir("pidreuse");
        let temp = ".a.crt.kubepki-1-0f.tmp";
        let _ = fs::write(d.join(temp), b"new");
        let _ = fs::write(
            d.join(".kubepki-journal-1-0e"),
            format!("folders 1\nL\t{temp}\ta.crt\nend\n"),
        );
        assert_eq!(recover(&[&d])?, [d.join("a.crt")]);
        assert_eq!(fs::read(d.join("a.crt")).ok().as_deref(), Some(&b"new"[..]));
        let _ = fs::remove_dir_all(&d);
        Ok(())
    }

    #[test]
    fn hostile_journals_are_refused_and_nothing_changes() {
        let root = tmpdir("hostile");
        let d = root.join("pki");
        let outside = root.join("outside");
        let _ = fs::create_dir_all(&d);
        let _ = fs::create_dir_all(outside.join("folder"));
        let _ = fs::write(outside.join("victim"), b"victim");
        let _ = fs::write(outside.join("folder/inner"), b"inner");
        let _ = fs::write(d.join("ca.key"), b"the key");
        let _ = fs::write(d.join(".ca.key.kubepki-7-aa.tmp"), b"planted");
        let o = outside.display();
        let cases = [
            format!("folders 1\nR\t{o}/victim\t{o}/replaced\nend\n"),
            format!("folders 1\nL\tca.key\t{o}/stolen.key\nend\n"),
            "folders 1\nL\t.ca.key.kubepki-7-aa.tmp\t../outside/victim\nend\n".to_string(),
            format!("folders 1\nR\t{o}/folder\t{o}/moved\nend\n"),
            "folders 1\nL\t../outside/victim\tvictim\nend\n".to_string(),
            // The right form, but the target exists with other content.
            "folders 1\nL\t.ca.key.kubepki-7-aa.tmp\tca.key\nend\n".to_string(),
            "folders 1\ngarbage\nend\n".to_string(),
            // Not armed, with a line kubepki never writes: refused, not dropped.
            format!("folders 1\nR\t{o}/victim\t{o}/replaced\n"),
        ];
        for (i, text) in cases.iter().enumerate() {
            let before = snapshot(&root);
            let journal = d.join(format!(".kubepki-journal-7-{i:x}"));
            let _ = fs::write(&journal, text);
            let r = recover(&[&d]);
            assert!(
                matches!(&r, Err(Error::Journal { path, .. }) if *path == journal),
                "case {i}: {r:?}"
            );
            let _ = fs::remove_file(&journal);
            assert_eq!(snapshot(&root), before, "case {i} changed files");
        }
        // A temporary file that is a hard link to a file outside the tree (same owner): it
        // would be pulled into the tree under a new name and mode.
        let _ = fs::hard_link(outside.join("victim"), d.join(".sa.pub.kubepki-7-ab.tmp"));
        let journal = d.join(".kubepki-journal-7-ff");
        let _ = fs::write(
            &journal,
            "folders 1\nL\t.sa.pub.kubepki-7-ab.tmp\tsa.pub\nend\n",
        );
        let before = snapshot(&root);
        let r = recover(&[&d]);
        assert!(
            matches!(&r, Err(Error::Journal { reason, .. }) if reason.contains("hard links")),
            "{r:?}"
        );
        assert_eq!(snapshot(&root), before);
        let _ = fs::remove_file(&journal);
        let _ = fs::remove_file(d.join(".sa.pub.kubepki-7-ab.tmp"));
        // A name kubepki never writes is refused too, naming it.
        let odd = d.join(".kubepki-journal-x");
        let _ = fs::write(&odd, "");
        assert!(matches!(recover(&[&d]), Err(Error::Journal { path, .. }) if path == odd));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn errors_carry_the_io_error_as_source_and_keep_their_messages() -> Result<(), String> {
        use std::error::Error as _;
        let d = tmpdir("typed");
        let missing = d.join("missing.crt");
        let Some(e) = read_limited(&missing).err() else {
            return Err("a missing file was read".into());
        };
        let Error::Io { path, source } = &e else {
            return Err(format!("expected Error::Io, got {e:?}"));
        };
        assert_eq!(path, &missing);
        assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        assert!(e.source().is_some());
        assert_eq!(e.to_string(), format!("{}: {source}", missing.display()));
        assert_eq!(e.path(), missing);
        assert_eq!(e.detail(), source.to_string());
        // A folder that cannot be opened: the step, then the system's reason.
        let Some(e) = lock_folder(&missing, LockMode::Shared).err() else {
            return Err("a missing folder was locked".into());
        };
        let Error::Step {
            step: Step::OpenFolder,
            source,
            ..
        } = &e
        else {
            return Err(format!("expected Error::Step, got {e:?}"));
        };
        assert_eq!(e.detail(), format!("cannot open this folder: {source}"));
        // A refusal has no system error behind it; its message is the rule's.
        let mut b = FileBatch::new();
        let e = b.stage(&d.join("x/.."), b"x", MODE_PUBLIC).err();
        assert!(matches!(
            &e,
            Some(Error::Refused {
                reason: Refusal::NotAFileName,
                ..
            })
        ));
        assert!(e.as_ref().and_then(|e| e.source()).is_none());
        assert_eq!(
            e.map(|e| e.to_string()),
            Some(format!("{}: is not a file name", d.join("x/..").display()))
        );
        let _ = fs::remove_dir_all(&d);
        Ok(())
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = tmpdir("fifo");
        let fifo = d.join("ca.crt");
        assert!(
            rustix::fs::mknodat(
                rustix::fs::CWD,
                &fifo,
                FileType::Fifo,
                rustix::fs::Mode::from_raw_mode(0o600),
                0
            )
            .is_ok()
        );
        assert!(matches!(
            read_limited(&fifo),
            Err(Error::Refused {
                reason: Refusal::NotRegularFile {
                    kind: "a FIFO (named pipe)"
                },
                ..
            })
        ));
        // As a journal: refused, not read.
        let j = d.join(".kubepki-journal-7-aa");
        let _ = fs::rename(&fifo, &j);
        assert!(
            matches!(recover(&[&d]), Err(Error::Journal { reason, .. }) if reason.contains("FIFO"))
        );
        // As a target: refused.
        let _ = fs::rename(&j, &fifo);
        let mut b = FileBatch::overwriting();
        assert!(matches!(
            b.stage(&fifo, b"x", MODE_PUBLIC),
            Err(Error::Refused {
                reason: Refusal::WrongKind {
                    kind: "a FIFO (named pipe)"
                },
                ..
            })
        ));
        drop(b);
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn a_folder_swapped_for_a_link_after_staging_is_not_touched() -> Result<(), Error> {
        let root = tmpdir("swap");
        let d = root.join("pki");
        let other = root.join("other");
        let _ = fs::create_dir_all(&d);
        let _ = fs::create_dir_all(&other);
        let _ = fs::write(other.join("a.key"), b"other's file");
        let mut b = FileBatch::new();
        b.stage(&d.join("a.key"), b"secret", MODE_SECRET)?;
        b.stage(&d.join("b.crt"), b"public", MODE_PUBLIC)?;
        // Swap the folder for a link to the other folder.
        let _ = fs::rename(&d, root.join("pki.orig"));
        let _ = std::os::unix::fs::symlink(&other, &d);
        b.commit()?;
        // The batch went to the folder it opened, not through the link.
        assert_eq!(
            fs::read(root.join("pki.orig/a.key")).ok().as_deref(),
            Some(&b"secret"[..])
        );
        assert_eq!(
            fs::read(other.join("a.key")).ok().as_deref(),
            Some(&b"other's file"[..])
        );
        assert_eq!(fs::read_dir(&other).map(|r| r.count()).unwrap_or(0), 1);
        let _ = fs::remove_dir_all(&root);
        Ok(())
    }

    #[test]
    fn a_replaced_file_keeps_its_owner_group_and_mode() -> Result<(), Error> {
        let d = tmpdir("owner");
        let (conf, key) = (d.join("admin.conf"), d.join("a.key"));
        let _ = fs::write(&conf, b"old");
        let _ = fs::write(&key, b"old");
        let _ = fs::set_permissions(&conf, fs::Permissions::from_mode(0o640));
        let _ = fs::set_permissions(&key, fs::Permissions::from_mode(0o644));
        let root = rustix::process::geteuid().is_root();
        if root {
            let _ = rustix::fs::chown(
                &conf,
                Some(rustix::fs::Uid::from_raw(65534)),
                Some(rustix::fs::Gid::from_raw(65534)),
            );
        }
        let mut b = FileBatch::overwriting().keeping_owner_and_mode();
        b.stage(&conf, b"new", MODE_SECRET)?;
        b.stage(&key, b"new", MODE_SECRET)?;
        b.commit()?;
        let meta = |p: &Path| {
            fs::metadata(p)
                .map(|m| {
                    (
                        m.permissions().mode() & 0o777,
                        std::os::unix::fs::MetadataExt::uid(&m),
                    )
                })
                .ok()
        };
        assert_eq!(meta(&conf).map(|m| m.0), Some(0o640));
        if root {
            assert_eq!(meta(&conf).map(|m| m.1), Some(65534));
        }
        // A secret never stays readable by others.
        assert_eq!(meta(&key).map(|m| m.0), Some(0o640));
        assert_eq!(fs::read(&conf).ok().as_deref(), Some(&b"new"[..]));
        let _ = fs::remove_dir_all(&d);
        Ok(())
    }

    #[test]
    fn a_link_to_a_device_is_refused_before_it_is_opened() {
        let d = tmpdir("device");
        let _ = std::os::unix::fs::symlink("/dev/null", d.join("ca.crt"));
        assert!(matches!(
            read_limited(&d.join("ca.crt")),
            Err(Error::Refused {
                reason: Refusal::NotRegularFile {
                    kind: "a character device"
                },
                ..
            })
        ));
        let _ = fs::remove_dir_all(&d);
    }

    #[test]
    fn read_limited_refuses_large_files() {
        let d = tmpdir("big");
        let _ = fs::write(d.join("big"), vec![b'A'; MAX_INPUT_LEN + 10]);
        assert!(matches!(
            read_limited(&d.join("big")),
            Err(Error::Refused {
                reason: Refusal::TooLarge { max: MAX_INPUT_LEN },
                ..
            })
        ));
        let _ = fs::remove_dir_all(&d);
    }
}

/// The README examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
