//! Disk images: a protected object of kind `DiskImage` is chunked in fixed-size blocks, blocks of
//! zeros are not stored, and the restored image is byte-exact and sparse.

use std::os::unix::fs::FileExt;
use std::path::Path;

use coldkeep::model::{
    GroupSpec, ObjectKind, ObjectSpec, PolicySpec, Retention, Schedule, TimeUnit,
};
use coldkeep::{Engine, InitOptions, RestoreOptions, IMAGE_CHUNK_SIZE};
use coldkeep_testing::engine::successful_run;
use coldkeep_testing::{allocated_bytes, Rng};

const MIB: u64 = 1 << 20;

/// A 64 MiB image: holes, 5 MiB of data in places, and 4 MiB of zeros written as data.
fn image(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let file = std::fs::File::create(path).expect("create image");
    file.set_len(64 * MIB).expect("size");
    let mut rng = Rng::new(3);
    let writes = vec![
        (0, rng.bytes(MIB as usize, false)), // a boot area
        (10 * MIB + 4096, rng.bytes(3 * MIB as usize, true)), // a filesystem's data, unaligned
        (20 * MIB, vec![0; 4 * MIB as usize]), // zeroed, but allocated
        (63 * MIB, rng.bytes(MIB as usize, false)), // the end
    ];
    for (at, data) in &writes {
        file.write_all_at(data, *at).expect("write");
    }
    file.sync_all().expect("sync");
    writes
}

#[test]
fn an_image_round_trips_sparse_and_a_changed_block_is_one_new_chunk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("disk.img");
    let writes = image(&path);
    let engine = Engine::init(&dir.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let retention = Retention { unit: TimeUnit::Days, duration: 7, data_lock: None };
    let every = Schedule { unit: TimeUnit::Days, frequency: 1 };
    let policy = engine.create_policy(PolicySpec::incremental("p", every, retention)).expect("p");
    let object = ObjectSpec::new("disk", ObjectKind::DiskImage, &path);
    let group = engine.create_group(GroupSpec::new("images", policy.id, vec![object])).expect("g");

    let first = successful_run(&engine, group.id);
    let stats = first.objects[0].stats;
    let data: u64 =
        writes.iter().filter(|(_, d)| d.iter().any(|b| *b != 0)).map(|(_, d)| d.len() as u64).sum();
    let chunk = u64::from(IMAGE_CHUNK_SIZE);
    // Holes are not read, beyond what rounds the data out to whole chunks; the zeroed area is.
    assert!((9 * MIB..=9 * MIB + 2 * chunk).contains(&stats.bytes_read), "{}", stats.bytes_read);
    // Every non-zero write, rounded out to whole chunks; the 4 MiB of zeros store nothing.
    assert!(stats.bytes_new >= data && stats.bytes_new <= data + 4 * chunk, "{}", stats.bytes_new);

    let target = dir.path().join("restored");
    let snap = first.objects[0].snapshot.expect("snapshot");
    engine.restore(snap, b"", &target, &RestoreOptions::default()).expect("restore");
    let restored = target.join("disk.img");
    assert!(std::fs::read(&restored).expect("read") == std::fs::read(&path).expect("read"));
    let (before, after) = (allocated_bytes(&path), allocated_bytes(&restored));
    // The zeroed area is not allocated again; the data is, rounded out to whole chunks.
    assert!(after + 4 * MIB <= before + 2 * chunk, "zeros stay holes: {after} vs {before}");
    assert!(after >= data, "the data is there: {after} allocated");

    // One 4 KiB block changed in place: one new chunk.
    let file = std::fs::OpenOptions::new().write(true).open(&path).expect("open");
    file.write_all_at(&[0xAB; 4096], 10 * MIB + 8192).expect("write");
    drop(file);
    let second = successful_run(&engine, group.id).objects[0].stats;
    // One new data chunk, plus the small tree blob that lists it.
    assert!((chunk..chunk + 4096).contains(&second.bytes_new), "{}", second.bytes_new);
}
