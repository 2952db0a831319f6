//! The catalog's commit count, kept outside the catalog, so that a catalog which lost commits
//! is noticed instead of silently rolling history back.
//!
//! RocksDB recovers from a byte flipped in its write-ahead log, or a `MANIFEST` cut short, by
//! opening an *older* state without a word. Left alone, that older state lists fewer snapshots,
//! hands out a snapshot id again, and lets garbage collection delete the lost snapshots' packs.
//! So every catalog batch is numbered ([`SequencedKv`]), and each table it changes keeps the
//! number of the last batch that changed it (under a reserved key that no record uses and
//! that reads do not show). Once the batch is durable, the same per-table numbers go into
//! `<repo>/commits`. Per table, because RocksDB flushes each column family's memtable as its
//! own MANIFEST edit: a cut MANIFEST can lose the snapshots table's flush and keep the others'.
//! At open the two are compared, table by table:
//!
//! * every table's number at least the file's (it may be one batch ahead after a crash between
//!   the batch and the file): consistent;
//! * a table behind the file: commits are lost. A read-write open is refused with
//!   [`OpenError::CatalogBehind`]; a read-only open proceeds (reading destroys nothing) and
//!   `check` reports the loss as damage.
//!
//! `commits` holds two 128-byte slots (magic, table count, the numbers, CRC32), written
//! alternately with one `pwrite` and `fdatasync`: a torn write damages at most the slot being
//! written, and the other still holds the previous numbers. A repository made before this file
//! existed gets one at its next read-write open, from the catalog's own numbers.

use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use coldkeep_catalog::{Batch, CatalogError, KvError, KvPair, KvStore, Table};

use super::OpenMode;
use crate::error::{InitError, IoError, OpenError};

const FILE_NAME: &str = "commits";
const MAGIC: &[u8; 4] = b"CKCS";
const SLOT: usize = 128;
/// Tables a slot has room for (magic, count and CRC take 12 bytes).
const MAX_TABLES: usize = (SLOT - 12) / 8;
/// Where a table keeps its number: a key no record has (no id or name key starts with four
/// 0xff bytes: snapshot and file keys start with a big-endian id far below 2^63, the rest are
/// random ids of other lengths or ASCII names).
const SEQ_KEY: &[u8] = b"\xff\xff\xff\xffcoldkeep/commit";
const TABLES: usize = Table::ALL.len();
const _: () = assert!(TABLES <= MAX_TABLES);

/// The number of the last batch that changed each table, in [`Table::ALL`] order.
type Numbers = [u64; TABLES];

fn index_of(table: Table) -> usize {
    Table::ALL.iter().position(|t| *t == table).expect("every table is in Table::ALL")
}

/// `<repo>/commits`: each table's number as of the last catalog batch known to be durable.
#[derive(Debug)]
struct CommitFile {
    file: File,
    path: PathBuf,
}

impl CommitFile {
    fn path(root: &Path) -> PathBuf {
        root.join(FILE_NAME)
    }

    /// Opens (creating when writable and absent) the file. `None`: it does not exist and the
    /// repository is open read-only.
    fn open(root: &Path, mode: OpenMode) -> Result<Option<Self>, IoError> {
        let path = Self::path(root);
        let opened = match mode {
            OpenMode::ReadWrite => std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path),
            OpenMode::ReadOnly => File::open(&path),
        };
        match opened {
            Ok(file) => Ok(Some(Self { file, path })),
            Err(e) if mode == OpenMode::ReadOnly && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(IoError::new("open", &path, e)),
        }
    }

    /// The numbers of the newer valid slot; `None` for a new (empty) file.
    fn read(&self) -> Result<Option<Numbers>, IoError> {
        let mut buf = [0u8; 2 * SLOT];
        let mut filled = 0;
        while filled < buf.len() {
            match self.file.read_at(&mut buf[filled..], filled as u64) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(IoError::new("read", &self.path, e)),
            }
        }
        // Each batch raises one number to a new maximum: the newer slot has the larger one.
        Ok(buf[..filled]
            .chunks_exact(SLOT)
            .filter_map(decode_slot)
            .max_by_key(|n| n.iter().copied().max().unwrap_or(0)))
    }

    /// Records `numbers` durably, in the slot the previous ones are not in (`newest` is the
    /// number of the batch they follow).
    fn record(&self, numbers: &Numbers, newest: u64) -> std::io::Result<()> {
        self.file.write_all_at(&encode_slot(numbers), (newest % 2) * SLOT as u64)?;
        self.file.sync_data()
    }
}

