//! Protected objects and their snapshots (the seed's `GET /data-protect/objects/{id}/snapshots`).
//!
//! An object's snapshots are found through the runs that made them: each run records, per
//! object, the snapshot it committed, and carries the retention, hold and lock those snapshots
//! are under. Object ids are allocated from one counter, so an id names one object across all
//! groups, deleted ones included.

use coldkeep_catalog::SnapshotId;
use coldkeep_model::{
    DataLock, GroupId, LogRange, ObjectId, ObjectKind, ProtectionGroup, Run, RunId, RunType,
    SnapshotRetention, Usecs,
};
use serde::Serialize;

use crate::{ProtectError, Protection};

/// The seed's filters of an object's snapshots; `None` and empty lists match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectSnapshotFilter {
    /// Snapshots taken at or after this time (`fromTimeUsecs`).
    pub from_time_usecs: Option<Usecs>,
    /// Snapshots taken at or before this time (`toTimeUsecs`).
    pub to_time_usecs: Option<Usecs>,
    /// Snapshots of runs started at or after this time (`runStartFromTimeUsecs`).
    pub run_start_from_time_usecs: Option<Usecs>,
    /// Snapshots of runs started at or before this time (`runStartToTimeUsecs`).
    pub run_start_to_time_usecs: Option<Usecs>,
    pub run_types: Vec<RunType>,
    pub protection_group_ids: Vec<GroupId>,
    pub run_instance_ids: Vec<RunId>,
}

/// One snapshot of an object, with the run that made it and what keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectSnapshot {
    pub snapshot: SnapshotId,
    pub object: ObjectId,
    pub group: GroupId,
    pub run: RunId,
    pub run_type: RunType,
    pub run_start_time_usecs: Usecs,
    /// When the backup of this object started.
    pub snapshot_time_usecs: Usecs,
    pub expiry_time_usecs: Option<Usecs>,
    pub legal_hold: bool,
    pub data_lock: Option<DataLock>,
}

/// A log snapshot and the span of time it covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogTimeRange {
    /// The log directory object.
    pub object: ObjectId,
    pub snapshot: SnapshotId,
    pub run: RunId,
    pub range: LogRange,
}

/// What an object can be brought back to between two times (the seed's
/// `POST /data-protect/snapshots/restore-points`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestorePoints {
    /// The object's full and incremental snapshots captured in the span, oldest first.
    pub full_snapshots: Vec<RestorePoint>,
    /// The log snapshots of the log directories protected with it (same group) whose ranges
    /// meet the span, oldest first: between two points, they reach any time they cover.
    pub log_ranges: Vec<LogTimeRange>,
}

/// A full or incremental snapshot and the time it holds the object as of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestorePoint {
    pub snapshot: SnapshotId,
    pub run: RunId,
    pub run_type: RunType,
    pub captured_usecs: Usecs,
}

impl Protection {
    /// The restore points of `object` between `from` and `to` (inclusive).
    pub fn restore_points(
        &self,
        object: ObjectId,
        from: Usecs,
        to: Usecs,
    ) -> Result<RestorePoints, ProtectError> {
        let mut points = RestorePoints::default();
        let groups = self.catalog.scan::<ProtectionGroup>(&[])?;
        let mut known = false;
        for group in groups.iter().filter(|g| g.object(object).is_some()) {
            known = true;
            let logs: Vec<ObjectId> = group
                .objects
                .iter()
                .filter(|o| o.spec.kind == ObjectKind::LogDirectory)
                .map(|o| o.id)
                .collect();
            for run in self.catalog.scan::<Run>(&group.id.key())? {
                if run.snapshots_deleted || !run.status.is_success() {
                    continue;
                }
                for o in run.objects.iter().filter(|o| o.status.is_success()) {
                    let (Some(snapshot), Some(captured)) = (o.snapshot, o.captured_usecs) else {
                        continue;
                    };
                    match o.log_range {
                        Some(range)
                            if logs.contains(&o.object)
                                && range.to_usecs >= from
                                && range.from_usecs <= to =>
                        {
                            let log =
                                LogTimeRange { object: o.object, snapshot, run: run.id, range };
                            points.log_ranges.push(log);
                        }
                        None if o.object == object && (from..=to).contains(&captured) => {
                            points.full_snapshots.push(RestorePoint {
                                snapshot,
                                run: run.id,
                                run_type: run.run_type,
                                captured_usecs: captured,
                            });
                        }
                        _ => {}
                    }
                }
            }
        }
        if !known {
            return Err(ProtectError::ObjectNotFound(object));
        }
        points.full_snapshots.sort_by_key(|p| p.captured_usecs);
        points.log_ranges.sort_by_key(|l| l.range.to_usecs);
        Ok(points)
    }

