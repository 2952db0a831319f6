//! Reading snapshots without restoring them: resolve a path, list a directory, stream a file.

use std::io::Write;

use coldkeep_catalog::{SnapshotId, SnapshotRecord};

use crate::error::{DataError, IoError, ReadError};
use crate::repo::{tree_in, Repository, Trees};
use crate::tree::{components, Node, NodeKind, Piece, Tree};

/// What a snapshot path names.
#[derive(Debug, Clone)]
pub enum Resolved {
    /// The snapshot root: the backed-up directory's entries.
    Root(Tree),
    /// One entry (file, directory or symlink).
    Node(Node),
}

/// Loads a snapshot record.
pub fn snapshot(repo: &Repository, id: SnapshotId) -> Result<SnapshotRecord, ReadError> {
    repo.catalog().snapshot(id)?.ok_or(ReadError::SnapshotNotFound(id))
}

/// Follows `path` (components separated by `/`) from the snapshot root. Symlinks in the
/// snapshot are not followed: a path through one is not found.
pub fn resolve(
    repo: &Repository,
    snap: &SnapshotRecord,
    path: &[u8],
) -> Result<Resolved, ReadError> {
    let mut current = Resolved::Root(repo.load_tree(&snap.root)?);
    for name in components(path) {
        let tree = match &current {
            Resolved::Root(tree) => tree.clone(),
            Resolved::Node(Node { kind: NodeKind::Dir { tree }, .. }) => repo.load_tree(tree)?,
            Resolved::Node(_) => return Err(not_found(path)),
        };
        current = Resolved::Node(tree.get(name).cloned().ok_or_else(|| not_found(path))?);
    }
    Ok(current)
}

fn not_found(path: &[u8]) -> ReadError {
    ReadError::PathNotFound(String::from_utf8_lossy(path).into_owned())
}

/// One entry of a listing, with its path relative to the snapshot root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    pub path: Vec<u8>,
    pub node: Node,
}

/// Every entry under `path`, depth first, parents before children.
pub fn list(
    repo: &Repository,
    snap: &SnapshotRecord,
    path: &[u8],
) -> Result<Vec<ListEntry>, ReadError> {
    let prefix: Vec<u8> = components(path).collect::<Vec<_>>().join(&b'/');
    let mut out = Vec::new();
    // The whole snapshot has no path to resolve: its root is loaded with the rest.
    let resolved = if prefix.is_empty() { None } else { Some(resolve(repo, snap, path)?) };
    match resolved {
        None | Some(Resolved::Root(_)) => {
            let below = repo.load_hierarchy(snap.root)?;
            list_tree(&below, tree_in(&below, &snap.root)?, &prefix, &mut out)?;
        }
        Some(Resolved::Node(node)) => {
            let below = match &node.kind {
                NodeKind::Dir { tree } => Some((*tree, repo.load_hierarchy(*tree)?)),
                _ => None,
            };
            out.push(ListEntry { path: prefix.clone(), node });
            if let Some((root, below)) = below {
                list_tree(&below, tree_in(&below, &root)?, &prefix, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn list_tree(
    trees: &Trees,
    tree: &Tree,
    prefix: &[u8],
    out: &mut Vec<ListEntry>,
) -> Result<(), ReadError> {
    for node in &tree.entries {
        let path =
            if prefix.is_empty() { node.name.clone() } else { [prefix, b"/", &node.name].concat() };
        out.push(ListEntry { path: path.clone(), node: node.clone() });
        if let NodeKind::Dir { tree } = &node.kind {
            list_tree(trees, tree_in(trees, tree)?, &path, out)?;
        }
    }
    Ok(())
}

/// The most `Engine::read_file` returns at once: the seed's download bound, 8 MiB.
pub const MAX_READ_LEN: u64 = 8 * 1024 * 1024;

/// A byte range of a file in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlice {
    /// The bytes from the requested offset: fewer than asked when the file ends first, none
    /// when the offset is at or past its end.
    pub data: Vec<u8>,
    /// The whole file's size.
    pub file_size: u64,
    /// Stored chunks read to answer (holes and chunks outside the range are not read).
    pub chunks_read: u32,
}

fn file_pieces(
    repo: &Repository,
    snap: &SnapshotRecord,
    path: &[u8],
) -> Result<(u64, Vec<Piece>), ReadError> {
    match resolve(repo, snap, path)? {
        Resolved::Node(Node { kind: NodeKind::File { size, pieces }, .. }) => Ok((size, pieces)),
        _ => Err(ReadError::NotAFile(String::from_utf8_lossy(path).into_owned())),
    }
}

/// `len` bytes of the file at `path` from `offset` (the seed's download by offset and length),
/// reading only the chunks that overlap the range. `len` is at most [`MAX_READ_LEN`].
pub fn read_file(
    repo: &Repository,
    snap: &SnapshotRecord,
    path: &[u8],
    offset: u64,
    len: u64,
) -> Result<FileSlice, ReadError> {
    if len > MAX_READ_LEN {
        return Err(ReadError::ReadTooLarge { requested: len, max: MAX_READ_LEN });
    }
    let (file_size, pieces) = file_pieces(repo, snap, path)?;
    let end = offset.saturating_add(len).min(file_size);
    let mut data = Vec::with_capacity(end.saturating_sub(offset) as usize);
    let mut chunks_read = 0;
    let mut piece_start = 0u64;
    for piece in &pieces {
        let piece_end = piece_start + piece.len();
        let (from, to) = (offset.max(piece_start), end.min(piece_end));
        if from < to {
            let (a, b) = ((from - piece_start) as usize, (to - piece_start) as usize);
            match piece {
                Piece::Data { id, len } => {
                    let blob = repo.load_blob(id)?;
                    chunks_read += 1;
                    if blob.len() as u64 != u64::from(*len) {
                        let (expected, actual) = (u64::from(*len), blob.len() as u64);
                        return Err(DataError::ChunkLength { id: *id, expected, actual }.into());
                    }
                    data.extend_from_slice(&blob[a..b]);
                }
                Piece::Hole { .. } => data.resize(data.len() + (b - a), 0),
            }
        }
        if piece_end >= end {
            break;
        }
        piece_start = piece_end;
    }
    Ok(FileSlice { data, file_size, chunks_read })
}

/// Writes the content of the file at `path` to `out`; returns its size.
pub fn cat(
    repo: &Repository,
    snap: &SnapshotRecord,
    path: &[u8],
    out: &mut dyn Write,
) -> Result<u64, ReadError> {
    let (size, pieces) = file_pieces(repo, snap, path)?;
    let io = |e| ReadError::Io(IoError::new("write", "<output>", e));
    let zeros = vec![0u8; 1 << 16];
    for piece in &pieces {
        match piece {
            Piece::Data { id, .. } => out.write_all(&repo.load_blob(id)?).map_err(io)?,
            Piece::Hole { len } => {
                let mut left = *len;
                while left > 0 {
                    let n = left.min(zeros.len() as u64) as usize;
                    out.write_all(&zeros[..n]).map_err(io)?;
                    left -= n as u64;
                }
            }
        }
    }
    Ok(size)
}
