//! Property: any tree — empty files, large sparse files, non-UTF-8 and newline names, deep
//! nesting — backs up and restores to an identical tree.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use coldkeep::{BackupOptions, CdcParams, ChunkerConfig, Engine, InitOptions, RestoreOptions};
use coldkeep_testing::{allocated_bytes, compare_trees, Compare, Rng};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Spec {
    File { len: usize, text: bool, seed: u64 },
    Sparse { size: u64, at: u64, len: usize },
    Link(Vec<u8>),
    Dir(Vec<(Vec<u8>, Spec)>),
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    // Any bytes but '/' and NUL, including newlines and invalid UTF-8; never "." or "..".
    proptest::collection::vec(
        any::<u8>().prop_filter("not / or NUL", |b| *b != b'/' && *b != 0),
        1..12,
    )
    .prop_filter("not . or ..", |n| n != b"." && n != b"..")
}

fn spec() -> impl Strategy<Value = Spec> {
    let leaf = prop_oneof![
        4 => (0usize..200_000, any::<bool>(), any::<u64>()).prop_map(|(len, text, seed)| Spec::File { len, text, seed }),
        1 => Just(Spec::File { len: 0, text: true, seed: 0 }),
        1 => (1u64..(64 << 20), 0u64..(64 << 20), 1usize..20_000)
            .prop_map(|(size, at, len)| Spec::Sparse { size, at: at % size, len }),
        1 => name().prop_map(Spec::Link),
    ];
    leaf.prop_recursive(8, 48, 6, |inner| {
        proptest::collection::vec((name(), inner), 0..6).prop_map(Spec::Dir)
    })
}

fn build(path: &Path, spec: &Spec) {
    match spec {
        Spec::File { len, text, seed } => {
            std::fs::write(path, Rng::new(*seed).bytes(*len, *text)).expect("file");
        }
        Spec::Sparse { size, at, len } => {
            use std::os::unix::fs::FileExt;
            let f = std::fs::File::create(path).expect("sparse");
            f.set_len(*size).expect("size");
            let len = (*len as u64).min(size - at) as usize;
            f.write_all_at(&Rng::new(*at).bytes(len, false), *at).expect("data");
        }
        Spec::Link(target) => {
            std::os::unix::fs::symlink(OsStr::from_bytes(target), path).expect("link");
        }
        Spec::Dir(entries) => {
            std::fs::create_dir(path).expect("dir");
            let mut seen = std::collections::HashSet::new();
            for (name, child) in entries {
                if seen.insert(name.clone()) {
                    build(&path.join(OsStr::from_bytes(name)), child);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_trees_round_trip(entries in proptest::collection::vec((name(), spec()), 0..8)) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let src = tmp.path().join("src");
        build(&src, &Spec::Dir(entries));
        let opts = InitOptions {
            chunker: ChunkerConfig::Cdc(CdcParams { min: 2048, avg: 8192, max: 32768 }),
            zstd_level: 1,
            pack_target_size: 128 * 1024,
            kdf: coldkeep::KdfParams::INSECURE_FOR_TESTS,
            ..InitOptions::with_secret(coldkeep::Secret::passphrase("proptest"))
        };
        let engine = Engine::init(&tmp.path().join("repo"), &opts).expect("init");
        let snap = engine.backup(&src, &BackupOptions::default()).expect("backup");
        prop_assert!(snap.warnings.is_empty(), "{:?}", snap.warnings);
        let out = tmp.path().join("out");
        engine.restore(snap.id, b"", &out, &RestoreOptions::default()).expect("restore");
        let diffs = compare_trees(&src, &out, Compare::default());
        prop_assert!(diffs.is_empty(), "{diffs:#?}");
        // Sparse files stay sparse: nothing restored takes more blocks than its source.
        for entry in engine.list(snap.id, b"").expect("list") {
            let rel = Path::new(OsStr::from_bytes(&entry.path));
            let (a, b) = (allocated_bytes(&src.join(rel)), allocated_bytes(&out.join(rel)));
            prop_assert!(b <= a + 8192, "{rel:?} grew from {a} to {b} allocated bytes");
        }
    }
}
