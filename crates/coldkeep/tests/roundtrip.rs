//! End to end through the public API: back up a real tree, change it, back it up again, and get
//! both versions back byte-exact with their metadata.

use std::collections::HashSet;
use std::path::Path;

use coldkeep::{
    BackupKind, BackupOptions, CdcParams, ChunkId, ChunkerConfig, Engine, InitOptions, KdfParams,
    KeyError, NodeKind, OpenError, OpenOptions, Piece, RestoreOptions, Secret, SnapshotId,
};
use coldkeep_testing::{allocated_bytes, compare_trees, Compare, Dataset};

const PASSPHRASE: &str = "round trip passphrase";

/// Small chunks and packs, encrypted (as a repository is by default).
fn small_chunks() -> InitOptions {
    InitOptions {
        chunker: ChunkerConfig::Cdc(CdcParams { min: 4096, avg: 16384, max: 65536 }),
        zstd_level: 3,
        pack_target_size: 256 * 1024,
        kdf: KdfParams::INSECURE_FOR_TESTS,
        ..InitOptions::with_secret(Secret::passphrase(PASSPHRASE))
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if entry.file_type().expect("type").is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn nothing_backed_up_is_readable_in_the_repository_and_only_its_keys_open_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 11);
    data.mixed(20, 30_000);
    // Random bytes (so that zstd keeps them raw where nothing encrypts them), in a file large
    // enough for chunks of their own, and a marker from their middle no file could hold by
    // chance.
    let secret = data.rng().bytes(200_000, false);
    data.file("secret.bin", &secret);
    let marker = secret[100_000..100_024].to_vec();
    let repo = tmp.path().join("repo");
    let snap = {
        let engine = Engine::init(&repo, &small_chunks()).expect("init");
        engine.backup(&src, &BackupOptions::default()).expect("backup")
    };
    let mut files = Vec::new();
    files_under(&repo, &mut files);
    assert!(files.len() > 5, "{files:?}");
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        assert!(
            !bytes.windows(24).any(|w| w == marker.as_slice()),
            "{} holds backed-up content in plaintext",
            path.display()
        );
    }
    // A control: the same backup without encryption does hold it.
    let plain = tmp.path().join("plain");
    let engine = Engine::init(&plain, &InitOptions::unencrypted()).expect("init");
    engine.backup(&src, &BackupOptions::default()).expect("backup");
    drop(engine);
    let mut plain_files = Vec::new();
    files_under(&plain, &mut plain_files);
    assert!(plain_files
        .iter()
        .any(|p| { std::fs::read(p).expect("read").windows(24).any(|w| w == marker.as_slice()) }));

    let open = |secret: Option<Secret>| {
        Engine::open_with(&repo, &OpenOptions { secret, ..OpenOptions::default() })
    };
    assert!(matches!(open(None), Err(OpenError::SecretRequired)));
    assert!(matches!(
        open(Some(Secret::passphrase("not it"))),
        Err(OpenError::Key(KeyError::WrongKey))
    ));
    let key_file = Secret::key_file(vec![0x42; 64]);
    assert!(matches!(open(Some(key_file.clone())), Err(OpenError::Key(KeyError::WrongKey))));
    let engine = open(Some(Secret::passphrase(PASSPHRASE))).expect("the passphrase opens");
    let first = engine.keys().expect("keys");
    assert_eq!(first.len(), 1);
    engine.add_key(&key_file, KdfParams::INSECURE_FOR_TESTS, "key file").expect("add");
    assert!(matches!(engine.remove_key("00"), Err(KeyError::NotFound(_))));
    engine.remove_key(&first[0].id).expect("remove the passphrase");
    let last = engine.keys().expect("keys");
    assert!(matches!(engine.remove_key(&last[0].id), Err(KeyError::LastSlot(_))));
    drop(engine);
    assert!(matches!(
        open(Some(Secret::passphrase(PASSPHRASE))),
        Err(OpenError::Key(KeyError::WrongKey))
    ));
    let engine = open(Some(key_file)).expect("the key file opens");
    let target = tmp.path().join("restored");
    restore(&engine, snap.id, b"", &target);
    assert_eq!(compare_trees(&src, &target, Compare::default()), Vec::<String>::new());
    let check = engine.check(coldkeep::CheckOptions { read_data: true }).expect("check");
    assert!(check.is_clean() && check.blobs_verified > 0, "{check:?}");
}

