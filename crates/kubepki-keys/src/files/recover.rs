//! The journal of a batch and recovery after a crash.
//!
//! Before the first file of a batch is moved into place, every folder of the batch gets a
//! journal `.kubepki-journal-PID-HEX` that lists the moves *inside that folder*, one a line:
//! `L` (link, no-clobber) or `R` (rename, replacing), the temporary file, the final name — bare
//! names, never paths — and a closing `end` line. If the writer dies while moving, the next
//! writer of that folder completes the moves ([`recover`]).
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

use super::lock::{FolderLock, LockMode, lock_folder};
use super::sys;
use crate::Error;
use crate::pem::MAX_INPUT_LEN;

pub(super) const JOURNAL_PREFIX: &str = ".kubepki-journal-";
const END: &str = "end";

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
}

/// The text of a journal for `moves` (all in one folder).
pub(super) fn journal_text(moves: &[Move]) -> Result<String, String> {
    let mut text = String::new();
    for m in moves {
        let (Some(t), Some(n)) = (m.temp.to_str(), m.name.to_str()) else {
            return Err("file names that are not UTF-8 are not supported".into());
        };
        if !plain_name(n) {
            return Err("file names with tabs or newlines are not supported".into());
        }
        text.push_str(if m.replace { "R\t" } else { "L\t" });
        text.push_str(t);
        text.push('\t');
        text.push_str(n);
        text.push('\n');
    }
    text.push_str(END);
    text.push('\n');
    Ok(text)
}

/// Parses a journal of process `pid`: `None` if it was never completed (the writer died while
/// writing it, before any move), an error naming the first line that kubepki would not write.
fn parse_journal(text: &[u8], pid: u32) -> Result<Option<Vec<Move>>, String> {
    let text = std::str::from_utf8(text).map_err(|_| "is not UTF-8 text".to_string())?;
    // A journal is complete when its last line is `end`. One cut short (the writer died while
    // writing it, before any move) is accepted only if every whole line in it is valid.
    let (body, complete) = match text.strip_suffix(&format!("{END}\n")) {
        Some(b) if b.is_empty() || b.ends_with('\n') => (b, true),
        _ => (&text[..text.rfind('\n').map_or(0, |i| i + 1)], false),
    };
    let mut moves = Vec::new();
    for (i, line) in body.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}", i + 1);
        let mut parts = line.split('\t');
        let (Some(kind), Some(temp), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("not of the form KIND<TAB>TEMP<TAB>NAME"));
        };
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
        moves.push(Move {
            replace,
            temp: temp.into(),
            name: name.into(),
        });
    }
    if !complete {
        return Ok(None);
    }
    if moves.is_empty() {
        return Err("lists no move".into());
    }
    Ok(Some(moves))
}

fn read_journal(dir: impl AsFd, name: &OsStr, path: &Path) -> Result<Vec<u8>, Error> {
    let refuse = |reason: String| Error::Journal {
        path: path.to_owned(),
        reason,
    };
    let fd = sys::open_read_at(dir, name).map_err(|e| refuse(format!("cannot open: {e}")))?;
    let st = rustix::fs::fstat(&fd).map_err(|e| refuse(format!("cannot stat: {e}")))?;
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
        .map_err(|e| refuse(format!("cannot read: {e}")))?;
    if buf.len() > MAX_INPUT_LEN {
        return Err(refuse("is larger than any journal kubepki writes".into()));
    }
    Ok(buf)
}

