//! Data-protection rules through the public API: policies, protection groups, the trusted clock.
//! Each refused attempt is checked to have changed nothing.

use std::sync::Arc;

use coldkeep::model::{
    GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, Schedule, TimeUnit, Usecs,
    DAY,
};
use coldkeep::{Engine, GroupFilter, InitOptions, ManualClock, PolicyFilter, ProtectError};
use coldkeep_testing::engine::t0;

fn engine(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Engine {
    let repo = dir.join("repo");
    let engine = if repo.exists() {
        Engine::open(&repo).expect("open")
    } else {
        Engine::init(&repo, &InitOptions::unencrypted()).expect("init")
    };
    engine.with_clock(clock.clone()).expect("clock")
}

fn daily(name: &str) -> PolicySpec {
    let mut spec = PolicySpec::incremental(
        name,
        Schedule { unit: TimeUnit::Days, frequency: 1 },
        Retention::days(7),
    );
    spec.description = "every day, kept a week".into();
    spec
}

fn tree(path: &str) -> ObjectSpec {
    ObjectSpec::new(path, ObjectKind::DirectoryTree, path.as_ref())
}

#[test]
fn policy_updates_must_name_the_current_modification_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = engine(tmp.path(), &clock);
    let created = engine.create_policy(daily("gold")).expect("create");
    assert_eq!(created.last_modification_time_usecs, t0());

    // Two writers read the same version; the first update wins, the second is stale.
    let mut first = daily("gold");
    first.description = "first writer".into();
    let updated = engine
        .update_policy(created.id, first, Some(created.last_modification_time_usecs))
        .expect("fresh update");
    assert!(updated.last_modification_time_usecs > created.last_modification_time_usecs);
    let mut second = daily("gold");
    second.description = "second writer".into();
    let stale =
        engine.update_policy(created.id, second, Some(created.last_modification_time_usecs));
    assert!(matches!(stale, Err(ProtectError::Stale { .. })), "{stale:?}");
    assert_eq!(engine.policy(created.id).expect("read").spec.description, "first writer");

    // An invalid spec is refused and changes nothing.
    let mut broken = daily("gold");
    broken.backup.regular.retention.unit = TimeUnit::Minutes;
    assert!(matches!(
        engine.update_policy(created.id, broken, None),
        Err(ProtectError::InvalidPolicy(_))
    ));
    assert_eq!(engine.policy(created.id).expect("read"), updated);
    assert!(matches!(engine.create_policy(daily(" ")), Err(ProtectError::InvalidPolicy(_))));
}

#[test]
fn a_policy_in_use_cannot_be_deleted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = engine(tmp.path(), &clock);
    let gold = engine.create_policy(daily("gold")).expect("gold");
    let silver = engine.create_policy(daily("silver")).expect("silver");
    let group =
        engine.create_group(GroupSpec::new("web", gold.id, vec![tree("/srv/www")])).expect("group");

    match engine.delete_policy(gold.id) {
        Err(ProtectError::PolicyInUse { policy, groups }) => {
            assert_eq!((policy, groups), (gold.id, vec![group.id]));
        }
        other => panic!("expected PolicyInUse, got {other:?}"),
    }
    assert_eq!(engine.policy(gold.id).expect("still there"), gold);
    engine.delete_policy(silver.id).expect("unused policy");
    assert!(matches!(engine.policy(silver.id), Err(ProtectError::PolicyNotFound(_))));
    let names: Vec<_> = engine
        .policies(&PolicyFilter::default())
        .expect("list")
        .into_iter()
        .map(|p| p.spec.name)
        .collect();
    assert_eq!(names, ["gold"]);

    // Once the group is deleted (its snapshots kept), the policy is free.
    engine.delete_group(group.id, false, &Principal::user("ops")).expect("delete group");
    engine.delete_policy(gold.id).expect("policy no longer in use");
}

