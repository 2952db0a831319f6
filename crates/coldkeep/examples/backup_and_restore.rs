//! Back up a directory into a fresh repository, back it up again, restore it and compare.
//!
//! `cargo run --release -p coldkeep --example backup_and_restore -- /usr/include`

use coldkeep::{BackupOptions, CheckOptions, Engine, InitOptions, RestoreOptions, Secret};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let source = std::env::args().nth(1).unwrap_or_else(|| "/etc".to_owned());
    let scratch = tempfile::tempdir()?;
    let secret = Secret::passphrase("an example passphrase");
    let engine = Engine::init(&scratch.path().join("repo"), &InitOptions::with_secret(secret))?;

    let first = engine.backup(source.as_ref(), &BackupOptions::default())?;
    println!(
        "snapshot {}: {} files, {} bytes, {} new bytes stored in {} bytes",
        first.id,
        first.stats.files,
        first.stats.bytes,
        first.stats.new_bytes,
        first.stats.stored_bytes
    );
    for w in &first.warnings {
        println!("  warning: {}: {}", String::from_utf8_lossy(&w.path), w.message);
    }
    let second = engine.backup(source.as_ref(), &BackupOptions::default())?;
    println!(
        "snapshot {}: {} of {} files unchanged and not read, {} new bytes",
        second.id, second.stats.files_reused, second.stats.files, second.stats.new_bytes
    );

    let target = scratch.path().join("restored");
    let summary = engine.restore(second.id, b"", &target, &RestoreOptions::default())?;
    println!(
        "restored {} files ({} bytes) into {}",
        summary.files,
        summary.bytes,
        target.display()
    );

    let report = engine.check(CheckOptions { read_data: true })?;
    println!(
        "check --read-data: {} blobs re-hashed, {} problems",
        report.blobs_verified,
        report.problems.len()
    );
    Ok(())
}