    /// The snapshots of `object` that still exist, oldest first.
    pub fn object_snapshots(
        &self,
        object: ObjectId,
        filter: &ObjectSnapshotFilter,
    ) -> Result<Vec<ObjectSnapshot>, ProtectError> {
        let groups: Vec<ProtectionGroup> = self
            .catalog
            .scan::<ProtectionGroup>(&[])?
            .into_iter()
            .filter(|g| {
                filter.protection_group_ids.is_empty()
                    || filter.protection_group_ids.contains(&g.id)
            })
            .collect();
        let mut out = Vec::new();
        let mut known = false;
        for group in &groups {
            known |= group.object(object).is_some();
            for run in self.catalog.scan::<Run>(&group.id.key())? {
                known |= run.objects.iter().any(|o| o.object == object);
                if run.snapshots_deleted || !run_matches(&run, filter) {
                    continue;
                }
                let made = run.objects.iter().filter(|o| o.object == object);
                for snapshot in made.filter_map(|o| o.snapshot) {
                    let Some(record) = self.catalog.snapshot(snapshot)? else { continue };
                    let taken = Usecs(record.start_time_us);
                    if filter.from_time_usecs.is_some_and(|t| taken < t)
                        || filter.to_time_usecs.is_some_and(|t| taken > t)
                    {
                        continue;
                    }
                    out.push(entry(&run, object, snapshot, taken, run.retention));
                }
            }
        }
        if !known && filter.protection_group_ids.is_empty() {
            return Err(ProtectError::ObjectNotFound(object));
        }
        out.sort_by_key(|s| s.snapshot);
        Ok(out)
    }
}

fn run_matches(run: &Run, f: &ObjectSnapshotFilter) -> bool {
    (f.run_instance_ids.is_empty() || f.run_instance_ids.contains(&run.id))
        && (f.run_types.is_empty() || f.run_types.contains(&run.run_type))
        && f.run_start_from_time_usecs.is_none_or(|t| run.start_time_usecs >= t)
        && f.run_start_to_time_usecs.is_none_or(|t| run.start_time_usecs <= t)
}

fn entry(
    run: &Run,
    object: ObjectId,
    snapshot: SnapshotId,
    taken: Usecs,
    retention: SnapshotRetention,
) -> ObjectSnapshot {
    ObjectSnapshot {
        snapshot,
        object,
        group: run.group,
        run: run.id,
        run_type: run.run_type,
        run_start_time_usecs: run.start_time_usecs,
        snapshot_time_usecs: taken,
        expiry_time_usecs: retention.expiry,
        legal_hold: retention.legal_hold,
        data_lock: retention.data_lock,
    }
}

/// What a point-in-time recovery restores: the newest base at or before the time, and the
/// first log snapshot captured at or after it (its log directory holds every segment written
/// up to its capture, so the database can replay up to the time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PointInTimePlan {
    pub at_usecs: Usecs,
    pub base: RestorePoint,
    pub logs: LogTimeRange,
}

impl RestorePoints {
    /// The base and the logs that reach `at`, or why there are none.
    pub fn plan(&self, object: ObjectId, at: Usecs) -> Result<PointInTimePlan, ProtectError> {
        let base = self
            .full_snapshots
            .iter()
            .rev()
            .find(|p| p.captured_usecs <= at)
            .ok_or(ProtectError::NoRestorePoint { object, at })?;
        let logs = self
            .log_ranges
            .iter()
            .find(|l| l.range.to_usecs >= at && l.range.to_usecs >= base.captured_usecs)
            .ok_or_else(|| ProtectError::LogsDoNotReach {
                at,
                covered_until: self.log_ranges.last().map(|l| l.range.to_usecs),
            })?;
        Ok(PointInTimePlan { at_usecs: at, base: base.clone(), logs: logs.clone() })
    }
}

