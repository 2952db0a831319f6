//! Seed corpora for the fuzz targets, taken from a real repository: the project's own
//! `crates/` directory is backed up, and the bodies of its trees and snapshot records and the
//! contents of some of its files become the seeds (fuzz/corpus/<target>/<n>), so the fuzzers
//! start from inputs the decoders accept and mutate from there.
use std::path::Path;

use coldkeep::{BackupOptions, Engine, InitOptions, NodeKind, Tree};
use coldkeep_catalog::record;

/// A record's body: its bytes without the version in front and the checksum behind.
fn body(sealed: &[u8]) -> &[u8] {
    &sealed[1..sealed.len() - 4]
}

fn write(dir: &Path, n: usize, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    std::fs::write(dir.join(format!("seed-{n:03}")), bytes).expect("write seed");
}

fn main() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = here.join("../crates");
    let tmp = tempfile::tempdir().expect("tempdir");
    let engine = Engine::init(&tmp.path().join("repo"), &InitOptions::default()).expect("init");
    let snap = engine.backup(&source, &BackupOptions::default()).expect("backup");
    let corpus = here.join("corpus");
    write(&corpus.join("record"), 0, body(&record::encode(2, &snap)));
    // One tree per directory (a sample of them), rebuilt from the listing.
    let mut trees = 0;
    let entries = engine.list(snap.id, b"").expect("ls");
    let dirs: Vec<_> =
        entries.iter().filter(|e| matches!(e.node.kind, NodeKind::Dir { .. })).collect();
    for dir in dirs.iter().step_by((dirs.len() / 12).max(1)) {
        let children = engine.list(snap.id, &dir.path).expect("ls dir");
        let prefix = [&dir.path[..], b"/"].concat();
        let nodes: Vec<_> = children
            .into_iter()
            .filter(|c| c.path.strip_prefix(&prefix[..]).is_some_and(|rest| !rest.contains(&b'/')))
            .map(|c| c.node)
            .collect();
        if nodes.is_empty() {
            continue;
        }
        write(&corpus.join("tree"), trees, body(&Tree { entries: nodes }.encode()));
        trees += 1;
    }
    // Pack inputs: a file's bytes, doubled (the target packs the first half and damages with the second).
    let mut packs = 0;
    for e in entries
        .iter()
        .filter(|e| matches!(e.node.kind, NodeKind::File { size, .. } if size < 20_000))
        .step_by(40)
    {
        let mut bytes = Vec::new();
        engine.cat(snap.id, &e.path, &mut bytes).expect("cat");
        let zeros = vec![0u8; bytes.len()];
        write(&corpus.join("pack"), packs, &[bytes, zeros].concat());
        packs += 1;
        if packs == 12 {
            break;
        }
    }
    println!("seeds: 1 record, {trees} trees, {packs} packs");
}
