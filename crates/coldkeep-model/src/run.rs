//! Runs: one execution of a protection group, its per-object results and the retention of the
//! snapshots it made.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{GroupId, ObjectId, RunId, SnapshotId};
use crate::policy::DataLockMode;
use crate::time::Usecs;

/// The seed's run types. The discriminants are stable: they appear in catalog keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum RunType {
    /// `kRegular`: incremental; unchanged files are not read again.
    #[serde(rename = "kRegular")]
    Regular = 0,
    /// `kFull`: every file is read (the result is deduplicated all the same).
    #[serde(rename = "kFull")]
    Full = 1,
    /// `kLog`: only what was appended to or created in a log directory since the last run.
    #[serde(rename = "kLog")]
    Log = 2,
}

impl RunType {
    pub const ALL: [RunType; 3] = [Self::Regular, Self::Full, Self::Log];

    /// The seed's name: `kRegular`, `kFull`, `kLog`.
    pub fn seed_name(self) -> &'static str {
        match self {
            Self::Regular => "kRegular",
            Self::Full => "kFull",
            Self::Log => "kLog",
        }
    }

    /// Parses a seed name (`kRegular`) or the short one (`regular`, `incremental`, `full`, `log`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "kregular" | "regular" | "incremental" => Some(Self::Regular),
            "kfull" | "full" => Some(Self::Full),
            "klog" | "log" => Some(Self::Log),
            _ => None,
        }
    }
}

impl fmt::Display for RunType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.seed_name())
    }
}

/// The seed's run statuses, all twelve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RunStatus {
    /// Created, not started yet.
    Accepted,
    Running,
    Canceled,
    /// Cancel requested; the run stops at its next check.
    Canceling,
    Failed,
    /// Could not take place at its scheduled time because the previous run was still going.
    Missed,
    Succeeded,
    /// Finished, with warnings (files that vanished or changed while read, ...).
    SucceededWithWarning,
    /// Waiting for a resource (another run of the same group).
    OnHold,
    /// Data written; committing snapshots.
    Finalizing,
    Skipped,
    /// Paused at a chunk boundary; resumes where it stopped.
    Paused,
}

impl RunStatus {
    pub const ALL: [RunStatus; 12] = [
        Self::Accepted,
        Self::Running,
        Self::Canceled,
        Self::Canceling,
        Self::Failed,
        Self::Missed,
        Self::Succeeded,
        Self::SucceededWithWarning,
        Self::OnHold,
        Self::Finalizing,
        Self::Skipped,
        Self::Paused,
    ];

    /// Whether the run is over: nothing about it changes any more except its retention.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Canceled
                | Self::Failed
                | Self::Missed
                | Self::Succeeded
                | Self::SucceededWithWarning
                | Self::Skipped
        )
    }

    /// Whether the run produced usable snapshots.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Succeeded | Self::SucceededWithWarning)
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| format!("{v:?}").eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The seed's `kLow`, `kMedium`, `kHigh`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
pub enum Priority {
    #[serde(rename = "kLow")]
    Low,
    #[default]
    #[serde(rename = "kMedium")]
    Medium,
    #[serde(rename = "kHigh")]
    High,
}

/// The Commvault backup-task options a run honours.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunOptions {
    /// Attempts after the first when an object fails.
    pub retries: u32,
    /// The run is canceled when it has been running this long (minutes).
    pub total_running_time_mins: Option<u32>,
    /// Created `Paused`: it starts only when resumed.
    pub start_suspended: bool,
    pub priority: Priority,
    pub description: String,
}

/// `start_run`'s request (the seed's `POST /protection-groups/{id}/runs` and Commvault's task).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    /// The backup level.
    pub run_type: RunType,
    /// A subset of the group's objects; all of them when `None`.
    pub objects: Option<Vec<ObjectId>>,
    pub options: RunOptions,
}

impl RunRequest {
    pub fn new(run_type: RunType) -> Self {
        Self { run_type, objects: None, options: RunOptions::default() }
    }
}

