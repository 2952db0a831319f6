//! Data protection on top of the data path: policies, protection groups, runs, recoveries,
//! sources, the scheduler, expiry, retention, legal hold and DataLock — the seed APIs' control
//! plane, as library calls.
//!
//! **Not an API boundary.** Programs use the `coldkeep` facade; this crate's `pub` items serve
//! it. It stands on the data path (`coldkeep-repo`) and nothing stands on it but the facade.
//!
//! The decisions are pure and live in their own crates (`coldkeep-retention`,
//! `coldkeep-schedule`); this module loads and stores records through the catalog, judges time
//! by the [`TrustedClock`](coldkeep_retention::TrustedClock) and writes the audit log.

mod admission;
mod audit;
pub mod clock;
pub mod expiry;
pub mod groups;
pub mod objects;
pub mod policies;
pub mod recoveries;
pub mod runs;
pub mod scheduler;
pub mod sources;
mod store_locks;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use coldkeep_catalog::{Catalog, CatalogError, Counter, KvError};
use coldkeep_model::{
    AuditEntry, GroupId, ObjectId, PolicyError, PolicyId, RecoveryId, RunId, RunStatus, SourceId,
    Usecs,
};
use coldkeep_repo::error::{ErrorKind, HasErrorKind};
use coldkeep_repo::repo::Repository;
use coldkeep_retention::{Observation, Refusal, TrustedClock};

pub use clock::{Clock, ManualClock, SystemClock};

