//! The catalog's journal in the store: what makes the catalog an index that can be thrown away.
//!
//! Packs carry their own blob index, so the chunk and pack tables can always be rebuilt from
//! the packs. Everything else the catalog holds — snapshot records, policies, groups, runs
//! (with their legal holds and DataLocks), recoveries, sources, the audit log, id counters and
//! the trusted clock — exists nowhere else. So every catalog batch that changes one of those
//! *record tables* is first written to the store as an immutable, sealed journal entry
//! (`journal/<seq>.entry`, `docs/FORMAT.md`), and only then applied to the catalog, in the same
//! batch as the catalog's note of the last entry applied.
//!
//! * The catalog commit is still the commit point. Batches are written one at a time, so at most
//!   one entry can be beyond the catalog's note: one written by a batch that never committed (a
//!   crash in between). The next read-write open deletes it — unless the catalog is empty.
//!   Two or more beyond it, or any beyond an empty catalog, mean the catalog is older than the
//!   store (an old copy put back, a damaged catalog that opened an
//!   older state): the open is refused ([`JournalError::CatalogOlder`]) and nothing is deleted,
//!   so that `rebuild-catalog` can bring it all back.
//! * [`rebuild`] recreates a catalog from the store alone: the pack trailers give the chunk
//!   and pack tables, the journal, replayed in order, gives the rest.
//! * The trusted clock's state changes at every observation. A batch that changes nothing
//!   else writes no entry: the newest state rides along with the next entry, so a rebuilt
//!   clock may be behind by the time since the last journaled change — never ahead.
//!
//! * Where the catalog is a cache of a shared store (a bucket, `remote`), the journal
//!   entry is the commit point instead: entries beyond the catalog's note are other writers'
//!   commits, never deleted, and applied by the cache's refresh. Two writers cannot both commit
//!   under one number (entries are written create-only), so a writer whose view is stale loses
//!   at its next commit ([`KvError::Conflict`]) and changes nothing.
//!
//! The file index (tables `files`, `file_grams`, and the meta table's marks of indexed
//! snapshots) is derived from snapshots and rebuilt by indexing them again: it is not journaled.

use std::sync::{Arc, Mutex, PoisonError};

use coldkeep_catalog::{Batch, KvError, KvPair, KvStore, Op, Table, CLOCK_STATE_KEY};
use coldkeep_store::backend::{Backend, ErrorKind, ObjectKind, ObjectName};
use coldkeep_store::crypto::SealingKey;
use coldkeep_store::StoreError;
use serde::{Deserialize, Serialize};

/// First 8 bytes of a journal entry.
pub const JOURNAL_MAGIC: [u8; 8] = *b"CLDKJRNL";
const JOURNAL_VERSION: u32 = 1;
const ENTRY_RECORD_VERSION: u8 = 1;
const FLAG_SEALED: u32 = 1;
/// Where the catalog notes the last journal entry it applied (meta table, u64 LE).
const APPLIED_KEY: &[u8] = b"journal_applied";

/// Whether `key` of `table` is a record: one the journal keeps (the others are rebuilt from
/// packs and snapshots).
pub(crate) fn is_journaled(table: Table, key: &[u8]) -> bool {
    let derived = matches!(table, Table::Chunks | Table::Packs | Table::Files | Table::FileGrams)
        || (table == Table::Meta && coldkeep_catalog::is_index_mark(key));
    !derived
}

/// One batch's changes to the record tables.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    seq: u64,
    /// (table name, key, value; `None` deletes).
    ops: Vec<(String, Vec<u8>, Option<Vec<u8>>)>,
}

fn name_of(seq: u64) -> ObjectName {
    ObjectName::new(ObjectKind::Journal, &format!("{seq:016x}")).expect("hex is a valid name")
}

fn aad(seq: u64) -> Vec<u8> {
    [&b"CLDK journal"[..], &seq.to_le_bytes()].concat()
}