fn encode_slot(numbers: &Numbers) -> [u8; SLOT] {
    let mut slot = [0u8; SLOT];
    slot[..4].copy_from_slice(MAGIC);
    slot[4..8].copy_from_slice(&(TABLES as u32).to_le_bytes());
    for (i, n) in numbers.iter().enumerate() {
        slot[8 + 8 * i..16 + 8 * i].copy_from_slice(&n.to_le_bytes());
    }
    let end = 8 + 8 * TABLES;
    let crc = crc32fast::hash(&slot[..end]);
    slot[end..end + 4].copy_from_slice(&crc.to_le_bytes());
    slot
}

/// A slot's numbers; tables a slot written by an older build did not have read as 0.
fn decode_slot(slot: &[u8]) -> Option<Numbers> {
    if slot.len() != SLOT || !slot.starts_with(MAGIC) {
        return None;
    }
    let count = u32::from_le_bytes(slot[4..8].try_into().ok()?) as usize;
    if count > MAX_TABLES {
        return None;
    }
    let end = 8 + 8 * count;
    if crc32fast::hash(&slot[..end]).to_le_bytes() != slot[end..end + 4] {
        return None;
    }
    let mut numbers = [0; TABLES];
    for (i, n) in numbers.iter_mut().enumerate().take(count) {
        *n = u64::from_le_bytes(slot[8 + 8 * i..16 + 8 * i].try_into().ok()?);
    }
    Some(numbers)
}

/// Each table's number as the catalog has it (0 before the first numbered batch).
fn catalog_numbers(kv: &dyn KvStore) -> Result<Numbers, KvError> {
    let mut numbers = [0; TABLES];
    for (n, table) in numbers.iter_mut().zip(Table::ALL) {
        *n = kv
            .get(table, SEQ_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .map_or(0, u64::from_le_bytes);
    }
    Ok(numbers)
}

/// A catalog found older than the repository: a table holds fewer commits than were made
/// durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct CatalogBehind {
    /// The first table found behind.
    pub table: &'static str,
    /// The number of the newest batch to that table the catalog holds.
    pub catalog: u64,
    /// The number of the newest batch to that table known to have been durable.
    pub recorded: u64,
}

impl std::fmt::Display for CatalogBehind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the catalog lost commits: its {} table holds commit {}, but commit {} was made \
             durable",
            self.table, self.catalog, self.recorded
        )
    }
}

/// Compares the catalog with `<repo>/commits`. A read-write open that finds the catalog behind
/// is refused; a read-only one returns the finding (for `check` and the CLI to report).
pub(crate) fn verify(
    root: &Path,
    kv: &dyn KvStore,
    mode: OpenMode,
) -> Result<Option<CatalogBehind>, OpenError> {
    let Some(file) = CommitFile::open(root, mode)? else { return Ok(None) };
    let Some(recorded) = file.read()? else { return Ok(None) };
    let catalog = catalog_numbers(kv).map_err(CatalogError::from)?;
    let behind = Table::ALL.iter().zip(catalog.iter().zip(recorded)).find_map(
        |(table, (&catalog, recorded))| {
            (catalog < recorded).then_some(CatalogBehind { table: table.name(), catalog, recorded })
        },
    );
    match (behind, mode) {
        (Some(b), OpenMode::ReadWrite) => Err(OpenError::CatalogBehind {
            path: root.to_owned(),
            table: b.table,
            catalog: b.catalog,
            recorded: b.recorded,
        }),
        (found, _) => Ok(found),
    }
}

/// A failure to set up the numbering: the commit file or the catalog could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SetupError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error(transparent)]
    Kv(#[from] KvError),
}

impl From<SetupError> for OpenError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Io(e) => e.into(),
            SetupError::Kv(e) => CatalogError::from(e).into(),
        }
    }
}

impl From<SetupError> for InitError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Io(e) => e.into(),
            SetupError::Kv(e) => CatalogError::from(e).into(),
        }
    }
}