#[test]
fn groups_keep_object_ids_refuse_stale_updates_and_filter_like_the_seed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t0()));
    let engine = engine(tmp.path(), &clock);
    let policy = engine.create_policy(daily("gold")).expect("policy");
    let other = engine.create_policy(daily("other")).expect("policy");
    let web = engine
        .create_group(GroupSpec::new("web", policy.id, vec![tree("/srv/www"), tree("/etc")]))
        .expect("web");
    let mut db_spec = GroupSpec::new("db", other.id, vec![tree("/var/lib/db")]);
    db_spec.is_paused = true;
    let db = engine.create_group(db_spec).expect("db");

    // Bad specs are refused.
    for bad in [
        GroupSpec::new("", policy.id, vec![tree("/a")]),
        GroupSpec::new("x", policy.id, vec![]),
        GroupSpec::new("x", policy.id, vec![tree("relative/path")]),
        GroupSpec::new("x", policy.id, vec![tree("/a"), tree("/a")]),
    ] {
        assert!(matches!(engine.create_group(bad), Err(ProtectError::InvalidGroup(_))));
    }
    let missing = coldkeep::model::PolicyId::new(999);
    assert!(matches!(
        engine.create_group(GroupSpec::new("x", missing, vec![tree("/a")])),
        Err(ProtectError::PolicyNotFound(_))
    ));

    // An update keeps the ids of objects that stay and gives new ones to new objects.
    clock.advance(DAY);
    let mut spec = GroupSpec::new("web", policy.id, vec![tree("/etc"), tree("/home")]);
    spec.description = "now with /home".into();
    let updated = engine
        .update_group(web.id, spec.clone(), Some(web.last_modification_time_usecs))
        .expect("update");
    let etc = |g: &coldkeep::model::ProtectionGroup| {
        g.objects.iter().find(|o| o.spec.path == b"/etc").map(|o| o.id)
    };
    assert_eq!(etc(&updated), etc(&web));
    let ids: std::collections::HashSet<_> =
        web.objects.iter().chain(&updated.objects).map(|o| o.id).collect();
    assert_eq!(ids.len(), 3, "/home got a new id, /etc kept its own");
    let stale = engine.update_group(web.id, spec, Some(web.last_modification_time_usecs));
    assert!(matches!(stale, Err(ProtectError::Stale { .. })));
    assert_eq!(engine.group(web.id).expect("read"), updated);

    // The seed's filters.
    let names = |f: GroupFilter| -> Vec<String> {
        engine.groups(&f).expect("groups").into_iter().map(|g| g.group.name).collect()
    };
    assert_eq!(names(GroupFilter::default()), ["web", "db"]);
    assert_eq!(names(GroupFilter { is_paused: Some(true), ..Default::default() }), ["db"]);
    assert_eq!(names(GroupFilter { policy_ids: vec![policy.id], ..Default::default() }), ["web"]);
    assert_eq!(names(GroupFilter { names: vec!["db".into()], ..Default::default() }), ["db"]);
    assert_eq!(names(GroupFilter { ids: vec![web.id], ..Default::default() }), ["web"]);
    assert_eq!(
        names(GroupFilter { is_active: Some(false), ..Default::default() }),
        Vec::<String>::new()
    );
    let with_runs = engine
        .groups(&GroupFilter { include_last_run_info: true, ..Default::default() })
        .expect("groups");
    assert!(with_runs.iter().all(|g| g.last_run.is_none()), "no run yet");

    // Deleted without its snapshots: only the is_deleted filter shows it.
    engine.delete_group(db.id, false, &Principal::user("ops")).expect("delete");
    assert_eq!(names(GroupFilter::default()), ["web"]);
    assert_eq!(names(GroupFilter { is_deleted: Some(true), ..Default::default() }), ["db"]);
    assert!(matches!(
        engine.update_group(db.id, GroupSpec::new("db", other.id, vec![tree("/x")]), None),
        Err(ProtectError::GroupNotFound(_))
    ));
}

#[test]
fn everything_survives_a_restart_and_the_clock_never_goes_back() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(t0()));
    let (policy, group) = {
        let engine = engine(tmp.path(), &clock);
        let policy = engine.create_policy(daily("gold")).expect("policy");
        let group = engine
            .create_group(GroupSpec::new("web", policy.id, vec![tree("/srv")]))
            .expect("group");
        clock.advance(30 * DAY);
        assert_eq!(engine.trusted_now().expect("now"), Usecs(t0().0 + 30 * DAY));
        (policy, group)
    };
    // The system clock is wound back a month; the reopened engine does not follow it.
    clock.set(t0());
    let engine = engine(tmp.path(), &clock);
    assert_eq!(engine.policy(policy.id).expect("policy"), policy);
    assert_eq!(engine.group(group.id).expect("group"), group);
    assert_eq!(engine.trusted_now().expect("now"), Usecs(t0().0 + 30 * DAY));
    // Ids keep increasing after the restart.
    let next = engine.create_policy(daily("silver")).expect("policy");
    assert!(next.id > policy.id);
    assert!(next.last_modification_time_usecs >= Usecs(t0().0 + 30 * DAY));
}
