//! RocksDB implementation of [`coldkeep_catalog::KvStore`].
//!
//! Architecture invariant: this is the only crate that depends on `rocksdb`. No RocksDB type or
//! error leaves it: errors become [`KvError`] with the operation and RocksDB's message.
//!
//! Each [`Table`] is a column family; a [`Batch`] is one RocksDB `WriteBatch` written with
//! `sync = true`, so a batch is atomic and durable when `write` returns. RocksDB's own `LOCK`
//! file keeps a second process from opening the same catalog read-write.
//!
//! A catalog opened with [`RocksKv::open_read_only`] writes nothing: a read-write open always
//! writes (a new MANIFEST, a new write-ahead log), and on a full disk that write fails inside
//! RocksDB, whose Debian build then aborts the process on an assertion instead of returning
//! the error. Reading a full (or read-only) backup disk needs the read-only open.

use std::path::Path;

use coldkeep_catalog::{Batch, KvError, KvPair, KvStore, Op, Table};
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, Direction, IteratorMode, LogLevel, Options,
    WriteBatch, WriteOptions, DB,
};

/// A catalog stored in a RocksDB database directory.
pub struct RocksKv {
    db: DB,
    /// Opened by [`RocksKv::open_read_only`]: writes are refused, and closing flushes nothing.
    read_only: bool,
}

impl std::fmt::Debug for RocksKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKv")
            .field("path", &self.db.path())
            .field("read_only", &self.read_only)
            .finish()
    }
}

fn err(op: &'static str, e: &rocksdb::Error) -> KvError {
    KvError::Backend { op, message: e.to_string() }
}

/// Largest write-ahead log before RocksDB starts a new one (flushing the tables the old one
/// holds). It also bounds the disk space an open catalog reserves for its log: RocksDB
/// preallocates each log (with `fallocate`) up to 1.1 × the 64 MiB write buffer otherwise, and
/// on a nearly full disk those 70 MB were the space a backup's packs then lacked.
const MAX_WAL_BYTES: u64 = 8 << 20;

/// Space preallocated for the MANIFEST (RocksDB's default is 4 MiB; ours stays far smaller).
const MANIFEST_PREALLOCATION: usize = 64 << 10;

/// The options every open uses.
fn db_options() -> Options {
    let mut opts = Options::default();
    // The catalog is small next to the packs: keep RocksDB's own logs from growing.
    opts.set_log_level(LogLevel::Warn);
    opts.set_keep_log_file_num(2);
    opts.set_max_log_file_size(1 << 20);
    opts.set_recycle_log_file_num(0);
    opts.set_max_total_wal_size(MAX_WAL_BYTES);
    opts.set_manifest_preallocation_size(MANIFEST_PREALLOCATION);
    opts
}

/// How a table is stored: a column family of its name.
fn descriptor(table: Table) -> ColumnFamilyDescriptor {
    let mut cf = Options::default();
    if table == Table::Chunks {
        // Point lookups by random 32-byte ids: a bloom filter saves most disk reads.
        let mut block = BlockBasedOptions::default();
        block.set_bloom_filter(10.0, false);
        cf.set_block_based_table_factory(&block);
    }
    ColumnFamilyDescriptor::new(table.name(), cf)
}

impl RocksKv {
    /// Opens the database at `path` for reading and writing, creating it (and its column
    /// families) if `create`.
    pub fn open(path: &Path, create: bool) -> Result<Self, KvError> {
        let mut opts = db_options();
        opts.create_if_missing(create);
        // A table added by a newer build appears, empty, in a repository made by an older one.
        opts.create_missing_column_families(true);
        let cfs = Table::ALL.into_iter().map(descriptor);
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| err("open", &e))?;
        Ok(Self { db, read_only: false })
    }

    /// Opens the existing database at `path` without writing to it: no new MANIFEST, no
    /// write-ahead log, no flush on close (RocksDB may still start a new `LOG` of its own
    /// messages where it can). A log left by a crash is replayed into memory only. This is
    /// what lets a repository be read on a full disk, where a read-write open fails, or on
    /// read-only media. A table missing from an older repository reads as empty; every write
    /// returns [`KvError::ReadOnly`].
    pub fn open_read_only(path: &Path) -> Result<Self, KvError> {
        let opts = db_options();
        let existing = DB::list_cf(&opts, path).map_err(|e| err("open", &e))?;
        let cfs = Table::ALL
            .into_iter()
            .filter(|t| existing.iter().any(|name| name == t.name()))
            .map(descriptor);
        let db = DB::open_cf_descriptors_read_only(&opts, path, cfs, false)
            .map_err(|e| err("open", &e))?;
        Ok(Self { db, read_only: true })
    }

    /// The column family of `table`; `None` only for a table that a read-only open did not
    /// find (a read-write open creates every table).
    fn cf(&self, table: Table) -> Option<&rocksdb::ColumnFamily> {
        self.db.cf_handle(table.name())
    }
}

