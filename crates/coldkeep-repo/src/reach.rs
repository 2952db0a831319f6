//! What the snapshots reach: the one walk of their trees that check (to find damage and whom it
//! hurts) and gc (to mark what is live) both stand on, and the trees of an unindexed pack that
//! no snapshot reaches (evidence of a lost snapshot, which neither may treat as garbage).

use std::collections::HashSet;

use coldkeep_store::{Access, BlobKind, ChunkId, PackId, StoreError};

use crate::error::DataError;
use crate::repo::Repository;
use crate::tree::{NodeKind, Piece, Tree};

pub(crate) type Visitor<'a> = dyn FnMut(ChunkId, bool, Result<(), &DataError>) + 'a;

/// Visits every tree and data chunk reachable from `root` once per `seen` set, loading trees with
/// `load`. The callback gets `(id, is_tree, load result for trees)`.
pub(crate) fn walk(
    load: &dyn Fn(&ChunkId) -> Result<Tree, DataError>,
    root: ChunkId,
    seen: &mut HashSet<ChunkId>,
    visit: &mut Visitor<'_>,
) {
    let mut stack = vec![root];
    let mut seen_data = HashSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        let tree: Result<Tree, DataError> = load(&id);
        match &tree {
            Ok(_) => visit(id, true, Ok(())),
            Err(e) => visit(id, true, Err(e)),
        }
        let Ok(tree) = tree else { continue };
        for node in &tree.entries {
            match &node.kind {
                NodeKind::Dir { tree } => stack.push(*tree),
                NodeKind::File { pieces, .. } => {
                    for piece in pieces {
                        if let Piece::Data { id, .. } = piece {
                            if seen_data.insert(*id) {
                                visit(*id, false, Ok(()));
                            }
                        }
                    }
                }
                NodeKind::Symlink { .. } => {}
            }
        }
    }
}

/// How many trees an unindexed pack holds that are not in `reachable` (the trees and chunks
/// reachable from the catalog's snapshots).
pub(crate) fn lost_trees(
    repo: &Repository,
    pack: PackId,
    reachable: &HashSet<ChunkId>,
) -> Result<usize, StoreError> {
    let entries = repo.open_pack(pack, Access::Random)?.entries()?;
    Ok(entries.iter().filter(|e| e.kind == BlobKind::Tree && !reachable.contains(&e.id)).count())
}
