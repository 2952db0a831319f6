//! Who may use a repository at the same time: one writer, or any number of readers, never
//! both. [`RepoLock`] is what an open repository holds for as long as it is open; how it is
//! taken depends on where the repository is.
//!
//! * [`FileLock`]: a repository in a directory. `<repo>/lock` held with `flock(2)`, exclusive
//!   by a writer and shared by readers. The kernel releases it when the process ends, however
//!   it ends, so a crash never leaves a repository locked. (RocksDB holds a lock of its own
//!   for writers; this one comes first and says plainly that another process is using the
//!   repository.)
//! * [`ProcessLock`]: a repository whose store and catalog the program gave
//!   (`Engine::init_parts`, an in-memory repository): the same rule among the engines of this
//!   process, by repository id. A store that several processes share needs a lock they all
//!   see (a lease object in the store itself, for object storage).

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use super::OpenMode;
use crate::error::IoError;

/// Held while a repository is open; dropping it lets others in.
pub trait RepoLock: std::fmt::Debug + Send + Sync {
    /// How the repository is held.
    fn mode(&self) -> OpenMode;
}

/// `<repo>/lock`, `flock`ed (see the module documentation).
#[derive(Debug)]
pub struct FileLock {
    _file: std::fs::File,
    mode: OpenMode,
}

impl FileLock {
    /// The lock, or `None` when another process holds it in a conflicting mode. A reader opens
    /// the file (made at `init`) without write access, so that read-only media work.
    pub fn acquire(root: &Path, mode: OpenMode) -> Result<Option<Self>, IoError> {
        let path = root.join("lock");
        let (file, operation) = match mode {
            OpenMode::ReadWrite => (
                std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .mode(0o600)
                    .open(&path),
                rustix::fs::FlockOperation::NonBlockingLockExclusive,
            ),
            OpenMode::ReadOnly => {
                (std::fs::File::open(&path), rustix::fs::FlockOperation::NonBlockingLockShared)
            }
        };
        let file = file.map_err(|e| IoError::new("open", &path, e))?;
        match rustix::fs::flock(&file, operation) {
            Ok(()) => Ok(Some(Self { _file: file, mode })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(IoError::new("lock", &path, e.into())),
        }
    }
}

impl RepoLock for FileLock {
    fn mode(&self) -> OpenMode {
        self.mode
    }
}

/// How the repositories of this process are held: by id, a writer (`-1`) or a reader count.
static HELD: Mutex<Option<HashMap<[u8; 16], i64>>> = Mutex::new(None);

/// A repository held by this process's engines alone (see the module documentation).
#[derive(Debug)]
pub struct ProcessLock {
    repo_id: [u8; 16],
    mode: OpenMode,
}

impl ProcessLock {
    /// The lock of repository `repo_id`, or `None` while an engine of this process holds it in
    /// a conflicting mode.
    pub fn acquire(repo_id: [u8; 16], mode: OpenMode) -> Option<Self> {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        let count = held.get_or_insert_with(HashMap::new).entry(repo_id).or_insert(0);
        match (mode, *count) {
            (OpenMode::ReadWrite, 0) => *count = -1,
            (OpenMode::ReadOnly, n) if n >= 0 => *count += 1,
            _ => return None,
        }
        Some(Self { repo_id, mode })
    }
}

impl Drop for ProcessLock {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(map) = held.as_mut() else { return };
        if let Some(count) = map.get_mut(&self.repo_id) {
            *count = if *count < 0 { 0 } else { *count - 1 };
            if *count == 0 {
                map.remove(&self.repo_id);
            }
        }
    }
}

impl RepoLock for ProcessLock {
    fn mode(&self) -> OpenMode {
        self.mode
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_writer_or_many_readers_in_a_process() {
        let id = [9; 16];
        let writer = ProcessLock::acquire(id, OpenMode::ReadWrite).expect("first writer");
        assert!(ProcessLock::acquire(id, OpenMode::ReadWrite).is_none());
        assert!(ProcessLock::acquire(id, OpenMode::ReadOnly).is_none());
        assert!(ProcessLock::acquire([8; 16], OpenMode::ReadWrite).is_some(), "another repo");
        drop(writer);
        let a = ProcessLock::acquire(id, OpenMode::ReadOnly).expect("reader");
        let b = ProcessLock::acquire(id, OpenMode::ReadOnly).expect("second reader");
        assert!(ProcessLock::acquire(id, OpenMode::ReadWrite).is_none());
        drop(a);
        assert!(ProcessLock::acquire(id, OpenMode::ReadWrite).is_none(), "one reader left");
        drop(b);
        assert!(ProcessLock::acquire(id, OpenMode::ReadWrite).is_some());
    }
}
