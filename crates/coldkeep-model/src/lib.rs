//! coldkeep's domain vocabulary, shared by the catalog, the pure decision crates (retention,
//! schedule) and the engine.
//!
//! The names follow the seed APIs (IBM / Cohesity data-protect, Commvault): run types `kRegular`,
//! `kFull`, `kLog` ([`RunType`]), the twelve run statuses ([`RunStatus`]), DataLock modes
//! `Compliance` and `Administrative` ([`DataLockMode`]), times as microseconds since the Unix
//! epoch ([`Usecs`]). Nothing here does I/O or reads a clock: times are always parameters, so
//! every rule built on these types is tested deterministically.

mod group;
mod ids;
mod policy;
mod recovery;
mod run;
mod search;
mod source;
mod time;

pub use group::{GroupSpec, ObjectKind, ObjectSpec, ProtectedObject, ProtectionGroup};
pub use ids::{GroupId, ObjectId, PolicyId, Principal, RecoveryId, RunId, SnapshotId, SourceId};
pub use policy::{
    BackupPolicy, BlackoutWindow, DataLockConfig, DataLockMode, ExtendedRetention, LogBackup,
    Policy, PolicyError, PolicySpec, RegularBackup, Retention, RetryOptions, Schedule,
};
pub use recovery::{path_of, Recovery, RecoveryAction, RecoveryParams, RecoveryStats};
pub use run::{
    AuditEntry, DataLock, LogRange, ObjectRun, Priority, Run, RunOptions, RunRequest, RunStats,
    RunStatus, RunType, RunUpdate, SnapshotRetention,
};
pub use search::IndexedFile;
pub use source::{DiscoveredObject, SourceRegistration, SourceSpec};
pub use time::{
    ClockState, RealTime, TimeOfDay, TimeUnit, Usecs, Weekday, DAY, HOUR, MINUTE, WEEK,
};
