//! Measures the choices docs/BENCHMARKS.md reports, on the Linux 6.1 A→B pair:
//!
//! 1. chunk size parameters: dedup of B against A (normalized tars: unchanged files give
//!    identical bytes) and chunking speed, for several min / avg / max;
//! 2. zstd level and frames: stored size and compression time when every file of tree A is one
//!    blob (most source files are smaller than a chunk), each blob compressed alone or small
//!    blobs grouped into shared frames as `PackWriter` does (the time includes writing the pack).
//!
//! `cargo run --release -p coldkeep-benches --example params -- $HOME/bench-data`

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use coldkeep_chunker::{CdcParams, Chunker, ChunkerConfig};
use coldkeep_store::{encode_frame, BlobKind, ChunkKey, LocalBackend, PackWriter, GROUP_TARGET};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let ft = entry.file_type().expect("file type");
        if ft.is_dir() {
            files(&entry.path(), out);
        } else if ft.is_file() {
            out.push(entry.path());
        }
    }
}

fn main() {
    let data =
        PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
            format!("{}/bench-data", std::env::var("HOME").unwrap_or_default())
        }));
    let a = std::fs::read(data.join("tars/linux-A.norm.tar")).expect("run prepare-data.sh first");
    let b = std::fs::read(data.join("tars/linux-B.norm.tar")).expect("tars/linux-B.norm.tar");
    let key = ChunkKey::from_bytes([7; 32]);

    println!("| min / avg / max | chunks in A | avg chunk | B new bytes | dedup (A+B)/unique | chunking MB/s (1 core) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let kib = |n: u32| n * 1024;
    for (min, avg, max) in [
        (16, 64, 256),
        (64, 256, 1024),
        (128, 512, 2048),
        (256, 1024, 4096),
        (512, 1024, 8192),
        (512, 2048, 8192),
        (1024, 4096, 16384),
    ] {
        let chunker = Chunker::new(ChunkerConfig::Cdc(CdcParams {
            min: kib(min),
            avg: kib(avg),
            max: kib(max),
        }))
        .expect("valid");
        let t = Instant::now();
        let ranges_a: Vec<_> = chunker.split(&a).collect();
        let secs = t.elapsed().as_secs_f64();
        let seen: HashSet<_> = ranges_a.iter().map(|r| key.id_of(&a[r.clone()])).collect();
        let mut new_b = 0usize;
        let mut seen_b = HashSet::new();
        for r in chunker.split(&b) {
            let id = key.id_of(&b[r.clone()]);
            if !seen.contains(&id) && seen_b.insert(id) {
                new_b += r.len();
            }
        }
        let unique = a.len() + new_b; // every chunk of A is new the first time (dedup inside A ignored)
        println!(
            "| {min} / {avg} / {max} KiB | {} | {:.0} KiB | {:.1} MB | {:.3} | {:.0} |",
            ranges_a.len(),
            a.len() as f64 / ranges_a.len() as f64 / 1024.0,
            new_b as f64 / 1e6,
            (a.len() + b.len()) as f64 / unique as f64,
            a.len() as f64 / 1e6 / secs
        );
    }

    let mut paths = Vec::new();
    files(&data.join("A"), &mut paths);
    paths.sort();
    let contents: Vec<Vec<u8>> = paths.iter().map(|p| std::fs::read(p).expect("read")).collect();
    let total: usize = contents.iter().map(Vec::len).sum();
    println!("\n| zstd level | frames | stored bytes (tree A, one blob per file) | ratio | compress MB/s (1 core) |");
    println!("|---|---|---:|---:|---:|");
    let tmp = tempfile::tempdir().expect("tempdir");
    let packs = LocalBackend::create(tmp.path()).expect("pack dir");
    for level in [1, 2, 3] {
        let t = Instant::now();
        let stored: usize = contents.iter().map(|c| encode_frame(c, level).1.len()).sum();
        report(level, "one per blob", total, stored, t.elapsed().as_secs_f64());
        // What a backup writes: PackWriter groups blobs under GROUP_BLOB_MAX into shared frames.
        let t = Instant::now();
        let mut writer = PackWriter::create(&packs, level, None).expect("pack");
        for c in &contents {
            writer.add(key.id_of(c), BlobKind::Data, c).expect("add");
        }
        let sealed = writer.finish().expect("seal");
        let grouped = format!("small blobs grouped ({} KiB)", GROUP_TARGET >> 10);
        report(level, &grouped, total, sealed.size as usize, t.elapsed().as_secs_f64());
    }
}

fn report(level: i32, frames: &str, total: usize, stored: usize, secs: f64) {
    println!(
        "| {level} | {frames} | {:.1} MB | {:.2} | {:.0} |",
        stored as f64 / 1e6,
        total as f64 / stored as f64,
        total as f64 / 1e6 / secs
    );
}
