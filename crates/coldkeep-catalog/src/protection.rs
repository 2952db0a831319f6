//! The data-protection tables: policies, protection groups, runs, the audit log, and the
//! engine's small durable state (id counters, the trusted clock's high-water mark, the last
//! schedule slot handled per group and run type).
//!
//! Records are stored through one generic path ([`ProtectionRecord`]): each type names its
//! table, record version and key, so put / get / scan are written once.

use coldkeep_model::{
    AuditEntry, ClockState, GroupId, Policy, ProtectionGroup, Recovery, Run, RunId, RunType,
    SourceRegistration, Usecs,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{record, Batch, Catalog, CatalogError, Table};

/// A record type of a data-protection table.
pub trait ProtectionRecord: Serialize + DeserializeOwned {
    const TABLE: Table;
    const VERSION: u8;
    /// The record's key; keys sort in the order scans return records.
    fn key(&self) -> Vec<u8>;
}

impl ProtectionRecord for Policy {
    const TABLE: Table = Table::Policies;
    const VERSION: u8 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.key().to_vec()
    }
}

impl ProtectionRecord for ProtectionGroup {
    const TABLE: Table = Table::Groups;
    const VERSION: u8 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.key().to_vec()
    }
}

impl ProtectionRecord for Run {
    const TABLE: Table = Table::Runs;
    /// 2: objects record their capture time and a log run's time range.
    const VERSION: u8 = 2;
    fn key(&self) -> Vec<u8> {
        run_key(self.group, self.id)
    }
}

impl ProtectionRecord for Recovery {
    const TABLE: Table = Table::Recoveries;
    const VERSION: u8 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.key().to_vec()
    }
}

impl ProtectionRecord for SourceRegistration {
    const TABLE: Table = Table::Sources;
    const VERSION: u8 = 1;
    fn key(&self) -> Vec<u8> {
        self.id.key().to_vec()
    }
}

impl ProtectionRecord for AuditEntry {
    const TABLE: Table = Table::Audit;
    const VERSION: u8 = 1;
    fn key(&self) -> Vec<u8> {
        self.seq.to_be_bytes().to_vec()
    }
}

/// Runs are keyed by group, then run: a group's runs are one prefix scan, oldest first.
pub fn run_key(group: GroupId, run: RunId) -> Vec<u8> {
    [group.key(), run.key()].concat()
}

/// The counters ids are allocated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Policy,
    Group,
    Run,
    Object,
    Audit,
    Recovery,
    Source,
}

impl Counter {
    fn key(self) -> &'static [u8] {
        match self {
            Self::Policy => b"next_policy_id",
            Self::Group => b"next_group_id",
            Self::Run => b"next_run_id",
            Self::Object => b"next_object_id",
            Self::Audit => b"next_audit_seq",
            Self::Recovery => b"next_recovery_id",
            Self::Source => b"next_source_id",
        }
    }
}

/// The high-water mark alone, as repositories before [`ClockState`] kept it (read, not written).
const CLOCK_KEY: &[u8] = b"trusted_clock_high_water";
/// The meta key of the trusted clock's state (written at every observation that moves it).
pub const CLOCK_STATE_KEY: &[u8] = b"trusted_clock_state";
const CLOCK_STATE_VERSION: u8 = 1;
const SLOT_PREFIX: &[u8] = b"schedule_slot/";
const META_VERSION: u8 = 1;

fn slot_key(group: GroupId, run_type: RunType) -> Vec<u8> {
    [SLOT_PREFIX, &group.key(), &[run_type as u8]].concat()
}

impl Catalog {
    /// Allocates the next value of a counter (from 1), durably: a value is never handed out
    /// twice, even across a crash (one may be skipped).
    pub fn allocate(&self, counter: Counter) -> Result<u64, CatalogError> {
        let _guard = self.counters.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = self.meta_u64(counter.key())?.unwrap_or(1);
        let mut batch = Batch::new();
        batch.put(Table::Meta, counter.key(), record::encode(META_VERSION, &(next + 1)));
        self.kv.write(batch)?;
        Ok(next)
    }

