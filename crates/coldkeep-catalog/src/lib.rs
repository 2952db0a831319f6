//! The snapshot catalog: what is in the repository and where it lives.
//!
//! [`Catalog`] gives typed access to the tables — chunk index, packs, snapshots — on top of any
//! [`KvStore`]. Every value is a versioned, checksummed record ([`record`]); decoding damaged bytes
//! yields [`CatalogError::Corrupted`] naming the table and key, never a panic.
//!
//! The catalog is written in the order the durability invariant needs: a pack's index entries
//! are committed in one synced batch only after the pack itself is sealed on disk
//! ([`Catalog::commit_pack`]), and a snapshot record only after every pack it needs
//! ([`Catalog::commit_snapshot`]).

pub mod conformance;
mod faults;
mod file_index;
mod kv;
mod protection;
pub mod record;
mod snapshot;

use std::sync::{Arc, Mutex};

pub use faults::FaultyKv;
pub use file_index::{file_key, grams, is_index_mark, key_snapshot, FileKey, Gram};
pub use kv::{Batch, KvError, KvPair, KvStore, MemKv, Op, Table};
pub use protection::{
    is_collection_key, run_key, Condemned, Counter, OrphansRemoved, ProtectionRecord,
    CLOCK_STATE_KEY,
};
pub use record::RecordError;
pub use snapshot::{
    BackupKind, RootMeta, SnapshotDraft, SnapshotId, SnapshotRecord, SnapshotStats, Warning,
};

use coldkeep_store::{BlobEntry, ChunkId, PackId, SealedPack};
use serde::{Deserialize, Serialize};

/// Errors reading or writing the catalog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    #[error(transparent)]
    Kv(#[from] KvError),
    /// A stored value or key does not decode.
    #[error("corrupted catalog record in table {table} at key {key}: {reason}")]
    Corrupted { table: &'static str, key: String, reason: RecordError },
}

/// Bytes as lowercase hex (keys in messages, search cookies).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(2 * bytes.len()), |mut out, b| {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
        out
    })
}

impl CatalogError {
    fn corrupted(table: Table, key: &[u8], reason: RecordError) -> Self {
        Self::Corrupted { table: table.name(), key: hex(key), reason }
    }
}

/// Where a chunk's blob is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkLocation {
    pub pack: PackId,
    pub entry: BlobEntry,
}

/// What the catalog knows about a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackRecord {
    pub size: u64,
    pub blobs: u32,
}

pub(crate) const CHUNK_VERSION: u8 = 2;
const PACK_VERSION: u8 = 1;
/// 2: the source directory's own metadata (`root_meta`).
const SNAPSHOT_VERSION: u8 = 2;
const NEXT_SNAPSHOT_KEY: &[u8] = b"next_snapshot_id";

/// Typed access to the catalog tables.
#[derive(Debug, Clone)]
pub struct Catalog {
    kv: Arc<dyn KvStore>,
    /// Serializes id allocation within this process (RocksDB's lock excludes other processes).
    counters: Arc<Mutex<()>>,
}

impl Catalog {
    pub fn new(kv: Arc<dyn KvStore>) -> Self {
        Self { kv, counters: Arc::new(Mutex::new(())) }
    }

    fn decode<T: serde::de::DeserializeOwned>(
        table: Table,
        version: u8,
        key: &[u8],
        value: &[u8],
    ) -> Result<T, CatalogError> {
        record::decode(version, value).map_err(|reason| CatalogError::corrupted(table, key, reason))
    }

    /// Where a chunk is stored, if the repository has it.
    pub fn chunk(&self, id: &ChunkId) -> Result<Option<ChunkLocation>, CatalogError> {
        let key = id.as_bytes();
        self.kv
            .get(Table::Chunks, key)?
            .map(|v| {
                let loc: ChunkLocation = Self::decode(Table::Chunks, CHUNK_VERSION, key, &v)?;
                if loc.entry.id == *id {
                    Ok(loc)
                } else {
                    Err(CatalogError::corrupted(
                        Table::Chunks,
                        key,
                        RecordError::Body("id does not match key".into()),
                    ))
                }
            })
            .transpose()
    }