/// Errors reading the journal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    #[error("journal entry {seq:016x} is damaged: {reason}")]
    Corrupt { seq: u64, reason: String },
    /// The catalog is older than the store's journal: it lacks committed batches.
    #[error(
        "the catalog is older than the repository: it has applied journal entry {applied} of \
         {newest}. Nothing was changed; run `coldkeep rebuild-catalog` to recreate the catalog \
         from the repository's own objects"
    )]
    CatalogOlder { applied: u64, newest: u64 },
    /// Another writer committed journal entry `seq` while this catalog was being opened.
    #[error(
        "another writer committed journal entry {seq:016x} while the repository was being \
         opened: open it again"
    )]
    Raced { seq: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kv(#[from] KvError),
}

impl Entry {
    fn encode(&self, seal: Option<&SealingKey>) -> Vec<u8> {
        let body = coldkeep_catalog::record::encode(ENTRY_RECORD_VERSION, self);
        let mut out = JOURNAL_MAGIC.to_vec();
        out.extend_from_slice(&JOURNAL_VERSION.to_le_bytes());
        let flags = if seal.is_some() { FLAG_SEALED } else { 0 };
        out.extend_from_slice(&flags.to_le_bytes());
        match seal {
            Some(key) => key.seal_into(&aad(self.seq), &body, &mut out),
            None => out.extend_from_slice(&body),
        }
        out
    }

    fn decode(seq: u64, bytes: &[u8], seal: Option<&SealingKey>) -> Result<Self, JournalError> {
        let corrupt = |reason: &str| JournalError::Corrupt { seq, reason: reason.into() };
        let rest = bytes.strip_prefix(&JOURNAL_MAGIC[..]).ok_or_else(|| corrupt("bad magic"))?;
        let (version, rest) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("too short"))?;
        let (flags, body) = rest.split_first_chunk::<4>().ok_or_else(|| corrupt("too short"))?;
        if u32::from_le_bytes(*version) != JOURNAL_VERSION {
            return Err(corrupt("unsupported version"));
        }
        let opened;
        let body = match (u32::from_le_bytes(*flags), seal) {
            (0, None) => body,
            (FLAG_SEALED, Some(key)) => {
                opened = key.open(&aad(seq), body).map_err(|e| corrupt(&e.to_string()))?;
                &opened[..]
            }
            (0, Some(_)) => return Err(corrupt("not sealed, in an encrypted repository")),
            _ => return Err(corrupt("sealed, or unknown flags")),
        };
        let entry: Self = coldkeep_catalog::record::decode(ENTRY_RECORD_VERSION, body)
            .map_err(|e| corrupt(&e.to_string()))?;
        if entry.seq != seq {
            return Err(corrupt("its sequence number is not its name"));
        }
        Ok(entry)
    }

    /// Whether applying this entry to a catalog that has the entries before it would not be
    /// enough to bring its derived tables along: it deletes snapshots (whose file index goes
    /// too) or changes what garbage collection condemned or removed (which moves chunks out of
    /// the index or packs out of the store).
    fn reclaims(&self) -> bool {
        self.ops.iter().any(|(table, key, value)| {
            (table == Table::Snapshots.name() && value.is_none())
                || (table == Table::Meta.name() && coldkeep_catalog::is_collection_key(key))
        })
    }

    fn into_batch(self) -> Result<Batch, JournalError> {
        let mut batch = Batch::new();
        for (table, key, value) in self.ops {
            let Some(table) = Table::ALL.into_iter().find(|t| t.name() == table) else {
                return Err(JournalError::Corrupt {
                    seq: self.seq,
                    reason: format!("no table {table}"),
                });
            };
            if !is_journaled(table, &key) {
                continue; // an index mark journaled by an older version: the index is not
            }
            match value {
                Some(v) => batch.put(table, key, v),
                None => batch.delete(table, key),
            }
        }
        Ok(batch)
    }
}

/// Every journal entry's sequence number, ascending.
fn sequence_numbers(store: &dyn Backend) -> Result<Vec<u64>, StoreError> {
    let mut seqs: Vec<u64> = store
        .list(ObjectKind::Journal)?
        .into_iter()
        .filter_map(|info| u64::from_str_radix(info.name.name(), 16).ok())
        .collect();
    seqs.sort_unstable();
    Ok(seqs)
}

/// Whether no table of the catalog holds a key.
pub(crate) fn is_empty(kv: &dyn KvStore) -> Result<bool, KvError> {
    for table in Table::ALL {
        if kv.scan(table, &[]).next().transpose()?.is_some() {
            return Ok(false);
        }
    }
    Ok(true)
}

