//! A repository in a store of its own — a bucket, which several machines may write — with its
//! catalog kept as a cache in a local directory.
//!
//! ```text
//! <cache>/<repo id, hex>/catalog/   RocksDB: the cache of the repository's catalog
//! <cache>/<repo id, hex>/lock       flock(2)ed by the process that has the repository open
//! <cache>/<repo id, hex>/trees/     copies of the repository's directory trees (`tree_cache`)
//! ```
//!
//! The store is the truth and the cache an index of it (`journal`, `rebuild`), made current at
//! every open:
//! * absent, empty, unreadable, or ahead of the store (a bucket put back from an older copy):
//!   filled from the store alone, as `rebuild-catalog` does;
//! * behind, by what only adds (snapshots, runs, holds, new packs: other machines' backups):
//!   the journal entries it lacks are applied and the new packs' trailers indexed;
//! * behind a collection or an expiry made elsewhere (packs deleted, chunks unindexed,
//!   snapshots deleted): emptied and filled again — patching the derived tables is where a
//!   cache would go wrong, and collections are rare.
//!
//! Writers on several machines: the journal entry is the commit point here, written
//! create-only, so every commit of every writer gets its own number in one order. A writer whose
//! view is stale (another committed since it opened) has its next commit refused with
//! `KvError::Conflict` and changes nothing; reopening makes its view current. That is what
//! makes a collection safe against another machine's backup: each of its destructive steps is
//! journaled before anything is deleted (condemnations, the forgetting of swept packs, the note
//! of orphans removed), so a backup that began before it, and may reuse what it removes, cannot
//! commit afterwards. Unfinished objects are never cleared at open: another machine may be
//! writing them (a bucket's lifecycle rule for aborted multipart uploads does that).
//!
//! Processes on one machine exclude each other through the cache's lock, readers included: a
//! read-only open brings the cache up to date too (it writes nothing to the store).

use std::collections::HashSet;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coldkeep_catalog::{Catalog, KvError, KvStore};
use coldkeep_catalog_rocks::RocksKv;
use coldkeep_store::crypto::MasterKey;
use coldkeep_store::{Backend, ObjectKind, PackId};
use serde::Serialize;

use crate::error::{InitError, IoError, OpenError};
use crate::journal::{CommitPoint, Pending};
use crate::rebuild::{self, RebuildReport};
use crate::repo::commit_log::{ReadOnlyKv, SequencedKv};
use crate::repo::lock::{FileLock, RepoLock};
use crate::repo::{
    lacks_room, writable_catalog, InitOptions, OpenMode, OpenOptions, Prepared, Repository, Site,
    TreeCache, MIN_FREE_BYTES,
};

/// A repository in a store of its own, its catalog cached under `cache` (see the module
/// documentation).
#[derive(Clone)]
pub struct Remote {
    /// Where the repository's objects are (a bucket).
    pub store: Arc<dyn Backend>,
    /// The directory of catalog caches (one subdirectory per repository id).
    pub cache: PathBuf,
    /// What messages (and `Engine::path`) call the repository: its address.
    pub location: PathBuf,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("location", &self.location)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// How opening made the cache current.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheRefresh {
    /// It knew all the store holds.
    Current,
    /// It lacked what other writers added: their journal entries were applied and their packs
    /// indexed.
    CaughtUp { journal_entries: u64, packs_indexed: u64 },
    /// It was filled from the store, for `reason`.
    Filled { reason: String, report: RebuildReport },
}

/// Whether to use the cache that is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refill {
    /// When it can be brought up to date.
    IfNeeded,
    /// Never: fill a new one (`rebuild-catalog`).
    Always,
}

/// `<cache>/<repo id>`, made (private to its owner) if absent.
fn cache_dir(cache: &Path, repo_id: [u8; 16]) -> Result<PathBuf, IoError> {
    let dir = cache.join(coldkeep_catalog::hex(&repo_id));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| IoError::new("create", &dir, e))?;
    Ok(dir)
}

/// The cache's lock: exclusive whatever the mode, since every open writes the cache.
fn lock_cache(dir: &Path) -> Result<Option<Box<dyn RepoLock>>, IoError> {
    Ok(FileLock::acquire(dir, OpenMode::ReadWrite)?.map(|l| Box::new(l) as Box<dyn RepoLock>))
}

fn refuse_if_full(dir: &Path) -> Result<(), IoError> {
    match lacks_room(dir)? {
        // RocksDB aborts the process when a write of its own finds the disk full.
        Some(free) => Err(IoError::new(
            "write the catalog cache in",
            dir,
            std::io::Error::other(format!(
                "{free} bytes free, {MIN_FREE_BYTES} needed (the cache's disk is full)"
            )),
        )),
        None => Ok(()),
    }
}

/// An empty catalog at `<dir>/catalog`, replacing whatever was there (it is only a cache).
fn empty_cache<E: From<IoError> + From<KvError>>(dir: &Path) -> Result<Arc<dyn KvStore>, E> {
    let path = dir.join("catalog");
    match std::fs::remove_dir_all(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(IoError::new("remove", &path, e).into()),
    }
    Ok(Arc::new(RocksKv::open(&path, true)?))
}

