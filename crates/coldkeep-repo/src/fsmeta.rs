//! Reading and applying file metadata: mode, owner, times (to the nanosecond), extended
//! attributes. Nothing here follows symlinks: every call is the `l*` / `AT_SYMLINK_NOFOLLOW`
//! variant, so metadata of a link is the link's own.

use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, Gid, Mode, Timespec, Timestamps, Uid};

use crate::tree::{Meta, Timestamp, Xattr};

/// The metadata of `md` (from `symlink_metadata`) with the given extended attributes.
pub(crate) fn read(md: &Metadata, xattrs: Vec<Xattr>) -> Meta {
    Meta {
        mode: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: Timestamp { secs: md.mtime(), nanos: md.mtime_nsec() as u32 },
        ctime: Timestamp { secs: md.ctime(), nanos: md.ctime_nsec() as u32 },
        inode: md.ino(),
        dev: md.dev(),
        nlink: md.nlink(),
        xattrs,
    }
}

/// The extended attributes of `path` itself (not of a symlink's target). Attributes that
/// cannot be read (unsupported filesystem, permission) are left out.
pub(crate) fn path_xattrs(path: &Path) -> Vec<Xattr> {
    collect_xattrs(
        |buf| rustix::fs::llistxattr(path, buf),
        |name, buf| rustix::fs::lgetxattr(path, name, buf),
    )
}

/// The extended attributes of an open file: no second path lookup.
pub(crate) fn fd_xattrs(file: &File) -> Vec<Xattr> {
    collect_xattrs(
        |buf| rustix::fs::flistxattr(file, buf),
        |name, buf| rustix::fs::fgetxattr(file, name, buf),
    )
}

/// Lists names, then reads each value, growing buffers when an attribute is larger than the
/// first guess (they can change between the calls).
fn collect_xattrs(
    list: impl Fn(&mut [u8]) -> rustix::io::Result<usize>,
    get: impl Fn(&str, &mut [u8]) -> rustix::io::Result<usize>,
) -> Vec<Xattr> {
    let mut names = vec![0u8; 1024];
    let len = loop {
        match list(&mut names) {
            Ok(n) => break n,
            Err(rustix::io::Errno::RANGE) if names.len() < 1 << 20 => {
                names.resize(names.len() * 8, 0);
            }
            Err(_) => return Vec::new(),
        }
    };
    names.truncate(len);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name_str) = std::str::from_utf8(name) else { continue };
        let mut value = vec![0u8; 256];
        loop {
            match get(name_str, &mut value) {
                Ok(n) => {
                    value.truncate(n);
                    out.push(Xattr { name: name.to_vec(), value });
                    break;
                }
                Err(rustix::io::Errno::RANGE) if value.len() < 1 << 20 => {
                    value.resize(value.len() * 8, 0);
                }
                Err(_) => break,
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Applies owner, permissions, extended attributes and times to `path`, in that order (chown
/// clears setuid bits, so mode comes after it; times come last because the others change ctime
/// only, but writing xattrs could touch mtime on some filesystems). An owner or mode the entry
/// already has is left alone: each change is an inode update the filesystem journals, and a
/// restore makes most files with the right ones already.
///
/// Returns the parts that could not be applied (e.g. chown without privilege) as messages: the
/// content is restored all the same.
pub(crate) fn apply_fd(file: &File, meta: &Meta, as_root: bool) -> Vec<String> {
    apply_to(Target::Fd(file), meta, as_root)
}

/// [`apply_fd`] for the symlink `name` in the directory `dir` (a symlink cannot be opened):
/// owner and times through `*at` calls that do not follow it; a symlink has no mode of its own
/// on Linux.
pub(crate) fn apply_symlink(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    meta: &Meta,
    as_root: bool,
) -> Vec<String> {
    apply_to(Target::Symlink { dir, name }, meta, as_root)
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Fd(&'a File),
    Symlink { dir: BorrowedFd<'a>, name: &'a OsStr },
}

fn apply_to(target: Target<'_>, meta: &Meta, as_root: bool) -> Vec<String> {
    let mut failed = Vec::new();
    let mut note = |what: &str, r: rustix::io::Result<()>| {
        if let Err(e) = r {
            failed.push(format!("{what}: {e}"));
        }
    };
    let current = match target {
        Target::Symlink { dir, name } => rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW),
        Target::Fd(f) => rustix::fs::fstat(f),
    };
    let (has_owner, has_mode) = current.map_or((false, false), |st| {
        (st.st_uid == meta.uid && st.st_gid == meta.gid, st.st_mode & 0o7777 == meta.mode)
    });
    let (uid, gid) = (Uid::from_raw(meta.uid), Gid::from_raw(meta.gid));
    // A chown may clear set-id bits, so after one the mode is always set again.
    let chown = as_root && !has_owner;
    if chown {
        note(
            "owner",
            match target {
                Target::Symlink { dir, name } => {
                    rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)
                }
                Target::Fd(f) => rustix::fs::fchown(f, Some(uid), Some(gid)),
            },
        );
    }
    let mode = Mode::from_raw_mode(meta.mode);
    match target {
        _ if has_mode && !chown => {}
        Target::Symlink { .. } => {} // a symlink's own mode cannot be set on Linux
        Target::Fd(f) => note("mode", rustix::fs::fchmod(f, mode)),
    }
    for x in &meta.xattrs {
        let Ok(name) = std::str::from_utf8(&x.name) else {
            continue;
        };
        let flags = rustix::fs::XattrFlags::empty();
        note(
            &format!("xattr {name}"),
            match target {
                // Through the directory's descriptor in /proc: the link is its last component,
                // which lsetxattr does not follow, and no other component can be swapped.
                Target::Symlink { dir, name: link } => {
                    let path = crate::beneath::fd_path(dir).join(link);
                    rustix::fs::lsetxattr(&path, name, &x.value, flags)
                }
                Target::Fd(f) => rustix::fs::fsetxattr(f, name, &x.value, flags),
            },
        );
    }
    let when = Timespec { tv_sec: meta.mtime.secs, tv_nsec: meta.mtime.nanos.into() };
    let times = Timestamps { last_access: when, last_modification: when };
    note(
        "times",
        match target {
            Target::Symlink { dir, name } => {
                rustix::fs::utimensat(dir, name, &times, AtFlags::SYMLINK_NOFOLLOW)
            }
            Target::Fd(f) => rustix::fs::futimens(f, &times),
        },
    );
    failed
}

/// Whether this process may set any owner (and so should try to restore owners).
pub(crate) fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}