/// Data chunk ids and tree ids a snapshot references.
fn referenced(engine: &Engine, id: SnapshotId) -> (HashSet<ChunkId>, HashSet<ChunkId>) {
    let mut data = HashSet::new();
    let mut trees = HashSet::from([engine.snapshot(id).expect("snapshot").root]);
    for entry in engine.list(id, b"").expect("list") {
        match entry.node.kind {
            NodeKind::File { pieces, .. } => data.extend(pieces.iter().filter_map(|p| match p {
                Piece::Data { id, .. } => Some(*id),
                Piece::Hole { .. } => None,
            })),
            NodeKind::Dir { tree } => {
                trees.insert(tree);
            }
            NodeKind::Symlink { .. } => {}
        }
    }
    (data, trees)
}

fn restore(engine: &Engine, id: SnapshotId, path: &[u8], target: &Path) {
    let summary = engine.restore(id, path, target, &RestoreOptions::default()).expect("restore");
    if coldkeep_testing::Compare::default().owner {
        assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
    } else {
        // Owners cannot be restored without root; nothing else may fail.
        assert!(summary.warnings.iter().all(|w| w.contains("owner")), "{:?}", summary.warnings);
    }
}

#[test]
fn a_changed_copy_restores_exactly_and_stores_only_new_chunks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 7);
    data.mixed(300, 150_000);
    data.odd_metadata();
    let noise = data.rng().bytes(200_000, false);
    data.sparse_file("disk.img", 64 << 20, 10 << 20, &noise);
    let big = data.rng().bytes(3 << 20, false);
    data.file("big.bin", &big);
    let engine = Engine::init(&tmp.path().join("repo"), &small_chunks()).expect("init");
    std::fs::set_permissions(&src, std::os::unix::fs::PermissionsExt::from_mode(0o750))
        .expect("chmod");

    let first = engine.backup(&src, &BackupOptions::default()).expect("backup 1");
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let v1 = tmp.path().join("v1");
    restore(&engine, first.id, b"", &v1);
    assert_eq!(compare_trees(&src, &v1, Compare::default()), Vec::<String>::new());
    assert!(allocated_bytes(&v1.join("disk.img")) < 4 << 20, "sparse file was filled in");
    // The target the restore created has the backed-up directory's own mode and mtime.
    let (from, to) = (std::fs::metadata(&src).expect("src"), std::fs::metadata(&v1).expect("v1"));
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&to.permissions()) & 0o7777, 0o750);
    assert_eq!(to.modified().expect("mtime"), from.modified().expect("mtime"));

    data.mutate(25);
    let second = engine.backup(&src, &BackupOptions::default()).expect("backup 2");
    assert_eq!(second.parent, Some(first.id));
    assert!(second.stats.files_reused > second.stats.files / 2, "{:?}", second.stats);

    // Exactly the chunks and trees the first snapshot did not have were stored.
    let (data1, trees1) = referenced(&engine, first.id);
    let (data2, trees2) = referenced(&engine, second.id);
    let expected_new = data2.difference(&data1).count() + trees2.difference(&trees1).count();
    assert_eq!(second.stats.new_chunks, expected_new as u64);
    let stats = engine.stats().expect("stats");
    assert_eq!(
        stats.chunks,
        (data1.len() + data2.difference(&data1).count() + trees1.union(&trees2).count()) as u64
    );

    let v2 = tmp.path().join("v2");
    restore(&engine, second.id, b"", &v2);
    assert_eq!(compare_trees(&src, &v2, Compare::default()), Vec::<String>::new());
    // The first version is still intact.
    let v1_again = tmp.path().join("v1-again");
    restore(&engine, first.id, b"", &v1_again);
    assert_eq!(compare_trees(&v1, &v1_again, Compare::default()), Vec::<String>::new());

    let report = engine.check(coldkeep::CheckOptions { read_data: true }).expect("check");
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[test]
fn a_full_backup_reads_everything_and_stores_nothing_new() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 11).mixed(50, 50_000);
    let engine = Engine::init(&tmp.path().join("repo"), &small_chunks()).expect("init");
    let first = engine.backup(&src, &BackupOptions::default()).expect("backup");
    let full = engine
        .backup(&src, &BackupOptions { kind: BackupKind::Full, ..BackupOptions::default() })
        .expect("full backup");
    assert_eq!(full.stats.files_reused, 0);
    assert_eq!(full.stats.files_read, first.stats.files);
    assert_eq!(full.stats.new_chunks, 0, "identical data must deduplicate");
    assert_eq!(full.root, first.root, "same tree, same root id");
}

