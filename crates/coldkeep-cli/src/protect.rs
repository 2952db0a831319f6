//! `coldkeep policy`, `group`, `run`, `audit` and `tick`: the data-protection calls of the seed
//! (`/data-protect/policies`, `/protection-groups`, `/protection-groups/{id}/runs`) on the
//! command line.
//!
//! Schedules and retentions are written `15m`, `4h`, `1d`, `2w`, `3mo`, `1y`; a DataLock as
//! `compliance:30d`; a blackout window as `sat 22:00-06:00` (UTC); an extended retention rule as
//! `1w:12w` (keep the first snapshot of every week for twelve weeks). An update changes only what
//! its flags name.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use coldkeep::model::{
    BackupPolicy, BlackoutWindow, DataLockConfig, DataLockMode, ExtendedRetention, GroupId,
    GroupSpec, LogBackup, ObjectId, ObjectKind, ObjectSpec, Policy, PolicyId, PolicySpec, Priority,
    ProtectionGroup, Recovery, RecoveryId, RecoveryParams, RegularBackup, Retention, RetryOptions,
    Run, RunId, RunOptions, RunRequest, RunStatus, RunType, RunUpdate, Schedule, SourceId,
    SourceRegistration, SourceSpec, TimeOfDay, TimeUnit, Usecs, Weekday,
};
use coldkeep::{
    Engine, GroupFilter, ObjectSnapshotFilter, PolicyFilter, ProtectedObjectSearch, RecoveryFilter,
    RecoveryRequest, RunFilter, SnapshotId, SnapshotStats,
};
use serde::{Deserialize, Serialize};

use crate::session::Session;
use crate::view::{bytes, Name};

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum PolicyCmd {
    /// Create a policy.
    Create {
        name: String,
        #[command(flatten)]
        spec: PolicyArgs,
    },
    /// List policies.
    List {
        #[arg(long = "id")]
        ids: Vec<PolicyId>,
        #[arg(long = "name")]
        names: Vec<String>,
    },
    Show {
        id: PolicyId,
    },
    /// Change what the flags name; the rest stays.
    Update {
        id: PolicyId,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        spec: PolicyArgs,
        /// Refuse the update unless the policy was last modified at this time (µs), as read.
        #[arg(long)]
        if_modified_at: Option<i64>,
    },
    /// Delete a policy no protection group uses.
    Delete {
        id: PolicyId,
    },
}

/// What may be cleared by `policy update --clear`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum PolicyPart {
    Incremental,
    Full,
    Log,
    Lock,
    Blackouts,
    Extended,
}

#[derive(Args, Debug, Clone, Default, Serialize, Deserialize)]
pub struct PolicyArgs {
    /// Incremental (kRegular) backups every 15m, 4h, 1d, 2w, 1mo...
    #[arg(long, value_parser = parse_schedule)]
    incremental: Option<Schedule>,
    /// Full (kFull) backups every...
    #[arg(long, value_parser = parse_schedule)]
    full: Option<Schedule>,
    /// Log (kLog) backups every...
    #[arg(long, value_parser = parse_schedule)]
    log: Option<Schedule>,
    /// Keep regular and full snapshots this long (7d, 4w, 6mo, 1y); required at creation.
    #[arg(long, value_parser = parse_retention)]
    retain: Option<Retention>,
    /// Keep log snapshots this long (default: as `--retain`).
    #[arg(long, value_parser = parse_retention)]
    log_retain: Option<Retention>,
    /// DataLock of new snapshots: compliance:30d or administrative:7d.
    #[arg(long, value_parser = parse_lock)]
    lock: Option<DataLockConfig>,
    /// Extended retention EVERY:KEEP, e.g. 1w:12w (repeatable; replaces the list).
    #[arg(long = "extended", value_parser = parse_extended)]
    extended: Vec<ExtendedRetention>,
    /// Blackout window, UTC, e.g. "sat 22:00-06:00" (repeatable; replaces the list).
    #[arg(long = "blackout", value_parser = parse_blackout)]
    blackouts: Vec<BlackoutWindow>,
    /// Retries of a failed object.
    #[arg(long)]
    retries: Option<u32>,
    #[arg(long)]
    description: Option<String>,
    /// Remove a part of the policy (repeatable).
    #[arg(long, value_enum)]
    clear: Vec<PolicyPart>,
}

