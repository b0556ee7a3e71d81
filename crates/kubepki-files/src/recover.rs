//! The journal of a batch and recovery after a crash.
//!
//! Before the first file of a batch is moved into place, every folder of the batch gets a
//! journal `.kubepki-journal-PID-HEX` (one HEX for the whole batch) that says how many folders
//! the batch spans (`folders N`) and lists the moves *inside that folder*, one a line: `L` (move,
//! no-clobber) or `R` (rename, replacing), the temporary file, the final name — bare names, never
//! paths — and the SHA-256 of the file's contents; a closing `end` line *arms* it.
//!
//! A batch writes each journal whole, armed, together with its temporary files, and makes them
//! all durable with one flush; only then does the first move happen. The digests tell recovery
//! whether that flush completed: a crash before it (a power loss) can leave a journal whose
//! temporary files are missing or torn. So, per batch ([`recover`]):
//! - if a move was already made (its final name holds the file of that digest), the flush had
//!   completed: every temporary file left is moved into place (one that is torn is refused, with
//!   nothing done: only someone else can have changed it);
//! - if none was made, the batch is replayed when every folder's journal is there and every
//!   temporary file is intact (they are flushed first), and dropped otherwise: it never moved a
//!   file.
//!
//! This needs every journal of the batch: a batch with digests spans one folder, or folders
//! that are always recovered together (`FileBatch::recovered_together`: a tree's), and one
//! found by a recovery of only some of its folders is refused, with nothing done. So a batch
//! spanning `pki/`, `pki/etcd/` and the kubeconfig folder is never left half done.
//! Journals of three fields a line (no digest: a rollback's, a batch's over several folders
//! that may be recovered one at a time, and every journal of kubepki releases before stop 29)
//! are armed only after their files were flushed: armed, they are replayed in whatever folders
//! are being recovered, not armed, dropped. Recovery removes a batch's journals only once all
//! its moves are durable.
//!
//! A journal is input like any other: someone who can write into the folder can plant one. So
//! recovery acts only on journals that are exactly what kubepki writes, and only on moves of
//! the form `.<name>.kubepki-<pid>-<hex>.tmp` -> `<name>` inside the journal's own folder, where
//! the temporary file is a regular file owned by the running user. Anything else makes the
//! whole journal refused, with nothing done. Readers never recover: they report ([`pending`]).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use rustix::fs::FileType;

use super::lock::{self, FolderLock, LockMode, lock_folder};
use super::sys;
use crate::{Error, JournalStep, Refusal, Step};
use kubepki_keys::pem::MAX_INPUT_LEN;

pub(super) const JOURNAL_PREFIX: &str = ".kubepki-journal-";

/// `PID-HEX`, as in journal and temporary-file names.
fn parse_token(s: &str) -> Option<u32> {
    let (pid, hex) = s.split_once('-')?;
    let digits = |t: &str, max: usize, f: fn(&u8) -> bool| {
        !t.is_empty() && t.len() <= max && t.as_bytes().iter().all(f)
    };
    if !digits(pid, 10, u8::is_ascii_digit)
        || !digits(hex, 32, |b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    pid.parse().ok()
}

/// The name of the temporary file for `name` in a batch of process `pid`.
pub(super) fn temp_name(name: &OsStr, pid: u32, hex: &str) -> OsString {
    let mut t = OsString::from(".");
    t.push(name);
    t.push(format!(".kubepki-{pid}-{hex}.tmp"));
    t
}

/// The owner PID of a temporary file name `.<name>.kubepki-<pid>-<hex>.tmp`.
fn temp_owner(name: &[u8]) -> Option<u32> {
    let s = std::str::from_utf8(name).ok()?;
    let body = s.strip_prefix('.')?.strip_suffix(".tmp")?;
    let at = body.rfind(".kubepki-")?;
    if at == 0 {
        return None;
    }
    parse_token(&body[at + ".kubepki-".len()..])
}

/// The owner PID of a journal name `.kubepki-journal-<pid>-<hex>`.
fn journal_owner(name: &[u8]) -> Option<u32> {
    parse_token(
        std::str::from_utf8(name)
            .ok()?
            .strip_prefix(JOURNAL_PREFIX)?,
    )
}

/// Whether `name` is a final name a journal may move a file to: one plain file name.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0', '\t', '\n', '\r'])
}

