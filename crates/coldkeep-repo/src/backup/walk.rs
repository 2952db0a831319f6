//! The walk: turns a directory tree into tree blobs and file chunk lists, in parallel.
//!
//! Each directory's entries are processed with rayon (`par_iter`), recursing into
//! sub-directories, so both wide and deep trees keep every worker busy. A directory's tree blob is
//! stored once all its entries are done.
//!
//! Reading is defensive: a file that vanishes, cannot be opened, turns into something else or
//! changes while being read becomes a [`Warning`] on the snapshot (with what was read, or
//! without the entry), never silently wrong content and never a failed backup.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use coldkeep_catalog::Warning;
use coldkeep_chunker::Chunker;
use coldkeep_store::{BlobKind, ChunkId};
use rayon::prelude::*;

use super::known::KnownChunks;
use super::packer::Packer;
use crate::beneath::fd_path;
use crate::control::Control;
use crate::error::{BackupError, IoError};
use crate::fsmeta;
use crate::progress::{add, Progress};
use crate::repo::Repository;
use crate::tree::{join, Node, NodeKind, Piece, Tree, Xattr};

/// Files up to this size are read whole and cut in memory; larger ones are streamed.
const READ_WHOLE_LIMIT: u64 = 8 << 20;

pub(super) struct Walk<'a> {
    pub repo: &'a Repository,
    /// The source path, for messages (entries are opened through their directory's
    /// descriptor, never by this path joined with theirs).
    pub source: &'a Path,
    /// The repository's chunker, or a fixed-size one for a disk image.
    pub chunker: &'a Chunker,
    /// Chunks of zeros become holes: neither stored nor written back (disk images).
    pub zeros_as_holes: bool,
    /// Files only grow (log directories): of a file that grew, only the new tail is read.
    pub append_only: bool,
    pub known: &'a KnownChunks,
    /// The parent snapshot's trees, loaded before the walk (empty when there is none, or when
    /// one of them was gone).
    pub parent_trees: &'a crate::repo::Trees,
    pub packer: &'a Packer<'a>,
    pub progress: &'a Progress,
    pub control: &'a Control,
    pub warnings: &'a Mutex<Vec<Warning>>,
}

/// Opens a directory to walk, not following a symlink in its place.
fn open_dir(path: &Path) -> std::io::Result<File> {
    let flags = rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::NOFOLLOW;
    File::options().read(true).custom_flags(flags.bits().cast_signed()).open(path)
}

/// An entry as the kernel is asked for it: by its name in its open parent directory, so path
/// length does not matter and no component above it can be swapped for a symlink.
#[derive(Clone, Copy)]
struct At<'a> {
    dir: &'a File,
    name: &'a [u8],
}

impl At<'_> {
    fn open(self, flags: rustix::fs::OFlags) -> std::io::Result<File> {
        use rustix::fs::OFlags;
        let flags = flags | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(
            self.dir,
            OsStr::from_bytes(self.name),
            flags,
            rustix::fs::Mode::empty(),
        )?;
        Ok(File::from(fd))
    }

    fn read_link(self) -> std::io::Result<Vec<u8>> {
        Ok(rustix::fs::readlinkat(self.dir, OsStr::from_bytes(self.name), Vec::new())?.into_bytes())
    }

    /// The entry as a path, through its directory's descriptor.
    fn path(self) -> PathBuf {
        fd_path(self.dir).join(OsStr::from_bytes(self.name))
    }
}

