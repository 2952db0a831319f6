//! Search latency on a large file index: makes a tree of N empty files (1 M by default) with
//! names drawn from a word list, backs it up, indexes the snapshot, and times searches of
//! several selectivities (median of 20 runs each).
//!
//!     cargo run --release -p coldkeep-benches --example search -- [files] [scratch dir]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use coldkeep::{BackupOptions, Engine, FileSearch, InitOptions};
use coldkeep_testing::Rng;

const WORDS: [&str; 24] = [
    "report", "invoice", "config", "module", "backup", "photo", "draft", "notes", "index",
    "server", "client", "budget", "summary", "design", "kernel", "driver", "table", "schema",
    "ledger", "archive", "script", "render", "stream", "vector",
];
const EXTS: [&str; 8] = ["txt", "rs", "c", "md", "json", "jpg", "pdf", "log"];

/// Bytes of the files under `path`.
fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .map(|e| match e.metadata() {
                Ok(md) if md.is_dir() => dir_size(&e.path()),
                Ok(md) => md.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let files: usize = args.next().map_or(1_000_000, |a| a.parse().expect("a number of files"));
    let scratch = args.next().map_or_else(std::env::temp_dir, PathBuf::from);
    let dir = tempfile::tempdir_in(&scratch).expect("scratch dir");
    let source = dir.path().join("tree");
    let mut rng = Rng::new(1);
    let t = Instant::now();
    let per_dir = 1000;
    for i in 0..files {
        let sub = source.join(format!("d{:04}", i / per_dir));
        if i % per_dir == 0 {
            std::fs::create_dir_all(&sub).expect("mkdir");
        }
        let w1 = WORDS[rng.below(WORDS.len() as u64) as usize];
        let w2 = WORDS[rng.below(WORDS.len() as u64) as usize];
        let ext = EXTS[rng.below(EXTS.len() as u64) as usize];
        std::fs::File::create(sub.join(format!("{w1}_{w2}_{i}.{ext}"))).expect("create");
    }
    println!("created {files} files in {:.1?}", t.elapsed());

    let engine = Engine::init(&dir.path().join("repo"), &InitOptions::unencrypted()).expect("init");
    let t = Instant::now();
    let snap = engine.backup(&source, &BackupOptions::default()).expect("backup");
    println!("backed up in {:.1?}", t.elapsed());
    let t = Instant::now();
    let entries = engine.index_snapshot(snap.id).expect("index");
    println!("indexed {entries} entries in {:.1?}", t.elapsed());
    let catalog = dir_size(&dir.path().join("repo/catalog"));
    println!(
        "catalog: {:.1} MB ({:.0} bytes per indexed entry, whole catalog)",
        catalog as f64 / 1e6,
        catalog as f64 / entries as f64
    );

    println!("| query | matches | median latency (first page of 100, and the count) |");
    println!("|---|---:|---:|");
    let unique = format!("_{}.", files / 2);
    for pattern in
        [unique.as_str(), "ledger_kernel_4242", "*invoice_summary_77*.pdf", "vector_vector", "*.md"]
    {
        let q = FileSearch { pattern: pattern.to_owned(), ..FileSearch::default() };
        let mut times = Vec::new();
        let mut count = 0;
        for _ in 0..20 {
            let t = Instant::now();
            count = engine.search_files(&q).expect("search").count;
            times.push(t.elapsed());
        }
        println!("| `{pattern}` | {count} | {:.2?} |", median(times));
    }
}
