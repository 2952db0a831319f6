//! Live counters of a running operation. The engine updates them with relaxed atomics; a caller
//! (the CLI's progress bar, a control plane) polls them from another thread.

use std::sync::atomic::{AtomicU64, Ordering};

use coldkeep_catalog::SnapshotStats;

/// Counters of a backup or restore in progress.
#[derive(Debug, Default)]
pub struct Progress {
    pub files: AtomicU64,
    pub dirs: AtomicU64,
    pub symlinks: AtomicU64,
    /// Logical bytes of the files processed so far.
    pub bytes: AtomicU64,
    pub files_read: AtomicU64,
    pub files_reused: AtomicU64,
    pub bytes_read: AtomicU64,
    pub new_chunks: AtomicU64,
    pub new_bytes: AtomicU64,
    pub stored_bytes: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Progress {
    /// A consistent-enough copy of the counters.
    pub fn stats(&self) -> SnapshotStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SnapshotStats {
            files: get(&self.files),
            dirs: get(&self.dirs),
            symlinks: get(&self.symlinks),
            bytes: get(&self.bytes),
            files_read: get(&self.files_read),
            files_reused: get(&self.files_reused),
            bytes_read: get(&self.bytes_read),
            new_chunks: get(&self.new_chunks),
            new_bytes: get(&self.new_bytes),
            stored_bytes: get(&self.stored_bytes),
        }
    }
}
