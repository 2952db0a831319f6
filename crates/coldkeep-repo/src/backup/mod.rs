//! Backup: walk a source, store what is new, commit a snapshot.
//!
//! ```text
//!  rayon workers (walk.rs)                                    sealer threads (packer.rs)
//!  stat → [reuse parent's chunk list]
//!       → read → chunk → hash → dedup claim
//!       → compress new chunks → append to an open pack  ──►  full pack: trailer, fsync,
//!  directory done → tree blob → append                        rename, fsync dir → catalog
//!                                                              batch (synced)
//!                         all packs sealed and indexed → snapshot record (synced)
//! ```
//! Memory stays bounded whatever the source size: each worker holds one file or one streaming
//! buffer, open packs are on disk (behind a 1 MiB write buffer each), and at most a few full
//! packs wait for the sealers.

mod known;
mod packer;
mod walk;

use std::path::Path;
use std::sync::{Arc, Mutex};

use coldkeep_catalog::{BackupKind, RootMeta, SnapshotDraft, SnapshotId, SnapshotRecord};
use coldkeep_chunker::{Chunker, ChunkerConfig};

use crate::config::ChunkingSpec;
use crate::control::Control;
use crate::error::BackupError;
use crate::progress::Progress;
use crate::repo::{now_us, worker_pool, Repository};
use known::KnownChunks;

/// How to run a backup.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// `Incremental` reuses the chunk lists of files unchanged since the parent snapshot;
    /// `Full` reads every file (the result is deduplicated all the same).
    pub kind: BackupKind,
    /// The snapshot to compare with. By default the newest snapshot of the same source on the
    /// same host.
    pub parent: Option<SnapshotId>,
    pub tags: Vec<String>,
    /// Worker threads; by default one per core.
    pub threads: Option<usize>,
    /// Counters to poll while the backup runs.
    pub progress: Option<Arc<Progress>>,
    /// Pause / resume / cancel / time limit, honoured at chunk boundaries.
    pub control: Option<Arc<Control>>,
    /// Back the source up as a disk image: fixed-size chunks (the repository's size when it
    /// chunks that way, else [`IMAGE_CHUNK_SIZE`]), so that a block changed in place changes one
    /// chunk, and chunks of zeros kept as holes — neither stored nor written back on restore,
    /// which leaves the restored image sparse.
    pub disk_image: bool,
    /// The source's files only ever grow (a database's WAL or archive directory, append-only
    /// logs): of a file that grew since the parent snapshot, the parent's chunks are kept for
    /// what it had and only the new tail is read.
    pub append_only: bool,
}

/// The chunk size of disk images in a repository that chunks by content.
pub const IMAGE_CHUNK_SIZE: u32 = 256 * 1024;

impl Default for BackupOptions {
    fn default() -> Self {
        Self {
            kind: BackupKind::Incremental,
            parent: None,
            tags: Vec::new(),
            threads: None,
            progress: None,
            control: None,
            disk_image: false,
            append_only: false,
        }
    }
}

pub(crate) fn hostname() -> String {
    rustix::system::uname().nodename().to_string_lossy().into_owned()
}

