//! Crash-safe file writing and bounded file reading.
//!
//! Every file is first written to a temporary file in its own folder, created with its final
//! mode (never wider; `O_EXCL`, so never through a link), fsynced, then linked into place and the
//! folder fsynced. A [`FileBatch`] does this for several files as one unit: if any step fails,
//! every file the batch created is removed and pre-existing files are untouched. If the process
//! is killed while files are moved into place, a journal lets [`recover`] complete the batch.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::Error;
use crate::pem::MAX_INPUT_LEN;

/// Mode for private keys, kubeconfigs and `sa.pub` (kubeadm writes them 0600).
pub const MODE_SECRET: u32 = 0o600;
/// Mode for certificates.
pub const MODE_PUBLIC: u32 = 0o644;

/// Reads a file of at most [`MAX_INPUT_LEN`] bytes (larger files are refused without being read).
pub fn read_limited(path: &Path) -> Result<Zeroizing<Vec<u8>>, Error> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let f = File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    if meta.is_dir() {
        return Err(Error::Io {
            path: path.to_owned(),
            reason: "is a directory".into(),
        });
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(
        meta.len().min(MAX_INPUT_LEN as u64) as usize
    ));
    f.take(MAX_INPUT_LEN as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(io)?;
    if buf.len() > MAX_INPUT_LEN {
        return Err(Error::Io {
            path: path.to_owned(),
            reason: format!("larger than the {MAX_INPUT_LEN}-byte limit for PKI files"),
        });
    }
    Ok(buf)
}

struct Staged {
    target: PathBuf,
    temp: PathBuf,
    linked: bool,
}

/// Several files written as one unit. Drop without [`FileBatch::commit`] removes the temporary
/// files.
#[derive(Default)]
pub struct FileBatch {
    staged: Vec<Staged>,
    overwrite: bool,
    /// Folders this batch created, outermost first; removed again if the batch fails.
    created_dirs: Vec<PathBuf>,
    committed: bool,
    /// Mode for folders the batch creates; `None` = 0755.
    dir_mode: Option<u32>,
    /// The journal while files are being moved into place.
    journal: Option<PathBuf>,
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

    /// Folders this batch creates get `mode` instead of 0755 (kubeadm makes the CSR folder
    /// 0700).
    pub fn with_dir_mode(mut self, mode: u32) -> Self {
        self.dir_mode = Some(mode);
        self
    }

    /// Writes `contents` to a temporary file next to `target` with `mode` and fsyncs it.
    /// Creates missing parent folders (0755); they are removed again if the batch fails.
    pub fn stage(&mut self, target: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
        let io = |p: &Path, e: std::io::Error| Error::Io {
            path: p.to_owned(),
            reason: e.to_string(),
        };
        check_target(target, self.overwrite)?;
        let dir = parent(target);
        if !dir.exists() {
            let mut missing: Vec<PathBuf> = dir
                .ancestors()
                .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
                .map(Path::to_path_buf)
                .collect();
            missing.reverse();
            for d in missing {
                match fs::DirBuilder::new()
                    .mode(self.dir_mode.unwrap_or(0o755))
                    .create(&d)
                {
                    Ok(()) => self.created_dirs.push(d),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(Error::Io {
                            path: d.clone(),
                            reason: format!("cannot create this folder: {e}"),
                        });
                    }
                }
            }
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut attempt = 0u32;
        let (temp, mut file) = loop {
            let mut rnd = [0u8; 6];
            aws_lc_rs::rand::fill(&mut rnd).map_err(|_| Error::Generation)?;
            let temp = dir.join(format!(
                ".{name}.kubepki-{}-{}.tmp",
                std::process::id(),
                crate::hex(&rnd)
            ));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .custom_flags(libc_o_nofollow())
                .open(&temp)
            {
                Ok(f) => break (temp, f),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(io(&temp, e)),
            }
        };
        self.staged.push(Staged {
            target: target.to_owned(),
            temp: temp.clone(),
            linked: false,
        });
        // The umask may have narrowed the mode; it never widens it. Set it exactly.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io(&temp, e))?;
        file.write_all(contents).map_err(|e| io(&temp, e))?;
        file.sync_all().map_err(|e| io(&temp, e))?;
        Ok(())
    }

    /// The targets staged so far.
    pub fn targets(&self) -> impl Iterator<Item = &Path> {
        self.staged.iter().map(|s| s.target.as_path())
    }

    /// Moves every staged file into place. On failure, files this batch put in place are
    /// removed again and the error is returned; nothing pre-existing is changed unless the
    /// batch is [`FileBatch::overwriting`] (where a replaced file is replaced atomically).
    pub fn commit(mut self) -> Result<(), Error> {
        let result = self.commit_inner();
        if result.is_err() {
            for s in &self.staged {
                if s.linked && !self.overwrite {
                    let _ = fs::remove_file(&s.target);
                }
            }
            if let Some(j) = self.journal.take() {
                let _ = remove_journal(&j);
            }
        } else {
            self.committed = true;
        }
        result
    }