/// A [`KvStore`] that numbers every batch, keeps in each table the number of the last batch
/// that changed it, and records those numbers outside the catalog once the batch is durable.
/// Batches are numbered in the order they become durable (one at a time). The numbers' key is
/// hidden from scans, so the tables read as if it were not there.
#[derive(Debug)]
pub(crate) struct SequencedKv {
    inner: Arc<dyn KvStore>,
    /// Where the numbers are recorded outside the catalog: a local catalog's commit file. A
    /// catalog a program gives has none (the numbers are still kept in its tables).
    file: Option<CommitFile>,
    /// Each table's number, and the first failed write (after which nothing is written);
    /// held while a batch is written.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    numbers: Numbers,
    poisoned: Option<String>,
}

impl SequencedKv {
    /// Wraps the catalog of a repository opened read-write, after [`verify`] accepted it; its
    /// commit file is in the directory `commits`, when it has one.
    pub(crate) fn new(commits: Option<&Path>, inner: Arc<dyn KvStore>) -> Result<Self, SetupError> {
        let numbers = catalog_numbers(inner.as_ref())?;
        let file = match commits {
            Some(dir) => {
                let file = CommitFile::open(dir, OpenMode::ReadWrite)?
                    .expect("a read-write open creates the file");
                // A new file, or one a crash left a batch behind: it takes the catalog's numbers.
                if file.read()? != Some(numbers) {
                    let newest = numbers.iter().copied().max().unwrap_or(0);
                    file.record(&numbers, newest)
                        .map_err(|e| IoError::new("write", &file.path, e))?;
                }
                Some(file)
            }
            None => None,
        };
        Ok(Self { inner, file, state: Mutex::new(State { numbers, poisoned: None }) })
    }
}

impl KvStore for SequencedKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        hide_numbers(table, key, self.inner.as_ref())
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
        hidden_scan(self.inner.scan(table, prefix))
    }

    fn write(&self, mut batch: Batch) -> Result<(), KvError> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(first) = &state.poisoned {
            return Err(KvError::Poisoned { first: first.clone() });
        }
        let seq = state.numbers.iter().copied().max().unwrap_or(0) + 1;
        let mut next = state.numbers;
        let touched: std::collections::BTreeSet<Table> =
            batch.ops().iter().map(coldkeep_catalog::Op::table).collect();
        for table in touched {
            next[index_of(table)] = seq;
            batch.put(table, SEQ_KEY, seq.to_le_bytes().to_vec());
        }
        if let Err(e) = self.inner.write(batch) {
            state.poisoned = Some(e.to_string());
            return Err(e);
        }
        state.numbers = next;
        let Some(file) = &self.file else { return Ok(()) };
        file.record(&next, seq).map_err(|e| {
            let e = KvError::Backend {
                op: "record the commit number",
                message: format!("{}: {e}", file.path.display()),
            };
            state.poisoned = Some(e.to_string());
            e
        })
    }
}

fn hide_numbers(table: Table, key: &[u8], kv: &dyn KvStore) -> Result<Option<Vec<u8>>, KvError> {
    if key == SEQ_KEY {
        return Ok(None);
    }
    kv.get(table, key)
}

fn hidden_scan<'a>(
    inner: Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a>,
) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
    Box::new(inner.filter(|item| item.as_ref().map_or(true, |(key, _)| key != SEQ_KEY)))
}

/// A read-only catalog, with the numbers' key hidden as [`SequencedKv`] hides it.
#[derive(Debug)]
pub(crate) struct ReadOnlyKv(pub Arc<dyn KvStore>);