impl KvStore for RocksKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        match self.cf(table) {
            Some(cf) => self.db.get_cf(cf, key).map_err(|e| err("get", &e)),
            None => Ok(None),
        }
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
        let Some(cf) = self.cf(table) else {
            return Box::new(std::iter::empty());
        };
        let prefix = prefix.to_vec();
        let iter = self.db.iterator_cf(cf, IteratorMode::From(&prefix, Direction::Forward));
        Box::new(
            iter.map(|item| {
                item.map(|(k, v)| (k.into_vec(), v.into_vec())).map_err(|e| err("scan", &e))
            })
            .take_while(move |item| match item {
                Ok((k, _)) => k.starts_with(&prefix),
                Err(_) => true,
            }),
        )
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        if self.read_only {
            return Err(KvError::ReadOnly { op: "write to the catalog" });
        }
        let mut wb = WriteBatch::default();
        for op in batch.ops() {
            let table = op.table();
            let cf = self.cf(table).ok_or_else(|| KvError::Backend {
                op: "find column family",
                message: table.name().into(),
            })?;
            match op {
                Op::Put { key, value, .. } => wb.put_cf(cf, key, value),
                Op::Delete { key, .. } => wb.delete_cf(cf, key),
            }
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(wb, &wo).map_err(|e| err("write", &e))
    }
}

impl Drop for RocksKv {
    /// A clean close writes the memtables out, so that the next open has no write-ahead log to
    /// replay: after a first backup of the Linux tree that replay (80 k index entries, then a
    /// flush) cost the next command 0.2 s. A flush that fails loses nothing: the log still
    /// holds every batch, and the next open replays it. A read-only catalog has nothing of its
    /// own to flush.
    fn drop(&mut self) {
        if self.read_only {
            return;
        }
        for table in Table::ALL {
            if let Some(cf) = self.cf(table) {
                let _ = self.db.flush_cf(cf);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rocksdb_conforms() {
        let dir = tempfile::tempdir().expect("tempdir");
        let counter = std::sync::atomic::AtomicUsize::new(0);
        coldkeep_catalog::conformance::run_all(&|| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Box::new(RocksKv::open(&dir.path().join(n.to_string()), true).expect("open"))
        });
    }

    #[test]
    fn writes_survive_reopen_and_missing_db_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(RocksKv::open(&dir.path().join("absent"), false).is_err());
        {
            let kv = RocksKv::open(dir.path(), true).expect("open");
            let mut batch = Batch::new();
            batch.put(Table::Snapshots, b"k", b"v");
            kv.write(batch).expect("write");
        }
        // Closing wrote the memtable out: the next open has no log to replay.
        let tables = std::fs::read_dir(dir.path())
            .expect("list")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sst")))
            .count();
        assert!(tables > 0, "no table file after a clean close");
        let kv = RocksKv::open(dir.path(), false).expect("reopen");
        assert_eq!(kv.get(Table::Snapshots, b"k").expect("get"), Some(b"v".to_vec()));
    }

    /// Every file of the database except RocksDB's own message log, with its length and
    /// modification time.
    fn database_files(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("list")
            .map(|e| e.expect("entry"))
            .filter(|e| !e.file_name().to_string_lossy().starts_with("LOG"))
            .map(|e| {
                let meta = e.metadata().expect("metadata");
                let name = e.file_name().to_string_lossy().into_owned();
                (name, meta.len(), meta.modified().expect("mtime"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn read_only_open_reads_a_crashed_catalog_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv = RocksKv::open(dir.path(), true).expect("open");
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, b"k1", b"v1");
        batch.put(Table::Snapshots, b"k2", b"v2");
        kv.write(batch).expect("write");
        // A crash: the batch is only in the write-ahead log, nothing was flushed.
        std::mem::forget(kv);
        let before = database_files(dir.path());

        let ro = RocksKv::open_read_only(dir.path()).expect("open read-only");
        assert_eq!(ro.get(Table::Snapshots, b"k1").expect("get"), Some(b"v1".to_vec()));
        let keys: Vec<_> = ro.scan(Table::Snapshots, b"k").map(|kv| kv.expect("scan").0).collect();
        assert_eq!(keys, [b"k1".to_vec(), b"k2".to_vec()]);
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, b"k3", b"v3");
        assert!(matches!(ro.write(batch), Err(KvError::ReadOnly { .. })));
        // Two readers at once: a read-only open takes no lock.
        let second = RocksKv::open_read_only(dir.path()).expect("second reader");
        drop(second);
        drop(ro);
        assert_eq!(database_files(dir.path()), before, "a read-only open wrote to the catalog");
    }

    #[test]
    fn read_only_open_of_an_older_catalog_reads_missing_tables_as_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // A catalog made before most tables existed: only `meta` and `snapshots`.
            let mut opts = Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            let db = DB::open_cf(&opts, dir.path(), ["meta", "snapshots"]).expect("create");
            let cf = db.cf_handle("snapshots").expect("cf");
            db.put_cf(cf, b"k", b"v").expect("put");
        }
        let ro = RocksKv::open_read_only(dir.path()).expect("open read-only");
        assert_eq!(ro.get(Table::Snapshots, b"k").expect("get"), Some(b"v".to_vec()));
        assert_eq!(ro.get(Table::Sources, b"k").expect("get"), None);
        assert_eq!(ro.scan(Table::Files, b"").count(), 0);
        assert!(RocksKv::open_read_only(&dir.path().join("absent")).is_err());
    }
}
