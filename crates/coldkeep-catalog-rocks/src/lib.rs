//! RocksDB implementation of [`coldkeep_catalog::KvStore`].
//!
//! Architecture invariant: this is the only crate that depends on `rocksdb`. No RocksDB type or
//! error leaves it: errors become [`KvError`] with the operation and RocksDB's message.
//!
//! Each [`Table`] is a column family; a [`Batch`] is one RocksDB `WriteBatch` written with
//! `sync = true`, so a batch is atomic and durable when `write` returns. RocksDB's own `LOCK`
//! file keeps a second process from opening the same catalog read-write.

use std::path::Path;

use coldkeep_catalog::{Batch, KvError, KvPair, KvStore, Op, Table};
use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, Direction, IteratorMode, LogLevel, Options,
    WriteBatch, WriteOptions, DB,
};

/// A catalog stored in a RocksDB database directory.
pub struct RocksKv {
    db: DB,
}

impl std::fmt::Debug for RocksKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksKv").field("path", &self.db.path()).finish()
    }
}

fn err(op: &'static str, e: &rocksdb::Error) -> KvError {
    KvError { op, message: e.to_string() }
}

impl RocksKv {
    /// Opens the database at `path`, creating it (and its column families) if `create`.
    pub fn open(path: &Path, create: bool) -> Result<Self, KvError> {
        let mut opts = Options::default();
        opts.create_if_missing(create);
        // A table added by a newer build appears, empty, in a repository made by an older one.
        opts.create_missing_column_families(true);
        // The catalog is small next to the packs: keep RocksDB's own logs from growing.
        opts.set_log_level(LogLevel::Warn);
        opts.set_keep_log_file_num(2);
        opts.set_max_log_file_size(1 << 20);
        opts.set_recycle_log_file_num(0);
        let cfs = Table::ALL.iter().map(|t| {
            let mut cf = Options::default();
            if *t == Table::Chunks {
                // Point lookups by random 32-byte ids: a bloom filter saves most disk reads.
                let mut block = BlockBasedOptions::default();
                block.set_bloom_filter(10.0, false);
                cf.set_block_based_table_factory(&block);
            }
            ColumnFamilyDescriptor::new(t.name(), cf)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|e| err("open", &e))?;
        Ok(Self { db })
    }

    fn cf(&self, table: Table) -> Result<&rocksdb::ColumnFamily, KvError> {
        self.db
            .cf_handle(table.name())
            .ok_or_else(|| KvError { op: "find column family", message: table.name().into() })
    }
}

impl KvStore for RocksKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.db.get_cf(self.cf(table)?, key).map_err(|e| err("get", &e))
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
        let cf = match self.cf(table) {
            Ok(cf) => cf,
            Err(e) => return Box::new(std::iter::once(Err(e))),
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
        let mut wb = WriteBatch::default();
        for op in batch.ops() {
            match op {
                Op::Put { table, key, value } => wb.put_cf(self.cf(*table)?, key, value),
                Op::Delete { table, key } => wb.delete_cf(self.cf(*table)?, key),
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
    /// holds every batch, and the next open replays it.
    fn drop(&mut self) {
        for table in Table::ALL {
            if let Ok(cf) = self.cf(table) {
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
}