impl Walk<'_> {
    /// The full path of `rel`, for messages.
    fn shown(&self, rel: &[u8]) -> PathBuf {
        crate::beneath::under(self.source, rel)
    }

    fn warn(&self, rel: &[u8], message: impl Into<String>) {
        let warning = Warning { path: rel.to_vec(), message: message.into() };
        tracing::warn!(path = %String::from_utf8_lossy(&warning.path), "{}", warning.message);
        self.warnings.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(warning);
    }

    /// Stores `bytes` as a blob unless the repository already has it; returns its id.
    fn store(&self, bytes: &[u8], kind: BlobKind) -> Result<ChunkId, BackupError> {
        let id = self.repo.chunk_key().id_of(bytes);
        if self.known.insert(id) {
            add(&self.progress.new_chunks, 1);
            add(&self.progress.new_bytes, bytes.len() as u64);
            self.packer.add(id, kind, bytes)?;
            if kind == BlobKind::Tree {
                self.repo.cache_tree(&id, bytes);
            }
        }
        Ok(id)
    }

    /// A directory of the parent snapshot. The parent only saves reading unchanged files: if
    /// garbage collection has unindexed it since this backup started (the parent expired), the
    /// directory is read as if new.
    fn parent_tree(&self, id: &ChunkId) -> Result<Option<Cow<'_, Tree>>, BackupError> {
        if let Some(tree) = self.parent_trees.get(id) {
            return Ok(Some(Cow::Borrowed(tree)));
        }
        match self.repo.load_tree(id) {
            Ok(tree) => Ok(Some(Cow::Owned(tree))),
            Err(crate::error::DataError::MissingChunk(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Backs up the source (a directory, or a single file wrapped in a one-entry tree).
    pub fn root(&self, source: &Path, parent: Option<&Tree>) -> Result<ChunkId, BackupError> {
        let md = std::fs::symlink_metadata(source)
            .map_err(|e| BackupError::Source { path: source.to_owned(), cause: e })?;
        let source_err = |e| BackupError::Source { path: source.to_owned(), cause: e };
        if md.is_dir() {
            let dir = open_dir(source).map_err(source_err)?;
            let entries = std::fs::read_dir(fd_path(&dir)).map_err(source_err)?;
            return self.dir_entries(&dir, b"", entries, parent);
        }
        let name = source.file_name().map_or(&b"source"[..], OsStrExt::as_bytes);
        let above = source.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let dir = open_dir(above).map_err(source_err)?;
        let prev = parent.and_then(|t| t.get(name));
        let entries = self.entry(At { dir: &dir, name }, name, Ok(md), prev)?.into_iter().collect();
        self.store_tree(&Tree { entries })
    }

    fn store_tree(&self, tree: &Tree) -> Result<ChunkId, BackupError> {
        self.store(&tree.encode(), BlobKind::Tree)
    }

    /// The sub-directory `at`, walked through a descriptor of its own (held while its entries
    /// are), and its extended attributes.
    fn dir(
        &self,
        at: At<'_>,
        rel: &[u8],
        parent: Option<&Tree>,
    ) -> Result<(ChunkId, Vec<Xattr>), BackupError> {
        use rustix::fs::OFlags;
        let opened = at
            .open(OFlags::RDONLY | OFlags::DIRECTORY)
            .and_then(|dir| std::fs::read_dir(fd_path(&dir)).map(|entries| (dir, entries)));
        match opened {
            Ok((dir, entries)) => {
                let xattrs = fsmeta::fd_xattrs(&dir);
                Ok((self.dir_entries(&dir, rel, entries, parent)?, xattrs))
            }
            Err(e) => {
                self.warn(rel, format!("directory not read: {e}"));
                Ok((self.store_tree(&Tree::default())?, Vec::new()))
            }
        }
    }

    fn dir_entries(
        &self,
        dir: &File,
        rel: &[u8],
        entries: std::fs::ReadDir,
        parent: Option<&Tree>,
    ) -> Result<ChunkId, BackupError> {
        let mut listed = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => listed.push((e.file_name(), e)),
                Err(e) => self.warn(rel, format!("directory listing incomplete: {e}")),
            }
        }
        listed.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let nodes: Vec<Option<Node>> = listed
            .par_iter()
            .map(|(name, entry)| {
                let name = name.as_bytes();
                let prev = parent.and_then(|t| t.get(name));
                // `DirEntry::metadata` is an lstat relative to the open directory: no walk of
                // the full path.
                self.entry(At { dir, name }, &join(rel, name), entry.metadata(), prev)
            })
            .collect::<Result<_, _>>()?;
        add(&self.progress.dirs, 1);
        self.store_tree(&Tree { entries: nodes.into_iter().flatten().collect() })
    }

    /// One directory entry; `None` if it was skipped (with a warning).
    /// `md` is the entry's `lstat`.
    fn entry(
        &self,
        at: At<'_>,
        rel: &[u8],
        md: std::io::Result<Metadata>,
        prev: Option<&Node>,
    ) -> Result<Option<Node>, BackupError> {
        let name = rel.rsplit(|b| *b == b'/').next().unwrap_or(rel).to_vec();
        let md = match md {
            Ok(md) => md,
            Err(e) => {
                self.warn(rel, format!("vanished before it was read: {e}"));
                return Ok(None);
            }
        };
        let ft = md.file_type();
        let (kind, xattrs) = if ft.is_dir() {
            let prev_tree = match prev.map(|n| &n.kind) {
                Some(NodeKind::Dir { tree }) => self.parent_tree(tree)?,
                _ => None,
            };
            let (tree, xattrs) = self.dir(at, rel, prev_tree.as_deref())?;
            (NodeKind::Dir { tree }, xattrs)
        } else if ft.is_symlink() {
            match at.read_link() {
                Ok(target) => {
                    add(&self.progress.symlinks, 1);
                    (NodeKind::Symlink { target }, fsmeta::path_xattrs(&at.path()))
                }
                Err(e) => {
                    self.warn(rel, format!("symlink vanished before it was read: {e}"));
                    return Ok(None);
                }
            }
        } else if ft.is_file() {
            match self.file(at, rel, &md, prev)? {
                Some(found) => found,
                None => return Ok(None),
            }
        } else {
            self.warn(rel, Warning::SPECIAL_FILE);
            return Ok(None);
        };
        Ok(Some(Node { name, kind, meta: fsmeta::read(&md, xattrs) }))
    }

    /// A regular file's content and extended attributes: reused from the parent when
    /// unchanged, read otherwise. `md` is the file's `lstat` from the directory walk.
    fn file(
        &self,
        at: At<'_>,
        rel: &[u8],
        md: &Metadata,
        prev: Option<&Node>,
    ) -> Result<Option<(NodeKind, Vec<Xattr>)>, BackupError> {
        self.control.checkpoint().map_err(BackupError::Stopped)?;
        add(&self.progress.files, 1);
        if let Some(reused) = self.reuse(md, prev) {
            add(&self.progress.files_reused, 1);
            add(&self.progress.bytes, md.size());
            return Ok(Some(reused));
        }
        // O_NONBLOCK: if a fifo was swapped in since the lstat, opening it must not hang.
        let file = match at.open(rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK) {
            Ok(f) => f,
            Err(e) => {
                self.warn(rel, format!("not read: {e}"));
                return Ok(None);
            }
        };
        let shown = self.shown(rel);
        let read = match self.grown(md, prev) {
            Some((from, prefix)) => self.read_tail(&file, &shown, md, from, prefix),
            None => self.read_content(&file, &shown, md),
        };
        let pieces = match read {
            Ok(pieces) => pieces,
            Err(BackupError::Io(e)) => {
                self.warn(rel, format!("not read: {}", e.cause));
                return Ok(None);
            }
            Err(other) => return Err(other),
        };
        let size: u64 = pieces.iter().map(Piece::len).sum();
        add(&self.progress.files_read, 1);
        add(&self.progress.bytes, size);
        // One fstat after reading tells both whether this is still the file the walk saw and
        // whether it changed while being read.
        let after = file.metadata().map_err(|e| IoError::new("stat", &shown, e))?;
        if after.ino() != md.ino() || after.dev() != md.dev() || !after.is_file() {
            self.warn(rel, "replaced by another file while being read; skipped");
            return Ok(None);
        }
        let changed = after.size() != md.size()
            || size != md.size()
            || (after.mtime(), after.mtime_nsec()) != (md.mtime(), md.mtime_nsec())
            || (after.ctime(), after.ctime_nsec()) != (md.ctime(), md.ctime_nsec());
        if changed {
            self.warn(rel, "changed while being read: content may mix old and new data");
        }
        Ok(Some((NodeKind::File { size, pieces }, fsmeta::fd_xattrs(&file))))
    }

    /// The parent's chunk list and extended attributes, if the file is unchanged (size, mtime,
    /// ctime and inode match) and every chunk is still in the repository. Extended attributes
    /// cannot have changed either: setting one updates the ctime.
    fn reuse(&self, md: &Metadata, prev: Option<&Node>) -> Option<(NodeKind, Vec<Xattr>)> {
        let prev = prev?;
        let NodeKind::File { size, pieces } = &prev.kind else {
            return None;
        };
        let same = *size == md.size()
            && prev.meta.inode == md.ino()
            && (prev.meta.mtime.secs, prev.meta.mtime.nanos)
                == (md.mtime(), md.mtime_nsec() as u32)
            && (prev.meta.ctime.secs, prev.meta.ctime.nanos)
                == (md.ctime(), md.ctime_nsec() as u32);
        (same && self.all_stored(pieces)).then(|| (prev.kind.clone(), prev.meta.xattrs.clone()))
    }

    fn all_stored(&self, pieces: &[Piece]) -> bool {
        pieces.iter().all(|p| match p {
            Piece::Data { id, .. } => self.known.contains(id),
            Piece::Hole { .. } => true,
        })
    }

    /// In an append-only source, a file that only grew since the parent (same inode, no
    /// smaller): the parent's size and chunks, which stand for its content up to that size.
    fn grown(&self, md: &Metadata, prev: Option<&Node>) -> Option<(u64, Vec<Piece>)> {
        let prev = prev.filter(|_| self.append_only)?;
        let NodeKind::File { size, pieces } = &prev.kind else {
            return None;
        };
        let grew = prev.meta.inode == md.ino() && *size <= md.size() && self.all_stored(pieces);
        grew.then(|| (*size, pieces.clone()))
    }

    /// `prefix` (the chunks of the file's first `from` bytes) followed by the chunks of the rest
    /// of the file, which is all that is read.
    fn read_tail(
        &self,
        file: &File,
        abs: &Path,
        md: &Metadata,
        from: u64,
        mut prefix: Vec<Piece>,
    ) -> Result<Vec<Piece>, BackupError> {
        (&*file).seek(SeekFrom::Start(from)).map_err(|e| IoError::new("seek", abs, e))?;
        let len = md.size() - from;
        let n = self.read_extent(file.take(len), len, abs, &mut prefix)?;
        add(&self.progress.bytes_read, n);
        Ok(prefix)
    }

    fn read_content(
        &self,
        file: &File,
        abs: &Path,
        md: &Metadata,
    ) -> Result<Vec<Piece>, BackupError> {
        let mut pieces = Vec::new();
        let mut pos = 0;
        let mut extents = data_extents(file, md);
        if self.zeros_as_holes {
            // Image chunks start at multiples of the chunk size whatever the holes around them,
            // so that a block changed in place changes one chunk in the next backup.
            extents = align_extents(&extents, self.chunker.max_chunk_len() as u64, md.size());
        }
        for (start, end) in extents {
            if start > pos {
                push_hole(&mut pieces, start - pos);
            }
            (&*file).seek(SeekFrom::Start(start)).map_err(|e| IoError::new("seek", abs, e))?;
            let n = self.read_extent(file.take(end - start), end - start, abs, &mut pieces)?;
            add(&self.progress.bytes_read, n);
            pos = start + n;
            if n < end - start {
                return Ok(pieces); // truncated while being read: the caller's checks report it
            }
        }
        if md.size() > pos {
            push_hole(&mut pieces, md.size() - pos);
        }
        Ok(pieces)
    }

    /// Chunks one data extent of `len` bytes into `pieces`; returns the bytes actually read.
    fn read_extent(
        &self,
        mut reader: impl Read,
        len: u64,
        abs: &Path,
        pieces: &mut Vec<Piece>,
    ) -> Result<u64, BackupError> {
        let chunker = self.chunker;
        let io = |e| IoError::new("read", abs, e);
        let mut push = |chunk: &[u8]| -> Result<(), BackupError> {
            self.control.checkpoint().map_err(BackupError::Stopped)?;
            if self.zeros_as_holes && chunk.iter().all(|b| *b == 0) {
                push_hole(pieces, chunk.len() as u64);
                return Ok(());
            }
            let id = self.store(chunk, BlobKind::Data)?;
            pieces.push(Piece::Data { id, len: chunk.len() as u32 });
            Ok(())
        };
        if len <= READ_WHOLE_LIMIT {
            let mut buf = Vec::with_capacity(len as usize);
            reader.read_to_end(&mut buf).map_err(io)?;
            for range in chunker.split(&buf) {
                push(&buf[range])?;
            }
            return Ok(buf.len() as u64);
        }
        let mut total = 0;
        let mut chunks = chunker.reader(reader);
        while let Some(chunk) = chunks.next_chunk().map_err(io)? {
            total += chunk.len() as u64;
            push(chunk)?;
        }
        Ok(total)
    }
}