/// One line of a journal.
pub(super) struct Move {
    pub(super) replace: bool,
    pub(super) temp: OsString,
    pub(super) name: OsString,
    /// The SHA-256 of the file's contents; `None` in a journal armed only once its files were
    /// flushed (a rollback's, or an older kubepki's).
    pub(super) digest: Option<[u8; 32]>,
}

/// A journal as read: how many folders its batch spans and its moves; `armed` once its `end`
/// line is there.
pub(super) struct Journal {
    pub(super) folders: usize,
    pub(super) moves: Vec<Move>,
    pub(super) armed: bool,
}

/// The most folders one batch may span.
const MAX_FOLDERS: usize = 64;

/// The header and moves of a journal; [`ARM`] is appended once every folder has its journal.
pub(super) fn journal_text(folders: usize, moves: &[Move]) -> Result<String, Refusal> {
    let mut text = format!("folders {folders}\n");
    for m in moves {
        let (Some(t), Some(n)) = (m.temp.to_str(), m.name.to_str()) else {
            return Err(Refusal::NonUtf8Name);
        };
        if !plain_name(n) {
            return Err(Refusal::TabOrNewlineName);
        }
        text.push_str(if m.replace { "R\t" } else { "L\t" });
        text.push_str(t);
        text.push('\t');
        text.push_str(n);
        if let Some(d) = &m.digest {
            text.push('\t');
            text.push_str(&kubepki_keys::hex(d));
        }
        text.push('\n');
    }
    Ok(text)
}

/// What arms a journal.
pub(super) const ARM: &str = "end\n";

/// Parses a journal of process `pid`, or says which line kubepki would not have written. A
/// journal cut short while being written (before the batch's first move) is accepted when
/// every whole line in it is valid: it is simply not armed.
fn parse_journal(text: &[u8], pid: u32) -> Result<Journal, String> {
    let text = std::str::from_utf8(text).map_err(|_| "is not UTF-8 text".to_string())?;
    let (body, armed) = match text.strip_suffix(ARM) {
        Some(b) if b.is_empty() || b.ends_with('\n') => (b, true),
        _ => (&text[..text.rfind('\n').map_or(0, |i| i + 1)], false),
    };
    let mut lines = body.lines();
    let folders = match lines.next() {
        None if !armed => 0,
        Some(h) => h
            .strip_prefix("folders ")
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|n| (1..=MAX_FOLDERS).contains(n))
            .ok_or_else(|| "line 1: not of the form \"folders N\"".to_string())?,
        None => return Err("lists no move".into()),
    };
    let mut moves = Vec::new();
    for (i, line) in lines.enumerate() {
        let bad = |why: &str| format!("line {}: {why}", i + 2);
        let mut parts = line.split('\t');
        let (Some(kind), Some(temp), Some(name), digest, None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("not of the form KIND<TAB>TEMP<TAB>NAME[<TAB>SHA256]"));
        };
        let digest = match digest {
            None => None,
            Some(d) => Some(
                parse_digest(d)
                    .ok_or_else(|| bad("the digest is not 64 lower-case hexadecimal digits"))?,
            ),
        };
        if moves
            .first()
            .is_some_and(|m: &Move| m.digest.is_some() != digest.is_some())
        {
            return Err(bad("some lines have a digest and some do not"));
        }
        let replace = match kind {
            "L" => false,
            "R" => true,
            _ => return Err(bad("unknown kind (kubepki writes L or R)")),
        };
        if !plain_name(name) {
            return Err(bad(
                "the target is not a plain file name in the journal's folder",
            ));
        }
        let expected_prefix = format!(".{name}.kubepki-");
        let token = temp
            .strip_prefix(&expected_prefix)
            .and_then(|t| t.strip_suffix(".tmp"));
        if token.and_then(parse_token) != Some(pid) {
            return Err(bad(&format!(
                "the source is not a temporary file of this batch (.{name}.kubepki-{pid}-HEX.tmp)"
            )));
        }
        if moves
            .iter()
            .any(|m: &Move| m.name.as_os_str() == name || m.temp.as_os_str() == temp)
        {
            return Err(bad("names a file a line above already names"));
        }
        moves.push(Move {
            replace,
            temp: temp.into(),
            name: name.into(),
            digest,
        });
    }
    if armed && moves.is_empty() {
        return Err("lists no move".into());
    }
    Ok(Journal {
        folders,
        moves,
        armed,
    })
}