    fn commit_inner(&mut self) -> Result<(), Error> {
        let overwrite = self.overwrite;
        for s in &self.staged {
            check_target(&s.target, overwrite)?;
        }
        self.journal = Some(write_journal(&self.staged, overwrite)?);
        for s in &mut self.staged {
            check_target(&s.target, overwrite)?;
            let io = |e: std::io::Error| Error::Io {
                path: s.target.clone(),
                reason: e.to_string(),
            };
            if overwrite {
                fs::rename(&s.temp, &s.target).map_err(io)?;
            } else {
                // link(2) fails with EEXIST instead of replacing: no-clobber even under a race.
                fs::hard_link(&s.temp, &s.target).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Error::Exists {
                            path: s.target.clone(),
                        }
                    } else {
                        io(e)
                    }
                })?;
                fs::remove_file(&s.temp).map_err(io)?;
            }
            s.linked = true;
        }
        let mut dirs: Vec<PathBuf> = self.staged.iter().map(|s| parent(&s.target)).collect();
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            sync_dir(&d)?;
        }
        if let Some(j) = self.journal.take() {
            remove_journal(&j)?;
        }
        Ok(())
    }
}

fn sync_dir(d: &Path) -> Result<(), Error> {
    File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::Io {
            path: d.to_owned(),
            reason: e.to_string(),
        })
}

const JOURNAL_PREFIX: &str = ".kubepki-journal-";

/// Before the first file is moved into place, the batch records every move in a journal next
/// to the first target (fsynced, folder fsynced). If the process dies while moving, [`recover`]
/// completes the moves, so a tree is never left with half of a batch.
fn write_journal(staged: &[Staged], overwrite: bool) -> Result<PathBuf, Error> {
    let io = |p: &Path, e: std::io::Error| Error::Io {
        path: p.to_owned(),
        reason: e.to_string(),
    };
    let mut text = String::new();
    for s in staged {
        let (t, g) = (
            std::path::absolute(&s.temp).map_err(|e| io(&s.temp, e))?,
            std::path::absolute(&s.target).map_err(|e| io(&s.target, e))?,
        );
        let (t, g) = (t.to_string_lossy(), g.to_string_lossy());
        if t.contains(['\t', '\n']) || g.contains(['\t', '\n']) {
            return Err(Error::Io {
                path: s.target.clone(),
                reason: "file names with tabs or newlines are not supported".into(),
            });
        }
        text.push_str(if overwrite { "R\t" } else { "L\t" });
        text.push_str(&t);
        text.push('\t');
        text.push_str(&g);
        text.push('\n');
    }
    let dir = staged
        .first()
        .map(|s| parent(&s.target))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut rnd = [0u8; 6];
    aws_lc_rs::rand::fill(&mut rnd).map_err(|_| Error::Generation)?;
    let path = dir.join(format!(
        "{JOURNAL_PREFIX}{}-{}",
        std::process::id(),
        crate::hex(&rnd)
    ));
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(MODE_SECRET)
        .custom_flags(libc_o_nofollow())
        .open(&path)
        .map_err(|e| io(&path, e))?;
    f.write_all(text.as_bytes()).map_err(|e| io(&path, e))?;
    f.sync_all().map_err(|e| io(&path, e))?;
    sync_dir(&dir)?;
    Ok(path)
}

fn remove_journal(j: &Path) -> Result<(), Error> {
    fs::remove_file(j).map_err(|e| Error::Io {
        path: j.to_owned(),
        reason: e.to_string(),
    })?;
    sync_dir(&parent(j))
}

fn pid_alive(pid: u32) -> bool {
    pid == std::process::id() || Path::new("/proc").join(pid.to_string()).exists()
}

/// The pid in `.NAME.kubepki-PID-HEX.tmp` or `.kubepki-journal-PID-HEX`.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = if let Some(r) = name.strip_prefix(JOURNAL_PREFIX) {
        r
    } else {
        let r = name.strip_suffix(".tmp")?;
        &r[r.rfind(".kubepki-")? + ".kubepki-".len()..]
    };
    rest.split('-').next()?.parse().ok()
}

