//! The set of chunk ids the repository has or this backup is about to write: the dedup lookup.
//!
//! Loaded from the catalog's chunk index at the start of a backup (keys only, 32 bytes each) and
//! grown as workers find new chunks. Insertion is the claim: the one worker whose insert succeeds
//! compresses and writes the chunk, every other sees it as a duplicate. Sharded by the first id
//! byte so that workers rarely wait on each other; ids are uniformly random, so their first 8
//! bytes are a perfect hash.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use coldkeep_store::ChunkId;

const SHARDS: usize = 64;

/// Hashes a chunk id by taking its leading bytes (they are already a keyed hash).
#[derive(Debug, Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 ^= u64::from_le_bytes(word);
        }
    }
}

type IdSet = HashSet<ChunkId, BuildHasherDefault<IdHasher>>;

#[derive(Debug)]
pub(crate) struct KnownChunks {
    shards: Vec<Mutex<IdSet>>,
}

impl KnownChunks {
    pub fn new() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(IdSet::default())).collect() }
    }

    fn shard(&self, id: &ChunkId) -> std::sync::MutexGuard<'_, IdSet> {
        let i = usize::from(id.as_bytes()[0]) % SHARDS;
        self.shards[i].lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `id`; true if it was not known (the caller must then store the chunk).
    pub fn insert(&self, id: ChunkId) -> bool {
        self.shard(&id).insert(id)
    }

    /// Whether `id` is known.
    pub fn contains(&self, id: &ChunkId) -> bool {
        self.shard(id).contains(id)
    }
}