/// What a run (or one of its objects) read and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunStats {
    pub files: u64,
    pub bytes_read: u64,
    /// Plaintext bytes of chunks new to the repository.
    pub bytes_new: u64,
    /// Bytes added to packs (after compression).
    pub bytes_written: u64,
    /// Bytes read that the repository already had.
    pub bytes_deduplicated: u64,
}

impl RunStats {
    pub fn add(&mut self, other: &Self) {
        self.files += other.files;
        self.bytes_read += other.bytes_read;
        self.bytes_new += other.bytes_new;
        self.bytes_written += other.bytes_written;
        self.bytes_deduplicated += other.bytes_deduplicated;
    }
}

/// The span of time a log (`kLog`) backup of an object covers: from the previous capture of
/// the object (any run type) to this one. Replaying its logs brings the object from the state
/// at `from_usecs` to the state at `to_usecs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRange {
    pub from_usecs: Usecs,
    pub to_usecs: Usecs,
}

/// One object's part of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRun {
    pub object: ObjectId,
    pub status: RunStatus,
    pub snapshot: Option<SnapshotId>,
    pub stats: RunStats,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    pub attempts: u32,
    /// When the backup of this object began (trusted time): what its snapshot holds is the
    /// object as of then.
    pub captured_usecs: Option<Usecs>,
    /// For a log run, the span of time its snapshot covers.
    pub log_range: Option<LogRange>,
}

impl ObjectRun {
    /// An object's part of a run that has not started.
    pub fn new(object: ObjectId) -> Self {
        Self {
            object,
            status: RunStatus::Accepted,
            snapshot: None,
            stats: RunStats::default(),
            warnings: vec![],
            error: None,
            attempts: 0,
            captured_usecs: None,
            log_range: None,
        }
    }
}

/// A DataLock on a run's snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLock {
    pub mode: DataLockMode,
    pub until: Usecs,
}

/// How long a run's snapshots are kept and what protects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnapshotRetention {
    /// The snapshots may be removed from this time on (`None`: kept until changed).
    pub expiry: Option<Usecs>,
    /// Never expired or deleted while set.
    pub legal_hold: bool,
    pub data_lock: Option<DataLock>,
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub id: RunId,
    pub group: GroupId,
    pub run_type: RunType,
    pub status: RunStatus,
    /// The schedule slot this run was started for; `None` when started on demand.
    pub scheduled_time_usecs: Option<Usecs>,
    pub start_time_usecs: Usecs,
    pub end_time_usecs: Option<Usecs>,
    pub options: RunOptions,
    pub objects: Vec<ObjectRun>,
    /// Why it failed, was canceled or missed.
    pub message: Option<String>,
    pub retention: SnapshotRetention,
    /// Its snapshots were deleted (by an update or by expiry).
    pub snapshots_deleted: bool,
}

impl Run {
    /// The sum of its objects' counters.
    pub fn stats(&self) -> RunStats {
        let mut total = RunStats::default();
        for o in &self.objects {
            total.add(&o.stats);
        }
        total
    }

    /// Every warning of every object.
    pub fn warnings(&self) -> impl Iterator<Item = &str> {
        self.objects.iter().flat_map(|o| o.warnings.iter().map(String::as_str))
    }
}

/// One change to a run's snapshots (the seed's `PUT /protection-groups/{id}/runs` item, its
/// `localSnapshotConfig`). Fields left `None` / `false` are not changed.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RunUpdate {
    pub run: Option<RunId>,
    /// Positive extends the retention by that many days, negative reduces it.
    pub days_to_keep: Option<i64>,
    /// Place (`true`) or lift (`false`) a legal hold.
    pub enable_legal_hold: Option<bool>,
    /// Lock the snapshots until their expiry, in this mode.
    pub data_lock: Option<DataLockMode>,
    /// Delete the run's snapshots now.
    pub delete_snapshots: bool,
}

/// One entry of the audit log: every change to a snapshot's retention, hold or lock, and every
/// deletion, with who asked, when (trusted time), and the state before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    pub time_usecs: Usecs,
    pub principal: String,
    /// What was done: `update_run`, `delete_snapshots`, `expire`, ...
    pub action: String,
    /// What it was done to: `group 3 run 17`, ...
    pub target: String,
    /// The state before and after, as JSON.
    pub before: String,
    pub after: String,
}
