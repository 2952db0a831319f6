//! The storage seam: a small ordered key-value trait with a fixed set of tables and atomic,
//! durable batches. RocksDB implements it in `coldkeep-catalog-rocks`; [`MemKv`] is the
//! reference implementation. Both pass the same conformance suite (`conformance` feature).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::RwLock;

/// The catalog's tables. Each is its own ordered key space (a column family in RocksDB).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Repository-wide values: counters, format markers.
    Meta,
    /// Chunk id → where the chunk's blob lives.
    Chunks,
    /// Pack id → pack record.
    Packs,
    /// Snapshot id (big-endian u64) → snapshot record.
    Snapshots,
    /// Policy id → protection policy.
    Policies,
    /// Group id → protection group.
    Groups,
    /// (group id, run id) → run.
    Runs,
    /// Sequence number → audit entry.
    Audit,
    /// Recovery id → recovery task.
    Recoveries,
    /// (snapshot id, sequence number) → indexed file.
    Files,
    /// (name trigram, file key) → nothing: the posting lists of the name search.
    FileGrams,
    /// Source id → source registration.
    Sources,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 12] = [
        Table::Meta,
        Table::Chunks,
        Table::Packs,
        Table::Snapshots,
        Table::Policies,
        Table::Groups,
        Table::Runs,
        Table::Audit,
        Table::Recoveries,
        Table::Files,
        Table::FileGrams,
        Table::Sources,
    ];

    /// A stable name (used as the RocksDB column family name).
    pub const fn name(self) -> &'static str {
        match self {
            Table::Meta => "meta",
            Table::Chunks => "chunks",
            Table::Packs => "packs",
            Table::Snapshots => "snapshots",
            Table::Policies => "policies",
            Table::Groups => "groups",
            Table::Runs => "runs",
            Table::Audit => "audit",
            Table::Recoveries => "recoveries",
            Table::Files => "files",
            Table::FileGrams => "file_grams",
            Table::Sources => "sources",
        }
    }
}

/// One change inside a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put { table: Table, key: Vec<u8>, value: Vec<u8> },
    Delete { table: Table, key: Vec<u8> },
}

impl Op {
    /// The table the change is to.
    pub fn table(&self) -> Table {
        match self {
            Op::Put { table, .. } | Op::Delete { table, .. } => *table,
        }
    }

    /// The key the change is to.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }
}

/// Changes applied all together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn put(&mut self, table: Table, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push(Op::Put { table, key: key.into(), value: value.into() });
    }
    pub fn delete(&mut self, table: Table, key: impl Into<Vec<u8>>) {
        self.ops.push(Op::Delete { table, key: key.into() });
    }
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A failure of the key-value backend itself (not of the data in it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    /// The backend could not do `op`; `message` is its own account of why.
    #[error("catalog backend failed to {op}: {message}")]
    Backend { op: &'static str, message: String },
    /// The store was opened read-only (see `RocksKv::open_read_only`) and was asked to `op`.
    #[error("the repository is open read-only: cannot {op}")]
    ReadOnly { op: &'static str },
    /// An earlier write failed, so what the catalog holds on disk is uncertain (was the batch
    /// applied? recorded?): it refuses every later write until the repository is reopened,
    /// which checks it again.
    #[error("the catalog refuses writes after a failed one ({first}): reopen the repository")]
    Poisoned { first: String },
    /// Another writer of the same repository (on another machine, through a shared store)
    /// committed first: this catalog's view is stale, and the batch was not applied. Reopen the
    /// repository to see the other writer's changes, then try again.
    #[error(
        "another writer committed to the repository first ({what}): nothing was changed; reopen \
         the repository to see its changes, then try again"
    )]
    Conflict { what: String },
}

/// A key-value pair read from a table.
pub type KvPair = (Vec<u8>, Vec<u8>);

/// An ordered key-value store with a fixed set of tables.
///
/// Contract (checked by the conformance suite):
/// * `write` applies a batch atomically and returns only once it is durable (synced);
/// * `scan` yields the keys of a table that start with `prefix`, in ascending byte order;
/// * reads see every write that returned before them.
pub trait KvStore: Send + Sync + fmt::Debug {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a>;
    fn write(&self, batch: Batch) -> Result<(), KvError>;
}

/// The in-memory reference implementation (tests, fuzzing, and the model the others must match).
#[derive(Debug, Default)]
pub struct MemKv {
    tables: RwLock<BTreeMap<MemKey, Vec<u8>>>,
}

type MemKey = (Table, Vec<u8>);

impl MemKv {
    pub fn new() -> Self {
        Self::default()
    }
}

impl KvStore for MemKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let tables = self.tables.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(tables.get(&(table, key.to_vec())).cloned())
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
        let tables = self.tables.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found: Vec<_> = tables
            .range((table, prefix.to_vec())..)
            .take_while(|((t, k), _)| *t == table && k.starts_with(prefix))
            .map(|((_, k), v)| Ok((k.clone(), v.clone())))
            .collect();
        Box::new(found.into_iter())
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        let mut tables = self.tables.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for op in batch.ops {
            match op {
                Op::Put { table, key, value } => {
                    tables.insert((table, key), value);
                }
                Op::Delete { table, key } => {
                    tables.remove(&(table, key));
                }
            }
        }
        Ok(())
    }
}