/// Errors of the data-protection calls. Whatever the error, nothing was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtectError {
    #[error("policy {0} not found")]
    PolicyNotFound(PolicyId),
    #[error("protection group {0} not found")]
    GroupNotFound(GroupId),
    /// A point-in-time recovery to a time before the object's first full or incremental
    /// snapshot.
    #[error("object {object} has no full or incremental snapshot at or before {at}")]
    NoRestorePoint { object: ObjectId, at: Usecs },
    /// A point-in-time recovery to a time no log run has reached yet.
    #[error("no log snapshot reaches {at} (logs are covered until {})", covered_until.map_or_else(|| "never".to_owned(), |t| t.to_string()))]
    LogsDoNotReach { at: Usecs, covered_until: Option<Usecs> },
    #[error("source {0} is not registered")]
    SourceNotFound(SourceId),
    #[error(
        "source {id} is protected by protection groups {}",
        groups.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    SourceInUse { id: SourceId, groups: Vec<GroupId> },
    /// Some paths of a RecoverFiles recovery failed; the others were recovered.
    #[error(
        "{} of {total} paths could not be recovered (the others were): {}",
        failed.len(), failed.join("; ")
    )]
    PathsNotRecovered { total: usize, failed: Vec<String> },
    #[error("recovery {0} does not exist")]
    RecoveryNotFound(RecoveryId),
    /// Cancel asked of a recovery that is not executing in this process.
    #[error("recovery {id} cannot be canceled: it is {status}")]
    RecoveryNotActive { id: RecoveryId, status: RunStatus },
    #[error(transparent)]
    Restore(#[from] coldkeep_repo::error::RestoreError),
    #[error(transparent)]
    Archive(#[from] coldkeep_repo::archive::ArchiveError),
    #[error(transparent)]
    Read(#[from] coldkeep_repo::error::ReadError),
    #[error(transparent)]
    Io(#[from] coldkeep_repo::error::IoError),
    /// The store could not lock (or unlock) what a DataLock or legal hold asks of it.
    #[error("the store did not lock the snapshots' objects: {0}")]
    StoreLock(coldkeep_repo::error::DataError),
    #[error("object {0} is in no protection group and has no run")]
    ObjectNotFound(ObjectId),
    #[error("run {run} of protection group {group} not found")]
    RunNotFound { group: GroupId, run: RunId },
    /// A group runs one run at a time.
    #[error("protection group {group} already has run {run} in progress")]
    RunInProgress { group: GroupId, run: RunId },
    /// Pause / resume / cancel of a run that is not executing in this process (or not in a
    /// state that allows it).
    #[error("run {run} of protection group {group} cannot do that: it is {status}")]
    RunNotActive { group: GroupId, run: RunId, status: coldkeep_model::RunStatus },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("invalid policy: {0}")]
    InvalidPolicy(PolicyError),
    #[error("invalid protection group: {0}")]
    InvalidGroup(String),
    /// The caller's `lastModificationTimeUsecs` is not the record's: someone changed it since.
    #[error("{what} {id} was last modified at {actual}, not at {expected}: reload it and retry")]
    Stale { what: &'static str, id: u64, expected: Usecs, actual: Usecs },
    #[error(
        "policy {policy} is used by protection groups {}",
        groups.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    PolicyInUse { policy: PolicyId, groups: Vec<GroupId> },
    /// A retention, hold, lock or delete rule refused the change.
    #[error("refused: {0}")]
    Refused(Refusal),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

impl ProtectError {
    pub fn kind(&self) -> ErrorKind {
        use ProtectError as P;
        match self {
            P::PolicyNotFound(_)
            | P::GroupNotFound(_)
            | P::SourceNotFound(_)
            | P::RecoveryNotFound(_)
            | P::ObjectNotFound(_)
            | P::RunNotFound { .. }
            | P::NoRestorePoint { .. }
            | P::LogsDoNotReach { .. } => ErrorKind::NotFound,
            P::SourceInUse { .. }
            | P::PolicyInUse { .. }
            | P::RunInProgress { .. }
            | P::RunNotActive { .. }
            | P::RecoveryNotActive { .. }
            | P::Stale { .. } => ErrorKind::Conflict,
            P::InvalidRequest(_) | P::InvalidPolicy(_) | P::InvalidGroup(_) => {
                ErrorKind::InvalidInput
            }
            P::Refused(_) => ErrorKind::Refused,
            P::PathsNotRecovered { .. } => ErrorKind::Io,
            P::Restore(e) => e.kind(),
            P::Archive(e) => e.kind(),
            P::Read(e) => e.kind(),
            P::Io(e) => e.kind(),
            P::StoreLock(e) => e.kind(),
            P::Catalog(e) => HasErrorKind::kind(e),
        }
    }
}

coldkeep_repo::has_error_kind!(ProtectError, recoveries::RecoveryError);

// Not `#[from]`: these messages include the inner one, so it is not also their `source()`.
impl From<PolicyError> for ProtectError {
    fn from(e: PolicyError) -> Self {
        Self::InvalidPolicy(e)
    }
}

impl From<Refusal> for ProtectError {
    fn from(e: Refusal) -> Self {
        Self::Refused(e)
    }
}

/// A repository under data protection: what an engine and its background runs share.
#[derive(Debug)]
pub struct ProtectedRepo {
    // Dropped in this order: `protect` lets go of its catalog handle first, so the catalog is
    // closed (and flushed) by the repository, before the repository lock it holds is released.
    pub protect: Protection,
    pub repo: Repository,
}

/// Refuses a write based on a stale read (the seed's `lastModificationTimeUsecs` check).
pub(crate) fn check_fresh(
    what: &'static str,
    id: u64,
    expected: Option<Usecs>,
    actual: Usecs,
) -> Result<(), ProtectError> {
    match expected {
        Some(expected) if expected != actual => {
            Err(ProtectError::Stale { what, id, expected, actual })
        }
        _ => Ok(()),
    }
}

/// The data-protection state of an open repository.
#[derive(Debug)]
pub struct Protection {
    pub(crate) catalog: Catalog,
    clock: RwLock<Arc<dyn Clock>>,
    trusted: Mutex<TrustedClock>,
    /// Serializes read-check-write changes (stale checks, in-use checks, retention rules).
    edits: Mutex<()>,
    /// The controls of the runs executing in this process.
    pub(crate) active: Mutex<HashMap<RunId, Arc<runs::ActiveRun>>>,
    /// The slots runs execute in.
    pub(crate) admission: admission::Admission,
    /// The recoveries executing in this process.
    pub(crate) recoveries: recoveries::ActiveRecoveries,
    /// The threads runs and recoveries execute on.
    pub(crate) threads: BackgroundThreads,
}

/// The threads that execute runs and recoveries. The engine cancels what they do and waits for
/// them when it is dropped, so none outlives it: a thread that still held the repository while
/// the process exited would close the catalog under RocksDB's own teardown.
#[derive(Debug, Default)]
pub(crate) struct BackgroundThreads(Mutex<Vec<std::thread::JoinHandle<()>>>);

impl BackgroundThreads {
    pub fn spawn(&self, name: String, work: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let handle = std::thread::Builder::new().name(name).spawn(work)?;
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.retain(|h| !h.is_finished());
        all.push(handle);
        Ok(())
    }

    /// Waits for every thread started so far.
    pub fn join_all(&self) {
        let all =
            std::mem::take(&mut *self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for handle in all {
            // A thread that panicked has nothing left to wait for.
            let _ = handle.join();
        }
    }
}

impl Protection {
    /// Cancels the runs and recoveries executing in this process and waits for their threads.
    pub fn stop_background_work(&self) {
        for run in self.active.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values() {
            run.control.cancel();
        }
        for r in self.recoveries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values()
        {
            r.control.cancel();
        }
        self.threads.join_all();
    }
}

impl Protection {
    pub fn new(catalog: Catalog, clock: Arc<dyn Clock>) -> Result<Self, CatalogError> {
        let trusted = Mutex::new(TrustedClock::new(catalog.clock_state()?));
        Ok(Self {
            catalog,
            clock: RwLock::new(clock),
            trusted,
            edits: Mutex::new(()),
            active: Mutex::new(HashMap::new()),
            admission: admission::Admission::new(admission::DEFAULT_CONCURRENT_RUNS),
            recoveries: Mutex::new(HashMap::new()),
            threads: BackgroundThreads::default(),
        })
    }

    /// How many runs execute at once (see `Engine::set_max_concurrent_runs`).
    pub fn set_max_concurrent_runs(&self, limit: usize) {
        self.admission.set_limit(limit);
    }

    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.clock.write().unwrap_or_else(std::sync::PoisonError::into_inner) = clock;
    }

    /// The time records and schedules use: the injected clock's, unless that is behind a time
    /// already seen.
    pub fn now(&self) -> Result<Usecs, CatalogError> {
        Ok(self.observe()?.now)
    }

    /// The time retention, locks and grace periods are judged by: it never goes back and never
    /// runs ahead of the real time seen to pass (see [`TrustedClock`]).
    pub fn retention_now(&self) -> Result<Usecs, CatalogError> {
        Ok(self.observe()?.retention_now)
    }

    /// Observes the injected clock and persists the trusted clock's state, so a restart does
    /// not lose it; a wall-clock step that real time does not account for goes into the audit
    /// log in the same batch.
    fn observe(&self) -> Result<Observation, CatalogError> {
        let mut trusted = self.trusted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (wall, real) = {
            let clock = self.clock.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            (clock.now(), clock.real_time())
        };
        let before = trusted.state();
        let seen = trusted.observe(wall, real);
        if trusted.state() == before {
            return Ok(seen);
        }
        let audit = match seen.step {
            Some(step) => {
                tracing::warn!(
                    ?step,
                    "the wall clock stepped ahead of real time: not trusted for retention"
                );
                match self.catalog.allocate(Counter::Audit) {
                    Ok(seq) => Some(AuditEntry {
                        seq,
                        time_usecs: seen.now,
                        principal: "clock".into(),
                        action: "clock_step".into(),
                        target: "trusted clock".into(),
                        before: serde_json::json!({ "wall": step.wall_from }).to_string(),
                        after: serde_json::to_string(&step).unwrap_or_default(),
                    }),
                    Err(CatalogError::Kv(KvError::ReadOnly { .. })) => None,
                    Err(e) => return Err(e),
                }
            }
            None => None,
        };
        match self.catalog.set_clock_state(&trusted.state(), audit.as_ref()) {
            // A read-only engine cannot move the persisted state; it changes nothing either,
            // and the state it read stays the floor for the next writer.
            Err(CatalogError::Kv(KvError::ReadOnly { .. })) => {}
            other => other?,
        }
        Ok(seen)
    }

    /// A modification time for a record last modified at `previous`: the trusted time, made
    /// strictly greater than `previous` so that a stale check always notices a change.
    pub fn modification_time(&self, previous: Usecs) -> Result<Usecs, CatalogError> {
        Ok(self.now()?.max(Usecs(previous.0 + 1)))
    }

    pub fn edit(&self) -> MutexGuard<'_, ()> {
        self.edits.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