    /// Every chunk in the index, with its location.
    pub fn chunks(&self) -> impl Iterator<Item = Result<ChunkLocation, CatalogError>> + '_ {
        self.kv.scan(Table::Chunks, &[]).map(|item| {
            let (key, value) = item?;
            Self::decode(Table::Chunks, CHUNK_VERSION, &key, &value)
        })
    }

    /// The id of every indexed chunk (keys only: nothing to decode).
    pub fn chunk_ids(&self) -> impl Iterator<Item = Result<ChunkId, CatalogError>> + '_ {
        self.kv.scan(Table::Chunks, &[]).map(|item| {
            let (key, _) = item?;
            ChunkId::from_slice(&key).ok_or_else(|| {
                CatalogError::corrupted(
                    Table::Chunks,
                    &key,
                    RecordError::Body("bad chunk id key".into()),
                )
            })
        })
    }

    /// Records a sealed pack and indexes its blobs, in one synced batch. Blobs already indexed
    /// elsewhere keep their first location.
    pub fn commit_pack(&self, pack: &SealedPack) -> Result<(), CatalogError> {
        let mut batch = Batch::new();
        let record = PackRecord { size: pack.size, blobs: pack.entries.len() as u32 };
        batch.put(Table::Packs, pack.id.as_bytes().to_vec(), record::encode(PACK_VERSION, &record));
        for entry in &pack.entries {
            let loc = ChunkLocation { pack: pack.id, entry: *entry };
            batch.put(
                Table::Chunks,
                entry.id.as_bytes().to_vec(),
                record::encode(CHUNK_VERSION, &loc),
            );
        }
        Ok(self.kv.write(batch)?)
    }

    /// Every pack the catalog knows.
    pub fn packs(&self) -> Result<Vec<(PackId, PackRecord)>, CatalogError> {
        self.kv
            .scan(Table::Packs, &[])
            .map(|item| {
                let (key, value) = item?;
                let id = PackId::from_slice(&key).ok_or_else(|| {
                    CatalogError::corrupted(
                        Table::Packs,
                        &key,
                        RecordError::Body("bad pack id key".into()),
                    )
                })?;
                Ok((id, Self::decode(Table::Packs, PACK_VERSION, &key, &value)?))
            })
            .collect()
    }

    /// Commits a snapshot record under a new id, durably, and returns it.
    pub fn commit_snapshot(&self, draft: SnapshotDraft) -> Result<SnapshotRecord, CatalogError> {
        let _guard = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = match self.kv.get(Table::Meta, NEXT_SNAPSHOT_KEY)? {
            Some(v) => Self::decode::<u64>(Table::Meta, 1, NEXT_SNAPSHOT_KEY, &v)?,
            None => 1,
        };
        let record = SnapshotRecord::from_draft(SnapshotId::new(next), draft);
        let mut batch = Batch::new();
        batch.put(Table::Meta, NEXT_SNAPSHOT_KEY, record::encode(1, &(next + 1)));
        batch.put(
            Table::Snapshots,
            record.id.key().to_vec(),
            record::encode(SNAPSHOT_VERSION, &record),
        );
        self.kv.write(batch)?;
        Ok(record)
    }

    /// Adds the removal of a snapshot record to `batch` (its chunks are reclaimed by garbage
    /// collection once nothing else references them).
    pub fn stage_delete_snapshot(batch: &mut Batch, id: SnapshotId) {
        batch.delete(Table::Snapshots, id.key().to_vec());
    }

    /// One snapshot record.
    pub fn snapshot(&self, id: SnapshotId) -> Result<Option<SnapshotRecord>, CatalogError> {
        let key = id.key();
        self.kv
            .get(Table::Snapshots, &key)?
            .map(|v| Self::decode(Table::Snapshots, SNAPSHOT_VERSION, &key, &v))
            .transpose()
    }

    /// Every snapshot, oldest first; a record that does not decode is an error item, and the
    /// scan goes on past it (so that `check` can report every damaged record).
    pub fn scan_snapshots(
        &self,
    ) -> impl Iterator<Item = Result<SnapshotRecord, CatalogError>> + '_ {
        self.kv.scan(Table::Snapshots, &[]).map(|item| {
            let (key, value) = item?;
            Self::decode(Table::Snapshots, SNAPSHOT_VERSION, &key, &value)
        })
    }

    /// Every snapshot, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>, CatalogError> {
        self.scan_snapshots().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldkeep_store::{BlobKind, ChunkKey, Compression, Frame};

    fn sealed(n: u8) -> SealedPack {
        let key = ChunkKey::from_bytes([9; 32]);
        let entries = (0..n)
            .map(|i| BlobEntry {
                id: key.id_of(&[i]),
                kind: BlobKind::Data,
                frame: Frame {
                    offset: 16 + u64::from(i),
                    stored_len: 1,
                    raw_len: 1,
                    compression: Compression::None,
                    crc32: 0,
                },
                start: 0,
                len: 1,
            })
            .collect();
        SealedPack { id: PackId::random(), size: 100, entries }
    }

    #[test]
    fn packs_and_chunks_are_indexed_together() {
        let catalog = Catalog::new(Arc::new(MemKv::new()));
        let pack = sealed(3);
        catalog.commit_pack(&pack).expect("commit");
        for entry in &pack.entries {
            let loc = catalog.chunk(&entry.id).expect("get").expect("present");
            assert_eq!((loc.pack, loc.entry), (pack.id, *entry));
        }
        assert_eq!(catalog.chunks().count(), 3);
        assert_eq!(
            catalog.packs().expect("packs"),
            vec![(pack.id, PackRecord { size: 100, blobs: 3 })]
        );
    }

    #[test]
    fn counters_increase_and_corruption_is_typed() {
        let kv = Arc::new(MemKv::new());
        let catalog = Catalog::new(kv.clone());
        let draft = SnapshotDraft::example();
        let a = catalog.commit_snapshot(draft.clone()).expect("a");
        let b = catalog.commit_snapshot(draft).expect("b");
        assert!(b.id > a.id);
        assert_eq!(catalog.snapshots().expect("list").len(), 2);
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, a.id.key().to_vec(), b"garbage".to_vec());
        kv.write(batch).expect("write");
        assert!(matches!(
            catalog.snapshot(a.id),
            Err(CatalogError::Corrupted { table: "snapshots", .. })
        ));
    }
}