fn applied(kv: &dyn KvStore) -> Result<u64, KvError> {
    let value = kv.get(Table::Meta, APPLIED_KEY)?;
    Ok(value.and_then(|v| v.try_into().ok()).map_or(0, u64::from_le_bytes))
}

/// What commits a batch: the catalog's write (a repository whose catalog is its own), or the
/// journal entry's (a catalog that caches a store other writers share).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CommitPoint {
    Catalog,
    Journal,
}

/// A [`KvStore`] that journals every batch changing a record table before applying it.
#[derive(Debug)]
pub(crate) struct JournaledKv {
    inner: Arc<dyn KvStore>,
    store: Arc<dyn Backend>,
    seal: Option<SealingKey>,
    state: Mutex<JournalState>,
}

#[derive(Debug)]
struct JournalState {
    next: u64,
    /// The newest clock state not journaled yet.
    clock: Option<Vec<u8>>,
    /// Set once another writer took a journal number: this view is stale for good.
    conflict: Option<String>,
}

/// Applies `entries` (the ones after the catalog's note, in order) to `kv`, each in one batch
/// with the note of it.
fn apply(kv: &dyn KvStore, entries: Vec<Entry>) -> Result<u64, JournalError> {
    let mut applied = 0;
    for entry in entries {
        let seq = entry.seq;
        let mut batch = entry.into_batch()?;
        batch.put(Table::Meta, APPLIED_KEY, seq.to_le_bytes().to_vec());
        kv.write(batch)?;
        applied += 1;
    }
    Ok(applied)
}

/// What the journal holds that a catalog has not applied yet.
#[derive(Debug)]
pub(crate) struct Pending {
    entries: Vec<Entry>,
    /// The catalog notes an entry the journal does not have.
    ahead: bool,
}

impl Pending {
    /// The entries beyond `kv`'s note.
    pub(crate) fn read(
        kv: &dyn KvStore,
        store: &dyn Backend,
        seal: Option<&SealingKey>,
    ) -> Result<Self, JournalError> {
        let applied = applied(kv)?;
        let seqs = sequence_numbers(store)?;
        let ahead = applied > 0 && !seqs.contains(&applied);
        let mut entries = Vec::new();
        for seq in seqs.into_iter().filter(|s| *s > applied) {
            entries.push(Entry::decode(seq, &store.get(&name_of(seq))?, seal)?);
        }
        Ok(Self { entries, ahead })
    }

    pub(crate) fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    /// Whether the catalog notes an entry the journal does not hold (it is ahead of the store,
    /// or of another store).
    pub(crate) fn ahead(&self) -> bool {
        self.ahead
    }

    /// Whether an entry deletes snapshots or changes what a collection condemned or removed
    /// (then the catalog's derived tables must be rebuilt, not patched).
    pub(crate) fn reclaims(&self) -> bool {
        self.entries.iter().any(Entry::reclaims)
    }

    /// Applies the entries; returns how many.
    pub(crate) fn apply(self, kv: &dyn KvStore) -> Result<u64, JournalError> {
        apply(kv, self.entries)
    }
}

impl JournaledKv {
    /// Wraps the catalog of a repository opened read-write. With the catalog as the commit
    /// point, an entry beyond the catalog's note (written by a batch that never committed) is
    /// deleted; with the journal as the commit point, the catalog has just applied every entry
    /// and one beyond it is another writer's commit made meanwhile.
    pub(crate) fn open(
        inner: Arc<dyn KvStore>,
        store: Arc<dyn Backend>,
        seal: Option<SealingKey>,
        commit_point: CommitPoint,
    ) -> Result<Self, JournalError> {
        let applied = applied(inner.as_ref())?;
        let seqs = sequence_numbers(store.as_ref())?;
        let beyond: Vec<u64> = seqs.iter().copied().filter(|s| *s > applied).collect();
        if commit_point == CommitPoint::Journal {
            if let Some(&seq) = beyond.first() {
                return Err(JournalError::Raced { seq });
            }
        }
        // An empty catalog has indexed nothing: an entry beyond it is the store's history (a
        // catalog given empty for a store that holds a repository), not a batch that crashed.
        if beyond.len() > 1 || (!beyond.is_empty() && is_empty(inner.as_ref())?) {
            return Err(JournalError::CatalogOlder { applied, newest: beyond[beyond.len() - 1] });
        }
        let mut next = applied + 1;
        for seq in seqs {
            if seq > applied {
                tracing::info!(seq, "removing a journal entry whose batch never committed");
                match store.delete(&name_of(seq)) {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            } else {
                next = next.max(seq + 1);
            }
        }
        let state = JournalState { next, clock: None, conflict: None };
        Ok(Self { inner, store, seal, state: Mutex::new(state) })
    }
}

impl KvStore for JournaledKv {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        self.inner.get(table, key)
    }

