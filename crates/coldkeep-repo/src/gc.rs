//! Garbage collection: expired snapshots go, then the chunks nothing references any more, in two
//! phases with a grace period between them.
//!
//! ```text
//! 1 expire    runs whose retention allows it (expired, no hold, no lock): snapshot records
//!             deleted, run marked, audit entry — one batch per run (the control plane's step:
//!             `coldkeep-protect`'s expiry; the steps below are this module's `reclaim`)
//! 2 sweep     packs condemned by an earlier collection, once the grace period has passed and
//!             every backup running at condemnation has ended: re-marked; still dead → records
//!             dropped (batch), then the file deleted; referenced again → resurrected
//! 3 condemn   packs with no live chunk: unindexed and condemned (one batch each); packs with
//!             less than `repack_below` live: live blobs copied to a new pack (sealed, indexed),
//!             then the old pack condemned
//! 4 orphans   pack files no record names (a backup killed between sealing and indexing):
//!             deleted when no backup is running, once older than the grace period, and only
//!             when every tree they hold is reachable from a snapshot — an unreachable tree may
//!             be a snapshot the catalog lost (evidence, kept and reported, never garbage)
//! ```
//! Why it is safe against a concurrent backup: a backup takes a ticket before it reads the chunk
//! index, and nothing is condemned while a backup holds a ticket — a running backup may reuse any
//! chunk it saw in the index. A backup that starts after a condemnation never sees the condemned
//! chunks, so it writes its own copies. For the narrow race of a backup starting while a
//! condemnation is being written, a condemned pack is also kept until every backup that could
//! have seen it has ended, and the sweep re-marks first: a pack referenced again is resurrected
//! (re-indexed), not deleted.
//!
//! Why it is safe against a crash: every step is one synced catalog batch. A condemned pack's
//! file is deleted *before* the batch that forgets it (nothing indexes it any more, and a sweep
//! that finds the file gone just forgets it), so a crash never leaves a pack file nothing names
//! from a sweep; the only orphans are packs sealed but not yet indexed, which step 4 handles.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use coldkeep_catalog::{Batch, Catalog, CatalogError, Condemned, OrphansRemoved, SnapshotId};
use coldkeep_model::Usecs;
use coldkeep_store::{Access, BlobEntry, ChunkId, ErrorKind, ObjectName, PackId, StoreError};
use serde::Serialize;

use crate::error::{DataError, IoError, Unreadable};
use crate::repo::Repository;

/// How a collection runs.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// How long a condemned pack waits before it is deleted (1 hour by default).
    pub grace: Duration,
    /// Packs with less than this fraction of their blobs' bytes live are repacked (0.5).
    pub repack_below: f64,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self { grace: Duration::from_hours(1), repack_below: 0.5 }
    }
}

/// What a collection did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GcReport {
    pub runs_expired: u64,
    pub snapshots_removed: u64,
    pub packs_condemned: u64,
    pub packs_repacked: u64,
    pub packs_deleted: u64,
    pub packs_resurrected: u64,
    pub orphan_packs_deleted: u64,
    /// Unindexed packs younger than the grace period (left for a later collection).
    pub orphan_packs_waiting: u64,
    /// Unindexed packs older than the grace period that hold trees no snapshot reaches (or
    /// cannot be read): they may be all that is left of snapshots a damaged catalog lost, so
    /// they are never deleted. `check` lists them too.
    pub orphan_packs_kept: Vec<String>,
    /// Packs that would have been repacked or deleted but that the store itself retains or
    /// holds (S3 Object Lock, `store_lock`): left as they are until the store lets them go.
    pub packs_locked_in_store: u64,
    pub bytes_freed: u64,
    /// Entries of the file index whose snapshots are gone.
    pub index_entries_purged: u64,
}

/// Errors of garbage collection. A failed collection can simply be run again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GcError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Unreadable(#[from] Unreadable),
}

impl GcError {
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            GcError::Catalog(e) => crate::HasErrorKind::kind(e),
            GcError::Data(e) => e.kind(),
            GcError::Io(e) => e.kind(),
            GcError::Unreadable(e) => e.kind,
        }
    }
}