#[test]
fn sub_paths_list_cat_and_restore() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 3);
    data.file("a/b/c.txt", b"deep content");
    data.file("a/other.txt", b"other");
    data.file("top.txt", b"top");
    let engine = Engine::init(&tmp.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");

    let mut out = Vec::new();
    assert_eq!(engine.cat(snap.id, b"a/b/c.txt", &mut out).expect("cat"), 12);
    assert_eq!(out, b"deep content");
    let paths: Vec<Vec<u8>> =
        engine.list(snap.id, b"/a").expect("ls").into_iter().map(|e| e.path).collect();
    assert_eq!(
        paths,
        vec![b"a".to_vec(), b"a/b".to_vec(), b"a/b/c.txt".to_vec(), b"a/other.txt".to_vec()]
    );
    assert!(matches!(engine.cat(snap.id, b"a/b", &mut out), Err(coldkeep::ReadError::NotAFile(_))));
    assert!(matches!(
        engine.cat(snap.id, b"nope", &mut out),
        Err(coldkeep::ReadError::PathNotFound(_))
    ));
    assert!(matches!(
        engine.snapshot(SnapshotId::new(99)),
        Err(coldkeep::ReadError::SnapshotNotFound(_))
    ));

    let dir_target = tmp.path().join("only-a");
    restore(&engine, snap.id, b"a", &dir_target);
    assert_eq!(
        compare_trees(&src.join("a"), &dir_target, Compare::default()),
        Vec::<String>::new()
    );
    let file_target = tmp.path().join("only-file");
    restore(&engine, snap.id, b"a/b/c.txt", &file_target);
    assert_eq!(std::fs::read(file_target.join("c.txt")).expect("restored"), b"deep content");
}

#[test]
fn a_vanished_or_unreadable_file_is_a_warning() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 5);
    data.file("fine.txt", b"fine");
    let secret = data.file("secret.txt", b"secret");
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o000))
        .expect("chmod");
    let engine = Engine::init(&tmp.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
    if rustix::process::geteuid().is_root() {
        // root reads anything: nothing to warn about.
        assert!(snap.warnings.is_empty());
    } else {
        assert_eq!(snap.warnings.len(), 1, "{:?}", snap.warnings);
        assert_eq!(snap.warnings[0].path, b"secret.txt");
    }
    let missing = engine.backup(&tmp.path().join("absent"), &BackupOptions::default());
    assert!(matches!(missing, Err(coldkeep::BackupError::Source { .. })));
}

#[test]
fn one_process_at_a_time_has_a_repository_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let engine = Engine::init(&repo, &InitOptions::unencrypted()).expect("init");
    match Engine::open(&repo) {
        Err(coldkeep::OpenError::Busy(path)) => assert_eq!(path, repo),
        other => panic!("a second open must be refused as busy, got {other:?}"),
    }
    drop(engine);
    Engine::open(&repo).expect("open once the first engine is gone");
}