    fn scan<'a>(
        &'a self,
        table: Table,
        prefix: &[u8],
    ) -> Box<dyn Iterator<Item = Result<KvPair, KvError>> + 'a> {
        self.inner.scan(table, prefix)
    }

    fn write(&self, mut batch: Batch) -> Result<(), KvError> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(what) = &state.conflict {
            return Err(KvError::Conflict { what: what.clone() });
        }
        let mut ops = Vec::new();
        let mut clock_only = true;
        // Only record ops are copied: a pack's index batch (thousands of chunk entries) passes
        // through untouched.
        for op in batch.ops().iter().filter(|op| is_journaled(op.table(), op.key())) {
            let (table, key, value) = match op {
                Op::Put { table, key, value } => (*table, key, Some(value.clone())),
                Op::Delete { table, key } => (*table, key, None),
            };
            if table == Table::Meta && key == CLOCK_STATE_KEY {
                state.clock.clone_from(&value);
            } else {
                clock_only = false;
            }
            ops.push((table.name().to_owned(), key.clone(), value));
        }
        if ops.is_empty() || clock_only {
            return self.inner.write(batch);
        }
        if let Some(clock) = state.clock.take() {
            if !ops.iter().any(|(t, k, _)| t == Table::Meta.name() && k == CLOCK_STATE_KEY) {
                ops.push((Table::Meta.name().to_owned(), CLOCK_STATE_KEY.to_vec(), Some(clock)));
            }
        }
        let seq = state.next;
        let entry = Entry { seq, ops };
        match self.store.put(&name_of(seq), &entry.encode(self.seal.as_ref())) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                let what = format!("journal entry {seq:016x} exists");
                state.conflict = Some(what.clone());
                return Err(KvError::Conflict { what });
            }
            Err(e) => {
                return Err(KvError::Backend { op: "journal a batch", message: e.to_string() })
            }
        }
        state.next = seq + 1;
        batch.put(Table::Meta, APPLIED_KEY, seq.to_le_bytes().to_vec());
        self.inner.write(batch)
    }
}

