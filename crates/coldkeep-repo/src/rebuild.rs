//! `rebuild-catalog`: a new catalog from the store alone, for a catalog lost or damaged.
//!
//! The old `catalog/` and `commits` are kept aside (renamed, never deleted: they may be
//! evidence). Then, into a fresh catalog:
//! 1. the journal is replayed in order (`journal`): snapshot records, policies, groups, runs
//!    with their holds and locks, recoveries, sources, the audit log, counters, the clock;
//! 2. every pack's trailer is read back into the chunk and pack tables, except for packs the
//!    journal says a collection condemned: those are listed with none of their chunks indexed,
//!    as they were, so that gc finishes the collection (its mark revives a condemned pack that
//!    a snapshot still needs, as it always does);
//! 3. (in `Engine::rebuild_catalog`) every snapshot is
//!    indexed for search again.
//!
//! A pack whose trailer cannot be read is reported, not fatal: `check` then names what it held.

use std::collections::HashSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coldkeep_catalog::{Batch, Catalog, CatalogError, KvStore};
use coldkeep_catalog_rocks::RocksKv;
use coldkeep_store::{Access, PackFile, PackId, SealedPack};
use serde::Serialize;

use crate::error::{ErrorKind, HasErrorKind, IoError, OpenError};
use crate::repo::commit_log::SequencedKv;
use crate::repo::OpenOptions;
use crate::repo::{Parts, Prepared, Repository, MIN_FREE_BYTES};

/// What a rebuild found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RebuildReport {
    /// Journal entries replayed.
    pub journal_entries: u64,
    /// Packs whose trailers were indexed.
    pub packs_indexed: u64,
    /// Packs a collection had condemned: they stay condemned, none of their chunks indexed
    /// (the next collection's mark revives one that a snapshot still needs).
    pub packs_condemned: u64,
    /// Packs whose trailer could not be read (damaged): their chunks are not indexed.
    pub packs_unreadable: Vec<String>,
    /// Snapshots in the rebuilt catalog (all indexed for search again).
    pub snapshots: u64,
    /// Where the replaced catalog was moved, if there was one.
    pub old_catalog: Option<PathBuf>,
}

/// Moves `path` aside to `<path>.replaced-<now>` if it exists.
fn move_aside(path: &Path, now: i64) -> Result<Option<PathBuf>, IoError> {
    let aside = PathBuf::from(format!("{}.replaced-{now}", path.display()));
    match std::fs::rename(path, &aside) {
        Ok(()) => Ok(Some(aside)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IoError::new("move aside", path, e)),
    }
}

/// Rebuilds the catalog of the repository at `root` (see the module documentation). The
/// repository is locked for writing throughout.
pub fn rebuild(root: &Path, opts: &OpenOptions) -> Result<RebuildReport, OpenError> {
    let opts = OpenOptions { mode: crate::repo::OpenMode::ReadWrite, ..opts.clone() };
    // Held to the end: the repository stays locked while its catalog is rebuilt.
    let prepared: Prepared = Repository::prepare(root, &opts)?;
    if let Some(free) = crate::repo::lacks_room(root)? {
        return Err(OpenError::DiskFull { path: root.to_owned(), free, needed: MIN_FREE_BYTES });
    }
    let now = crate::repo::now_us();
    let old_catalog = move_aside(&root.join("catalog"), now)?;
    move_aside(&root.join("commits"), now)?;
    let dir = root.join("catalog");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| IoError::new("create", &dir, e))?;
    let kv: Arc<dyn KvStore> =
        Arc::new(SequencedKv::new(Some(root), Arc::new(RocksKv::open(&dir, true)?))?);
    let report = fill(&kv, &prepared)?;
    Ok(RebuildReport { old_catalog, ..report })
}

/// Rebuilds the catalog of the repository in `parts` into their catalog, which must be empty
/// ([`OpenError::CatalogNotEmpty`] otherwise: nothing is written to it).
pub fn rebuild_parts(parts: Parts, opts: &OpenOptions) -> Result<RebuildReport, OpenError> {
    let opts = OpenOptions { mode: crate::repo::OpenMode::ReadWrite, ..opts.clone() };
    let prepared = Repository::prepare_parts(&parts.location, parts.store, &opts)?;
    if !crate::journal::is_empty(parts.catalog.as_ref())? {
        return Err(OpenError::CatalogNotEmpty(parts.location));
    }
    let kv: Arc<dyn KvStore> = Arc::new(SequencedKv::new(None, parts.catalog)?);
    fill(&kv, &prepared)
}

/// Replays the journal of `prepared`'s store into the empty catalog `kv` and indexes every
/// pack (steps 1 and 2 of the module documentation).
pub(crate) fn fill(kv: &Arc<dyn KvStore>, prepared: &Prepared) -> Result<RebuildReport, OpenError> {
    let seal = prepared.sealing.as_ref().map(coldkeep_store::crypto::MasterKey::object_key);
    let journal_entries =
        crate::journal::replay(kv.as_ref(), prepared.store.as_ref(), seal.as_ref())?;
    let report = index_packs(kv, prepared, &HashSet::new())?;
    Ok(RebuildReport { journal_entries, ..report })
}

/// Step 2 for the packs of the store that are not in `known` (all of them, for a new catalog;
/// the ones other writers added, for a cache catching up): their trailers indexed in `kv`, whose
/// record tables are current.
pub(crate) fn index_packs(
    kv: &Arc<dyn KvStore>,
    prepared: &Prepared,
    known: &HashSet<PackId>,
) -> Result<RebuildReport, OpenError> {
    let (store, sealing) = (&prepared.store, &prepared.sealing);
    let seal = sealing.as_ref().map(coldkeep_store::crypto::MasterKey::object_key);
    let mut report = RebuildReport::default();
    let catalog = Catalog::new(Arc::clone(kv));
    let condemned: HashSet<PackId> = catalog.condemned()?.into_iter().map(|(id, _)| id).collect();
    let stored = store.list(coldkeep_store::ObjectKind::Pack)?;
    let packs: Vec<(PackId, u64)> =
        stored.iter().filter_map(|info| Some((info.name.pack_id()?, info.len))).collect();
    for &(id, size) in packs.iter().filter(|(id, _)| !known.contains(id)) {
        if condemned.contains(&id) {
            // Condemned, as before: listed, none of its chunks indexed. A snapshot that still
            // needs one is found by the next collection's mark, which makes the pack live again.
            catalog.commit_pack(&SealedPack { id, size, entries: vec![] })?;
            report.packs_condemned += 1;
            continue;
        }
        let read = PackFile::open(store.as_ref(), id, Access::Random, seal.as_ref())
            .and_then(|p| p.entries());
        match read {
            Ok(entries) => {
                catalog.commit_pack(&SealedPack { id, size, entries })?;
                report.packs_indexed += 1;
            }
            Err(e) if HasErrorKind::kind(&e) == ErrorKind::Corrupt => {
                tracing::warn!(pack = %id, %e, "pack trailer unreadable: its chunks are not indexed");
                report.packs_unreadable.push(id.to_string());
            }
            // A store that fails to answer stops the rebuild.
            Err(e) => return Err(e.into()),
        }
    }
    let present: HashSet<PackId> = packs.iter().map(|(id, _)| *id).collect();
    for id in condemned.difference(&present) {
        // Deleted by a sweep that did not get to forget it.
        let mut batch = Batch::new();
        Catalog::stage_forget_pack(&mut batch, *id);
        kv.write(batch).map_err(CatalogError::from)?;
    }
    report.packs_unreadable.sort();
    report.snapshots = catalog.snapshots()?.len() as u64;
    Ok(report)
}
