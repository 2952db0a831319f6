//! `coldkeep demo`: the engine's main job end to end on a real directory of this machine, in a
//! temporary repository: back up, back up again (nothing changed), restore, verify entry by entry,
//! check every stored byte, and print the figures.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Result};
use coldkeep::{BackupOptions, CheckOptions, Engine, InitOptions, RestoreOptions};
use coldkeep_testing::{compare_trees, Compare};
use serde::Serialize;

use crate::view::bytes;

#[derive(Debug, Serialize)]
struct DemoReport {
    source: String,
    files: u64,
    bytes: u64,
    first_backup_secs: f64,
    first_backup_mb_per_s: f64,
    second_backup_secs: f64,
    second_backup_files_reused: u64,
    second_backup_new_bytes: u64,
    repo_bytes: u64,
    /// Logical size of the two snapshots over the bytes the repository takes.
    space_saving_ratio: f64,
    restore_secs: f64,
    restore_mb_per_s: f64,
    differences: Vec<String>,
    check_problems: usize,
}

/// Apparent size of everything under `path`.
fn du(path: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if md.is_dir() {
        std::fs::read_dir(path).map_or(0, |rd| rd.flatten().map(|e| du(&e.path())).sum::<u64>())
    } else {
        md.len()
    }
}

pub fn run(source: &Path, json: bool) -> Result<u8> {
    let tmp = tempfile::Builder::new().prefix("coldkeep-demo-").tempdir()?;
    let repo = tmp.path().join("repo");
    let target = tmp.path().join("restore");
    let say = |s: String| {
        if !json {
            eprintln!("{s}");
        }
    };
    say(format!(
        "coldkeep demo: protecting {} in a temporary repository {}",
        source.display(),
        repo.display()
    ));
    // Encrypted, as every repository is by default; the passphrase is random and forgotten
    // with the temporary repository.
    let passphrase = coldkeep::PackId::random().to_string();
    let engine =
        Engine::init(&repo, &InitOptions::with_secret(coldkeep::Secret::passphrase(passphrase)))?;

    let t = Instant::now();
    let first = engine.backup(source, &BackupOptions::default())?;
    let first_secs = t.elapsed().as_secs_f64();
    say(format!(
        "backup 1: {} files, {} in {first_secs:.2}s ({:.0} MB/s), {} stored",
        first.stats.files,
        bytes(first.stats.bytes),
        first.stats.bytes as f64 / 1e6 / first_secs,
        bytes(first.stats.stored_bytes)
    ));
    for w in &first.warnings {
        say(format!("  warning: {}: {}", String::from_utf8_lossy(&w.path), w.message));
    }

    let t = Instant::now();
    let second = engine.backup(source, &BackupOptions::default())?;
    let second_secs = t.elapsed().as_secs_f64();
    say(format!(
        "backup 2 (unchanged): {:.2}s, {} of {} files reused without reading, {} new",
        second_secs,
        second.stats.files_reused,
        second.stats.files,
        bytes(second.stats.new_bytes)
    ));

    let t = Instant::now();
    engine.restore(second.id, b"", &target, &RestoreOptions::default())?;
    let restore_secs = t.elapsed().as_secs_f64();
    say(format!(
        "restore: {restore_secs:.2}s ({:.0} MB/s)",
        second.stats.bytes as f64 / 1e6 / restore_secs
    ));

    let differences = compare_trees(source, &target, Compare { owner: false, dir_mtime: true });
    let report = engine.check(CheckOptions { read_data: true })?;
    let repo_bytes = du(&repo);
    let out = DemoReport {
        source: source.display().to_string(),
        files: first.stats.files,
        bytes: first.stats.bytes,
        first_backup_secs: first_secs,
        first_backup_mb_per_s: first.stats.bytes as f64 / 1e6 / first_secs,
        second_backup_secs: second_secs,
        second_backup_files_reused: second.stats.files_reused,
        second_backup_new_bytes: second.stats.new_bytes,
        repo_bytes,
        space_saving_ratio: (first.stats.bytes + second.stats.bytes) as f64
            / repo_bytes.max(1) as f64,
        restore_secs,
        restore_mb_per_s: second.stats.bytes as f64 / 1e6 / restore_secs,
        differences: differences.clone(),
        check_problems: report.problems.len(),
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "\n{} files, {} backed up twice into {} on disk: {:.1}x smaller than the two copies",
            out.files,
            bytes(out.bytes),
            bytes(repo_bytes),
            out.space_saving_ratio
        );
        println!(
            "first backup {:.0} MB/s; unchanged re-backup {:.1}x faster than the first; restore {:.0} MB/s",
            out.first_backup_mb_per_s,
            first_secs / second_secs.max(1e-9),
            out.restore_mb_per_s
        );
        println!(
            "verify: {} differences between source and restore; check --read-data: {} problems ({} blobs re-hashed)",
            differences.len(),
            report.problems.len(),
            report.blobs_verified
        );
        for d in differences.iter().take(20) {
            println!("  {d}");
        }
    }
    if !differences.is_empty() || !report.is_clean() {
        bail!("demo found differences or damage");
    }
    Ok(0)
}