/// 64 lower-case hexadecimal digits, as kubepki writes a SHA-256.
fn parse_digest(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = (nib(pair[0])? << 4) | nib(pair[1])?;
    }
    Some(out)
}

fn read_journal(dir: impl AsFd, name: &OsStr, path: &Path) -> Result<Vec<u8>, Error> {
    let refuse = |reason: String| Error::Journal {
        path: path.to_owned(),
        reason,
    };
    let unreadable = |step: JournalStep| {
        move |source: std::io::Error| Error::JournalUnreadable {
            path: path.to_owned(),
            step,
            source,
        }
    };
    let fd = sys::open_read_at(dir, name).map_err(unreadable(JournalStep::Open))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| unreadable(JournalStep::Stat)(e.into()))?;
    if sys::kind(&st) != FileType::RegularFile {
        return Err(refuse(format!("is {}", sys::kind_name(sys::kind(&st)))));
    }
    if !sys::owned_by_me(&st) {
        return Err(refuse("is owned by another user".into()));
    }
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_INPUT_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(unreadable(JournalStep::Read))?;
    if buf.len() > MAX_INPUT_LEN {
        return Err(refuse("is larger than any journal kubepki writes".into()));
    }
    Ok(buf)
}

/// A journal found in a folder being recovered.
struct Found<'a> {
    lock: &'a FolderLock,
    name: OsString,
    path: PathBuf,
    /// `PID-HEX`: the same for every journal of one batch.
    batch: String,
    journal: Journal,
}