impl PolicyArgs {
    /// `spec` with every part these flags name changed.
    fn apply(&self, spec: &mut PolicySpec) {
        let regular = &mut spec.backup.regular;
        let lock = regular.retention.data_lock;
        if let Some(r) = self.retain {
            regular.retention = Retention { data_lock: lock, ..r };
        }
        if let Some(l) = self.lock {
            regular.retention.data_lock = Some(l);
        }
        regular.incremental = self.incremental.or(regular.incremental);
        regular.full = self.full.or(regular.full);
        let regular_retention = regular.retention;
        if let Some(schedule) = self.log {
            let retention = self
                .log_retain
                .or(spec.backup.log.map(|l| l.retention))
                .unwrap_or(regular_retention);
            spec.backup.log = Some(LogBackup { schedule, retention });
        } else if let (Some(log), Some(r)) = (&mut spec.backup.log, self.log_retain) {
            log.retention = r;
        }
        if !self.extended.is_empty() {
            spec.extended_retention.clone_from(&self.extended);
        }
        if !self.blackouts.is_empty() {
            spec.blackout_windows.clone_from(&self.blackouts);
        }
        if let Some(n) = self.retries {
            spec.retry.retries = n;
        }
        if let Some(d) = &self.description {
            spec.description.clone_from(d);
        }
        for part in &self.clear {
            match part {
                PolicyPart::Incremental => spec.backup.regular.incremental = None,
                PolicyPart::Full => spec.backup.regular.full = None,
                PolicyPart::Log => spec.backup.log = None,
                PolicyPart::Lock => spec.backup.regular.retention.data_lock = None,
                PolicyPart::Blackouts => spec.blackout_windows.clear(),
                PolicyPart::Extended => spec.extended_retention.clear(),
            }
        }
    }
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum GroupCmd {
    /// Create a protection group.
    Create {
        name: String,
        #[arg(long)]
        policy: PolicyId,
        #[command(flatten)]
        objects: ObjectArgs,
        #[command(flatten)]
        settings: GroupArgs,
    },
    /// List protection groups.
    List {
        #[arg(long = "id")]
        ids: Vec<GroupId>,
        #[arg(long = "name")]
        names: Vec<String>,
        #[arg(long = "policy")]
        policies: Vec<PolicyId>,
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        paused: Option<bool>,
        #[arg(long, num_args = 0..=1, default_missing_value = "true")]
        active: Option<bool>,
        /// Only groups deleted with their snapshots kept.
        #[arg(long)]
        deleted: bool,
        /// Show each group's latest run.
        #[arg(long)]
        last_run: bool,
    },
    Show {
        id: GroupId,
    },
    /// Change what the flags name; objects that stay keep their ids and history.
    Update {
        id: GroupId,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        policy: Option<PolicyId>,
        /// Objects to add.
        #[command(flatten)]
        add: ObjectArgs,
        /// Object ids to stop protecting.
        #[arg(long = "remove-object")]
        remove: Vec<ObjectId>,
        #[command(flatten)]
        settings: GroupArgs,
        /// Refuse the update unless the group was last modified at this time (µs), as read.
        #[arg(long)]
        if_modified_at: Option<i64>,
    },
    /// Delete a group; its snapshots stay unless `--delete-snapshots`.
    Delete {
        id: GroupId,
        #[arg(long)]
        delete_snapshots: bool,
    },
}

/// Objects named on the command line.
#[derive(Args, Debug, Clone, Default, Serialize, Deserialize)]
pub struct ObjectArgs {
    /// A directory tree to protect (repeatable).
    #[arg(long = "dir")]
    dirs: Vec<PathBuf>,
    /// A directory of append-only logs (repeatable).
    #[arg(long = "log-dir")]
    log_dirs: Vec<PathBuf>,
    /// A disk image or large file (repeatable).
    #[arg(long = "image")]
    images: Vec<PathBuf>,
}

impl ObjectArgs {
    fn specs(&self) -> Vec<ObjectSpec> {
        let kinds = [
            (ObjectKind::DirectoryTree, &self.dirs),
            (ObjectKind::LogDirectory, &self.log_dirs),
            (ObjectKind::DiskImage, &self.images),
        ];
        kinds
            .into_iter()
            .flat_map(|(kind, paths)| {
                paths.iter().map(move |p| ObjectSpec::new(p.display().to_string(), kind, p))
            })
            .collect()
    }

    /// Paths made absolute against the caller's directory, before they travel to a server.
    pub fn absolutize(&mut self) -> Result<()> {
        for p in self.dirs.iter_mut().chain(&mut self.log_dirs).chain(&mut self.images) {
            *p = std::path::absolute(&*p)?;
        }
        Ok(())
    }
}

#[derive(Args, Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupArgs {
    /// No run is scheduled while paused.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    paused: Option<bool>,
    /// An inactive group is never scheduled.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    active: Option<bool>,
    /// Daily, weekly and monthly runs start at this time of day, UTC (HH:MM).
    #[arg(long, value_parser = parse_time_of_day)]
    start_time: Option<TimeOfDay>,
    #[arg(long, value_parser = parse_priority)]
    priority: Option<Priority>,
    #[arg(long)]
    description: Option<String>,
    /// Cancel a running run when a blackout window begins.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    abort_in_blackouts: Option<bool>,
}