/// Recreates the record tables in `kv` (an empty catalog) from the journal in `store`, and
/// notes the last entry applied. Returns how many entries were replayed.
pub(crate) fn replay(
    kv: &dyn KvStore,
    store: &dyn Backend,
    seal: Option<&SealingKey>,
) -> Result<u64, JournalError> {
    Pending::read(kv, store, seal)?.apply(kv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldkeep_catalog::{Catalog, MemKv};
    use coldkeep_store::backend::MemoryBackend;
    use coldkeep_store::crypto::MasterKey;

    fn put(kv: &dyn KvStore, table: Table, key: &[u8], value: &[u8]) {
        let mut batch = Batch::new();
        batch.put(table, key.to_vec(), value.to_vec());
        kv.write(batch).expect("write");
    }

    fn dump(kv: &dyn KvStore, table: Table) -> Vec<KvPair> {
        kv.scan(table, b"").collect::<Result<_, _>>().expect("scan")
    }

    #[test]
    fn a_replayed_journal_gives_back_the_record_tables() {
        for seal in [None, Some(MasterKey::generate().object_key())] {
            let store = Arc::new(MemoryBackend::new());
            let mem: Arc<dyn KvStore> = Arc::new(MemKv::new());
            let kv =
                JournaledKv::open(mem.clone(), store.clone(), seal.clone(), CommitPoint::Catalog)
                    .expect("open");
            put(&kv, Table::Snapshots, b"1", b"first");
            put(&kv, Table::Chunks, b"c", b"derived"); // no entry: rebuilt from packs
            put(&kv, Table::Meta, CLOCK_STATE_KEY, b"clock 1"); // no entry of its own
            put(&kv, Table::Meta, CLOCK_STATE_KEY, b"clock 2");
            put(&kv, Table::Runs, b"r", b"run");
            let mut batch = Batch::new();
            batch.delete(Table::Snapshots, b"1".to_vec());
            batch.put(Table::Snapshots, b"2".to_vec(), b"second".to_vec());
            kv.write(batch).expect("write");
            assert_eq!(sequence_numbers(store.as_ref()).expect("list"), vec![1, 2, 3]);

            let rebuilt = MemKv::new();
            assert_eq!(replay(&rebuilt, store.as_ref(), seal.as_ref()).expect("replay"), 3);
            for table in [Table::Snapshots, Table::Runs] {
                assert_eq!(dump(&rebuilt, table), dump(mem.as_ref(), table), "{table:?}");
            }
            assert_eq!(
                rebuilt.get(Table::Meta, CLOCK_STATE_KEY).expect("get").as_deref(),
                Some(&b"clock 2"[..])
            );
            assert!(dump(&rebuilt, Table::Chunks).is_empty());
            assert_eq!(applied(&rebuilt).expect("applied"), 3);
            // Nothing of a sealed journal is readable.
            if seal.is_some() {
                let bytes = store.get(&name_of(3)).expect("get");
                assert!(!bytes.windows(6).any(|w| w == b"second"));
                assert!(matches!(
                    replay(&MemKv::new(), store.as_ref(), None),
                    Err(JournalError::Corrupt { .. })
                ));
            }
        }
    }

    #[test]
    fn an_entry_whose_batch_never_committed_is_removed_at_open() {
        let store = Arc::new(MemoryBackend::new());
        let mem: Arc<dyn KvStore> = Arc::new(MemKv::new());
        let kv = JournaledKv::open(mem.clone(), store.clone(), None, CommitPoint::Catalog)
            .expect("open");
        put(&kv, Table::Policies, b"p", b"v");
        // A crash after the entry, before the catalog batch.
        let orphan =
            Entry { seq: 2, ops: vec![("policies".into(), b"q".to_vec(), Some(b"w".to_vec()))] };
        store.put(&name_of(2), &orphan.encode(None)).expect("put");
        drop(kv);
        let kv = JournaledKv::open(mem.clone(), store.clone(), None, CommitPoint::Catalog)
            .expect("reopen");
        assert_eq!(sequence_numbers(store.as_ref()).expect("list"), vec![1]);
        put(&kv, Table::Policies, b"q", b"x");
        assert_eq!(sequence_numbers(store.as_ref()).expect("list"), vec![1, 2]);
        // Two entries beyond the catalog: it is older than the store, and nothing is deleted.
        let older: Arc<dyn KvStore> = Arc::new(MemKv::new());
        assert!(matches!(
            JournaledKv::open(older, store.clone(), None, CommitPoint::Catalog),
            Err(JournalError::CatalogOlder { applied: 0, newest: 2 })
        ));
        assert_eq!(sequence_numbers(store.as_ref()).expect("list"), vec![1, 2]);
        let rebuilt = MemKv::new();
        replay(&rebuilt, store.as_ref(), None).expect("replay");
        assert_eq!(rebuilt.get(Table::Policies, b"q").expect("get").as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn two_writers_of_one_journal_cannot_both_commit_under_one_number() {
        let store = Arc::new(MemoryBackend::new());
        let (mem_a, mem_b): (Arc<dyn KvStore>, Arc<dyn KvStore>) =
            (Arc::new(MemKv::new()), Arc::new(MemKv::new()));
        let a = JournaledKv::open(mem_a, store.clone(), None, CommitPoint::Journal).expect("a");
        let b =
            JournaledKv::open(mem_b.clone(), store.clone(), None, CommitPoint::Journal).expect("b");
        put(&a, Table::Snapshots, b"1", b"a's");
        // b's view is stale: its commit is refused, and stays refused.
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, b"1".to_vec(), b"b's".to_vec());
        assert!(matches!(b.write(batch), Err(KvError::Conflict { .. })));
        let mut batch = Batch::new();
        batch.put(Table::Policies, b"p".to_vec(), b"v".to_vec());
        assert!(matches!(b.write(batch), Err(KvError::Conflict { .. })));
        assert!(dump(mem_b.as_ref(), Table::Snapshots).is_empty(), "nothing of b's applied");
        assert_eq!(sequence_numbers(store.as_ref()).expect("list"), vec![1]);
        // A new view of b's: the refresh applies a's commit; opening finds nothing beyond.
        let pending = Pending::read(mem_b.as_ref(), store.as_ref(), None).expect("pending");
        assert_eq!(pending.len(), 1);
        assert!(!pending.reclaims());
        pending.apply(mem_b.as_ref()).expect("apply");
        let b = JournaledKv::open(mem_b.clone(), store.clone(), None, CommitPoint::Journal)
            .expect("b again");
        put(&b, Table::Snapshots, b"2", b"b's");
        assert_eq!(sequence_numbers(store.as_ref()).expect("list"), vec![1, 2]);
        // An entry another writer commits while a catalog opens is never deleted.
        let mut batch = Batch::new();
        batch.put(Table::Meta, b"x".to_vec(), b"y".to_vec());
        assert!(matches!(a.write(batch), Err(KvError::Conflict { .. })), "a is stale now");
        let stale: Arc<dyn KvStore> = Arc::new(MemKv::new());
        assert!(matches!(
            JournaledKv::open(stale, store.clone(), None, CommitPoint::Journal),
            Err(JournalError::Raced { seq: 1 })
        ));
        assert_eq!(sequence_numbers(store.as_ref()).expect("list"), vec![1, 2]);
    }

    #[test]
    fn snapshot_deletions_and_collections_are_seen_and_index_marks_not_journaled() {
        let store = Arc::new(MemoryBackend::new());
        let mem: Arc<dyn KvStore> = Arc::new(MemKv::new());
        let kv = JournaledKv::open(mem, store.clone(), None, CommitPoint::Journal).expect("open");
        put(&kv, Table::Meta, b"indexed_00000001", b""); // derived: no entry
        assert!(sequence_numbers(store.as_ref()).expect("list").is_empty());
        let reclaims = |batch: Batch| {
            kv.write(batch).expect("write");
            let fresh = MemKv::new();
            let all = Pending::read(&fresh, store.as_ref(), None).expect("pending");
            let last = all.entries.last().expect("an entry").clone();
            Pending { entries: vec![last], ahead: false }.reclaims()
        };
        let mut batch = Batch::new();
        batch.put(Table::Snapshots, b"1".to_vec(), b"s".to_vec());
        assert!(!reclaims(batch));
        let mut batch = Batch::new();
        batch.delete(Table::Snapshots, b"1".to_vec());
        assert!(reclaims(batch));
        let mut batch = Batch::new();
        Catalog::stage_condemn(&mut batch, coldkeep_store::PackId::random(), &condemned(), &[]);
        assert!(reclaims(batch));
    }

    fn condemned() -> coldkeep_catalog::Condemned {
        coldkeep_catalog::Condemned { at: coldkeep_model::Usecs(1), epoch: 1, ticket: 1 }
    }

    #[test]
    fn damaged_entries_are_errors_not_panics() {
        let store = MemoryBackend::new();
        let key = MasterKey::generate().object_key();
        let entry = Entry { seq: 7, ops: vec![("runs".into(), b"k".to_vec(), None)] };
        for seal in [None, Some(&key)] {
            let bytes = entry.encode(seal);
            assert_eq!(Entry::decode(7, &bytes, seal).expect("decode"), entry);
            assert!(Entry::decode(8, &bytes, seal).is_err(), "renamed");
            for i in 0..bytes.len() {
                let mut bad = bytes.clone();
                bad[i] ^= 0x04;
                let _ = Entry::decode(7, &bad, seal);
            }
            for len in 0..bytes.len() {
                assert!(Entry::decode(7, &bytes[..len], seal).is_err());
            }
        }
        let _ = store;
    }
}