crate::has_error_kind!(GcError);

impl From<StoreError> for GcError {
    fn from(e: StoreError) -> Self {
        Self::Data(e.into())
    }
}

/// Steps 2 to 5: reclaims the space of chunks no snapshot references, judging the grace period
/// by `now` (the retention clock: a wall clock set ahead shortens no grace period). Step 1,
/// expiry, is the control plane's: it decides which snapshots retention lets go.
pub fn reclaim(
    repo: &Repository,
    now: Usecs,
    opts: GcOptions,
    report: &mut GcReport,
) -> Result<(), GcError> {
    let live = mark(repo)?;
    sweep(repo, &live, now, opts.grace, report)?;
    condemn(repo, &live, now, opts.repack_below, report)?;
    remove_orphans(repo, &live, now, opts.grace, report)?;
    purge_index(repo, report)?;
    repo.prune_tree_cache();
    Ok(())
}

/// Step 5: the file index entries of snapshots that no longer exist (a search already leaves
/// them out; this gives their space back).
fn purge_index(repo: &Repository, report: &mut GcReport) -> Result<(), GcError> {
    let mut alive: HashMap<SnapshotId, bool> = HashMap::new();
    let mut batch = Batch::new();
    for item in repo.catalog().indexed_files() {
        let (key, file) = item?;
        let snapshot = coldkeep_catalog::key_snapshot(&key);
        let exists = if let Some(e) = alive.get(&snapshot) {
            *e
        } else {
            let e = repo.catalog().snapshot(snapshot)?.is_some();
            if !e {
                Catalog::stage_unindex_mark(&mut batch, snapshot);
            }
            alive.insert(snapshot, e);
            e
        };
        if !exists {
            Catalog::stage_unindex_file(&mut batch, &key, &file);
            report.index_entries_purged += 1;
            if report.index_entries_purged.is_multiple_of(20_000) {
                repo.catalog().write(std::mem::take(&mut batch))?;
            }
        }
    }
    if !batch.is_empty() {
        repo.catalog().write(batch)?;
    }
    Ok(())
}

/// Every chunk (tree or data) reachable from a snapshot. A tree that is not indexed is looked
/// for in the condemned packs: a backup that ran during an earlier collection may have reused
/// it, and this mark is what resurrects it.
fn mark(repo: &Repository) -> Result<HashSet<ChunkId>, GcError> {
    let mut condemned: HashMap<ChunkId, (PackId, BlobEntry)> = HashMap::new();
    for (pack, _) in repo.catalog().condemned()? {
        if let Ok(entries) = repo.open_pack(pack, Access::Random).and_then(|p| p.entries()) {
            condemned.extend(entries.into_iter().map(|e| (e.id, (pack, e))));
        }
    }
    let load = |id: &ChunkId| match repo.load_tree(id) {
        Err(DataError::MissingChunk(_)) if condemned.contains_key(id) => {
            let (pack, entry) = condemned[id];
            let file = repo.open_pack(pack, Access::Random)?;
            crate::tree::Tree::decode(*id, &file.read_blob(&entry, Some(repo.chunk_key()))?)
        }
        other => other,
    };
    let mut live = HashSet::new(); // trees, filled by `walk`
    let mut data = HashSet::new();
    let mut unreadable = None;
    for snap in repo.catalog().snapshots()? {
        crate::reach::walk(&load, snap.root, &mut live, &mut |id, is_tree, loaded| {
            if let Err(e) = loaded {
                unreadable.get_or_insert_with(|| Unreadable::new(id, e));
            } else if !is_tree {
                data.insert(id);
            }
        });
    }
    if let Some(e) = unreadable {
        // A tree that cannot be read hides what it references: deleting anything now could
        // destroy live data. Refuse; `check` says what is wrong. The error's kind tells
        // damage from a store that failed to answer.
        return Err(e.into());
    }
    live.extend(data);
    Ok(live)
}

