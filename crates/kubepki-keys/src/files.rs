//! Crash-safe file writing and bounded file reading.
//!
//! Every file is first written to a temporary file in its own folder, created with its final
//! mode (never wider; `O_EXCL`, so never through a link), fsynced, then linked into place and the
//! folder fsynced. A [`FileBatch`] does this for several files as one unit: if any step fails,
//! every file the batch created is removed and pre-existing files are untouched.

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
            let temp = dir.join(format!(".{name}.kubepki-{}.tmp", crate::hex(&rnd)));
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
        } else {
            self.committed = true;
        }
        result
    }

    fn commit_inner(&mut self) -> Result<(), Error> {
        let overwrite = self.overwrite;
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
            File::open(&d)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::Io {
                    path: d.clone(),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }
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
    fn read_limited_refuses_large_files() {
        let d = tmpdir("big");
        let _ = fs::write(d.join("big"), vec![b'A'; MAX_INPUT_LEN + 10]);
        assert!(
            matches!(read_limited(&d.join("big")), Err(Error::Io { reason, .. }) if reason.contains("limit"))
        );
        let _ = fs::remove_dir_all(&d);
    }
}