    fn meta_u64(&self, key: &[u8]) -> Result<Option<u64>, CatalogError> {
        self.kv
            .get(Table::Meta, key)?
            .map(|v| Self::decode::<u64>(Table::Meta, META_VERSION, key, &v))
            .transpose()
    }

    /// Adds a put of `record` to `batch`.
    pub fn stage<R: ProtectionRecord>(batch: &mut Batch, record: &R) {
        batch.put(R::TABLE, record.key(), record::encode(R::VERSION, record));
    }

    /// Adds a delete of `record` to `batch`.
    pub fn stage_delete<R: ProtectionRecord>(batch: &mut Batch, record: &R) {
        batch.delete(R::TABLE, record.key());
    }

    /// Writes a batch of staged changes atomically and durably.
    pub fn write(&self, batch: Batch) -> Result<(), CatalogError> {
        Ok(self.kv.write(batch)?)
    }

    /// Stores one record, durably.
    pub fn put<R: ProtectionRecord>(&self, record: &R) -> Result<(), CatalogError> {
        let mut batch = Batch::new();
        Self::stage(&mut batch, record);
        self.write(batch)
    }

    /// The record under `key`.
    pub fn get<R: ProtectionRecord>(&self, key: &[u8]) -> Result<Option<R>, CatalogError> {
        self.kv.get(R::TABLE, key)?.map(|v| Self::decode(R::TABLE, R::VERSION, key, &v)).transpose()
    }

    /// Every record whose key starts with `prefix`, in key order.
    pub fn scan<R: ProtectionRecord>(&self, prefix: &[u8]) -> Result<Vec<R>, CatalogError> {
        self.kv
            .scan(R::TABLE, prefix)
            .map(|item| {
                let (key, value) = item?;
                Self::decode(R::TABLE, R::VERSION, &key, &value)
            })
            .collect()
    }

    /// The trusted clock's state. A repository whose clock recorded only a high-water mark
    /// (before retention time was kept apart) starts from it; a new one from zero.
    pub fn clock_state(&self) -> Result<ClockState, CatalogError> {
        if let Some(v) = self.kv.get(Table::Meta, CLOCK_STATE_KEY)? {
            return Self::decode(Table::Meta, CLOCK_STATE_VERSION, CLOCK_STATE_KEY, &v);
        }
        let stored = self.kv.get(Table::Meta, CLOCK_KEY)?;
        let decoded = stored.map(|v| Self::decode::<i64>(Table::Meta, META_VERSION, CLOCK_KEY, &v));
        Ok(ClockState::starting_at(Usecs(decoded.transpose()?.unwrap_or(0))))
    }

    /// Persists the trusted clock's state, with `audit` (a clock step) in the same batch.
    pub fn set_clock_state(
        &self,
        state: &ClockState,
        audit: Option<&AuditEntry>,
    ) -> Result<(), CatalogError> {
        let mut batch = Batch::new();
        batch.put(Table::Meta, CLOCK_STATE_KEY, record::encode(CLOCK_STATE_VERSION, state));
        if let Some(entry) = audit {
            Self::stage(&mut batch, entry);
        }
        self.write(batch)
    }

    /// The last schedule slot handled for a group and run type.
    pub fn schedule_slot(
        &self,
        group: GroupId,
        run_type: RunType,
    ) -> Result<Option<Usecs>, CatalogError> {
        let key = slot_key(group, run_type);
        self.kv
            .get(Table::Meta, &key)?
            .map(|v| Self::decode::<i64>(Table::Meta, META_VERSION, &key, &v).map(Usecs))
            .transpose()
    }

    /// Adds the update of a schedule slot to `batch` (written with the run it started, if any).
    pub fn stage_schedule_slot(batch: &mut Batch, group: GroupId, run_type: RunType, slot: Usecs) {
        batch.put(Table::Meta, slot_key(group, run_type), record::encode(META_VERSION, &slot.0));
    }

    /// Adds the removal of a group's schedule slots to `batch`.
    pub fn stage_forget_schedule(batch: &mut Batch, group: GroupId) {
        for run_type in RunType::ALL {
            batch.delete(Table::Meta, slot_key(group, run_type));
        }
    }
}

