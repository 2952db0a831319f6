//! Pack writing: workers append blobs to open packs directly; a sealer thread makes full packs
//! durable and indexes them.
//!
//! Open packs sit in a free list. A worker takes one (or starts a new one), appends its blob and
//! puts it back, so with N workers about N packs are open and no blob crosses a thread: there is
//! no per-blob channel hop or wakeup. A pack that reaches the target size goes to the sealer
//! thread over a small bounded channel (back-pressure when the disk is slower than the CPUs).
//!
//! Durability order (the crash-safety invariant): the sealer writes the trailer, fsyncs the pack,
//! renames it into place and fsyncs the directory ([`PackWriter::finish`]) *before* committing
//! its index entries in one synced catalog batch. A crash in between leaves a sealed but
//! unindexed pack (reported by `check`, reclaimable), never an index entry pointing at missing
//! bytes. The snapshot is committed only after [`Packer::finish`] has sealed everything.

use std::sync::Mutex;

use coldkeep_store::{BlobKind, ChunkId, PackWriter, StoreError};
use crossbeam_channel::{Receiver, Sender};

use crate::error::BackupError;
use crate::progress::{add, Progress};
use crate::repo::Repository;

/// Full packs that may wait for the sealer.
const SEAL_QUEUE: usize = 4;

/// The open packs of one backup.
pub(crate) struct Packer<'r> {
    repo: &'r Repository,
    open: Mutex<Vec<PackWriter>>,
    to_seal: Sender<PackWriter>,
}

impl<'r> Packer<'r> {
    /// A packer and the receiving end for [`seal_all`], to run on its own thread.
    pub fn new(repo: &'r Repository) -> (Self, Receiver<PackWriter>) {
        let (to_seal, sealer) = crossbeam_channel::bounded(SEAL_QUEUE);
        (Self { repo, open: Mutex::new(Vec::new()), to_seal }, sealer)
    }

    fn take(&self) -> Option<PackWriter> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop()
    }

    /// Adds a blob to some open pack (compressing it there); hands the pack to the sealer when
    /// it is full.
    pub fn add(&self, id: ChunkId, kind: BlobKind, raw: &[u8]) -> Result<(), BackupError> {
        let mut writer = match self.take() {
            Some(w) => w,
            None => self.repo.new_pack()?,
        };
        writer.add(id, kind, raw)?;
        if writer.len() >= self.repo.config().pack_target_size {
            // The sealer only hangs up after a failure, which it reports itself.
            self.to_seal.send(writer).map_err(|_| StoreError::Poisoned)?;
        } else {
            self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(writer);
        }
        Ok(())
    }

    /// Sends every open pack to the sealer and closes the queue.
    pub fn finish(self) -> Result<(), BackupError> {
        let open = self.open.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        for writer in open.into_iter().filter(|w| !w.is_empty()) {
            self.to_seal.send(writer).map_err(|_| StoreError::Poisoned)?;
        }
        Ok(())
    }
}

/// The sealer: makes each pack durable, then indexes it. Returns after the queue closes, or at
/// the first failure — dropping `packs`, which closes the queue for the workers.
pub(crate) fn seal_all(
    repo: &Repository,
    packs: Receiver<PackWriter>,
    progress: &Progress,
) -> Result<(), BackupError> {
    for writer in packs {
        let sealed = writer.finish()?;
        repo.catalog().commit_pack(&sealed)?;
        add(&progress.stored_bytes, sealed.size);
        tracing::debug!(pack = %sealed.id, size = sealed.size, blobs = sealed.entries.len(), "pack sealed");
    }
    Ok(())
}