/// A batch to replay: each of its journals with the moves left to do (and whether each is
/// already linked).
type BatchMoves<'f, 'l> = Vec<(&'f Found<'l>, Vec<(&'f Move, bool)>)>;

/// Completes the batches dead writers left in the folders `locks` hold exclusively (a batch
/// whose journals are all armed is replayed in every one of these folders; one with a journal
/// not armed never moved a file and is dropped), then removes their temporary files. Every
/// journal is read and every move checked before anything is done. Returns the files put in
/// place.
///
/// `together`: `locks` are every folder a batch found there may span (the caller says so, as
/// [`recover`]'s does); a journal missing from them is then gone for good. Otherwise (a batch
/// recovering the one folder it first writes into) a batch whose journals have digests and
/// are not all among `locks` cannot be decided here — its other journals may be in folders not
/// given, and only they tell whether its flush completed — and is refused, with nothing done.
pub(super) fn recover_locked(locks: &[&FolderLock], together: bool) -> Result<Vec<PathBuf>, Error> {
    let io = |path: PathBuf, source: std::io::Error| Error::Io { path, source };
    let todo: Vec<&FolderLock> = locks
        .iter()
        .copied()
        .filter(|l| !l.0.recovered.load(Ordering::SeqCst))
        .collect();
    // 1. Read every journal.
    let mut found: Vec<Found<'_>> = Vec::new();
    let mut listings = Vec::new();
    for lock in &todo {
        let (dir, folder) = (lock.fd(), lock.path());
        let names = sys::list(dir).map_err(|e| io(folder.to_owned(), e))?;
        for jname in names
            .iter()
            .filter(|n| n.as_bytes().starts_with(JOURNAL_PREFIX.as_bytes()))
        {
            let jpath = folder.join(jname);
            let refuse = |reason: String| Error::Journal {
                path: jpath.clone(),
                reason,
            };
            let Some(pid) = journal_owner(jname.as_bytes()) else {
                return Err(refuse("its name is not one kubepki writes".into()));
            };
            if lock::is_live(jname) {
                continue; // a batch of this very process (another thread): alive
            }
            let text = read_journal(dir, jname, &jpath)?;
            let journal = parse_journal(&text, pid).map_err(&refuse)?;
            let batch = jname.to_string_lossy()[JOURNAL_PREFIX.len()..].to_owned();
            found.push(Found {
                lock,
                name: jname.clone(),
                path: jpath,
                batch,
                journal,
            });
        }
        listings.push((*lock, names));
    }
    // 2. Per batch: dropped whole if any journal is not armed, else every move checked.
    let mut batches: Vec<&str> = found.iter().map(|f| f.batch.as_str()).collect();
    batches.sort();
    batches.dedup();
    let mut drop_journals: Vec<&Found<'_>> = Vec::new();
    // Each batch to replay: its journals, each with the moves left to do.
    let mut replay: Vec<BatchMoves<'_, '_>> = Vec::new();
    for b in batches {
        let group: Vec<&Found<'_>> = found.iter().filter(|f| f.batch == b).collect();
        // Every journal of a batch says how many folders it spans; more journals than that, or
        // armed journals that disagree, are not what kubepki writes. A journal not armed may
        // be cut short anywhere, even empty (a kill between creating and writing it, while
        // another folder's journal of the same batch is already whole and armed): it is not
        // compared.
        let first_armed = group.iter().find(|f| f.journal.armed);
        if let Some(f) = group.iter().find(|f| {
            f.journal.armed
                && (first_armed.is_some_and(|a| f.journal.folders != a.journal.folders)
                    || group.len() > f.journal.folders)
        }) {
            return Err(Error::Journal {
                path: f.path.clone(),
                reason: format!(
                    "{} journals of this batch were found, and they do not agree on how many folders it spans",
                    group.len()
                ),
            });
        }
        if group.iter().any(|f| !f.journal.armed) {
            drop_journals.extend(group);
            continue;
        }
        let digests = group
            .iter()
            .any(|f| f.journal.moves.iter().any(|m| m.digest.is_some()));
        if digests && !together && group.len() < group[0].journal.folders {
            return Err(Error::Journal {
                path: group[0].path.clone(),
                reason: format!(
                    "belongs to a batch over {} folders, only {} of which {} being recovered; only a recovery of all of them (a command that writes the whole tree) can tell whether to complete or drop it",
                    group[0].journal.folders,
                    group.len(),
                    if group.len() == 1 { "is" } else { "are" }
                ),
            });
        }
        let checked: Vec<(&Found<'_>, Vec<(&Move, State)>)> = group
            .iter()
            .map(|f| Ok((*f, check_moves(f)?)))
            .collect::<Result<_, Error>>()?;
        let states = || checked.iter().flat_map(|(_, m)| m.iter().map(|(_, s)| *s));
        // A move made (or a link made) proves the batch's flush completed.
        let moved = states().any(|s| matches!(s, State::Moved | State::Todo { linked: true }));
        let whole = group.len() == group[0].journal.folders;
        if digests
            && !moved
            && (!whole || states().any(|s| matches!(s, State::Missing | State::Torn)))
        {
            // Never moved a file (a crash before its flush completed, or before its last
            // journal was written): dropped; its temporary files go with step 4.
            drop_journals.extend(group);
            continue;
        }
        if moved {
            // The flush had completed: a torn temporary file, or a journal missing while
            // moves are left, is not what a crash leaves.
            let left = states().any(|s| matches!(s, State::Todo { .. }));
            let refusal = checked.iter().find_map(|(f, m)| {
                m.iter()
                    .find(|(_, s)| *s == State::Torn)
                    .map(|(mv, _)| (f, format!(
                        "{} is not the file this batch wrote (its digest differs), yet files of the batch were already moved into place; the batch cannot be completed safely",
                        mv.temp.to_string_lossy()
                    )))
                    .or_else(|| {
                        (digests && !whole && left).then(|| (f, format!(
                            "only {} of the batch's {} journals were found, yet files of the batch were already moved into place; the batch cannot be completed safely",
                            group.len(),
                            f.journal.folders
                        )))
                    })
            });
            if let Some((f, reason)) = refusal {
                return Err(Error::Journal {
                    path: f.path.clone(),
                    reason,
                });
            }
        }
        replay.push(
            checked
                .into_iter()
                .map(|(f, m)| {
                    let todo = m
                        .into_iter()
                        .filter_map(|(mv, s)| match s {
                            State::Todo { linked } => Some((mv, linked)),
                            _ => None,
                        })
                        .collect();
                    (f, todo)
                })
                .collect(),
        );
    }
    // 3. Act.
    let mut done = Vec::new();
    for f in drop_journals {
        let dir = f.lock.fd();
        sys::unlink_at(dir, &f.name).map_err(|e| io(f.path.clone(), e))?;
        sys::sync(dir).map_err(|e| io(f.lock.path().to_owned(), e))?;
    }
    for batch in replay {
        // A journal with digests was armed before its batch's flush, which may not have
        // completed (a crash right after writing them): every temporary file left and every
        // journal of the batch, in every folder, and their folder entries, durable before the
        // first move — else a power loss during this recovery could keep a move and lose
        // another folder's file or journal, and the next recovery would complete or drop only
        // part of the batch.
        if batch
            .iter()
            .any(|(f, _)| f.journal.moves.iter().any(|m| m.digest.is_some()))
        {
            for (f, moves) in &batch {
                let (dir, folder) = (f.lock.fd(), f.lock.path());
                let names = moves.iter().map(|(m, _)| &m.temp).chain([&f.name]);
                for name in names {
                    let fd = sys::open_read_at(dir, name).map_err(|e| io(folder.join(name), e))?;
                    sys::sync(&fd).map_err(|e| io(folder.join(name), e))?;
                    trace(format!("sync {}", name.to_string_lossy()));
                }
                sys::sync(dir).map_err(|e| io(folder.to_owned(), e))?;
                trace(format!("sync {}", folder.display()));
            }
        }
        // Every move of the batch, in every folder, durable before any of its journals goes:
        // a crash in between finds every journal again.
        for (f, moves) in &batch {
            let (dir, folder) = (f.lock.fd(), f.lock.path());
            for &(m, already_linked) in moves {
                let target = folder.join(&m.name);
                trace(format!("move {}", m.name.to_string_lossy()));
                if m.replace {
                    sys::rename_at(dir, &m.temp, &m.name).map_err(|e| io(target.clone(), e))?;
                } else {
                    if !already_linked {
                        sys::link_at(dir, &m.temp, &m.name).map_err(|e| io(target.clone(), e))?;
                    }
                    sys::unlink_at(dir, &m.temp).map_err(|e| io(folder.join(&m.temp), e))?;
                }
                done.push(target);
            }
            sys::sync(dir).map_err(|e| io(folder.to_owned(), e))?;
        }
        for (f, _) in &batch {
            let dir = f.lock.fd();
            sys::unlink_at(dir, &f.name).map_err(|e| io(f.path.clone(), e))?;
            sys::sync(dir).map_err(|e| io(f.lock.path().to_owned(), e))?;
        }
    }
    // 4. Temporary files of other processes: with the folder locked exclusively, their writers
    // are gone (a live writer holds the lock). Removing such a name is harmless whoever owns
    // the file (a replaced file's second name belongs to its owner).
    for (lock, names) in listings {
        let dir = lock.fd();
        for name in &names {
            if temp_owner(name.as_bytes()).is_some()
                && !lock::is_live(name)
                && sys::stat_at(dir, name)
                    .ok()
                    .flatten()
                    .is_some_and(|s| sys::kind(&s) == FileType::RegularFile)
            {
                let _ = sys::unlink_at(dir, name);
            }
        }
        lock.0.recovered.store(true, Ordering::SeqCst);
    }
    Ok(done)
}

#[cfg(test)]
thread_local! {
    /// Tests: what recovery flushed and moved, in order.
    pub(super) static TRACE: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Tests: notes a step of recovery in [`TRACE`].
fn trace(_step: String) {
    #[cfg(test)]
    TRACE.with(|t| t.borrow_mut().push(_step));
}

/// Where one move of an armed journal stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// To do: the temporary file is there (and intact, when the journal has digests);
    /// `linked` when a no-clobber move already gave it its final name.
    Todo { linked: bool },
    /// Done: the temporary file is gone and the final name holds the file of the digest (or,
    /// in a journal without digests, the temporary file is gone).
    Moved,
    /// Neither the temporary file nor the final file of the digest is there.
    Missing,
    /// The temporary file is there but its contents are not those of the digest.
    Torn,
}

/// Whether the regular file `name` in `dir` holds contents of SHA-256 `digest` (read without
/// following a link, without blocking, and no further than any file kubepki writes).
fn holds(dir: impl AsFd, name: &OsStr, digest: &[u8; 32]) -> std::io::Result<bool> {
    // Look before opening: only a regular file is ever opened (opening a device can have
    // effects of its own; a link is not followed).
    let Some(before) = sys::stat_at(&dir, name)? else {
        return Ok(false);
    };
    if sys::kind(&before) != FileType::RegularFile {
        return Ok(false);
    }
    let fd = match sys::open_read_at(&dir, name) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let st = rustix::fs::fstat(&fd)?;
    if sys::kind(&st) != FileType::RegularFile || sys::identity(&st) != sys::identity(&before) {
        return Ok(false);
    }
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_INPUT_LEN as u64 + 1)
        .read_to_end(&mut buf)?;
    // Not a secret: the digest is in the journal for anyone who can read the folder.
    Ok(kubepki_keys::sha256(&buf) == *digest)
}

/// Checks every move of an armed journal against the folder, before anything is done: the
/// temporary file (if still there) is a regular file of this user; a link target is absent or
/// already that file; a rename target is absent or a regular file. Says where each move
/// stands.
fn check_moves<'f>(f: &'f Found<'_>) -> Result<Vec<(&'f Move, State)>, Error> {
    let (dir, folder) = (f.lock.fd(), f.lock.path());
    let io = |path: PathBuf, source: std::io::Error| Error::Io { path, source };
    let refuse = |reason: String| Error::Journal {
        path: f.path.clone(),
        reason,
    };
    let mut todo = Vec::new();
    for m in &f.journal.moves {
        let target = folder.join(&m.name);
        let Some(t) = sys::stat_at(dir, &m.temp).map_err(|e| io(folder.join(&m.temp), e))? else {
            // Moved before the crash, or (with a digest) perhaps never made durable.
            let state = match &m.digest {
                None => State::Moved,
                Some(d) if holds(dir, &m.name, d).map_err(|e| io(target.clone(), e))? => {
                    State::Moved
                }
                Some(_) => State::Missing,
            };
            todo.push((m, state));
            continue;
        };
        if sys::kind(&t) != FileType::RegularFile || !sys::owned_by_me(&t) {
            return Err(refuse(format!(
                "{} is not a regular file owned by this user",
                m.temp.to_string_lossy()
            )));
        }
        // A temporary file has one name until it is linked into place: another name would be
        // a file elsewhere that the journal tries to pull into the tree.
        let single = t.st_nlink == 1;
        let not_single = || {
            refuse(format!(
                "{} has other names (hard links); it is not a temporary file kubepki wrote",
                m.temp.to_string_lossy()
            ))
        };
        let intact = match &m.digest {
            None => true,
            Some(d) => holds(dir, &m.temp, d).map_err(|e| io(folder.join(&m.temp), e))?,
        };
        let todo_or_torn = |linked| {
            if intact {
                State::Todo { linked }
            } else {
                State::Torn
            }
        };
        match sys::stat_at(dir, &m.name).map_err(|e| io(target.clone(), e))? {
            None if !single => return Err(not_single()),
            None => todo.push((m, todo_or_torn(false))),
            Some(g) if !m.replace && sys::identity(&g) == sys::identity(&t) => {
                // linked before the crash; only the temp is left
                todo.push((m, todo_or_torn(true)));
            }
            Some(_) if !m.replace => {
                return Err(refuse(format!(
                    "{} exists and is not the file this batch wrote; the batch cannot be completed safely",
                    m.name.to_string_lossy()
                )));
            }
            Some(g) if sys::kind(&g) != FileType::RegularFile => {
                return Err(refuse(format!(
                    "{} is {}, not a file the batch may replace",
                    m.name.to_string_lossy(),
                    sys::kind_name(sys::kind(&g))
                )));
            }
            Some(_) if !single => return Err(not_single()),
            Some(_) => todo.push((m, todo_or_torn(false))),
        }
    }
    Ok(todo)
}

/// Finishes what an interrupted kubepki left in `dirs` (give every folder one batch may span,
/// e.g. a tree's certificate, etcd and kubeconfig folders): locks each existing folder
/// exclusively (waiting for a live writer to finish), replays the batches whose journals are
/// all armed, drops the others (they never moved a file), and removes dead writers' temporary
/// files. Returns the files it put in place. A journal that is not exactly what kubepki writes
/// is refused ([`Error::Journal`]) with nothing done.
pub fn recover(dirs: &[&Path]) -> Result<Vec<PathBuf>, Error> {
    let mut locks = Vec::new();
    for dir in dirs {
        match lock::open_existing(dir) {
            Ok(fd) => locks.push(super::lock::lock_fd(fd, dir, LockMode::Exclusive)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Step {
                    path: dir.to_path_buf(),
                    step: Step::OpenFolder,
                    source: e,
                });
            }
        }
    }
    // The same folder named twice is recovered once.
    let mut unique: Vec<&FolderLock> = Vec::new();
    for l in &locks {
        if !unique.iter().any(|u| std::sync::Arc::ptr_eq(&u.0, &l.0)) {
            unique.push(l);
        }
    }
    recover_locked(&unique, true)
}

