//! Files and directories addressed beneath an open directory, never through a symlink.
//!
//! A restore writes into a target that someone else may be able to change while it runs (an
//! existing 0777 directory, say). Opening by full path follows symlinks in every component but
//! the last, so a sub-directory swapped for a symlink mid-restore would redirect everything
//! below it — as root, into any directory of the machine. So a restore opens its target once
//! and addresses everything relative to that descriptor: paths are resolved by `openat2` with
//! `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` (or, where the kernel lacks `openat2`, one
//! `openat(O_NOFOLLOW)` per component), and entries are made with `mkdirat`, `symlinkat` and
//! `linkat` in a directory opened that way. No component can be a symlink and nothing resolves
//! outside the target; a swapped component fails with `ELOOP` (or `EXDEV`), which a restore
//! reports as a symlink escape. A path longer than the kernel takes in one call is resolved in
//! pieces, so depth does not matter either.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, ResolveFlags};

/// The longest piece of a path resolved in one call (the kernel's limit is 4096 with the NUL).
const MAX_PIECE: usize = 4000;

/// Set once `openat2` turned out to be missing (kernels before 5.6, some sandboxes).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// A directory everything is addressed beneath. Paths are relative, `/`-separated byte strings
/// whose components are plain names (the caller validates them: no `..`, no empty ones).
#[derive(Debug)]
pub struct Beneath {
    root: OwnedFd,
    path: PathBuf,
}

impl Beneath {
    /// Opens the directory `path` (which must not itself be a symlink).
    pub fn open(path: &Path) -> io::Result<Self> {
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let root = rustix::fs::open(path, flags, Mode::empty())?;
        Ok(Self { root, path: path.to_owned() })
    }

    /// The directory `rel`, as a root of its own.
    pub fn subdir(&self, rel: &[u8]) -> io::Result<Self> {
        Ok(Self { root: self.dir(rel)?, path: self.display(rel) })
    }

    /// The full path of `rel`, for messages.
    pub fn display(&self, rel: &[u8]) -> PathBuf {
        under(&self.path, rel)
    }

    /// Opens `rel` with `flags` (plus `O_NOFOLLOW | O_CLOEXEC`), creating it with `mode` when
    /// `flags` say so.
    fn resolve(&self, rel: &[u8], flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir: Option<OwnedFd> = None;
        let mut rest = rel;
        // Pieces of at most MAX_PIECE bytes, cut at a '/': all but the last are directories.
        while rest.len() > MAX_PIECE {
            let cut = rest[..MAX_PIECE].iter().rposition(|b| *b == b'/').ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "a path component is too long")
            })?;
            let at = dir.as_ref().map_or(self.root.as_fd(), AsFd::as_fd);
            let piece = OsStr::from_bytes(&rest[..cut]);
            dir = Some(open_beneath(
                at,
                piece,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )?);
            rest = &rest[cut + 1..];
        }
        let at = dir.as_ref().map_or(self.root.as_fd(), AsFd::as_fd);
        open_beneath(at, OsStr::from_bytes(rest), flags, mode)
    }

    /// The directory `rel` (the root for `""`), open for reading and for its metadata.
    pub fn dir(&self, rel: &[u8]) -> io::Result<OwnedFd> {
        if rel.is_empty() {
            return self.root.try_clone();
        }
        self.resolve(rel, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
    }

    /// Creates the regular file `rel`, which must not exist, with permission bits `mode` (the
    /// umask applies), open for writing.
    pub fn create_new(&self, rel: &[u8], mode: u32) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL;
        Ok(File::from(self.resolve(rel, flags, Mode::from_raw_mode(mode))?))
    }

    /// Opens the existing regular file `rel` for writing.
    pub fn open_write(&self, rel: &[u8]) -> io::Result<File> {
        Ok(File::from(self.resolve(rel, OFlags::WRONLY, Mode::empty())?))
    }

    /// The directory holding `rel`, and `rel`'s last component.
    pub fn parent<'r>(&self, rel: &'r [u8]) -> io::Result<(OwnedFd, &'r OsStr)> {
        match rel.iter().rposition(|b| *b == b'/') {
            Some(i) => Ok((self.dir(&rel[..i])?, OsStr::from_bytes(&rel[i + 1..]))),
            None => Ok((self.root.try_clone()?, OsStr::from_bytes(rel))),
        }
    }

    /// Makes the directory `rel` (0700 until its metadata is applied).
    pub fn mkdir(&self, rel: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700))?)
    }

    /// Removes the empty directory `rel`.
    pub fn remove_dir(&self, rel: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rustix::fs::unlinkat(&dir, name, AtFlags::REMOVEDIR)?)
    }

    /// Makes the symlink `rel` pointing at `dest` (which is never followed).
    pub fn symlink(&self, rel: &[u8], dest: &[u8]) -> io::Result<()> {
        let (dir, name) = self.parent(rel)?;
        Ok(rustix::fs::symlinkat(OsStr::from_bytes(dest), &dir, name)?)
    }

    /// Makes `rel` a hard link of the existing `existing` (neither followed if a symlink).
    pub fn hard_link(&self, rel: &[u8], existing: &[u8]) -> io::Result<()> {
        let (from_dir, from) = self.parent(existing)?;
        let (to_dir, to) = self.parent(rel)?;
        Ok(rustix::fs::linkat(&from_dir, from, &to_dir, to, AtFlags::empty())?)
    }
}