/// Whether the grace period has passed since `since`, at trusted time `now`.
fn waited(now: Usecs, since: Usecs, grace: Duration) -> bool {
    let grace_us = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
    now.0.saturating_sub(since.0) >= grace_us
}

/// Whether every backup that may reference a pack condemned under `c` has ended.
fn backups_done(repo: &Repository, c: &Condemned) -> bool {
    c.epoch != repo.tickets().epoch || repo.tickets().oldest_running().is_none_or(|t| t > c.ticket)
}

/// Step 2: delete or resurrect packs condemned earlier.
fn sweep(
    repo: &Repository,
    live: &HashSet<ChunkId>,
    now: Usecs,
    grace: Duration,
    report: &mut GcReport,
) -> Result<(), GcError> {
    for (pack, c) in repo.catalog().condemned()? {
        if !waited(now, c.at, grace) || !backups_done(repo, &c) {
            continue;
        }
        let entries = match repo.open_pack(pack, Access::Random).and_then(|p| p.entries()) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => vec![],
            Err(e) => return Err(e.into()),
        };
        let mut wanted = Vec::new();
        for e in entries.into_iter().filter(|e| live.contains(&e.id)) {
            if repo.catalog().chunk(&e.id)?.is_none() {
                wanted.push(e);
            }
        }
        let mut batch = Batch::new();
        if wanted.is_empty() {
            let Deletion::Deleted(freed) = delete_unless_locked(repo, pack, report)? else {
                continue;
            };
            report.bytes_freed += freed.unwrap_or(0);
            Catalog::stage_forget_pack(&mut batch, pack);
            repo.catalog().write(batch)?;
            report.packs_deleted += 1;
        } else {
            // A backup that was running at condemnation committed a reference: keep the pack.
            Catalog::stage_resurrect(&mut batch, pack, &wanted);
            repo.catalog().write(batch)?;
            report.packs_resurrected += 1;
        }
    }
    Ok(())
}

/// Step 3: condemn dead packs, repack mostly dead ones.
fn condemn(
    repo: &Repository,
    live: &HashSet<ChunkId>,
    now: Usecs,
    repack_below: f64,
    report: &mut GcReport,
) -> Result<(), GcError> {
    if repo.tickets().oldest_running().is_some() {
        // A running backup read the chunk index when it started and may reuse any chunk in it:
        // unindexing one now would let it commit a snapshot whose chunk is not indexed. Condemn
        // nothing until no backup runs. (A backup starting while this step runs is the narrow
        // race the sweep's ticket rule and the mark's resurrection cover.)
        return Ok(());
    }
    let condemned: HashSet<PackId> =
        repo.catalog().condemned()?.into_iter().map(|(id, _)| id).collect();
    let mut index: HashMap<PackId, Vec<BlobEntry>> = HashMap::new();
    for loc in repo.catalog().chunks() {
        let loc = loc?;
        index.entry(loc.pack).or_default().push(loc.entry);
    }
    let record =
        Condemned { at: now, epoch: repo.tickets().epoch, ticket: repo.tickets().issued() };
    let mut packs: Vec<PackId> = repo.catalog().packs()?.into_iter().map(|(id, _)| id).collect();
    packs.retain(|id| !condemned.contains(id));
    for pack in packs {
        let entries = index.remove(&pack).unwrap_or_default();
        let (alive, dead): (Vec<&BlobEntry>, Vec<&BlobEntry>) =
            entries.iter().partition(|e| live.contains(&e.id));
        let bytes = |v: &[&BlobEntry]| v.iter().map(|e| u64::from(e.len)).sum::<u64>();
        let total = bytes(&alive) + bytes(&dead);
        if !alive.is_empty() && (total == 0 || bytes(&alive) as f64 / total as f64 >= repack_below)
        {
            continue;
        }
        if repo.locked_in_store(&ObjectName::pack(pack))? {
            // Neither deleting nor repacking frees anything while the store keeps the pack.
            report.packs_locked_in_store += 1;
            continue;
        }
        if !alive.is_empty() {
            repack(repo, pack, &alive)?;
            report.packs_repacked += 1;
        }
        // The live blobs (if any) are now indexed in the new pack; the rest leave the index.
        let unindex: Vec<ChunkId> = dead.iter().map(|e| e.id).collect();
        let mut batch = Batch::new();
        Catalog::stage_condemn(&mut batch, pack, &record, &unindex);
        repo.catalog().write(batch)?;
        report.packs_condemned += 1;
    }
    Ok(())
}

