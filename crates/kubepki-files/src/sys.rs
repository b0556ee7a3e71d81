//! Thin wrappers over the `*at` system calls (through `rustix`), so that every step of a batch
//! acts on a folder through the handle that was opened and checked, never through a path that
//! could be swapped in between.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};

/// Opens a folder (following links in `path`, as the user named it).
pub(super) fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    Ok(rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens the sub-folder `name` of `dir` without following a link.
pub(super) fn open_dir_at(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Opens `name` in `dir` for reading: never through a link, never blocking (a FIFO cannot
/// hang the caller).
pub(super) fn open_read_at(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Creates `name` in `dir` for writing with `mode`: `O_EXCL`, never through a link.
pub(super) fn create_at(dir: impl AsFd, name: &OsStr, mode: u32) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(mode),
    )?)
}

/// Opens the existing file `name` in `dir` for appending, never through a link.
pub(super) fn append_at(dir: impl AsFd, name: &OsStr) -> io::Result<OwnedFd> {
    Ok(rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `lstat` of `name` in `dir`; `None` if it does not exist.
pub(super) fn stat_at(dir: impl AsFd, name: &OsStr) -> io::Result<Option<Stat>> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(s) => Ok(Some(s)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The identity of a file: device and inode.
pub(super) fn identity(s: &Stat) -> (u64, u64) {
    #[allow(clippy::useless_conversion, clippy::unnecessary_cast)]
    (s.st_dev as u64, s.st_ino as u64)
}

/// The kind of file `s` describes.
pub(super) fn kind(s: &Stat) -> FileType {
    FileType::from_raw_mode(s.st_mode)
}

/// What a file of this kind is called in a message.
pub(super) fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "a regular file",
        FileType::Directory => "a directory",
        FileType::Symlink => "a symbolic link",
        FileType::Fifo => "a FIFO (named pipe)",
        FileType::Socket => "a socket",
        FileType::CharacterDevice => "a character device",
        FileType::BlockDevice => "a block device",
        _ => "not a regular file",
    }
}

/// Whether the running process's effective user owns the file `s` describes.
pub(super) fn owned_by_me(s: &Stat) -> bool {
    s.st_uid == rustix::process::geteuid().as_raw()
}

/// `link(2)` of `from` to `to`, both in `dir`: fails with `EEXIST` instead of replacing.
pub(super) fn link_at(dir: impl AsFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let d = dir.as_fd();
    Ok(rustix::fs::linkat(d, from, d, to, AtFlags::empty())?)
}

/// `renameat2(2)` of `from` to `to`, both in `dir`, with `RENAME_NOREPLACE`: fails with
/// `EEXIST` instead of replacing. `Ok(false)` when the file system (or the kernel, before
/// 3.15) does not support it (`EINVAL`, `ENOSYS`): nothing was done, [`link_at`] then
/// [`unlink_at`] do the same in two steps.
pub(super) fn rename_noreplace_at(dir: impl AsFd, from: &OsStr, to: &OsStr) -> io::Result<bool> {
    let d = dir.as_fd();
    match rustix::fs::renameat_with(d, from, d, to, rustix::fs::RenameFlags::NOREPLACE) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// `rename(2)` of `from` to `to`, both in `dir`.
pub(super) fn rename_at(dir: impl AsFd, from: &OsStr, to: &OsStr) -> io::Result<()> {
    let d = dir.as_fd();
    Ok(rustix::fs::renameat(d, from, d, to)?)
}

/// Removes the file `name` from `dir`.
pub(super) fn unlink_at(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?)
}

/// Removes the empty folder `name` from `dir`.
pub(super) fn rmdir_at(dir: impl AsFd, name: &OsStr) -> io::Result<()> {
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

/// Creates the folder `name` in `dir`.
pub(super) fn mkdir_at(dir: impl AsFd, name: &OsStr, mode: u32) -> io::Result<()> {
    Ok(rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(mode))?)
}

thread_local! {
    /// Flush calls (`fsync`, `fdatasync`, `syncfs`) this thread has made through this module.
    static FLUSHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many flush calls this thread has made (see [`super::flush_count`]).
pub(super) fn flushes() -> u64 {
    FLUSHES.with(|c| c.get())
}

fn count_flush() {
    add_flushes(1);
}

/// Counts `n` flush calls made for this thread's batch by helper threads.
pub(super) fn add_flushes(n: u64) {
    FLUSHES.with(|c| c.set(c.get() + n));
}

/// fsync of a file, not counted: for helper threads, whose caller counts with
/// [`add_flushes`].
pub(super) fn sync_uncounted(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::fs::fsync(fd)?)
}

/// fsync of a file or folder.
pub(super) fn sync(fd: impl AsFd) -> io::Result<()> {
    count_flush();
    Ok(rustix::fs::fsync(fd)?)
}

/// `syncfs(2)`: writes out and waits for everything the file system that holds `fd` has not
/// yet written, data and metadata, then flushes the device's cache.
pub(super) fn sync_file_system(fd: impl AsFd) -> io::Result<()> {
    count_flush();
    Ok(rustix::fs::syncfs(fd)?)
}

/// The names in the folder `dir` (`.` and `..` left out).
pub(super) fn list(dir: impl AsFd) -> io::Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let mut names = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(OsStr::from_bytes(n).to_owned());
        }
    }
    Ok(names)
}
