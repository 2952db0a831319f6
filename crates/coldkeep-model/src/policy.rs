//! Protection policies: when to back up, how long to keep what was backed up, and when not to
//! start anything (the seed's `POST /data-protect/policies` body).

use serde::{Deserialize, Serialize};

use crate::ids::PolicyId;
use crate::time::{TimeOfDay, TimeUnit, Usecs, Weekday};

/// "Every `frequency` `unit`s" (the seed's `{unit, minuteSchedule: {frequency}}` and its siblings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Minutes, Hours, Days, Weeks or Months.
    pub unit: TimeUnit,
    pub frequency: u32,
}

/// How long a snapshot is kept, and whether it is locked for part of that time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Days, Weeks, Months or Years.
    pub unit: TimeUnit,
    pub duration: u32,
    /// The seed's `dataLockConfig`: snapshots are write-once for this long.
    pub data_lock: Option<DataLockConfig>,
}

/// The two DataLock modes of the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataLockMode {
    /// Nobody — no administrator, no principal with any right — can shorten, remove or delete
    /// the snapshot before the lock ends.
    Compliance,
    /// Only a principal with the DataLock right may shorten or remove the lock.
    Administrative,
}

/// A policy's DataLock: mode and duration from the snapshot's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataLockConfig {
    pub mode: DataLockMode,
    pub unit: TimeUnit,
    pub duration: u32,
}

/// The incremental (`kRegular`) and full (`kFull`) schedules and their retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegularBackup {
    pub incremental: Option<Schedule>,
    pub full: Option<Schedule>,
    pub retention: Retention,
}

/// The log (`kLog`) schedule and its retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBackup {
    pub schedule: Schedule,
    pub retention: Retention,
}

/// The seed's `backupPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupPolicy {
    pub regular: RegularBackup,
    pub log: Option<LogBackup>,
}

/// Keep the first successful snapshot of every `every.frequency` `every.unit`s for `retention`
/// (the seed's `extendedRetention`). A snapshot is kept until the latest expiry of all rules
/// that apply to it, its base retention included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedRetention {
    /// Days, Weeks, Months or Years.
    pub every: Schedule,
    pub retention: Retention,
}

/// No run is started between `start` and `end` on `day` (UTC). A window whose end is before its
/// start runs past midnight into the next day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlackoutWindow {
    pub day: Weekday,
    pub start: TimeOfDay,
    pub end: TimeOfDay,
}

/// Retries of a failed run (the seed's `retryOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RetryOptions {
    pub retries: u32,
    pub retry_interval_mins: u32,
}

/// What a caller gives to create or update a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    pub name: String,
    pub description: String,
    pub backup: BackupPolicy,
    pub blackout_windows: Vec<BlackoutWindow>,
    pub extended_retention: Vec<ExtendedRetention>,
    pub retry: RetryOptions,
}

/// A stored policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    pub id: PolicyId,
    pub spec: PolicySpec,
    /// Changes on every update; an update that names an older value is refused as stale.
    pub last_modification_time_usecs: Usecs,
}

/// Why a policy specification is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy name is empty")]
    EmptyName,
    #[error("{what}: {unit} is not a valid unit here (allowed: {allowed})")]
    BadUnit { what: &'static str, unit: TimeUnit, allowed: &'static str },
    #[error("{what}: a frequency or duration of 0")]
    Zero { what: &'static str },
    #[error("the policy has no schedule at all")]
    NoSchedule,
}

const SCHEDULE_UNITS: &[TimeUnit] =
    &[TimeUnit::Minutes, TimeUnit::Hours, TimeUnit::Days, TimeUnit::Weeks, TimeUnit::Months];
const RETENTION_UNITS: &[TimeUnit] =
    &[TimeUnit::Days, TimeUnit::Weeks, TimeUnit::Months, TimeUnit::Years];

fn check_unit(
    what: &'static str,
    unit: TimeUnit,
    n: u32,
    allowed: &[TimeUnit],
    names: &'static str,
) -> Result<(), PolicyError> {
    if !allowed.contains(&unit) {
        return Err(PolicyError::BadUnit { what, unit, allowed: names });
    }
    if n == 0 {
        return Err(PolicyError::Zero { what });
    }
    Ok(())
}