/// The seed's `GET /data-protect/search/protected-objects` query. Empty lists and `None` match
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedObjectSearch {
    /// Matched, case-insensitively, against object names and paths and group names: `""` or
    /// `*` for all, `prefix*` for names that start so, anything else as a substring.
    pub search_string: String,
    pub object_ids: Vec<ObjectId>,
    pub protection_group_ids: Vec<GroupId>,
    /// Only objects with a successful snapshot taken at or after this time.
    pub snapshot_from_time_usecs: Option<Usecs>,
    /// Only objects with a successful snapshot taken at or before this time.
    pub snapshot_to_time_usecs: Option<Usecs>,
    /// Only objects that these runs backed up.
    pub run_instance_ids: Vec<RunId>,
}

/// A protected object as found: where it is protected, its latest snapshot and how its last
/// run went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtectedObjectInfo {
    pub object: coldkeep_model::ProtectedObject,
    pub group: GroupId,
    pub group_name: String,
    pub latest_snapshot: Option<ObjectSnapshot>,
    /// The last run that included the object, and the object's status in it.
    pub last_run: Option<(RunId, coldkeep_model::RunStatus)>,
}

fn search_matches(search: &str, texts: &[&str]) -> bool {
    let search = search.to_lowercase();
    if search.is_empty() || search == "*" {
        return true;
    }
    texts.iter().any(|t| {
        let t = t.to_lowercase();
        match search.strip_suffix('*') {
            Some(prefix) => t.starts_with(prefix),
            None => t.contains(&search),
        }
    })
}

impl Protection {
    /// Protected objects matching `q`, each with its latest snapshot and last run.
    pub fn search_protected_objects(
        &self,
        q: &ProtectedObjectSearch,
    ) -> Result<Vec<ProtectedObjectInfo>, ProtectError> {
        let mut found = Vec::new();
        for group in self.catalog.scan::<ProtectionGroup>(&[])? {
            if !q.protection_group_ids.is_empty() && !q.protection_group_ids.contains(&group.id) {
                continue;
            }
            let runs = self.catalog.scan::<Run>(&group.id.key())?;
            for object in &group.objects {
                let path = object.spec.path().to_string_lossy();
                let texts = [object.spec.name.as_str(), path.as_ref(), group.name.as_str()];
                if !(q.object_ids.is_empty() || q.object_ids.contains(&object.id))
                    || !search_matches(&q.search_string, &texts)
                {
                    continue;
                }
                let mine = |r: &Run| r.objects.iter().find(|o| o.object == object.id).cloned();
                let last_run = runs.iter().rev().find_map(|r| mine(r).map(|o| (r.id, o.status)));
                if !q.run_instance_ids.is_empty()
                    && !runs.iter().any(|r| q.run_instance_ids.contains(&r.id) && mine(r).is_some())
                {
                    continue;
                }
                let mut latest = None;
                for run in runs.iter().rev().filter(|r| !r.snapshots_deleted) {
                    let Some(o) = mine(run).filter(|o| o.status.is_success()) else { continue };
                    let Some(snapshot) = o.snapshot else { continue };
                    let Some(record) = self.catalog.snapshot(snapshot)? else { continue };
                    let taken = Usecs(record.start_time_us);
                    if q.snapshot_from_time_usecs.is_some_and(|t| taken < t)
                        || q.snapshot_to_time_usecs.is_some_and(|t| taken > t)
                    {
                        continue;
                    }
                    latest = Some(entry(run, object.id, snapshot, taken, run.retention));
                    break;
                }
                let wants_snapshot =
                    q.snapshot_from_time_usecs.is_some() || q.snapshot_to_time_usecs.is_some();
                if wants_snapshot && latest.is_none() {
                    continue;
                }
                found.push(ProtectedObjectInfo {
                    object: object.clone(),
                    group: group.id,
                    group_name: group.name.clone(),
                    latest_snapshot: latest,
                    last_run,
                });
            }
        }
        Ok(found)
    }
}