pub fn run(
    repo: &Repository,
    source: &Path,
    opts: &BackupOptions,
) -> Result<SnapshotRecord, BackupError> {
    // Before the chunk index is read: garbage collection must not delete a pack this backup may
    // still reference until the backup has ended.
    let _ticket = repo.tickets().take();
    let start_time_us = now_us();
    let source = std::fs::canonicalize(source)
        .map_err(|e| BackupError::Source { path: source.to_owned(), cause: e })?;
    let source_bytes = std::os::unix::ffi::OsStrExt::as_bytes(source.as_os_str()).to_vec();
    let host = hostname();

    let parent = match opts.parent {
        Some(id) => Some(repo.catalog().snapshot(id)?.ok_or(BackupError::ParentNotFound(id))?),
        None => repo
            .catalog()
            .snapshots()?
            .into_iter()
            .rev()
            .find(|s| s.source == source_bytes && s.hostname == host),
    };
    // The parent's trees, all loaded up front (several requests in flight, `repo::trees`); if
    // one is gone (the parent expired and was collected since), each directory is looked up
    // as the walk reaches it instead, and one that is gone is read as new.
    let incremental_from = parent.as_ref().filter(|_| opts.kind == BackupKind::Incremental);
    let parent_trees = match incremental_from {
        Some(p) => match repo.load_hierarchy(p.root) {
            Ok(trees) => trees,
            Err(crate::error::DataError::MissingChunk(_)) => crate::repo::Trees::new(),
            Err(e) => return Err(e.into()),
        },
        None => crate::repo::Trees::new(),
    };
    let parent_root = match incremental_from {
        Some(p) => Some(match parent_trees.get(&p.root) {
            Some(root) => std::borrow::Cow::Borrowed(root),
            None => std::borrow::Cow::Owned(repo.load_tree(&p.root)?),
        }),
        None => None,
    };

    let setup = std::time::Instant::now();
    let known = KnownChunks::new();
    for id in repo.catalog().chunk_ids() {
        known.insert(id?);
    }
    let progress = opts.progress.clone().unwrap_or_default();
    let control = opts.control.clone().unwrap_or_default();
    let warnings = Mutex::new(Vec::new());
    let pool = worker_pool(opts.threads, "backup", &source)?;

    let image_chunker;
    let chunker = if opts.disk_image && matches!(repo.config().chunking, ChunkingSpec::Cdc { .. }) {
        image_chunker = Chunker::new(ChunkerConfig::Fixed(IMAGE_CHUNK_SIZE))
            .expect("the image chunk size is valid");
        &image_chunker
    } else {
        repo.chunker()
    };

    let (packer, sealer) = packer::Packer::new(repo);
    let (walked, seal_result) = std::thread::scope(|scope| {
        // The receiver moves into the sealer, so that if sealing fails the queue closes and the
        // workers' sends fail. Borrowed, it would outlive the failure and a full queue would
        // block every worker forever.
        let progress = &progress;
        let sealer_thread = scope.spawn(move || packer::seal_all(repo, sealer, progress));
        let ctx = walk::Walk {
            repo,
            source: &source,
            chunker,
            zeros_as_holes: opts.disk_image,
            append_only: opts.append_only,
            known: &known,
            parent_trees: &parent_trees,
            packer: &packer,
            progress,
            control: &control,
            warnings: &warnings,
        };
        tracing::debug!(elapsed = ?setup.elapsed(), "setup done, walking");
        let walked = pool.install(|| ctx.root(&source, parent_root.as_deref()));
        tracing::debug!(elapsed = ?setup.elapsed(), "walk done, sealing the last packs");
        // Hand the last packs to the sealer and close its queue, whatever the walk's outcome:
        // what was written is valid and later backups can reuse it.
        let finished = packer.finish();
        let seal_result =
            sealer_thread.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (walked.and_then(|root| finished.map(|()| root)), seal_result)
    });
    // A sealer failure also makes the walk fail (its sends find the queue closed): report the
    // sealer's error, which is the cause.
    seal_result?;
    let root = walked?;
    tracing::debug!(elapsed = ?setup.elapsed(), "packs sealed, committing the snapshot");

    let root_meta =
        std::fs::symlink_metadata(&source).ok().filter(std::fs::Metadata::is_dir).map(|md| {
            use std::os::unix::fs::MetadataExt;
            RootMeta {
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime_secs: md.mtime(),
                mtime_nanos: u32::try_from(md.mtime_nsec()).unwrap_or(0),
            }
        });
    let draft = SnapshotDraft {
        start_time_us,
        end_time_us: now_us(),
        hostname: host,
        source: source_bytes,
        root,
        root_meta,
        parent: parent.map(|p| p.id),
        // With no parent to reuse, every file was read: that is a full backup, whatever was asked.
        kind: if parent_root.is_some() { opts.kind } else { BackupKind::Full },
        stats: progress.stats(),
        warnings: warnings.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner),
        tags: opts.tags.clone(),
    };
    Ok(repo.catalog().commit_snapshot(draft)?)
}