/// Completes the batches dead writers left in the folder `lock` holds exclusively, then removes
/// their temporary files. Returns the files it put in place.
pub(super) fn recover_locked(lock: &FolderLock) -> Result<Vec<PathBuf>, Error> {
    if lock.0.recovered.load(Ordering::SeqCst) {
        return Ok(Vec::new());
    }
    let dir = lock.fd();
    let folder = lock.path();
    let io = |p: PathBuf, e: std::io::Error| Error::Io {
        path: p,
        reason: e.to_string(),
    };
    let me = std::process::id();
    let names = sys::list(dir).map_err(|e| io(folder.to_owned(), e))?;
    let mut done = Vec::new();
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
        if pid == me {
            // A batch of this very process (another thread): alive.
            continue;
        }
        let text = read_journal(dir, jname, &jpath)?;
        let Some(moves) = parse_journal(&text, pid).map_err(&refuse)? else {
            // Never completed: the writer died before its first move. Nothing to replay.
            sys::unlink_at(dir, jname).map_err(|e| io(jpath.clone(), e))?;
            continue;
        };
        // Check every move before acting on any.
        let mut todo = Vec::new();
        for m in &moves {
            let target = folder.join(&m.name);
            let Some(t) = sys::stat_at(dir, &m.temp).map_err(|e| io(folder.join(&m.temp), e))?
            else {
                continue; // already moved before the crash
            };
            if sys::kind(&t) != FileType::RegularFile || !sys::owned_by_me(&t) {
                return Err(refuse(format!(
                    "{} is not a regular file owned by this user",
                    m.temp.to_string_lossy()
                )));
            }
            match sys::stat_at(dir, &m.name).map_err(|e| io(target.clone(), e))? {
                None => todo.push((m, false)),
                Some(g) if !m.replace && sys::identity(&g) == sys::identity(&t) => {
                    todo.push((m, true)); // linked before the crash; only the temp is left
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
                Some(_) => todo.push((m, false)),
            }
        }
        for (m, already_linked) in todo {
            let target = folder.join(&m.name);
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
        sys::unlink_at(dir, jname).map_err(|e| io(jpath.clone(), e))?;
        sys::sync(dir).map_err(|e| io(folder.to_owned(), e))?;
    }
    // Temporary files of other processes: with the folder locked exclusively, their writers are
    // gone (a live writer holds the lock).
    for name in &names {
        if temp_owner(name.as_bytes()).is_some_and(|p| p != me)
            && sys::stat_at(dir, name)
                .ok()
                .flatten()
                .is_some_and(|s| sys::kind(&s) == FileType::RegularFile && sys::owned_by_me(&s))
        {
            let _ = sys::unlink_at(dir, name);
        }
    }
    lock.0.recovered.store(true, Ordering::SeqCst);
    Ok(done)
}

/// Finishes what an interrupted kubepki left in `dirs`: locks each existing folder exclusively
/// (waiting for a live writer to finish), replays the journals of dead writers (completing their
/// batches) and removes their temporary files. Returns the files it put in place. A journal that
/// is not exactly what kubepki writes is refused ([`Error::Journal`]) with nothing done.
pub fn recover(dirs: &[&Path]) -> Result<Vec<PathBuf>, Error> {
    let mut done = Vec::new();
    for dir in dirs {
        match sys::open_dir(dir) {
            Ok(fd) => {
                let lock = super::lock::lock_fd(fd, dir, LockMode::Exclusive)?;
                done.extend(recover_locked(&lock)?);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(Error::Io {
                    path: dir.to_path_buf(),
                    reason: format!("cannot open this folder: {e}"),
                });
            }
        }
    }
    Ok(done)
}

/// The journals of unfinished batches in `dir` (none if it does not exist), for readers, which
/// report them instead of recovering. Take a [`LockMode::Shared`] lock on `dir` first, so that a
/// live writer's journal is not reported.
pub fn pending(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let fd = match sys::open_dir(dir) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::Io {
                path: dir.to_owned(),
                reason: format!("cannot open this folder: {e}"),
            });
        }
    };
    let names = sys::list(&fd).map_err(|e| Error::Io {
        path: dir.to_owned(),
        reason: e.to_string(),
    })?;
    let me = std::process::id();
    let mut out: Vec<PathBuf> = names
        .iter()
        .filter(|n| n.as_bytes().starts_with(JOURNAL_PREFIX.as_bytes()))
        .filter(|n| journal_owner(n.as_bytes()) != Some(me))
        .map(|n| dir.join(n))
        .collect();
    out.sort();
    Ok(out)
}

/// Locks `dir` for reading if it exists and can be opened (a reader without access to the
/// folder still gets its report, unlocked).
pub fn lock_for_reading(dir: &Path) -> Result<Option<FolderLock>, Error> {
    match lock_folder(dir, LockMode::Shared) {
        Ok(l) => Ok(Some(l)),
        Err(Error::Io { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_text_round_trips() {
        let moves = vec![
            Move {
                replace: false,
                temp: temp_name(OsStr::new("a.crt"), 42, "0a1b"),
                name: "a.crt".into(),
            },
            Move {
                replace: true,
                temp: temp_name(OsStr::new("b.key"), 42, "ff"),
                name: "b.key".into(),
            },
        ];
        let text = journal_text(&moves).unwrap_or_default();
        let parsed = parse_journal(text.as_bytes(), 42);
        assert!(matches!(parsed, Ok(Some(ref m)) if m.len() == 2 && m[1].replace));
        // Another pid's temporary files are not this journal's.
        assert!(parse_journal(text.as_bytes(), 43).is_err());
        // Cut short: never completed, nothing replayed.
        assert!(matches!(
            parse_journal(&text.as_bytes()[..text.len() - 2], 42),
            Ok(None)
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
            let text = format!("{line}\nend\n");
            assert!(parse_journal(text.as_bytes(), 7).is_err(), "{line}");
        }
        assert!(parse_journal(b"end\n", 7).is_err(), "empty journal");
        // Cut short, but with a line kubepki never writes: refused, not silently dropped.
        assert!(parse_journal(b"L\t/etc/.x.kubepki-7-aa.tmp\t/etc/x\n", 7).is_err());
        assert!(matches!(parse_journal(b"", 7), Ok(None)));
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
