//! Files and folders of a snapshot as one tar archive (the seed's DownloadFilesAndFolders):
//! written as a stream — a control plane can send it as the download — entry by entry, each
//! file's content read chunk by chunk, so memory stays at one chunk whatever the file size.
//!
//! Each chosen path appears under its own name (`src/lib` is archived as `lib/...`); the whole
//! snapshot (`""`) as its root's entries. Names are checked as a restore checks them: an archive
//! never holds `..` or an absolute name.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use coldkeep_catalog::SnapshotRecord;

use crate::control::Control;
use crate::error::{DataError, IoError, ReadError};
use crate::progress::{add, Progress};
use crate::read::list;
use crate::repo::Repository;
use crate::tree::{components, validate_name, Meta, NodeKind, Piece};

/// Why an archive could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("refusing hostile name {0:?}")]
    HostilePath(String),
    #[error("archive stopped: {0:?}")]
    Stopped(crate::control::Stop),
}

impl ArchiveError {
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            ArchiveError::Read(e) => e.kind(),
            ArchiveError::HostilePath(_) => crate::ErrorKind::Corrupt,
            ArchiveError::Stopped(_) => crate::ErrorKind::Canceled,
        }
    }
}

crate::has_error_kind!(ArchiveError);

impl From<DataError> for ArchiveError {
    fn from(e: DataError) -> Self {
        Self::Read(ReadError::Data(e))
    }
}

fn write_err(e: std::io::Error) -> ArchiveError {
    ArchiveError::Read(ReadError::Io(IoError::new("write", "<archive>", e)))
}

/// Writes `paths` of `snap` to `out` as a tar archive; counts files and bytes in `progress`.
pub fn write_tar(
    repo: &Repository,
    snap: &SnapshotRecord,
    paths: &[Vec<u8>],
    out: &mut dyn Write,
    progress: &Progress,
    control: &Control,
) -> Result<(), ArchiveError> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Complete);
    tar.follow_symlinks(false);
    for path in paths {
        let chosen: Vec<&[u8]> = components(path).collect();
        // What precedes the chosen name is left out of the archive's names.
        let strip = chosen.len().saturating_sub(1);
        for entry in list(repo, snap, path)? {
            control.checkpoint().map_err(ArchiveError::Stopped)?;
            let names: Vec<&[u8]> = components(&entry.path).skip(strip).collect();
            if let Some(bad) = names.iter().find(|n| !validate_name(n)) {
                return Err(ArchiveError::HostilePath(String::from_utf8_lossy(bad).into_owned()));
            }
            if names.is_empty() {
                continue; // the snapshot root itself
            }
            let name = names.join(&b'/');
            let name = Path::new(OsStr::from_bytes(&name));
            let mut header = header(&entry.node.meta);
            match &entry.node.kind {
                NodeKind::Dir { .. } => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, name, std::io::empty()).map_err(write_err)?;
                }
                NodeKind::Symlink { target } => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    let target = Path::new(OsStr::from_bytes(target));
                    tar.append_link(&mut header, name, target).map_err(write_err)?;
                }
                NodeKind::File { size, pieces } => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(*size);
                    let content = PiecesReader {
                        repo,
                        pieces,
                        next: 0,
                        buf: Vec::new(),
                        pos: 0,
                        hole_left: 0,
                    };
                    tar.append_data(&mut header, name, content).map_err(write_err)?;
                    add(&progress.files, 1);
                    add(&progress.bytes, *size);
                }
            }
        }
    }
    tar.into_inner().map_err(write_err)?.flush().map_err(write_err)?;
    Ok(())
}

fn header(meta: &Meta) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode);
    h.set_uid(u64::from(meta.uid));
    h.set_gid(u64::from(meta.gid));
    h.set_mtime(u64::try_from(meta.mtime.secs).unwrap_or(0));
    h
}

/// A file's content from its pieces: chunks loaded one at a time, holes as zeros.
struct PiecesReader<'a> {
    repo: &'a Repository,
    pieces: &'a [Piece],
    next: usize,
    /// The current chunk and how much of it was read.
    buf: Vec<u8>,
    pos: usize,
    /// Zeros left in the current hole.
    hole_left: u64,
}

impl Read for PiecesReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.hole_left > 0 {
                let n = out.len().min(usize::try_from(self.hole_left).unwrap_or(usize::MAX));
                out[..n].fill(0);
                self.hole_left -= n as u64;
                return Ok(n);
            }
            if self.pos < self.buf.len() {
                let n = out.len().min(self.buf.len() - self.pos);
                out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            let Some(piece) = self.pieces.get(self.next) else { return Ok(0) };
            self.next += 1;
            match piece {
                Piece::Hole { len } => self.hole_left = *len,
                Piece::Data { id, len } => {
                    let blob = self.repo.load_blob(id).map_err(std::io::Error::other)?;
                    if blob.len() != *len as usize {
                        let (expected, actual) = (u64::from(*len), blob.len() as u64);
                        let e = DataError::ChunkLength { id: *id, expected, actual };
                        return Err(std::io::Error::other(e));
                    }
                    (self.buf, self.pos) = (blob, 0);
                }
            }
        }
    }
}