impl Schedule {
    fn validate(self, what: &'static str) -> Result<(), PolicyError> {
        check_unit(what, self.unit, self.frequency, SCHEDULE_UNITS, "Minutes..Months")
    }
}

impl Retention {
    /// `days` days, no DataLock.
    pub fn days(days: u32) -> Self {
        Self { unit: TimeUnit::Days, duration: days, data_lock: None }
    }

    fn validate(&self, what: &'static str) -> Result<(), PolicyError> {
        check_unit(what, self.unit, self.duration, RETENTION_UNITS, "Days..Years")?;
        if let Some(lock) = &self.data_lock {
            check_unit("DataLock", lock.unit, lock.duration, RETENTION_UNITS, "Days..Years")?;
        }
        Ok(())
    }

    /// When a snapshot started at `start` expires under this retention.
    pub fn expiry(&self, start: Usecs) -> Usecs {
        start.plus(self.unit, self.duration)
    }

    /// The lock a snapshot started at `start` gets, if any: (mode, until).
    pub fn lock(&self, start: Usecs) -> Option<(DataLockMode, Usecs)> {
        self.data_lock.map(|l| (l.mode, start.plus(l.unit, l.duration)))
    }
}

impl PolicySpec {
    /// A policy with one incremental (`kRegular`) schedule and its retention, and nothing else:
    /// no full or log schedule, blackout window, extended retention or retries (set the fields
    /// to add them).
    pub fn incremental(name: impl Into<String>, every: Schedule, retention: Retention) -> Self {
        Self {
            name: name.into(),
            description: String::new(),
            backup: BackupPolicy {
                regular: RegularBackup { incremental: Some(every), full: None, retention },
                log: None,
            },
            blackout_windows: vec![],
            extended_retention: vec![],
            retry: RetryOptions::default(),
        }
    }

    /// Checks units, zero values and that something is scheduled.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.name.trim().is_empty() {
            return Err(PolicyError::EmptyName);
        }
        let regular = &self.backup.regular;
        if let Some(s) = &regular.incremental {
            s.validate("incremental schedule")?;
        }
        if let Some(s) = &regular.full {
            s.validate("full schedule")?;
        }
        regular.retention.validate("retention")?;
        if let Some(log) = &self.backup.log {
            log.schedule.validate("log schedule")?;
            log.retention.validate("log retention")?;
        }
        if regular.incremental.is_none() && regular.full.is_none() && self.backup.log.is_none() {
            return Err(PolicyError::NoSchedule);
        }
        for rule in &self.extended_retention {
            let every = rule.every;
            check_unit(
                "extended retention",
                every.unit,
                every.frequency,
                RETENTION_UNITS,
                "Days..Years",
            )?;
            rule.retention.validate("extended retention")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily() -> PolicySpec {
        let every_day = Schedule { unit: TimeUnit::Days, frequency: 1 };
        PolicySpec::incremental("daily", every_day, Retention::days(7))
    }

    #[test]
    fn validation_refuses_what_cannot_mean_anything() {
        assert_eq!(daily().validate(), Ok(()));
        let mut p = daily();
        p.name = " ".into();
        assert_eq!(p.validate(), Err(PolicyError::EmptyName));
        let mut p = daily();
        p.backup.regular.retention.unit = TimeUnit::Minutes;
        assert!(matches!(p.validate(), Err(PolicyError::BadUnit { .. })));
        let mut p = daily();
        p.backup.regular.incremental = Some(Schedule { unit: TimeUnit::Hours, frequency: 0 });
        assert_eq!(p.validate(), Err(PolicyError::Zero { what: "incremental schedule" }));
        let mut p = daily();
        p.backup.regular.incremental = None;
        assert_eq!(p.validate(), Err(PolicyError::NoSchedule));
        let mut p = daily();
        p.backup.regular.retention.data_lock = Some(DataLockConfig {
            mode: DataLockMode::Compliance,
            unit: TimeUnit::Years,
            duration: 0,
        });
        assert_eq!(p.validate(), Err(PolicyError::Zero { what: "DataLock" }));
    }
}
