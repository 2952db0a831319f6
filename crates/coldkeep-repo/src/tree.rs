//! The directory-tree format: one tree blob per directory.
//!
//! A [`Tree`] lists a directory's entries sorted by name; a sub-directory entry points at the
//! sub-directory's own tree blob by id. Trees are stored as blobs like file content, so an
//! unchanged sub-directory encodes to the same bytes, gets the same id and is stored once: a
//! re-backup of an unchanged tree writes nothing but (already present) trees.
//!
//! Names are raw bytes (Unix names need not be UTF-8). Whatever a tree says, a name is only used
//! on restore after [`validate_name`] accepts it as one plain path component.

use coldkeep_catalog::record;
use coldkeep_store::ChunkId;
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// Record version of tree blobs.
const TREE_VERSION: u8 = 1;

/// A point in time with nanosecond precision (seconds may be negative: before 1970).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Timestamp {
    pub secs: i64,
    pub nanos: u32,
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xattr {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

/// The metadata kept for every entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Permission bits (including setuid / setgid / sticky), without the file type.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: Timestamp,
    /// Change time: not restorable, but part of the "unchanged file" test of incremental runs.
    pub ctime: Timestamp,
    pub inode: u64,
    pub dev: u64,
    /// Hard link count at backup time: entries with `nlink > 1` and the same `(dev, inode)` are
    /// restored as hard links of each other.
    pub nlink: u64,
    pub xattrs: Vec<Xattr>,
}

/// A run of file content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Piece {
    /// A stored chunk of `len` bytes.
    Data { id: ChunkId, len: u32 },
    /// A hole of `len` bytes: never stored, restored as a hole.
    Hole { len: u64 },
}

impl Piece {
    /// Bytes of file content this piece covers.
    pub fn len(&self) -> u64 {
        match *self {
            Piece::Data { len, .. } => u64::from(len),
            Piece::Hole { len } => len,
        }
    }

    /// Whether the piece covers no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A regular file: its content is the concatenation of `pieces`.
    File { size: u64, pieces: Vec<Piece> },
    /// A directory: its entries are in the tree blob `tree`.
    Dir { tree: ChunkId },
    /// A symbolic link with its target, as raw bytes.
    Symlink { target: Vec<u8> },
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: Vec<u8>,
    pub kind: NodeKind,
    pub meta: Meta,
}

/// A directory's entries, sorted by name, names unique.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tree {
    pub entries: Vec<Node>,
}

impl Tree {
    /// Serializes the tree (deterministically: equal trees give equal bytes).
    pub fn encode(&self) -> Vec<u8> {
        record::encode(TREE_VERSION, self)
    }

    /// Decodes the tree blob `id` and checks that names are sorted and unique. Never panics,
    /// whatever the bytes.
    pub fn decode(id: ChunkId, bytes: &[u8]) -> Result<Self, DataError> {
        let tree: Tree =
            record::decode(TREE_VERSION, bytes).map_err(|reason| DataError::Tree { id, reason })?;
        if let Some(pair) = tree.entries.windows(2).find(|w| w[0].name >= w[1].name) {
            let reason = format!(
                "names out of order or repeated: {:?}",
                String::from_utf8_lossy(&pair[1].name)
            );
            return Err(DataError::InvalidTree { id, reason });
        }
        Ok(tree)
    }

    /// The entry called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&Node> {
        self.entries
            .binary_search_by(|n| n.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }
}

/// Whether `name` is one plain path component: not empty, not `.` or `..`, no `/` and no NUL.
pub fn validate_name(name: &[u8]) -> bool {
    !name.is_empty() && name != b"." && name != b".." && !name.contains(&b'/') && !name.contains(&0)
}

/// The snapshot path of `name` in the directory `dir` (`name` alone at the top).
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        name.to_vec()
    } else {
        [dir, b"/", name].concat()
    }
}

/// Splits a snapshot path (`a/b/c`, leading or trailing `/` ignored) into its components.
pub fn components(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &[u8]) -> Node {
        Node {
            name: name.to_vec(),
            kind: NodeKind::Symlink { target: b"t".to_vec() },
            meta: Meta::default(),
        }
    }

    #[test]
    fn hostile_names_are_rejected() {
        for bad in [&b""[..], b".", b"..", b"a/b", b"/", b"x\0y"] {
            assert!(!validate_name(bad), "{bad:?} accepted");
        }
        for good in [&b"a"[..], b"...", b".hidden", b"new\nline", b"\xff\xfe", b"a b"] {
            assert!(validate_name(good), "{good:?} rejected");
        }
    }

    #[test]
    fn unsorted_or_duplicate_trees_are_invalid() {
        let id = ChunkId::from_bytes([0; 32]);
        let good = Tree { entries: vec![node(b"a"), node(b"b")] };
        assert_eq!(Tree::decode(id, &good.encode()).expect("valid"), good);
        assert_eq!(good.get(b"b").map(|n| n.name.as_slice()), Some(&b"b"[..]));
        for entries in [vec![node(b"b"), node(b"a")], vec![node(b"a"), node(b"a")]] {
            let bad = Tree { entries };
            assert!(matches!(Tree::decode(id, &bad.encode()), Err(DataError::InvalidTree { .. })));
        }
        assert!(matches!(Tree::decode(id, b"junk"), Err(DataError::Tree { .. })));
    }

    proptest::proptest! {
        /// Decoding arbitrary bytes as a tree never panics, framed or not.
        #[test]
        fn garbage_trees_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let id = ChunkId::from_bytes([0; 32]);
            let _ = Tree::decode(id, &body);
            let mut framed = vec![TREE_VERSION];
            framed.extend_from_slice(&body);
            let crc = crc32fast::hash(&framed);
            framed.extend_from_slice(&crc.to_le_bytes());
            let _ = Tree::decode(id, &framed);
        }
    }

    #[test]
    fn path_components_skip_empty_and_dot() {
        let parts: Vec<&[u8]> = components(b"/a//./b/").collect();
        assert_eq!(parts, vec![&b"a"[..], b"b"]);
    }
}