/// Opens the cache at `<dir>/catalog` and makes it current with the store (see the module
/// documentation).
fn refresh(
    dir: &Path,
    prepared: &Prepared,
    refill: Refill,
) -> Result<(Arc<dyn KvStore>, CacheRefresh), OpenError> {
    // Written through the commit numbering, as the open catalog will be (it keeps its
    // numbers in every table).
    let numbered = |raw: &Arc<dyn KvStore>| -> Result<Arc<dyn KvStore>, OpenError> {
        Ok(Arc::new(SequencedKv::new(None, Arc::clone(raw))?))
    };
    let filled = |reason: &str| -> Result<(Arc<dyn KvStore>, CacheRefresh), OpenError> {
        tracing::info!(reason, "filling the catalog cache from the store");
        let raw = empty_cache::<OpenError>(dir)?;
        let report = rebuild::fill(&numbered(&raw)?, prepared)?;
        Ok((raw, CacheRefresh::Filled { reason: reason.to_owned(), report }))
    };
    if refill == Refill::Always {
        return filled("asked to rebuild it");
    }
    let raw: Arc<dyn KvStore> = match RocksKv::open(&dir.join("catalog"), true) {
        Ok(kv) => Arc::new(kv),
        Err(e) => {
            tracing::warn!(%e, "the catalog cache is unreadable");
            return filled("the cache was unreadable");
        }
    };
    let kv = match numbered(&raw) {
        Ok(kv) => kv,
        Err(e) => {
            tracing::warn!(%e, "the catalog cache is unusable");
            drop(raw);
            return filled("the cache was unusable");
        }
    };
    if crate::journal::is_empty(kv.as_ref())? {
        drop((kv, raw));
        return filled("there was no cache");
    }
    let seal = prepared.sealing.as_ref().map(MasterKey::object_key);
    let pending = Pending::read(kv.as_ref(), prepared.store.as_ref(), seal.as_ref())?;
    let known: HashSet<PackId> =
        Catalog::new(Arc::clone(&kv)).packs()?.into_iter().map(|(id, _)| id).collect();
    let stored: HashSet<PackId> = prepared
        .store
        .list(ObjectKind::Pack)?
        .iter()
        .filter_map(|info| info.name.pack_id())
        .collect();
    let reason = if pending.ahead() {
        Some("the cache is ahead of the store")
    } else if pending.reclaims() {
        Some("snapshots were deleted or packs collected elsewhere")
    } else if !known.is_subset(&stored) {
        Some("packs it indexes are gone from the store")
    } else {
        None
    };
    if let Some(reason) = reason {
        drop((kv, raw));
        return filled(reason);
    }
    if pending.len() == 0 && stored.len() == known.len() {
        return Ok((raw, CacheRefresh::Current));
    }
    let journal_entries = pending.apply(kv.as_ref())?;
    let report = rebuild::index_packs(&kv, prepared, &known)?;
    let refresh = CacheRefresh::CaughtUp { journal_entries, packs_indexed: report.packs_indexed };
    tracing::info!(?refresh, "the catalog cache caught up with the store");
    Ok((raw, refresh))
}

impl Repository {
    /// Creates a repository in `remote`'s store, which must hold none yet, with a new cache.
    pub fn init_remote(remote: Remote, opts: &InitOptions) -> Result<Self, InitError> {
        let chunker = coldkeep_chunker::Chunker::new(opts.chunker)?;
        if !remote.store.list(ObjectKind::Config)?.is_empty() {
            return Err(InitError::AlreadyExists(remote.location));
        }
        let repo_id = coldkeep_store::random_bytes();
        let dir = cache_dir(&remote.cache, repo_id)?;
        let lock =
            lock_cache(&dir)?.ok_or_else(|| InitError::AlreadyExists(remote.location.clone()))?;
        refuse_if_full(&dir)?;
        let kv = empty_cache::<InitError>(&dir)?;
        let site = Site {
            location: &remote.location,
            store: remote.store,
            commits: None,
            commit_point: CommitPoint::Journal,
            lock,
        };
        Ok(Self::init_at(site, repo_id, kv, chunker, opts)?.with_tree_cache(TreeCache::new(&dir)))
    }

    /// Opens the repository in `remote`'s store, its cache made current first (see the module
    /// documentation); says how.
    pub fn open_remote(
        remote: Remote,
        opts: &OpenOptions,
        refill: Refill,
    ) -> Result<(Self, CacheRefresh), OpenError> {
        let Remote { store, cache, location } = remote;
        let mut dir = None;
        let prepared = Self::prepare_at(&location, store, opts, |config| {
            let path = cache_dir(&cache, config.repo_id)?;
            let lock = lock_cache(&path)?;
            dir = Some(path);
            Ok(lock)
        })?;
        let dir = dir.expect("the lock was taken in the cache's directory");
        refuse_if_full(&dir)?;
        let (kv, refresh) = refresh(&dir, &prepared, refill)?;
        let Prepared { config, chunker, lock, store, sealing } = prepared;
        let kv = opts.decorators.catalog(kv);
        let kv: Arc<dyn KvStore> = match opts.mode {
            OpenMode::ReadOnly => Arc::new(ReadOnlyKv(kv)),
            OpenMode::ReadWrite => {
                writable_catalog(kv, None, &store, sealing.as_ref(), CommitPoint::Journal)?
            }
        };
        let repo = Self::assemble(&location, config, sealing, chunker, kv, store, lock, None)
            .with_tree_cache(TreeCache::new(&dir));
        if matches!(refresh, CacheRefresh::Filled { .. }) {
            // Filled after a collection elsewhere, perhaps: trees it dropped are kept no more.
            repo.prune_tree_cache();
        }
        Ok((repo, refresh))
    }
}
