//! What the engine's tests set up again and again (the `engine` feature): the tests' fixed
//! time, a daily policy with its group, and a run waited for to its end.

use std::path::Path;

use coldkeep::model::{
    GroupId, GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Retention, Run, RunId, RunRequest,
    RunStatus, RunType, Schedule, TimeOfDay, TimeUnit, Usecs,
};
use coldkeep::{Engine, SnapshotId};

/// The time the tests' manual clocks start at: Monday 2026-11-23, 09:00 UTC.
pub fn t0() -> Usecs {
    Usecs::from_civil(2026, 11, 23, TimeOfDay::new(9, 0).expect("time")).expect("date")
}

/// A group named `name` protecting the directory tree `src`, with a daily incremental policy of
/// the same name keeping snapshots for `retention`.
pub fn daily_group(engine: &Engine, name: &str, src: &Path, retention: Retention) -> GroupId {
    let daily = Schedule { unit: TimeUnit::Days, frequency: 1 };
    let policy =
        engine.create_policy(PolicySpec::incremental(name, daily, retention)).expect("policy");
    let object = ObjectSpec::new(name, ObjectKind::DirectoryTree, src);
    engine.create_group(GroupSpec::new(name, policy.id, vec![object])).expect("group").id
}

/// Starts a run of `group` and waits for its end, whatever it is.
pub fn finished_run(engine: &Engine, group: GroupId, run_type: RunType) -> Run {
    let started = engine.start_run(group, RunRequest::new(run_type)).expect("start run");
    engine.wait_run(group, started.id).expect("wait for run")
}

/// A regular run of `group`, which must succeed.
pub fn successful_run(engine: &Engine, group: GroupId) -> Run {
    let run = finished_run(engine, group, RunType::Regular);
    assert_eq!(run.status, RunStatus::Succeeded, "{:?}", run.message);
    run
}

/// A regular run of `group`, which must succeed: its id and its first object's snapshot.
pub fn backed_up(engine: &Engine, group: GroupId) -> (RunId, SnapshotId) {
    let run = successful_run(engine, group);
    (run.id, run.objects[0].snapshot.expect("the run made a snapshot"))
}