impl GroupArgs {
    fn apply(&self, spec: &mut GroupSpec) {
        spec.is_paused = self.paused.unwrap_or(spec.is_paused);
        spec.is_active = self.active.unwrap_or(spec.is_active);
        spec.start_time = self.start_time.unwrap_or(spec.start_time);
        spec.priority = self.priority.unwrap_or(spec.priority);
        spec.abort_in_blackouts = self.abort_in_blackouts.unwrap_or(spec.abort_in_blackouts);
        if let Some(d) = &self.description {
            spec.description.clone_from(d);
        }
    }
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum RunCmd {
    /// Start a run of a group now. With a server (`coldkeep serve`) it returns at once;
    /// without one the run executes in this process, which waits for it and meanwhile answers
    /// other commands (pause, cancel...) about it.
    Start {
        group: GroupId,
        /// regular (incremental), full or log.
        #[arg(long = "type", value_parser = parse_run_type, default_value = "regular")]
        run_type: RunType,
        /// Only these objects (repeatable; default: all of the group's).
        #[arg(long = "object")]
        objects: Vec<ObjectId>,
        /// Attempts after the first when an object fails.
        #[arg(long, default_value_t = 0)]
        retries: u32,
        /// Cancel the run when it has been running this long.
        #[arg(long)]
        time_limit_mins: Option<u32>,
        /// Create it paused; it starts when resumed.
        #[arg(long)]
        suspended: bool,
        #[arg(long, value_parser = parse_priority, default_value = "medium")]
        priority: Priority,
        #[arg(long, default_value = "")]
        description: String,
        /// Wait for the run to end, with a progress bar (exit code 4 unless it succeeded).
        #[arg(long)]
        wait: bool,
    },
    /// List a group's runs, oldest first.
    List {
        group: GroupId,
        #[arg(long = "run")]
        runs: Vec<RunId>,
        #[arg(long = "type", value_parser = parse_run_type)]
        run_types: Vec<RunType>,
        #[arg(long = "status", value_parser = parse_run_status)]
        statuses: Vec<RunStatus>,
        /// When they started (runs), were taken (snapshots) or began (recoveries).
        #[command(flatten)]
        span: TimeRange,
        /// The newest N runs.
        #[arg(long)]
        max: Option<usize>,
        /// Include per-object results.
        #[arg(long)]
        objects: bool,
    },
    /// One run with its per-object results (and live counters while it runs).
    Show { group: GroupId, run: RunId },
    /// Pause a running run at its next chunk boundary.
    Pause { group: GroupId, run: RunId },
    /// Resume a paused run where it stopped.
    Resume { group: GroupId, run: RunId },
    /// Cancel a run; nothing half-done is committed.
    Cancel { group: GroupId, run: RunId },
    /// Change the retention, legal hold or DataLock of runs' snapshots, or delete them; all the
    /// runs named or none (audited).
    Update {
        group: GroupId,
        #[arg(required = true)]
        runs: Vec<RunId>,
        /// Keep the snapshots N more days.
        #[arg(long, conflicts_with = "reduce_days")]
        extend_days: Option<u32>,
        /// Keep the snapshots N fewer days.
        #[arg(long)]
        reduce_days: Option<u32>,
        /// Place (on) or lift (off) a legal hold; both need --admin (the seed's legal-hold right).
        #[arg(long, value_parser = parse_on_off)]
        legal_hold: Option<bool>,
        /// Lock the snapshots until they expire: compliance or administrative.
        #[arg(long, value_parser = parse_lock_mode)]
        lock: Option<DataLockMode>,
        /// Delete the snapshots now.
        #[arg(long)]
        delete_snapshots: bool,
    },
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum ObjectCmd {
    /// An object's snapshots that still exist, oldest first.
    Snapshots {
        object: ObjectId,
        /// When they started (runs), were taken (snapshots) or began (recoveries).
        #[command(flatten)]
        span: TimeRange,
        /// Snapshots of runs started at or after this time.
        #[arg(long)]
        run_from: Option<Usecs>,
        /// Snapshots of runs started at or before this time.
        #[arg(long)]
        run_to: Option<Usecs>,
        #[arg(long = "type", value_parser = parse_run_type)]
        run_types: Vec<RunType>,
        #[arg(long = "group")]
        groups: Vec<GroupId>,
        #[arg(long = "run")]
        runs: Vec<RunId>,
    },
    /// Protected objects whose name, path or group name matches (`*` all, `pre*` a prefix,
    /// else a substring), with their latest snapshot and last run.
    Search {
        #[arg(default_value = "*")]
        search: String,
        #[arg(long = "object")]
        objects: Vec<ObjectId>,
        #[arg(long = "group")]
        groups: Vec<GroupId>,
        #[arg(long = "run")]
        runs: Vec<RunId>,
        /// When they started (runs), were taken (snapshots) or began (recoveries).
        #[command(flatten)]
        span: TimeRange,
    },
    /// Full and incremental snapshots of an object between two times, and the time ranges the
    /// log directories protected with it cover.
    RestorePoints {
        object: ObjectId,
        /// 2026-11-23T07:45:00Z, 2026-11-23, or µs since the epoch.
        #[arg(long)]
        from: Usecs,
        #[arg(long)]
        to: Usecs,
    },
}

/// A span of time on the command line: `--from` and `--to`, each 2026-11-23T07:45:00Z,
/// 2026-11-23, or µs since the epoch, both inclusive.
#[derive(Args, Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct TimeRange {
    /// From this time on.
    #[arg(long)]
    pub from: Option<Usecs>,
    /// Up to this time.
    #[arg(long)]
    pub to: Option<Usecs>,
}

// ---- parsers of the command-line forms ----

fn parse_every(s: &str) -> Result<(TimeUnit, u32), String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n = n.parse::<u32>().map_err(|_| format!("{s:?}: expected a count then a unit"))?;
    let unit = match unit {
        "m" | "min" => TimeUnit::Minutes,
        "h" => TimeUnit::Hours,
        "d" => TimeUnit::Days,
        "w" => TimeUnit::Weeks,
        "mo" => TimeUnit::Months,
        "y" => TimeUnit::Years,
        _ => return Err(format!("{s:?}: unit must be m, h, d, w, mo or y")),
    };
    Ok((unit, n))
}

fn parse_schedule(s: &str) -> Result<Schedule, String> {
    parse_every(s).map(|(unit, frequency)| Schedule { unit, frequency })
}

fn parse_retention(s: &str) -> Result<Retention, String> {
    parse_every(s).map(|(unit, duration)| Retention { unit, duration, data_lock: None })
}

fn parse_lock_mode(s: &str) -> Result<DataLockMode, String> {
    match s.to_ascii_lowercase().as_str() {
        "compliance" => Ok(DataLockMode::Compliance),
        "administrative" => Ok(DataLockMode::Administrative),
        _ => Err(format!("{s:?}: compliance or administrative")),
    }
}

fn parse_lock(s: &str) -> Result<DataLockConfig, String> {
    let (mode, every) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected MODE:30d"))?;
    let (unit, duration) = parse_every(every)?;
    Ok(DataLockConfig { mode: parse_lock_mode(mode)?, unit, duration })
}

fn parse_extended(s: &str) -> Result<ExtendedRetention, String> {
    let (every, keep) = s.split_once(':').ok_or_else(|| format!("{s:?}: expected EVERY:KEEP"))?;
    Ok(ExtendedRetention { every: parse_schedule(every)?, retention: parse_retention(keep)? })
}

fn parse_time_of_day(s: &str) -> Result<TimeOfDay, String> {
    s.split_once(':')
        .and_then(|(h, m)| TimeOfDay::new(h.parse().ok()?, m.parse().ok()?))
        .ok_or_else(|| format!("{s:?}: expected HH:MM"))
}

fn parse_blackout(s: &str) -> Result<BlackoutWindow, String> {
    let bad = || format!("{s:?}: expected DAY HH:MM-HH:MM, e.g. \"sat 22:00-06:00\"");
    let (day, span) = s.trim().split_once(' ').ok_or_else(bad)?;
    let day = Weekday::ALL
        .into_iter()
        .find(|d| format!("{d:?}").to_ascii_lowercase().starts_with(&day.to_ascii_lowercase()))
        .filter(|_| day.len() >= 2)
        .ok_or_else(bad)?;
    let (start, end) = span.trim().split_once('-').ok_or_else(bad)?;
    Ok(BlackoutWindow { day, start: parse_time_of_day(start)?, end: parse_time_of_day(end)? })
}

fn parse_priority(s: &str) -> Result<Priority, String> {
    match s.to_ascii_lowercase().trim_start_matches('k') {
        "low" => Ok(Priority::Low),
        "medium" => Ok(Priority::Medium),
        "high" => Ok(Priority::High),
        _ => Err(format!("{s:?}: low, medium or high")),
    }
}

fn parse_run_type(s: &str) -> Result<RunType, String> {
    RunType::parse(s).ok_or_else(|| format!("{s:?}: regular, full or log"))
}

