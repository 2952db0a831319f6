//! Source registrations: enumerated at registration and on refresh, stale updates refused, and
//! a source that a group protects cannot be deleted.

use std::os::unix::ffi::OsStrExt;

use coldkeep::model::{
    GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Principal, Retention, Schedule, SourceSpec,
    TimeUnit, Usecs,
};
use coldkeep::{Engine, InitOptions, ProtectError};

#[test]
fn sources_are_enumerated_refreshed_and_kept_while_protected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::init(&dir.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let host = dir.path().join("host");
    for d in ["home", "etc"] {
        std::fs::create_dir_all(host.join(d)).expect("mkdir");
    }
    std::fs::write(host.join("notes.txt"), b"a file is not an object of a host").expect("write");
    std::os::unix::fs::symlink("/", host.join("root-link")).expect("symlink");
    let spec = SourceSpec {
        name: "host".into(),
        kind: ObjectKind::DirectoryTree,
        path: host.as_os_str().as_bytes().to_vec(),
    };
    let source = engine.register_source(spec.clone()).expect("register");
    let names: Vec<_> = source.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["host", "etc", "home"], "the path and the directories under it");

    std::fs::create_dir(host.join("srv")).expect("mkdir");
    let refreshed = engine.refresh_source(source.id).expect("refresh");
    assert_eq!(refreshed.objects.len(), 4);
    let stale = engine.update_source(source.id, spec.clone(), Some(Usecs(1)));
    assert!(matches!(stale, Err(ProtectError::Stale { .. })));
    let renamed = SourceSpec { name: "the host".into(), ..spec };
    let updated = engine
        .update_source(source.id, renamed, Some(refreshed.last_modification_time_usecs))
        .expect("update");
    assert_eq!(updated.spec.name, "the host");

    // A group protecting one of its objects keeps the source registered.
    let home = &updated.objects.iter().find(|o| o.name == "home").expect("home").path;
    let every = Schedule { unit: TimeUnit::Days, frequency: 1 };
    let policy = engine.create_policy(PolicySpec::incremental("p", every, Retention::days(7)));
    let object =
        ObjectSpec { name: "home".into(), kind: ObjectKind::DirectoryTree, path: home.clone() };
    let group = engine
        .create_group(GroupSpec::new("g", policy.expect("policy").id, vec![object]))
        .expect("group");
    match engine.delete_source(source.id) {
        Err(ProtectError::SourceInUse { groups, .. }) => assert_eq!(groups, [group.id]),
        other => panic!("a protected source must not be deleted: {other:?}"),
    }
    assert_eq!(engine.sources(&[]).expect("sources").len(), 1);
    engine.delete_group(group.id, true, &Principal::user("ops")).expect("delete group");
    engine.delete_source(source.id).expect("delete source");
    assert!(matches!(engine.source(source.id), Err(ProtectError::SourceNotFound(_))));

    let missing = SourceSpec {
        name: "gone".into(),
        kind: ObjectKind::LogDirectory,
        path: b"/nonexistent/wal".to_vec(),
    };
    assert!(matches!(engine.register_source(missing), Err(ProtectError::Io(_))));
}
