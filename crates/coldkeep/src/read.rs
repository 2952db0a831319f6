//! Reading snapshots without restoring them: resolve a path, list a directory, stream a file.

use std::io::Write;

use coldkeep_catalog::{SnapshotId, SnapshotRecord};

use crate::error::{IoError, ReadError};
use crate::repo::Repository;
use crate::tree::{components, Node, NodeKind, Piece, Tree};

/// What a snapshot path names.
#[derive(Debug, Clone)]
pub(crate) enum Resolved {
    /// The snapshot root: the backed-up directory's entries.
    Root(Tree),
    /// One entry (file, directory or symlink).
    Node(Node),
}

/// Loads a snapshot record.
pub(crate) fn snapshot(repo: &Repository, id: SnapshotId) -> Result<SnapshotRecord, ReadError> {
    repo.catalog.snapshot(id)?.ok_or(ReadError::SnapshotNotFound(id))
}

/// Follows `path` (components separated by `/`) from the snapshot root. Symlinks in the
/// snapshot are not followed: a path through one is not found.
pub(crate) fn resolve(
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
pub(crate) fn list(
    repo: &Repository,
    snap: &SnapshotRecord,
    path: &[u8],
) -> Result<Vec<ListEntry>, ReadError> {
    let prefix: Vec<u8> = components(path).collect::<Vec<_>>().join(&b'/');
    let mut out = Vec::new();
    match resolve(repo, snap, path)? {
        Resolved::Root(tree) => list_tree(repo, &tree, &prefix, &mut out)?,
        Resolved::Node(node) => {
            let tree = match &node.kind {
                NodeKind::Dir { tree } => Some(repo.load_tree(tree)?),
                _ => None,
            };
            out.push(ListEntry { path: prefix.clone(), node });
            if let Some(tree) = tree {
                list_tree(repo, &tree, &prefix, &mut out)?;
            }
        }
    }
    Ok(out)
}

fn list_tree(
    repo: &Repository,
    tree: &Tree,
    prefix: &[u8],
    out: &mut Vec<ListEntry>,
) -> Result<(), ReadError> {
    for node in &tree.entries {
        let path =
            if prefix.is_empty() { node.name.clone() } else { [prefix, b"/", &node.name].concat() };
        let sub = match &node.kind {
            NodeKind::Dir { tree } => Some(repo.load_tree(tree)?),
            _ => None,
        };
        out.push(ListEntry { path: path.clone(), node: node.clone() });
        if let Some(sub) = sub {
            list_tree(repo, &sub, &path, out)?;
        }
    }
    Ok(())
}

/// Writes the content of the file at `path` to `out`; returns its size.
pub(crate) fn cat(
    repo: &Repository,
    snap: &SnapshotRecord,
    path: &[u8],
    out: &mut dyn Write,
) -> Result<u64, ReadError> {
    let Resolved::Node(Node { kind: NodeKind::File { size, pieces }, .. }) =
        resolve(repo, snap, path)?
    else {
        return Err(ReadError::NotAFile(String::from_utf8_lossy(path).into_owned()));
    };
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