/// The journals of unfinished batches in `dir` (none if it does not exist), for readers, which
/// report them instead of recovering. Take a [`LockMode::Shared`] lock on `dir` first, so that a
/// live writer's journal is not reported.
pub fn pending(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let fd = match lock::open_existing(dir) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Step {
                path: dir.to_owned(),
                step: Step::OpenFolder,
                source: e,
            });
        }
    };
    let names = sys::list(&fd).map_err(|source| Error::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut out: Vec<PathBuf> = names
        .iter()
        .filter(|n| n.as_bytes().starts_with(JOURNAL_PREFIX.as_bytes()))
        .filter(|n| !lock::is_live(n))
        .filter(|n| !completed(&fd, n, &dir.join(n)))
        .map(|n| dir.join(n))
        .collect();
    out.sort();
    Ok(out)
}

/// Whether the journal `name` belongs to a batch that completed: armed, of one folder, and none
/// of its temporary files is left (each was moved into place before the batch removed its journals).
/// A batch does not flush its journals' removal (see `FileBatch::commit`), so a crash right
/// after a batch can bring such a journal back; it is nothing pending. Anything that cannot be
/// read or is not exactly what kubepki writes counts as pending.
fn completed(dir: impl AsFd, name: &OsStr, path: &Path) -> bool {
    let Some(pid) = journal_owner(name.as_bytes()) else {
        return false;
    };
    let Ok(text) = read_journal(&dir, name, path) else {
        return false;
    };
    // Only a batch of one folder: the moves of a batch are flushed together after the last,
    // so a crash before that can keep this folder's moves and lose another folder's; a journal
    // here cannot tell whether the batch's other folders are done, and is pending.
    match parse_journal(&text, pid) {
        Ok(j) if j.armed && j.folders == 1 => j
            .moves
            .iter()
            .all(|m| matches!(sys::stat_at(&dir, &m.temp), Ok(None))),
        _ => false,
    }
}