impl Beneath {
    /// The entry `rel` itself (a symlink is not followed); `None` when there is none.
    pub fn stat(&self, rel: &[u8]) -> io::Result<Option<rustix::fs::FileType>> {
        let (dir, name) = self.parent(rel)?;
        match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(rustix::fs::FileType::from_raw_mode(st.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Moves the entry `from` to `to`, replacing what `to` names if `rename(2)` may (a symlink
    /// at `to` is replaced, never followed).
    pub fn rename(&self, from: &[u8], to: &[u8]) -> io::Result<()> {
        let (from_dir, from_name) = self.parent(from)?;
        let (to_dir, to_name) = self.parent(to)?;
        Ok(rustix::fs::renameat(&from_dir, from_name, &to_dir, to_name)?)
    }

    /// The names in the directory `rel`.
    pub fn list(&self, rel: &[u8]) -> io::Result<Vec<Vec<u8>>> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::new(self.dir(rel)?)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(name);
            }
        }
        Ok(names)
    }
}

/// One `openat2` beneath `dir` with no symlink anywhere, or the same by components.
fn open_beneath(
    dir: BorrowedFd<'_>,
    path: &OsStr,
    flags: OFlags,
    mode: Mode,
) -> io::Result<OwnedFd> {
    if !NO_OPENAT2.load(Ordering::Relaxed) {
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        match rustix::fs::openat2(dir, path, flags, mode, how) {
            Err(rustix::io::Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
            // openat2 retries internally on a concurrent rename; past that it says EAGAIN.
            Err(rustix::io::Errno::AGAIN) => {}
            other => return Ok(other?),
        }
    }
    let bytes = path.as_bytes();
    let mut components = bytes.split(|b| *b == b'/').peekable();
    let mut current: Option<OwnedFd> = None;
    while let Some(name) = components.next() {
        let at = current.as_ref().map_or(dir, AsFd::as_fd);
        let name = OsStr::from_bytes(name);
        if name.is_empty() || name == ".." || name == "." {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a plain path"));
        }
        if components.peek().is_none() {
            return Ok(rustix::fs::openat(at, name, flags | OFlags::NOFOLLOW, mode)?);
        }
        // O_PATH | O_NOFOLLOW opens a symlink itself: it is looked at, never followed.
        let step = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(at, name, step, Mode::empty())?;
        let kind = rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode);
        match kind {
            rustix::fs::FileType::Directory => current = Some(fd),
            rustix::fs::FileType::Symlink => return Err(rustix::io::Errno::LOOP.into()),
            _ => return Err(rustix::io::Errno::NOTDIR.into()),
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidInput, "an empty path"))
}

/// The path of `rel` (a relative snapshot path) under `root`: `root` itself for `""`.
pub(crate) fn under(root: &Path, rel: &[u8]) -> PathBuf {
    if rel.is_empty() {
        root.to_owned()
    } else {
        root.join(OsStr::from_bytes(rel))
    }
}

/// The open descriptor `fd` as a path, `/proc/self/fd/N`: for the calls that take only a path.
/// The path is short however deep the file is, and what it names cannot be swapped: it resolves
/// to the open file itself, so a path joined under it looks up nothing above.
pub(crate) fn fd_path(fd: impl AsFd) -> PathBuf {
    use std::os::fd::AsRawFd;
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// Whether an error means a symlink (or a way out) was met where a plain entry should be.
pub(crate) fn is_escape(e: &io::Error) -> bool {
    let code = e.raw_os_error();
    code == Some(rustix::io::Errno::LOOP.raw_os_error())
        || code == Some(rustix::io::Errno::XDEV.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_resolves_through_a_symlink_or_outside() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (root, outside) = (tmp.path().join("root"), tmp.path().join("outside"));
        std::fs::create_dir_all(root.join("a")).expect("mkdir");
        std::fs::create_dir(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, root.join("link")).expect("symlink");
        let b = Beneath::open(&root).expect("open");
        b.create_new(b"a/f", 0o600).expect("plain path");
        for rel in [&b"link/f"[..], b"link", b"a/../link/f"] {
            let e = b.create_new(rel, 0o600).expect_err("through a symlink");
            assert!(is_escape(&e) || e.kind() == io::ErrorKind::AlreadyExists, "{rel:?}: {e}");
        }
        assert!(b.mkdir(b"link/d").is_err());
        assert!(b.dir(b"link").is_err());
        assert_eq!(std::fs::read_dir(&outside).expect("ls").count(), 0, "nothing outside");
        assert!(Beneath::open(&root.join("link")).is_err(), "the root may not be a symlink");
    }

    #[test]
    fn the_fallback_without_openat2_refuses_symlinks_too() {
        let tmp = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(tmp.path().join("a")).expect("mkdir");
        std::os::unix::fs::symlink("/", tmp.path().join("link")).expect("symlink");
        let root = rustix::fs::open(tmp.path(), OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
            .expect("open");
        NO_OPENAT2.store(true, Ordering::Relaxed);
        let made = open_beneath(
            root.as_fd(),
            OsStr::new("a/f"),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
            Mode::from_raw_mode(0o600),
        );
        let through =
            open_beneath(root.as_fd(), OsStr::new("link/tmp"), OFlags::RDONLY, Mode::empty());
        let last = open_beneath(root.as_fd(), OsStr::new("link"), OFlags::RDONLY, Mode::empty());
        NO_OPENAT2.store(false, Ordering::Relaxed);
        made.expect("a plain path");
        assert!(is_escape(&through.expect_err("through a symlink")));
        assert!(is_escape(&last.expect_err("a symlink at the end")));
    }

    #[test]
    fn depth_does_not_matter() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let b = Beneath::open(tmp.path()).expect("open");
        let mut rel = Vec::new();
        for _ in 0..1_500 {
            if !rel.is_empty() {
                rel.push(b'/');
            }
            rel.extend_from_slice(b"dir");
            b.mkdir(&rel).expect("mkdir deep");
        }
        assert!(rel.len() > 5_000);
        rel.extend_from_slice(b"/f");
        b.create_new(&rel, 0o600).expect("a file 1 500 levels down");
        b.open_write(&rel).expect("opened again");
    }
}