fn parse_run_status(s: &str) -> Result<RunStatus, String> {
    RunStatus::parse(s).ok_or_else(|| format!("{s:?}: one of {:?}", RunStatus::ALL))
}

fn parse_on_off(s: &str) -> Result<bool, String> {
    match s {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("{s:?}: on or off")),
    }
}

// ---- execution ----

pub fn policy(engine: &Engine, cmd: &PolicyCmd, s: &mut Session<'_>) -> Result<()> {
    match cmd {
        PolicyCmd::Create { name, spec } => {
            let retention = spec.retain.context("a new policy needs --retain")?;
            let mut new = PolicySpec {
                name: name.clone(),
                description: String::new(),
                backup: BackupPolicy {
                    regular: RegularBackup { incremental: None, full: None, retention },
                    log: None,
                },
                blackout_windows: vec![],
                extended_retention: vec![],
                retry: RetryOptions::default(),
            };
            spec.apply(&mut new);
            let policy = engine.create_policy(new)?;
            s.print(&policy, || policy_line(&policy))
        }
        PolicyCmd::List { ids, names } => {
            let filter = PolicyFilter { ids: ids.clone(), names: names.clone() };
            let policies = engine.policies(&filter)?;
            s.print(&policies, || policies.iter().map(policy_line).collect::<Vec<_>>().join("\n"))
        }
        PolicyCmd::Show { id } => {
            let policy = engine.policy(*id)?;
            s.print(&policy, || policy_line(&policy))
        }
        PolicyCmd::Update { id, name, spec, if_modified_at } => {
            let current = engine.policy(*id)?;
            let mut new = current.spec.clone();
            if let Some(n) = name {
                new.name.clone_from(n);
            }
            spec.apply(&mut new);
            let expected = if_modified_at.map_or(current.last_modification_time_usecs, Usecs);
            let policy = engine.update_policy(*id, new, Some(expected))?;
            s.print(&policy, || policy_line(&policy))
        }
        PolicyCmd::Delete { id } => {
            engine.delete_policy(*id)?;
            s.print(&serde_json::json!({ "deleted_policy": id }), || format!("deleted policy {id}"))
        }
    }
}

