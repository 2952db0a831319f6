//! Reading and applying file metadata: mode, owner, times (to the nanosecond), extended
//! attributes. Nothing here follows symlinks: every call is the `l*` / `AT_SYMLINK_NOFOLLOW`
//! variant, so metadata of a link is the link's own.

use std::fs::{File, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{AtFlags, Timespec, Timestamps, CWD};

use crate::tree::{Meta, Timestamp, Xattr};

/// `O_NOFOLLOW` for `OpenOptionsExt::custom_flags`: opening a symlink fails instead of following.
pub(crate) const O_NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits().cast_signed();

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
                names.resize(names.len() * 8, 0)
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
                    value.resize(value.len() * 8, 0)
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
/// only, but writing xattrs could touch mtime on some filesystems).
///
/// Returns the parts that could not be applied (e.g. chown without privilege) as messages: the
/// content is restored all the same.
pub(crate) fn apply(path: &Path, meta: &Meta, is_symlink: bool, as_root: bool) -> Vec<String> {
    let mut failed = Vec::new();
    if as_root {
        if let Err(e) = std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid)) {
            failed.push(format!("owner: {e}"));
        }
    }
    if !is_symlink {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode)) {
            failed.push(format!("mode: {e}"));
        }
    }
    for x in &meta.xattrs {
        let Ok(name) = std::str::from_utf8(&x.name) else {
            continue;
        };
        if let Err(e) = rustix::fs::lsetxattr(path, name, &x.value, rustix::fs::XattrFlags::empty())
        {
            failed.push(format!("xattr {name}: {e}"));
        }
    }
    let times = Timestamps {
        last_access: Timespec { tv_sec: meta.mtime.secs, tv_nsec: meta.mtime.nanos.into() },
        last_modification: Timespec { tv_sec: meta.mtime.secs, tv_nsec: meta.mtime.nanos.into() },
    };
    if let Err(e) = rustix::fs::utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW) {
        failed.push(format!("times: {e}"));
    }
    failed
}

/// Whether this process may set any owner (and so should try to restore owners).
pub(crate) fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}