impl KvStore for ReadOnlyKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        hide_numbers(table, key, self.0.as_ref())
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
        hidden_scan(self.0.scan(table, prefix))
    }

    fn write(&self, batch: Batch) -> Result<(), KvError> {
        self.0.write(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldkeep_catalog::MemKv;

    fn put(kv: &dyn KvStore, table: Table, key: &[u8]) {
        let mut batch = Batch::new();
        batch.put(table, key.to_vec(), b"v".to_vec());
        kv.write(batch).expect("write");
    }

    #[test]
    fn slots_round_trip_and_damage_is_ignored() {
        let mut numbers = [0; TABLES];
        numbers[3] = 41;
        assert_eq!(decode_slot(&encode_slot(&numbers)), Some(numbers));
        let mut slot = encode_slot(&numbers);
        slot[8 + 3 * 8] ^= 1;
        assert_eq!(decode_slot(&slot), None);
        assert_eq!(decode_slot(&[0; SLOT]), None);
        let mut slot = encode_slot(&numbers);
        slot[4] = 200; // a count past what a slot holds
        assert_eq!(decode_slot(&slot), None);
    }

    #[test]
    fn the_numbers_are_hidden_from_reads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv = SequencedKv::new(Some(dir.path()), Arc::new(MemKv::new())).expect("sequenced");
        put(&kv, Table::Snapshots, b"a");
        let keys: Vec<_> = kv.scan(Table::Snapshots, b"").map(|r| r.expect("scan").0).collect();
        assert_eq!(keys, vec![b"a".to_vec()]);
        assert_eq!(kv.get(Table::Snapshots, SEQ_KEY).expect("get"), None);
        // Numbered, the store keeps the KvStore contract.
        let dirs = std::sync::Mutex::new(Vec::new());
        coldkeep_catalog::conformance::run_all(&|| {
            let dir = tempfile::tempdir().expect("tempdir");
            let kv = SequencedKv::new(Some(dir.path()), Arc::new(MemKv::new())).expect("sequenced");
            dirs.lock().expect("lock").push(dir);
            Box::new(kv)
        });
    }

    #[test]
    fn a_table_that_lost_a_batch_is_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kv: Arc<dyn KvStore> = Arc::new(MemKv::new());
        let seq = SequencedKv::new(Some(dir.path()), Arc::clone(&kv)).expect("sequenced");
        put(&seq, Table::Snapshots, b"1");
        put(&seq, Table::Packs, b"p");
        put(&seq, Table::Snapshots, b"2");
        assert_eq!(verify(dir.path(), kv.as_ref(), OpenMode::ReadWrite).expect("ok"), None);
        // The snapshots table loses its last batch (a cut MANIFEST drops one table's flush);
        // the packs table, written in between, still has all of its own.
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, SEQ_KEY, 1u64.to_le_bytes().to_vec());
        kv.write(batch).expect("roll back");
        let found = CatalogBehind { table: "snapshots", catalog: 1, recorded: 3 };
        assert!(matches!(
            verify(dir.path(), kv.as_ref(), OpenMode::ReadWrite),
            Err(OpenError::CatalogBehind { table: "snapshots", catalog: 1, recorded: 3, .. })
        ));
        assert_eq!(
            verify(dir.path(), kv.as_ref(), OpenMode::ReadOnly).expect("read-only opens"),
            Some(found)
        );
        // A torn write of the newest slot leaves the previous numbers, which also show it.
        let file = CommitFile::open(dir.path(), OpenMode::ReadOnly).expect("open").expect("file");
        std::fs::OpenOptions::new()
            .write(true)
            .open(CommitFile::path(dir.path()))
            .expect("open")
            .write_all_at(&[0xff; 4], SLOT as u64 + 12) // batch 3 went to slot 1
            .expect("tear");
        let previous = file.read().expect("read").expect("a valid slot");
        assert_eq!(previous[index_of(Table::Snapshots)], 1);
        assert_eq!(previous[index_of(Table::Packs)], 2);
    }

    #[test]
    fn after_a_failed_write_every_write_is_refused_until_reopened() {
        use coldkeep_catalog::FaultyKv;
        use coldkeep_store::faults::{FaultMode, FaultPlan};
        let dir = tempfile::tempdir().expect("tempdir");
        let mem: Arc<dyn KvStore> = Arc::new(MemKv::new());
        let plan = FaultPlan::at(2, FaultMode::Fail);
        let faulty = Arc::new(FaultyKv::new(Arc::clone(&mem), plan));
        let seq = SequencedKv::new(Some(dir.path()), faulty).expect("sequenced");
        put(&seq, Table::Snapshots, b"1");
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, b"2".to_vec(), b"v".to_vec());
        assert!(matches!(seq.write(batch), Err(KvError::Backend { .. })), "the injected failure");
        // The disk works again, but the writer does not trust what it left.
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, b"3".to_vec(), b"v".to_vec());
        assert!(matches!(seq.write(batch), Err(KvError::Poisoned { .. })));
        assert_eq!(seq.get(Table::Snapshots, b"3").expect("get"), None);
        drop(seq);
        assert_eq!(
            verify(dir.path(), mem.as_ref(), OpenMode::ReadWrite).expect("consistent"),
            None
        );
        let reopened = SequencedKv::new(Some(dir.path()), mem).expect("reopened");
        put(&reopened, Table::Snapshots, b"3");
    }
}