/// Copies `blobs` of `pack` into a new pack, sealed and indexed (the index then points there).
fn repack(repo: &Repository, pack: PackId, blobs: &[&BlobEntry]) -> Result<(), GcError> {
    let source = repo.open_pack(pack, Access::Sequential)?;
    let mut writer = repo.new_pack()?;
    for entry in blobs {
        let raw = source.read_blob(entry, Some(repo.chunk_key()))?;
        writer.add(entry.id, entry.kind, &raw)?;
        if writer.len() >= repo.config().pack_target_size {
            let full = std::mem::replace(&mut writer, repo.new_pack()?);
            repo.catalog().commit_pack(&full.finish()?)?;
        }
    }
    if !writer.is_empty() {
        repo.catalog().commit_pack(&writer.finish()?)?;
    }
    Ok(())
}

/// Step 4: pack files that no record names. One younger than the grace period stays; so does
/// one holding a tree no snapshot reaches, which may be the only trace of a snapshot the
/// catalog lost. (A repack killed before indexing its new pack leaves copies of live trees:
/// those go.)
fn remove_orphans(
    repo: &Repository,
    live: &HashSet<ChunkId>,
    now: Usecs,
    grace: Duration,
    report: &mut GcReport,
) -> Result<(), GcError> {
    if repo.tickets().oldest_running().is_some() {
        return Ok(()); // a running backup's sealed pack may not be indexed yet
    }
    let known: HashSet<PackId> = repo.catalog().packs()?.into_iter().map(|(id, _)| id).collect();
    let mut doomed = Vec::new();
    for (pack, info) in repo.stored_packs()? {
        if known.contains(&pack) {
            continue;
        }
        if !waited(now, Usecs(info.written_us), grace) {
            report.orphan_packs_waiting += 1;
            continue;
        }
        // Trees no snapshot reaches, or a trailer that cannot be read: nothing proves the pack
        // is garbage.
        if !matches!(crate::reach::lost_trees(repo, pack, live), Ok(0)) {
            report.orphan_packs_kept.push(pack.to_string());
            continue;
        }
        doomed.push(pack);
    }
    report.orphan_packs_kept.sort();
    if doomed.is_empty() {
        return Ok(());
    }
    // Journaled first: a writer elsewhere whose unfinished backup wrote one of these packs
    // cannot commit after them (its view is stale), so no snapshot can name a deleted pack.
    let mut batch = Batch::new();
    Catalog::stage_orphans_removed(&mut batch, &OrphansRemoved { at: now, packs: doomed.clone() });
    repo.catalog().write(batch)?;
    for pack in doomed {
        if let Deletion::Deleted(Some(len)) = delete_unless_locked(repo, pack, report)? {
            report.orphan_packs_deleted += 1;
            report.bytes_freed += len;
        }
    }
    Ok(())
}

/// What became of a pack gc deleted.
enum Deletion {
    /// Gone; its length, if it was there.
    Deleted(Option<u64>),
    /// The store refused: it retains or holds the pack (counted in the report).
    LockedInStore,
}

/// Deletes a pack's object, unless the store refuses because it retains or holds it.
fn delete_unless_locked(
    repo: &Repository,
    pack: PackId,
    report: &mut GcReport,
) -> Result<Deletion, GcError> {
    match repo.delete_pack(pack) {
        Ok(len) => Ok(Deletion::Deleted(len)),
        Err(e)
            if e.kind() == ErrorKind::Denied
                && repo.locked_in_store(&ObjectName::pack(pack))? =>
        {
            report.packs_locked_in_store += 1;
            Ok(Deletion::LockedInStore)
        }
        Err(e) => Err(e.into()),
    }
}
