//! The whole pipeline on a generated tree (2 000 files, ~60 MB, text-like with some noise):
//! first backup, unchanged re-backup, restore. `cargo bench -p coldkeep-benches --bench pipeline`
//! The end-to-end comparison with restic on the Linux tree is `benches/e2e.sh`.

use coldkeep::{BackupOptions, Engine, InitOptions, RestoreOptions};
use coldkeep_testing::Dataset;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn pipeline(c: &mut Criterion) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 1).mixed(2000, 60_000);
    let bytes: u64 = walk(&src);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(bytes));
    g.sample_size(10);
    let mut n = 0;
    g.bench_function("first-backup", |b| {
        b.iter(|| {
            n += 1;
            let engine =
                Engine::init(&tmp.path().join(format!("repo{n}")), &InitOptions::unencrypted())
                    .expect("init");
            engine.backup(&src, &BackupOptions::default()).expect("backup")
        });
    });
    let engine = Engine::init(&tmp.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
    g.bench_function("unchanged-backup", |b| {
        b.iter(|| engine.backup(&src, &BackupOptions::default()).expect("backup"));
    });
    g.bench_function("restore", |b| {
        b.iter(|| {
            n += 1;
            engine
                .restore(
                    snap.id,
                    b"",
                    &tmp.path().join(format!("out{n}")),
                    &RestoreOptions::default(),
                )
                .expect("restore")
        });
    });
    g.finish();
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| {
            let md = std::fs::symlink_metadata(e.path()).expect("stat");
            if md.is_dir() {
                walk(&e.path())
            } else {
                md.len()
            }
        })
        .sum()
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