/// `extents` widened to whole `chunk`-sized blocks of the file (the last one ends at `size`),
/// overlapping ones merged. The hole bytes this reads are zeros, which become holes again.
fn align_extents(extents: &[(u64, u64)], chunk: u64, size: u64) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(extents.len());
    for &(start, end) in extents {
        let (start, end) =
            (start / chunk * chunk, end.div_ceil(chunk).saturating_mul(chunk).min(size));
        match out.last_mut() {
            Some((_, last_end)) if *last_end >= start => *last_end = (*last_end).max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// Appends a hole, merged into the previous piece when that is a hole too.
fn push_hole(pieces: &mut Vec<Piece>, len: u64) {
    match pieces.last_mut() {
        Some(Piece::Hole { len: previous }) => *previous += len,
        _ => pieces.push(Piece::Hole { len }),
    }
}

fn is_sparse(md: &Metadata) -> bool {
    md.blocks().saturating_mul(512) < md.size()
}

/// The `[start, end)` ranges of `file` that hold data. Dense files are one range; sparse ones are
/// asked with `SEEK_DATA` / `SEEK_HOLE`, so holes are never read or stored.
fn data_extents(file: &File, md: &Metadata) -> Vec<(u64, u64)> {
    let size = md.size();
    if !is_sparse(md) {
        return vec![(0, size)];
    }
    let mut extents = Vec::new();
    let mut pos = 0;
    while pos < size {
        let Ok(start) = rustix::fs::seek(file, rustix::fs::SeekFrom::Data(pos)) else {
            break;
        };
        let end =
            rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(start)).unwrap_or(size).min(size);
        if start >= end {
            break;
        }
        extents.push((start, end));
        pos = end;
    }
    extents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_extents_widen_to_whole_chunks_and_merge() {
        let extents = [(4096, 8192), (10_000, 12_000), (300_000, 300_100), (1_000_000, 1_000_500)];
        assert_eq!(
            align_extents(&extents, 65_536, 1_000_500),
            [(0, 65_536), (262_144, 327_680), (983_040, 1_000_500)]
        );
        assert_eq!(align_extents(&[], 65_536, 0), []);
    }
}