/// Locks `dir` for reading if it exists and can be opened (a reader without access to the
/// folder still gets its report, unlocked).
pub fn lock_for_reading(dir: &Path) -> Result<Option<FolderLock>, Error> {
    match lock_folder(dir, LockMode::Shared) {
        Ok(l) => Ok(Some(l)),
        Err(Error::Io { .. } | Error::Step { .. } | Error::Refused { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed(moves: &[Move]) -> String {
        journal_text(1, moves).unwrap_or_default() + ARM
    }

    #[test]
    fn journal_text_round_trips() {
        let moves = vec![
            Move {
                replace: false,
                temp: temp_name(OsStr::new("a.crt"), 42, "0a1b"),
                name: "a.crt".into(),
                digest: None,
            },
            Move {
                replace: true,
                temp: temp_name(OsStr::new("b.key"), 42, "ff"),
                name: "b.key".into(),
                digest: None,
            },
        ];
        let text = armed(&moves);
        let parsed = parse_journal(text.as_bytes(), 42);
        assert!(
            matches!(parsed, Ok(ref j) if j.armed && j.folders == 1 && j.moves.len() == 2 && j.moves[1].replace)
        );
        // Another pid's temporary files are not this journal's.
        assert!(parse_journal(text.as_bytes(), 43).is_err());
        // Not armed yet (or cut short while being written): no move happened.
        let unarmed = journal_text(1, &moves).unwrap_or_default();
        assert!(matches!(parse_journal(unarmed.as_bytes(), 42), Ok(j) if !j.armed));
        assert!(matches!(
            parse_journal(&text.as_bytes()[..text.len() - 2], 42),
            Ok(j) if !j.armed
        ));
    }

    #[test]
    fn hostile_lines_are_refused() {
        for line in [
            "L\t/etc/.x.kubepki-7-aa.tmp\tx",
            "L\t.x.kubepki-7-aa.tmp\t../x",
            "L\t.x.kubepki-7-aa.tmp\t/etc/passwd",
            "L\t../.x.kubepki-7-aa.tmp\tx",
            "R\t.x.kubepki-7-aa.tmp\ty",
            "L\t.x.kubepki-8-aa.tmp\tx",
            "L\t.x.kubepki-7-AA.tmp\tx",
            "X\t.x.kubepki-7-aa.tmp\tx",
            "L\t.x.kubepki-7-aa.tmp\tx\textra",
            "L\tx\tx",
            "L\t.x.kubepki-7-aa.tmp\t.",
        ] {
            let text = format!("folders 1\n{line}\nend\n");
            assert!(parse_journal(text.as_bytes(), 7).is_err(), "{line}");
            // Not armed, but a line kubepki never writes: refused, not silently dropped.
            let text = format!("folders 1\n{line}\n");
            assert!(parse_journal(text.as_bytes(), 7).is_err(), "{line}");
        }
        assert!(
            parse_journal(b"folders 1\nend\n", 7).is_err(),
            "empty journal"
        );
        let twice = b"folders 1\nL\t.x.kubepki-7-aa.tmp\tx\nR\t.x.kubepki-7-aa.tmp\tx\nend\n";
        assert!(parse_journal(twice, 7).is_err(), "the same move twice");
        assert!(
            parse_journal(b"L\t.x.kubepki-7-aa.tmp\tx\nend\n", 7).is_err(),
            "no header"
        );
        assert!(parse_journal(b"folders 0\nL\t.x.kubepki-7-aa.tmp\tx\nend\n", 7).is_err());
        assert!(parse_journal(b"folders 99\nL\t.x.kubepki-7-aa.tmp\tx\nend\n", 7).is_err());
        assert!(matches!(parse_journal(b"", 7), Ok(j) if !j.armed));
    }

    #[test]
    fn names_are_parsed_strictly() {
        assert_eq!(journal_owner(b".kubepki-journal-12-0af"), Some(12));
        assert_eq!(journal_owner(b".kubepki-journal-x"), None);
        assert_eq!(journal_owner(b".kubepki-journal-12"), None);
        assert_eq!(journal_owner(b".kubepki-journal-12-"), None);
        assert_eq!(temp_owner(b".ca.key.kubepki-99-0011.tmp"), Some(99));
        assert_eq!(temp_owner(b".kubepki-99-0011.tmp"), None);
        assert_eq!(temp_owner(b"ca.key.kubepki-99-0011.tmp"), None);
    }
}
