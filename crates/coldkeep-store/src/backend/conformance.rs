//! The conformance suite every [`Backend`] must pass.
//!
//! Call [`run_all`] from the implementation's tests with a factory of fresh, empty backends.
//! The in-memory reference runs it too, so the suite itself is checked against the model.

use std::any::Any;

use super::{Access, Backend, ErrorKind, ObjectKind, ObjectName};
use crate::{PackId, StoreError};

/// A fresh, empty backend, and whatever must live as long as it (a temporary directory, a
/// server's bucket).
pub type Fresh = (Box<dyn Backend>, Box<dyn Any>);

/// Runs every check against backends made by `fresh`.
///
/// # Panics
/// When the implementation breaks the [`Backend`] contract.
pub fn run_all(fresh: &dyn Fn() -> Fresh) {
    type Check = (&'static str, fn(&dyn Backend));
    let checks: [Check; 12] = [
        ("kinds_are_namespaces", kinds_are_namespaces),
        ("put_get_stat", put_get_stat),
        ("create_only", create_only),
        ("unfinished_is_invisible", unfinished_is_invisible),
        ("ranged_reads", ranged_reads),
        ("missing_objects", missing_objects),
        ("delete_then_recreate", delete_then_recreate),
        ("list_is_sorted_and_by_kind", list_is_sorted_and_by_kind),
        ("streamed_large_object", streamed_large_object),
        ("concurrent_writers", concurrent_writers),
        ("the_config_is_one_object", the_config_is_one_object),
        ("locked_objects_stay", locked_objects_stay),
    ];
    for (name, check) in checks {
        let (backend, keep) = fresh();
        eprintln!("backend conformance: {name}");
        check(&*backend);
        drop(backend);
        drop(keep);
    }
}

fn name(n: u8) -> ObjectName {
    let mut id = [n; 16];
    id[15] = 0x5a;
    ObjectName::pack(PackId::from_bytes(id))
}

fn kind_of(result: Result<impl std::fmt::Debug, StoreError>) -> ErrorKind {
    result.expect_err("must fail").kind()
}

fn put_get_stat(b: &dyn Backend) {
    b.put(&name(1), b"hello objects").expect("put");
    assert_eq!(b.get(&name(1)).expect("get"), b"hello objects");
    let info = b.stat(&name(1)).expect("stat");
    assert_eq!((info.name.clone(), info.len), (name(1), 13));
    assert!(info.written_us > 0, "an object has a write time");
    assert_eq!(b.list(ObjectKind::Pack).expect("list"), vec![info]);
    b.put(&name(2), b"").expect("an empty object");
    assert_eq!(b.get(&name(2)).expect("get"), b"");
    assert_eq!(b.stat(&name(2)).expect("stat").len, 0);
    for access in [Access::Random, Access::Sequential] {
        let r = b.open(&name(2), access).expect("open an empty object");
        assert_eq!((r.len(), &*r.read_at(0, 0).expect("read")), (0, &b""[..]), "{access:?}");
    }
}

fn create_only(b: &dyn Backend) {
    b.put(&name(1), b"first").expect("put");
    assert_eq!(kind_of(b.put(&name(1), b"second")), ErrorKind::AlreadyExists);
    assert_eq!(b.get(&name(1)).expect("get"), b"first", "the first write stays");
    // Two writers of one name: the first to finish wins, the other fails and changes nothing.
    let mut w1 = b.create(&name(2)).expect("create");
    let mut w2 = b.create(&name(2)).expect("a second writer may start");
    w1.write(b"one").expect("write");
    w2.write(b"two").expect("write");
    w2.finish().expect("the first to finish wins");
    assert_eq!(kind_of(w1.finish()), ErrorKind::AlreadyExists);
    assert_eq!(b.get(&name(2)).expect("get"), b"two");
    assert_eq!(b.list(ObjectKind::Pack).expect("list").len(), 2);
}

fn unfinished_is_invisible(b: &dyn Backend) {
    let mut w = b.create(&name(1)).expect("create");
    w.write(b"not yet").expect("write");
    assert_eq!(kind_of(b.stat(&name(1))), ErrorKind::NotFound);
    assert!(b.list(ObjectKind::Pack).expect("list").is_empty());
    drop(w); // abandoned
    assert_eq!(kind_of(b.open(&name(1), Access::Random)), ErrorKind::NotFound);
    assert!(b.list(ObjectKind::Pack).expect("list").is_empty());
    b.remove_unfinished().expect("clear");
    b.put(&name(1), b"now").expect("the name is free");
    assert_eq!(b.get(&name(1)).expect("get"), b"now");
}

fn ranged_reads(b: &dyn Backend) {
    let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    b.put(&name(1), &bytes).expect("put");
    for access in [Access::Random, Access::Sequential] {
        let r = b.open(&name(1), access).expect("open");
        assert_eq!(r.len(), bytes.len() as u64);
        for (offset, len) in
            [(0, 1), (0, 10_000), (1, 9_999), (4_321, 100), (9_999, 1), (10_000, 0), (0, 0)]
        {
            let got = r.read_at(offset, len).expect("in range");
            assert_eq!(
                &*got,
                &bytes[offset as usize..offset as usize + len],
                "{access:?} {offset}+{len}"
            );
        }
        for (offset, len) in
            [(0, 10_001), (9_999, 2), (10_001, 0), (u64::MAX, 1), (u64::MAX - 1, 5)]
        {
            assert_eq!(
                kind_of(r.read_at(offset, len)),
                ErrorKind::Permanent,
                "{access:?} {offset}+{len}"
            );
        }
    }
}

fn missing_objects(b: &dyn Backend) {
    assert_eq!(kind_of(b.stat(&name(9))), ErrorKind::NotFound);
    assert_eq!(kind_of(b.open(&name(9), Access::Random)), ErrorKind::NotFound);
    assert_eq!(kind_of(b.open(&name(9), Access::Sequential)), ErrorKind::NotFound);
    assert_eq!(kind_of(b.get(&name(9))), ErrorKind::NotFound);
    assert_eq!(kind_of(b.delete(&name(9))), ErrorKind::NotFound);
    assert!(b.list(ObjectKind::Pack).expect("list of an empty backend").is_empty());
}

fn delete_then_recreate(b: &dyn Backend) {
    b.put(&name(1), b"x").expect("put");
    b.put(&name(2), b"y").expect("put");
    b.delete(&name(1)).expect("delete");
    assert_eq!(kind_of(b.stat(&name(1))), ErrorKind::NotFound);
    assert_eq!(kind_of(b.delete(&name(1))), ErrorKind::NotFound);
    assert_eq!(b.list(ObjectKind::Pack).expect("list").len(), 1);
    assert_eq!(b.get(&name(2)).expect("the other stays"), b"y");
    b.put(&name(1), b"z").expect("a deleted name can be written again");
    assert_eq!(b.get(&name(1)).expect("get"), b"z");
}

fn list_is_sorted_and_by_kind(b: &dyn Backend) {
    // Names spread over every leading byte, written out of order.
    let mut names: Vec<ObjectName> = (0..=255u8).rev().map(name).collect();
    for n in &names {
        b.put(n, n.name().as_bytes()).expect("put");
    }
    names.sort();
    let listed: Vec<ObjectName> =
        b.list(ObjectKind::Pack).expect("list").into_iter().map(|i| i.name).collect();
    assert_eq!(listed, names);
    for info in b.list(ObjectKind::Pack).expect("list") {
        assert_eq!(info.len, 32, "{}", info.name);
        assert_eq!(info.name.pack_id().map(|id| id.to_string()).as_deref(), Some(info.name.name()));
    }
}

fn streamed_large_object(b: &dyn Backend) {
    let piece: Vec<u8> = (0..=255u8).cycle().take(1 << 16).collect();
    let mut w = b.create(&name(1)).expect("create");
    for _ in 0..80 {
        w.write(&piece).expect("write");
    }
    w.finish().expect("finish");
    let r = b.open(&name(1), Access::Sequential).expect("open");
    assert_eq!(r.len(), 80 << 16);
    let tail = r.read_at((80 << 16) - 300, 300).expect("tail");
    assert_eq!(&*tail, &piece[piece.len() - 300..]);
}

fn concurrent_writers(b: &dyn Backend) {
    std::thread::scope(|s| {
        for t in 0..4u8 {
            s.spawn(move || {
                for i in 0..16u8 {
                    let n = name(t * 16 + i);
                    b.put(&n, &[t, i]).expect("put");
                }
            });
        }
    });
    let listed = b.list(ObjectKind::Pack).expect("list");
    assert_eq!(listed.len(), 64);
    for info in listed {
        let got = b.get(&info.name).expect("get");
        let n = info.name.name();
        let first = u8::from_str_radix(&n[..2], 16).expect("hex");
        assert_eq!(got, [first / 16, first % 16]);
    }
}

fn kinds_are_namespaces(b: &dyn Backend) {
    let pack = name(1);
    let key = ObjectName::new(ObjectKind::Key, pack.name()).expect("name");
    b.put(&pack, b"pack").expect("put");
    b.put(&key, b"key").expect("the same name of another kind is another object");
    assert_eq!(b.get(&pack).expect("get"), b"pack");
    assert_eq!(b.get(&key).expect("get"), b"key");
    let keys: Vec<ObjectName> =
        b.list(ObjectKind::Key).expect("list").into_iter().map(|i| i.name).collect();
    assert_eq!(keys, vec![key.clone()]);
    b.delete(&key).expect("delete");
    assert_eq!(b.get(&pack).expect("the pack stays"), b"pack");
    assert!(b.list(ObjectKind::Key).expect("list").is_empty());
}

/// With [`ObjectLock`](super::ObjectLock): a retained or held object cannot be deleted, a
/// retention only grows, and a lifted hold or an ended retention lets deletion through again.
/// Retention is by the storage's clock, in whole seconds on some: it is set a few seconds ahead
/// and waited out. Without the capability there is nothing to check.
fn locked_objects_stay(b: &dyn Backend) {
    let Some(lock) = b.object_lock().expect("whether the store can lock") else {
        return;
    };
    let now = || crate::backend::now_us();
    let (retained, held, free) = (name(1), name(2), name(3));
    for n in [&retained, &held, &free] {
        b.put(n, b"x").expect("put");
    }
    assert_eq!(lock.retained_until(&free).expect("retention"), None);
    assert!(!lock.legal_hold(&free).expect("hold"));
    assert_eq!(kind_of(lock.retain_until(&name(9), now() + 1_000_000)), ErrorKind::NotFound);

    let until = now() + 4_000_000;
    lock.retain_until(&retained, until).expect("retain");
    let got = lock.retained_until(&retained).expect("retention").expect("retained");
    assert!(got >= until && got < until + 2_000_000, "retained until {got}, asked {until}");
    lock.retain_until(&retained, until - 2_000_000).expect("an earlier end is no change");
    assert_eq!(lock.retained_until(&retained).expect("retention"), Some(got), "never shortened");
    assert_eq!(kind_of(b.delete(&retained)), ErrorKind::Denied);
    assert!(lock.is_locked(&retained, now()).expect("locked"));

    lock.set_legal_hold(&held, true).expect("hold");
    assert!(lock.legal_hold(&held).expect("hold"));
    assert_eq!(kind_of(b.delete(&held)), ErrorKind::Denied);
    lock.set_legal_hold(&held, false).expect("lift");
    assert!(!lock.is_locked(&held, now()).expect("not locked"));
    b.delete(&held).expect("a lifted hold lets deletion through");
    b.delete(&free).expect("an object never locked is deleted");

    assert_eq!(b.get(&retained).expect("a retained object stays"), b"x");
    while now() <= got {
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    b.delete(&retained).expect("an ended retention lets deletion through");
    assert_eq!(kind_of(b.stat(&retained)), ErrorKind::NotFound);
}

/// The config kind holds one object, `config`: written once (create-only, like every object),
/// listed apart from every other kind, and no other name of its kind can be made.
fn the_config_is_one_object(b: &dyn Backend) {
    assert!(ObjectName::new(ObjectKind::Config, "lock").is_none());
    assert!(ObjectName::new(ObjectKind::Config, "packs").is_none());
    let config = ObjectName::config();
    assert_eq!(ObjectName::new(ObjectKind::Config, "config"), Some(config.clone()));
    assert!(b.list(ObjectKind::Config).expect("list before").is_empty());
    b.put(&config, b"first").expect("put the config");
    let again = b.put(&config, b"second").expect_err("a second config");
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");
    assert_eq!(b.get(&config).expect("get"), b"first");
    let listed: Vec<_> =
        b.list(ObjectKind::Config).expect("list").into_iter().map(|i| i.name).collect();
    assert_eq!(listed, vec![config.clone()]);
    for kind in [ObjectKind::Pack, ObjectKind::Key, ObjectKind::Journal] {
        assert!(b.list(kind).expect("list another kind").is_empty(), "{kind:?}");
    }
    assert_eq!(b.remove_unfinished().expect("remove unfinished"), 0);
    assert_eq!(b.get(&config).expect("get after"), b"first");
}
