//! The pack writer: one thread that appends prepared blobs to the open pack, seals it when it
//! reaches the target size and commits its index entries to the catalog.
//!
//! Durability order (the crash-safety invariant): a pack is written, fsynced, renamed and its
//! directory fsynced ([`PackWriter::finish`]) *before* its index entries are committed in one
//! synced catalog batch. A crash in between leaves an unindexed pack (harmless, reclaimable),
//! never an index entry pointing at missing bytes.

use coldkeep_store::{Blob, PackWriter};
use crossbeam_channel::Receiver;

use crate::error::BackupError;
use crate::repo::Repository;

/// Consumes blobs until the channel closes; returns after the last pack is sealed and indexed.
pub(crate) fn run(repo: &Repository, blobs: &Receiver<Blob>) -> Result<(), BackupError> {
    let mut open: Option<PackWriter> = None;
    for blob in blobs {
        let writer = match open.as_mut() {
            Some(w) => w,
            None => open.insert(PackWriter::create(&repo.packs)?),
        };
        writer.append(&blob)?;
        if writer.len() >= repo.config.pack_target_size {
            seal(repo, open.take().expect("a pack is open"))?;
        }
    }
    match open {
        Some(writer) if !writer.is_empty() => seal(repo, writer),
        _ => Ok(()),
    }
}

fn seal(repo: &Repository, writer: PackWriter) -> Result<(), BackupError> {
    let sealed = writer.finish()?;
    repo.catalog.commit_pack(&sealed)?;
    tracing::debug!(pack = %sealed.id, size = sealed.size, blobs = sealed.entries.len(), "pack sealed");
    Ok(())
}