pub fn group(engine: &Engine, cmd: &GroupCmd, s: &mut Session<'_>) -> Result<()> {
    match cmd {
        GroupCmd::Create { name, policy, objects, settings } => {
            let mut spec = GroupSpec::new(name.clone(), *policy, objects.specs());
            settings.apply(&mut spec);
            let group = engine.create_group(spec)?;
            s.print(&group, || group_text(&group))
        }
        GroupCmd::List { ids, names, policies, paused, active, deleted, last_run } => {
            let filter = GroupFilter {
                ids: ids.clone(),
                names: names.clone(),
                policy_ids: policies.clone(),
                is_paused: *paused,
                is_active: *active,
                is_deleted: deleted.then_some(true),
                include_last_run_info: *last_run,
            };
            let groups = engine.groups(&filter)?;
            let view: Vec<_> = groups
                .iter()
                .map(|g| serde_json::json!({ "group": g.group, "last_run": g.last_run }))
                .collect();
            s.print(&view, || {
                groups
                    .iter()
                    .map(|g| {
                        let last =
                            g.last_run.as_ref().map(|r| format!("\n  last: {}", run_line(r)));
                        format!("{}{}", group_line(&g.group), last.unwrap_or_default())
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        GroupCmd::Show { id } => {
            let group = engine.group(*id)?;
            s.print(&group, || group_text(&group))
        }
        GroupCmd::Update { id, name, policy, add, remove, settings, if_modified_at } => {
            let current = engine.group(*id)?;
            if let Some(bad) = remove.iter().find(|o| current.object(**o).is_none()) {
                bail!("object {bad} is not in protection group {id}");
            }
            let mut spec = current.spec();
            spec.objects = current
                .objects
                .iter()
                .filter(|o| !remove.contains(&o.id))
                .map(|o| o.spec.clone())
                .chain(add.specs())
                .collect();
            if let Some(n) = name {
                spec.name.clone_from(n);
            }
            spec.policy = policy.unwrap_or(spec.policy);
            settings.apply(&mut spec);
            let expected = if_modified_at.map_or(current.last_modification_time_usecs, Usecs);
            let group = engine.update_group(*id, spec, Some(expected))?;
            s.print(&group, || group_text(&group))
        }
        GroupCmd::Delete { id, delete_snapshots } => {
            let principal = s.principal.clone();
            engine.delete_group(*id, *delete_snapshots, &principal)?;
            s.print(
                &serde_json::json!({ "deleted_group": id, "snapshots_deleted": delete_snapshots }),
                || {
                    let what = if *delete_snapshots {
                        "and its snapshots"
                    } else {
                        "(kept its snapshots)"
                    };
                    format!("deleted protection group {id} {what}")
                },
            )
        }
    }
}

/// A run as shown: the record, and its live counters while it executes here.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunView {
    pub run: Run,
    pub progress: Option<SnapshotStats>,
}

pub fn run(engine: &Engine, cmd: &RunCmd, s: &mut Session<'_>) -> Result<()> {
    let show = |s: &mut Session<'_>, run: Run| {
        let progress = if run.status.is_terminal() {
            None
        } else {
            engine.run_progress(run.group, run.id).ok().map(|p| p.stats())
        };
        let view = RunView { run, progress };
        s.print(&view, || run_text(&view))
    };
    match cmd {
        RunCmd::Start {
            group,
            run_type,
            objects,
            retries,
            time_limit_mins,
            suspended,
            priority,
            description,
            wait: _,
        } => {
            let request = RunRequest {
                run_type: *run_type,
                objects: (!objects.is_empty()).then(|| objects.clone()),
                options: RunOptions {
                    retries: *retries,
                    total_running_time_mins: *time_limit_mins,
                    start_suspended: *suspended,
                    priority: *priority,
                    description: description.clone(),
                },
            };
            let run = engine.start_run(*group, request)?;
            show(s, run)
        }
        RunCmd::List { group, runs, run_types, statuses, span, max, objects } => {
            let filter = RunFilter {
                run_ids: runs.clone(),
                start_time_usecs: span.from,
                end_time_usecs: span.to,
                run_types: run_types.clone(),
                statuses: statuses.clone(),
                max_count: *max,
                // The text view sums the objects' counters, so it always needs them.
                include_object_details: *objects || !s.json,
            };
            let runs = engine.runs(*group, &filter)?;
            s.print(&runs, || runs.iter().map(run_line).collect::<Vec<_>>().join("\n"))
        }
        RunCmd::Show { group, run } => show(s, engine.run(*group, *run)?),
        RunCmd::Pause { group, run } => show(s, engine.pause_run(*group, *run)?),
        RunCmd::Resume { group, run } => show(s, engine.resume_run(*group, *run)?),
        RunCmd::Cancel { group, run } => show(s, engine.cancel_run(*group, *run)?),
        RunCmd::Update {
            group,
            runs,
            extend_days,
            reduce_days,
            legal_hold,
            lock,
            delete_snapshots,
        } => {
            let days = extend_days.map(i64::from).or(reduce_days.map(|d| -i64::from(d)));
            let updates: Vec<RunUpdate> = runs
                .iter()
                .map(|r| RunUpdate {
                    run: Some(*r),
                    days_to_keep: days,
                    enable_legal_hold: *legal_hold,
                    data_lock: *lock,
                    delete_snapshots: *delete_snapshots,
                })
                .collect();
            let principal = s.principal.clone();
            let changed = engine.update_runs(*group, &updates, &principal)?;
            s.print(&changed, || changed.iter().map(run_line).collect::<Vec<_>>().join("\n"))
        }
    }
}

pub fn object(engine: &Engine, cmd: &ObjectCmd, s: &mut Session<'_>) -> Result<()> {
    match cmd {
        ObjectCmd::Snapshots { object, span, run_from, run_to, run_types, groups, runs } => {
            let filter = ObjectSnapshotFilter {
                from_time_usecs: span.from,
                to_time_usecs: span.to,
                run_start_from_time_usecs: *run_from,
                run_start_to_time_usecs: *run_to,
                run_types: run_types.clone(),
                protection_group_ids: groups.clone(),
                run_instance_ids: runs.clone(),
            };
            let snaps = engine.object_snapshots(*object, &filter)?;
            s.print(&snaps, || {
                snaps.iter().map(object_snapshot_line).collect::<Vec<_>>().join("\n")
            })
        }
        ObjectCmd::Search { search, objects, groups, runs, span } => {
            let query = ProtectedObjectSearch {
                search_string: search.clone(),
                object_ids: objects.clone(),
                protection_group_ids: groups.clone(),
                snapshot_from_time_usecs: span.from,
                snapshot_to_time_usecs: span.to,
                run_instance_ids: runs.clone(),
            };
            let found = engine.search_protected_objects(&query)?;
            s.print(&found, || {
                let line = |o: &coldkeep::ProtectedObjectInfo| {
                    let latest = o.latest_snapshot.as_ref().map_or_else(
                        || "no snapshot".to_owned(),
                        |l| format!("latest snapshot {} at {}", l.snapshot, l.snapshot_time_usecs),
                    );
                    let last = o.last_run.map(|(r, st)| format!(", last run {r} {st}"));
                    format!(
                        "object {} {:?} ({:?} {}) in group {} {:?}: {latest}{}",
                        o.object.id,
                        o.object.spec.name,
                        o.object.spec.kind,
                        o.object.spec.path().display(),
                        o.group,
                        o.group_name,
                        last.unwrap_or_default()
                    )
                };
                found.iter().map(line).collect::<Vec<_>>().join("\n")
            })
        }
        ObjectCmd::RestorePoints { object, from, to } => {
            let points = engine.restore_points(*object, *from, *to)?;
            s.print(&points, || {
                let bases = points.full_snapshots.iter().map(|p| {
                    let (t, snap, run) = (p.run_type, p.snapshot, p.run);
                    format!("{t} snapshot {snap} (run {run}) as of {}", p.captured_usecs)
                });
                let logs = points.log_ranges.iter().map(|l| {
                    let (snap, run, object) = (l.snapshot, l.run, l.object);
                    let (a, b) = (l.range.from_usecs, l.range.to_usecs);
                    format!("kLog snapshot {snap} (run {run}, object {object}) covers {a} .. {b}")
                });
                bases.chain(logs).collect::<Vec<_>>().join("\n")
            })
        }
    }
}

fn object_snapshot_line(o: &coldkeep::ObjectSnapshot) -> String {
    let expiry = o.expiry_time_usecs.map(|e| format!(", expires {e}"));
    format!(
        "snapshot {} of object {}: group {} run {} ({}) at {}{}{}",
        o.snapshot,
        o.object,
        o.group,
        o.run,
        o.run_type,
        o.snapshot_time_usecs,
        expiry.unwrap_or_default(),
        if o.legal_hold { ", legal hold" } else { "" }
    )
}

pub fn audit(engine: &Engine, s: &mut Session<'_>) -> Result<()> {
    let log = engine.audit_log()?;
    s.print(&log, || {
        log.iter()
            .map(|e| {
                format!(
                    "{} {} {} {}: {} -> {}",
                    e.time_usecs, e.principal, e.action, e.target, e.before, e.after
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// Runs the scheduler once and waits for the runs it started: `coldkeep tick` from cron (every
/// minute, say) is a scheduler without a daemon.
pub fn tick(engine: &Engine, s: &mut Session<'_>) -> Result<()> {
    let report = engine.tick()?;
    let mut ended = Vec::new();
    for (group, run, _, _) in &report.started {
        ended.push(engine.wait_run(*group, *run)?);
    }
    let view = serde_json::json!({
        "now_usecs": report.now,
        "started": ended,
        "missed": report.missed.iter().map(|(g, r, t, slot)| serde_json::json!({"group": g, "run": r, "run_type": t, "slot_usecs": slot})).collect::<Vec<_>>(),
        "blacked_out": report.blacked_out.iter().map(|(g, t, slot)| serde_json::json!({"group": g, "run_type": t, "slot_usecs": slot})).collect::<Vec<_>>(),
        "aborted": report.aborted.iter().map(|(g, r)| serde_json::json!({"group": g, "run": r})).collect::<Vec<_>>(),
    });
    s.print(&view, || {
        let mut lines: Vec<String> = ended.iter().map(run_line).collect();
        lines.push(format!(
            "tick at {}: {} started, {} missed, {} blacked out, {} aborted",
            report.now,
            ended.len(),
            report.missed.len(),
            report.blacked_out.len(),
            report.aborted.len()
        ));
        lines.join("\n")
    })
}

// ---- text views ----

fn every(unit: TimeUnit, n: u32) -> String {
    format!("{n} {}", unit.to_string().to_ascii_lowercase())
}

fn retention_text(r: &Retention) -> String {
    let lock = r.data_lock.map(|l| format!(", {:?} lock {}", l.mode, every(l.unit, l.duration)));
    format!("keep {}{}", every(r.unit, r.duration), lock.unwrap_or_default())
}

fn policy_line(p: &Policy) -> String {
    let b = &p.spec.backup;
    let mut parts = Vec::new();
    if let Some(s) = b.regular.incremental {
        parts.push(format!("incremental every {}", every(s.unit, s.frequency)));
    }
    if let Some(s) = b.regular.full {
        parts.push(format!("full every {}", every(s.unit, s.frequency)));
    }
    parts.push(retention_text(&b.regular.retention));
    if let Some(l) = &b.log {
        parts.push(format!(
            "log every {} ({})",
            every(l.schedule.unit, l.schedule.frequency),
            retention_text(&l.retention)
        ));
    }
    for e in &p.spec.extended_retention {
        parts.push(format!(
            "first of every {}: {}",
            every(e.every.unit, e.every.frequency),
            retention_text(&e.retention)
        ));
    }
    for w in &p.spec.blackout_windows {
        parts.push(format!(
            "blackout {:?} {:02}:{:02}-{:02}:{:02}",
            w.day, w.start.hour, w.start.minute, w.end.hour, w.end.minute
        ));
    }
    format!(
        "policy {} {:?}: {} (modified at {})",
        p.id,
        p.spec.name,
        parts.join("; "),
        p.last_modification_time_usecs.0
    )
}

fn group_line(g: &ProtectionGroup) -> String {
    let flags = [(g.is_paused, " paused"), (!g.is_active, " inactive"), (g.is_deleted, " deleted")];
    let flags: String = flags.iter().filter(|(on, _)| *on).map(|(_, f)| *f).collect();
    format!(
        "group {} {:?}: policy {}, {} objects{flags} (modified at {})",
        g.id,
        g.name,
        g.policy,
        g.objects.len(),
        g.last_modification_time_usecs.0
    )
}

fn group_text(g: &ProtectionGroup) -> String {
    let objects = g
        .objects
        .iter()
        .map(|o| format!("\n  object {}: {:?} {}", o.id, o.spec.kind, o.spec.path().display()));
    format!("{}{}", group_line(g), objects.collect::<String>())
}

fn run_line(r: &Run) -> String {
    let st = r.stats();
    let mut line = format!(
        "run {} of group {}: {} {} started {}, {} files, {} read, {} new",
        r.id,
        r.group,
        r.run_type,
        r.status,
        r.start_time_usecs,
        st.files,
        bytes(st.bytes_read),
        bytes(st.bytes_new)
    );
    let ret = &r.retention;
    if let Some(expiry) = ret.expiry {
        line.push_str(&format!(", expires {expiry}"));
    }
    if ret.legal_hold {
        line.push_str(", legal hold");
    }
    if let Some(lock) = ret.data_lock {
        line.push_str(&format!(", {:?} lock until {}", lock.mode, lock.until));
    }
    if r.snapshots_deleted {
        line.push_str(", snapshots deleted");
    }
    if let Some(m) = &r.message {
        line.push_str(&format!(" — {m}"));
    }
    line
}

fn run_text(v: &RunView) -> String {
    let mut out = run_line(&v.run);
    for o in &v.run.objects {
        out.push_str(&format!(
            "\n  object {}: {}{}{}",
            o.object,
            o.status,
            o.snapshot.map(|s| format!(", snapshot {s}")).unwrap_or_default(),
            o.error.as_ref().map(|e| format!(", {e}")).unwrap_or_default()
        ));
        for w in &o.warnings {
            out.push_str(&format!("\n    warning: {w}"));
        }
    }
    if let Some(p) = &v.progress {
        out.push_str(&format!(
            "\n  so far: {} files, {} read, {} new",
            p.files,
            bytes(p.bytes_read),
            bytes(p.new_bytes)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_forms_parse() {
        assert_eq!(parse_schedule("15m"), Ok(Schedule { unit: TimeUnit::Minutes, frequency: 15 }));
        assert_eq!(parse_schedule("3mo"), Ok(Schedule { unit: TimeUnit::Months, frequency: 3 }));
        assert!(parse_schedule("15").is_err());
        assert!(parse_schedule("d").is_err());
        assert!(parse_schedule("2x").is_err());
        let lock = parse_lock("compliance:30d").expect("lock");
        assert_eq!(
            (lock.mode, lock.unit, lock.duration),
            (DataLockMode::Compliance, TimeUnit::Days, 30)
        );
        assert!(parse_lock("forever:30d").is_err());
        let w = parse_blackout("sat 22:00-06:00").expect("window");
        assert_eq!(w.day, Weekday::Saturday);
        assert_eq!((w.start.hour, w.end.hour), (22, 6));
        assert!(parse_blackout("s 22:00-06:00").is_err(), "ambiguous day");
        assert!(parse_blackout("sat 25:00-06:00").is_err());
        let e = parse_extended("1w:12w").expect("rule");
        assert_eq!((e.every.unit, e.retention.duration), (TimeUnit::Weeks, 12));
    }

    #[test]
    fn an_update_changes_only_what_its_flags_name() {
        let mut spec = PolicySpec::incremental(
            "p",
            Schedule { unit: TimeUnit::Days, frequency: 1 },
            Retention {
                unit: TimeUnit::Days,
                duration: 30,
                data_lock: Some(parse_lock("administrative:7d").expect("lock")),
            },
        );
        let before = spec.clone();
        PolicyArgs::default().apply(&mut spec);
        assert_eq!(spec, before);
        let args = PolicyArgs {
            retain: Some(parse_retention("8w").expect("retention")),
            log: Some(parse_schedule("15m").expect("schedule")),
            ..PolicyArgs::default()
        };
        args.apply(&mut spec);
        let r = spec.backup.regular.retention;
        assert_eq!((r.unit, r.duration), (TimeUnit::Weeks, 8));
        assert!(r.data_lock.is_some(), "the lock is kept when only the duration changes");
        assert_eq!(spec.backup.log.expect("log").retention, r);
        assert_eq!(spec.backup.regular.incremental, before.backup.regular.incremental);
        PolicyArgs { clear: vec![PolicyPart::Lock, PolicyPart::Log], ..PolicyArgs::default() }
            .apply(&mut spec);
        assert!(spec.backup.regular.retention.data_lock.is_none());
        assert!(spec.backup.log.is_none());
    }
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum RecoveryCmd {
    /// Restore chosen files and folders of a snapshot under a directory (RecoverFiles).
    Files {
        snapshot: SnapshotId,
        #[arg(required = true)]
        paths: Vec<std::ffi::OsString>,
        #[arg(long, short = 't')]
        target: PathBuf,
        /// Replace what exists at a destination (default: leave it and skip).
        #[arg(long)]
        overwrite: bool,
        #[arg(long, default_value = "recover files")]
        name: String,
        /// Wait for the recovery to end (always, without a server).
        #[arg(long)]
        wait: bool,
    },
    /// Write chosen files and folders of a snapshot as a tar archive (DownloadFilesAndFolders).
    Download {
        snapshot: SnapshotId,
        #[arg(required = true)]
        paths: Vec<std::ffi::OsString>,
        /// The archive to create.
        #[arg(long, short = 'o')]
        output: PathBuf,
        #[arg(long, default_value = "download files and folders")]
        name: String,
        #[arg(long)]
        wait: bool,
    },
    /// Recover an object to a point in time (PointInTime).
    PointInTime {
        #[arg(long)]
        object: ObjectId,
        #[arg(long)]
        at: Usecs,
        #[arg(long, short = 't')]
        target: PathBuf,
        #[arg(long)]
        logs_target: PathBuf,
        #[arg(long, default_value = "point in time")]
        name: String,
        #[arg(long)]
        wait: bool,
    },
    /// List recoveries.
    List {
        #[arg(long = "id")]
        ids: Vec<RecoveryId>,
        #[arg(long = "status", value_parser = parse_run_status)]
        statuses: Vec<RunStatus>,
        #[command(flatten)]
        span: TimeRange,
    },
    Show {
        id: RecoveryId,
    },
    Cancel {
        id: RecoveryId,
    },
}

impl RecoveryCmd {
    /// Whether this command creates a recovery, and so executes one where it runs.
    pub fn creates(&self) -> bool {
        matches!(self, Self::Files { .. } | Self::Download { .. } | Self::PointInTime { .. })
    }

    /// Makes a creating command wait for its recovery.
    pub fn wait(&mut self) {
        if let Self::Files { wait, .. }
        | Self::Download { wait, .. }
        | Self::PointInTime { wait, .. } = self
        {
            *wait = true;
        }
    }

    /// Paths made absolute against the caller's directory.
    pub fn absolutize(&mut self) -> Result<()> {
        match self {
            Self::Files { target, .. } => *target = std::path::absolute(&*target)?,
            Self::Download { output, .. } => *output = std::path::absolute(&*output)?,
            Self::PointInTime { target, logs_target, .. } => {
                *target = std::path::absolute(&*target)?;
                *logs_target = std::path::absolute(&*logs_target)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A recovery as shown: the record (its paths as [`Name`]s), and its live counters while it
/// executes.
#[derive(Debug, Serialize)]
struct RecoveryView {
    #[serde(serialize_with = "recovery_json")]
    recovery: Recovery,
    progress: Option<SnapshotStats>,
}

/// A recovery's parameters with paths as [`Name`]s (the record keeps raw bytes, which JSON
/// would show as arrays of numbers).
#[derive(Debug, Serialize)]
enum ParamsView {
    RecoverFiles { snapshot: SnapshotId, paths: Vec<Name>, target: Name, overwrite_existing: bool },
    DownloadFilesAndFolders { snapshot: SnapshotId, paths: Vec<Name>, output: Name },
    PointInTime { object: ObjectId, at: Usecs, target: Name, logs_target: Name },
}

impl From<&RecoveryParams> for ParamsView {
    fn from(p: &RecoveryParams) -> Self {
        let names = |v: &[Vec<u8>]| v.iter().cloned().map(Name).collect();
        match p {
            RecoveryParams::RecoverFiles { snapshot, paths, target, overwrite_existing } => {
                Self::RecoverFiles {
                    snapshot: *snapshot,
                    paths: names(paths),
                    target: Name(target.clone()),
                    overwrite_existing: *overwrite_existing,
                }
            }
            RecoveryParams::DownloadFilesAndFolders { snapshot, paths, output } => {
                Self::DownloadFilesAndFolders {
                    snapshot: *snapshot,
                    paths: names(paths),
                    output: Name(output.clone()),
                }
            }
            RecoveryParams::PointInTime { object, at, target, logs_target } => Self::PointInTime {
                object: *object,
                at: *at,
                target: Name(target.clone()),
                logs_target: Name(logs_target.clone()),
            },
        }
    }
}

/// A recovery as JSON, its parameters as a [`ParamsView`]. (Plain records always convert; were
/// one not to, it shows as null rather than failing the command.)
fn recovery_value(r: &Recovery) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    v["params"] = serde_json::to_value(ParamsView::from(&r.params)).unwrap_or_default();
    v
}

fn recovery_json<S: serde::Serializer>(r: &Recovery, s: S) -> Result<S::Ok, S::Error> {
    recovery_value(r).serialize(s)
}

fn bytes_of(p: &std::path::Path) -> Vec<u8> {
    crate::arg_bytes(p.as_os_str()).to_vec()
}

pub fn recovery(engine: &Engine, cmd: &RecoveryCmd, s: &mut Session<'_>) -> Result<u8> {
    let show = |s: &mut Session<'_>, (recovery, progress): (Recovery, Option<SnapshotStats>)| {
        let view = RecoveryView { recovery, progress };
        s.print(&view, || recovery_line(&view.recovery))
    };
    let paths = |p: &[std::ffi::OsString]| {
        p.iter().map(|p| crate::arg_bytes(p).to_vec()).collect::<Vec<_>>()
    };
    let (name, params, wait) = match cmd {
        RecoveryCmd::Files { snapshot, paths: p, target, overwrite, name, wait } => (
            name,
            RecoveryParams::RecoverFiles {
                snapshot: *snapshot,
                paths: paths(p),
                target: bytes_of(target),
                overwrite_existing: *overwrite,
            },
            *wait,
        ),
        RecoveryCmd::Download { snapshot, paths: p, output, name, wait } => (
            name,
            RecoveryParams::DownloadFilesAndFolders {
                snapshot: *snapshot,
                paths: paths(p),
                output: bytes_of(output),
            },
            *wait,
        ),
        RecoveryCmd::PointInTime { object, at, target, logs_target, name, wait } => (
            name,
            RecoveryParams::PointInTime {
                object: *object,
                at: *at,
                target: bytes_of(target),
                logs_target: bytes_of(logs_target),
            },
            *wait,
        ),
        RecoveryCmd::List { ids, statuses, span } => {
            let filter = RecoveryFilter {
                ids: ids.clone(),
                start_time_usecs: span.from,
                end_time_usecs: span.to,
                status: statuses.clone(),
                recovery_actions: vec![],
            };
            let list = engine.recoveries(&filter)?;
            let json: Vec<_> = list.iter().map(recovery_value).collect();
            s.print(&json, || list.iter().map(recovery_line).collect::<Vec<_>>().join("\n"))?;
            return Ok(0);
        }
        RecoveryCmd::Show { id } => {
            show(s, engine.recovery(*id)?)?;
            return Ok(0);
        }
        RecoveryCmd::Cancel { id } => {
            let r = engine.cancel_recovery(*id)?;
            show(s, (r, None))?;
            return Ok(0);
        }
    };
    let created = engine.create_recovery(RecoveryRequest { name: name.clone(), params })?;
    if !wait {
        show(s, (created, None))?;
        return Ok(0);
    }
    let done = engine.wait_recovery(created.id)?;
    let ok = done.status.is_success();
    show(s, (done, None))?;
    Ok(if ok { 0 } else { 4 })
}

fn recovery_line(r: &Recovery) -> String {
    let mut line = format!(
        "recovery {} {:?} ({:?}): {} started {}, {} files, {}",
        r.id,
        r.name,
        r.params.action(),
        r.status,
        r.start_time_usecs,
        r.stats.files,
        bytes(r.stats.bytes)
    );
    if r.stats.skipped > 0 {
        line.push_str(&format!(", {} skipped (existed)", r.stats.skipped));
    }
    if let Some(m) = &r.message {
        line.push_str(&format!(" — {m}"));
    }
    line
}

/// The kinds of source and object, on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum KindArg {
    /// A directory tree (a host path).
    Dir,
    /// A directory of append-only logs.
    LogDir,
    /// A disk image, or a directory of them.
    Image,
}

impl From<KindArg> for ObjectKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Dir => ObjectKind::DirectoryTree,
            KindArg::LogDir => ObjectKind::LogDirectory,
            KindArg::Image => ObjectKind::DiskImage,
        }
    }
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum SourceCmd {
    /// Register a source and enumerate its objects.
    Register {
        name: String,
        path: PathBuf,
        #[arg(long, value_enum, default_value_t = KindArg::Dir)]
        kind: KindArg,
    },
    /// List registered sources.
    List {
        #[arg(long = "id")]
        ids: Vec<SourceId>,
    },
    Show {
        id: SourceId,
    },
    /// Change a source's name or path, and enumerate it again.
    Update {
        id: SourceId,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        path: Option<PathBuf>,
        /// Refuse the update unless the source was last modified at this time (µs), as read.
        #[arg(long)]
        if_modified_at: Option<i64>,
    },
    /// Enumerate a source's objects again.
    Refresh {
        id: SourceId,
    },
    /// Delete a source no protection group protects anything of.
    Delete {
        id: SourceId,
    },
}

impl SourceCmd {
    /// Paths made absolute against the caller's directory.
    pub fn absolutize(&mut self) -> Result<()> {
        match self {
            Self::Register { path, .. } | Self::Update { path: Some(path), .. } => {
                *path = std::path::absolute(&*path)?;
            }
            _ => {}
        }
        Ok(())
    }
}

pub fn source(engine: &Engine, cmd: &SourceCmd, s: &mut Session<'_>) -> Result<()> {
    let show = |s: &mut Session<'_>, src: &SourceRegistration| s.print(src, || source_text(src));
    match cmd {
        SourceCmd::Register { name, path, kind } => {
            let spec =
                SourceSpec { name: name.clone(), kind: (*kind).into(), path: bytes_of(path) };
            show(s, &engine.register_source(spec)?)
        }
        SourceCmd::List { ids } => {
            let all = engine.sources(ids)?;
            s.print(&all, || all.iter().map(source_text).collect::<Vec<_>>().join("\n"))
        }
        SourceCmd::Show { id } => show(s, &engine.source(*id)?),
        SourceCmd::Update { id, name, path, if_modified_at } => {
            let current = engine.source(*id)?;
            let mut spec = current.spec.clone();
            if let Some(n) = name {
                spec.name.clone_from(n);
            }
            if let Some(p) = path {
                spec.path = bytes_of(p);
            }
            let expected = if_modified_at.map_or(current.last_modification_time_usecs, Usecs);
            show(s, &engine.update_source(*id, spec, Some(expected))?)
        }
        SourceCmd::Refresh { id } => show(s, &engine.refresh_source(*id)?),
        SourceCmd::Delete { id } => {
            engine.delete_source(*id)?;
            s.print(&serde_json::json!({ "deleted_source": id }), || format!("deleted source {id}"))
        }
    }
}

fn source_text(src: &SourceRegistration) -> String {
    let mut out = format!(
        "source {} {:?} ({:?} {}), refreshed {}",
        src.id,
        src.spec.name,
        src.spec.kind,
        coldkeep::model::path_of(&src.spec.path).display(),
        src.last_refresh_time_usecs
    );
    for o in &src.objects {
        out.push_str(&format!("\n  {:?} {}", o.kind, coldkeep::model::path_of(&o.path).display()));
    }
    out
}