/// A pack garbage collection has found unreferenced: unindexed, waiting out the grace period
/// before it is deleted (or resurrected, if a backup that was running committed a reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Condemned {
    /// When it was condemned (trusted time).
    pub at: Usecs,
    /// The process that condemned it (a random number drawn at open) ...
    pub epoch: u64,
    /// ... and the last backup ticket that process had issued then: backups up to this ticket
    /// may still reference the pack until they finish.
    pub ticket: u64,
}

const CONDEMNED_PREFIX: &[u8] = b"condemned/";
/// The packs a collection is about to delete as orphans (the newest such note).
const ORPHANS_KEY: &[u8] = b"orphans_removed";

/// What a collection deletes without a catalog record naming it: journaled before the files
/// go, so that a writer on another machine whose backup could have written them finds its
/// commit refused (the journal's next number is taken) instead of committing a snapshot of
/// deleted packs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct OrphansRemoved {
    pub at: Usecs,
    pub packs: Vec<coldkeep_store::PackId>,
}

/// Whether a key of the meta table belongs to garbage collection (a condemnation, or the note
/// of orphans removed): a catalog that learns of a change to one from elsewhere must index its
/// packs again rather than patch them.
pub fn is_collection_key(key: &[u8]) -> bool {
    key.starts_with(CONDEMNED_PREFIX) || key == ORPHANS_KEY
}

fn condemned_key(pack: coldkeep_store::PackId) -> Vec<u8> {
    [CONDEMNED_PREFIX, pack.as_bytes()].concat()
}

impl Catalog {
    /// Every condemned pack.
    pub fn condemned(&self) -> Result<Vec<(coldkeep_store::PackId, Condemned)>, CatalogError> {
        self.kv
            .scan(Table::Meta, CONDEMNED_PREFIX)
            .map(|item| {
                let (key, value) = item?;
                let id = coldkeep_store::PackId::from_slice(&key[CONDEMNED_PREFIX.len()..])
                    .ok_or_else(|| {
                        CatalogError::corrupted(
                            Table::Meta,
                            &key,
                            crate::RecordError::Body("bad pack id".into()),
                        )
                    })?;
                Ok((id, Self::decode(Table::Meta, META_VERSION, &key, &value)?))
            })
            .collect()
    }

    /// Adds to `batch`: `pack` is condemned, and these chunk index entries (the pack's) go.
    pub fn stage_condemn(
        batch: &mut Batch,
        pack: coldkeep_store::PackId,
        record: &Condemned,
        unindex: &[coldkeep_store::ChunkId],
    ) {
        batch.put(Table::Meta, condemned_key(pack), record::encode(META_VERSION, record));
        for id in unindex {
            batch.delete(Table::Chunks, id.as_bytes().to_vec());
        }
    }

    /// Adds to `batch`: a condemned pack is live again; these of its entries are indexed again.
    pub fn stage_resurrect(
        batch: &mut Batch,
        pack: coldkeep_store::PackId,
        entries: &[coldkeep_store::BlobEntry],
    ) {
        batch.delete(Table::Meta, condemned_key(pack));
        for entry in entries {
            let loc = crate::ChunkLocation { pack, entry: *entry };
            batch.put(
                Table::Chunks,
                entry.id.as_bytes().to_vec(),
                record::encode(crate::CHUNK_VERSION, &loc),
            );
        }
    }

    /// Adds to `batch` the note of the orphan packs a collection is about to delete.
    pub fn stage_orphans_removed(batch: &mut Batch, note: &OrphansRemoved) {
        batch.put(Table::Meta, ORPHANS_KEY.to_vec(), record::encode(META_VERSION, note));
    }

    /// Adds to `batch`: the pack is gone (its record and condemnation). Delete the file only
    /// after this is written: a crash in between leaves an unindexed file, never a record
    /// without its file.
    pub fn stage_forget_pack(batch: &mut Batch, pack: coldkeep_store::PackId) {
        batch.delete(Table::Meta, condemned_key(pack));
        batch.delete(Table::Packs, pack.as_bytes().to_vec());
    }
}