/// Finishes what an interrupted kubepki left in `dirs` (all folders one batch may span): first
/// replays the journals of processes that died while moving files into place (completing their
/// batch), then removes their temporary files. Returns the files it put in place. Batches of
/// live processes are left alone.
pub fn recover(dirs: &[&Path]) -> Result<Vec<PathBuf>, Error> {
    let listing = |dir: &Path| -> Vec<String> {
        fs::read_dir(dir)
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut done = Vec::new();
    for dir in dirs {
        done.extend(replay_journals(dir, &listing(dir))?);
    }
    // Only now: a journal in one folder may name temporary files in another.
    for dir in dirs {
        for name in listing(dir) {
            if name.starts_with('.')
                && name.ends_with(".tmp")
                && name.contains(".kubepki-")
                && owner_pid(&name).is_some_and(|p| !pid_alive(p))
            {
                let _ = fs::remove_file(dir.join(name));
            }
        }
    }
    Ok(done)
}

fn replay_journals(dir: &Path, names: &[String]) -> Result<Vec<PathBuf>, Error> {
    let mut done = Vec::new();
    for name in names.iter().filter(|n| n.starts_with(JOURNAL_PREFIX)) {
        if owner_pid(name).is_some_and(|p| pid_alive(p) && p != std::process::id()) {
            continue;
        }
        let journal = dir.join(name);
        let text = read_limited(&journal)?;
        let mut dirs = Vec::new();
        for line in String::from_utf8_lossy(&text).lines() {
            let mut parts = line.split('\t');
            let (Some(kind), Some(temp), Some(target)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (temp, target) = (Path::new(temp), Path::new(target));
            if fs::symlink_metadata(temp).is_err() {
                continue;
            }
            let moved = if kind == "R" {
                fs::rename(temp, target).is_ok()
            } else {
                let linked = fs::hard_link(temp, target).is_ok();
                let _ = fs::remove_file(temp);
                linked
            };
            if moved {
                done.push(target.to_owned());
                dirs.push(parent(target));
            }
        }
        dirs.sort();
        dirs.dedup();
        for d in dirs {
            sync_dir(&d)?;
        }
        remove_journal(&journal)?;
    }
    Ok(done)
}

impl Drop for FileBatch {
    fn drop(&mut self) {
        for s in &self.staged {
            let _ = fs::remove_file(&s.temp);
        }
        if !self.committed {
            // Innermost first; remove_dir only removes empty folders.
            for d in self.created_dirs.iter().rev() {
                let _ = fs::remove_dir(d);
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

fn check_target(target: &Path, overwrite: bool) -> Result<(), Error> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Symlink {
            path: target.to_owned(),
        }),
        Ok(m) if m.is_dir() => Err(Error::Io {
            path: target.to_owned(),
            reason: "is a directory".into(),
        }),
        Ok(_) if !overwrite => Err(Error::Exists {
            path: target.to_owned(),
        }),
        _ => Ok(()),
    }
}

const fn libc_o_nofollow() -> i32 {
    // O_NOFOLLOW on Linux (all architectures kubepki builds for).
    0o400000
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let mut rnd = [0u8; 6];
        let _ = aws_lc_rs::rand::fill(&mut rnd);
        let d = std::env::temp_dir().join(format!("kubepki-files-{tag}-{}", crate::hex(&rnd)));
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

    #[test]
    fn recover_completes_a_dead_process_batch_and_removes_its_temps() -> Result<(), Error> {
        let d = tmpdir("recover");
        // pid_max on Linux is at most 4194304: this owner is never alive.
        let dead = 4_194_999u32;
        let temp = d.join(format!(".a.crt.kubepki-{dead}-00.tmp"));
        let stale = d.join(format!(".b.key.kubepki-{dead}-01.tmp"));
        let _ = fs::write(&temp, b"new");
        let _ = fs::write(&stale, b"secret");
        let abs = |p: &Path| std::path::absolute(p).map(|a| a.display().to_string());
        let journal = format!(
            "L\t{}\t{}\n",
            abs(&temp).unwrap_or_default(),
            abs(&d.join("a.crt")).unwrap_or_default()
        );
        let _ = fs::write(d.join(format!(".kubepki-journal-{dead}-02")), journal);
        let done = recover(&[&d])?;
        assert_eq!(done.len(), 1);
        assert_eq!(fs::read(d.join("a.crt")).ok().as_deref(), Some(&b"new"[..]));
        let left: Vec<_> = fs::read_dir(&d)
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert_eq!(left, ["a.crt"], "temps or journal left");
        let _ = fs::remove_dir_all(&d);
        Ok(())
    }

    #[test]
    fn read_limited_refuses_large_files() {
        let d = tmpdir("big");
        let _ = fs::write(d.join("big"), vec![b'A'; MAX_INPUT_LEN + 10]);
        assert!(
            matches!(read_limited(&d.join("big")), Err(Error::Io { reason, .. }) if reason.contains("limit"))
        );
        let _ = fs::remove_dir_all(&d);
    }
}
