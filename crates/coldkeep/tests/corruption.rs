//! Damage is found, located and attributed: a flipped byte in a pack is reported with its pack,
//! offset and the snapshots it damages; reading around it still works; decoding never panics.

use std::path::{Path, PathBuf};

use coldkeep::{
    BackupOptions, CheckOptions, Engine, InitOptions, Problem, ReadError, RestoreError,
    RestoreOptions,
};
use coldkeep_testing::Dataset;

fn packs(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(repo.join("packs")).expect("packs dir").flatten() {
        for f in std::fs::read_dir(sub.path()).expect("sub dir").flatten() {
            if f.path().extension().is_some_and(|e| e == "pack") {
                out.push(f.path());
            }
        }
    }
    out
}

#[test]
fn a_flipped_byte_is_reported_with_pack_offset_and_snapshots() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 4);
    let victim_content = data.rng().bytes(300_000, false);
    data.file("victim.bin", &victim_content);
    data.file("bystander.txt", b"unaffected");
    let repo = tmp.path().join("repo");
    let engine = Engine::init(&repo, &InitOptions::unencrypted()).expect("init");
    let first = engine.backup(&src, &BackupOptions::default()).expect("backup 1");
    data.file("later.txt", b"added later");
    let second = engine.backup(&src, &BackupOptions::default()).expect("backup 2");
    assert!(engine.check(CheckOptions { read_data: true }).expect("check").is_clean());
    drop(engine);

    // The victim's content is stored raw (incompressible) and is the largest blob: find where
    // its bytes are and flip one in the middle.
    let needle = &victim_content[1000..1064];
    let (pack, mut bytes, at) = packs(&repo)
        .into_iter()
        .find_map(|p| {
            let bytes = std::fs::read(&p).expect("read pack");
            let at = bytes.windows(64).position(|w| w == needle)?;
            Some((p, bytes, at + 32))
        })
        .expect("victim stored raw in some pack");
    bytes[at] ^= 0x01;
    std::fs::write(&pack, &bytes).expect("write pack");

    let engine = Engine::open(&repo).expect("reopen");
    let structure = engine.check(CheckOptions { read_data: false }).expect("check");
    assert!(structure.is_clean(), "structure is intact: {:?}", structure.problems);
    let report = engine.check(CheckOptions { read_data: true }).expect("check --read-data");
    let pack_id = pack.file_stem().expect("stem").to_str().expect("utf-8").to_owned();
    match report.problems.as_slice() {
        [Problem::CorruptPack { pack, offset, chunk: Some(_), snapshots, .. }] => {
            assert_eq!(pack, &pack_id);
            assert!(
                *offset <= at as u64 && at as u64 - offset < 300_000,
                "offset {offset} vs flipped byte at {at}"
            );
            assert_eq!(snapshots, &vec![first.id, second.id]);
        }
        other => panic!("expected one damaged blob, got {other:?}"),
    }

    // Reads that do not touch the damage still work; those that do fail with a typed error.
    let mut out = Vec::new();
    engine.cat(second.id, b"bystander.txt", &mut out).expect("bystander is fine");
    assert_eq!(out, b"unaffected");
    assert!(matches!(
        engine.cat(second.id, b"victim.bin", &mut Vec::new()),
        Err(ReadError::Data(_))
    ));
    let err = engine
        .restore(second.id, b"", &tmp.path().join("out"), &RestoreOptions::default())
        .expect_err("damaged");
    assert!(matches!(err, RestoreError::Read(ReadError::Data(_))), "{err:?}");
}

#[test]
fn a_damaged_catalog_record_is_reported_not_fatal() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("repo");
    let engine = Engine::init(&repo, &InitOptions::unencrypted()).expect("init");
    drop(engine);
    std::fs::write(repo.join("config"), b"CLDKREPO garbage").expect("damage config");
    assert!(matches!(Engine::open(&repo), Err(coldkeep::OpenError::CorruptConfig { .. })));
    assert!(matches!(
        Engine::open(&tmp.path().join("none")),
        Err(coldkeep::OpenError::NotARepository(_))
    ));
}
