//! `coldkeep`: the command-line face of the engine.
//!
//! Every command prints a human summary, or one JSON document with `--json`. Exit codes: 0 on
//! success, 1 on error, 2 on bad usage (clap), 3 when `check` finds damage.

mod demo;
mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use coldkeep::{
    BackupKind, BackupOptions, CdcParams, CheckOptions, ChunkerConfig, Engine, InitOptions,
    Progress, RestoreOptions, SnapshotId,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Parser, Debug)]
#[command(name = "coldkeep", version, about = "Deduplicating, crash-safe backups")]
struct Cli {
    /// Repository directory.
    #[arg(long, short = 'r', env = "COLDKEEP_REPO", global = true)]
    repo: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Chunking {
    /// Content-defined chunks (directory trees, logs).
    Cdc,
    /// Fixed-size chunks (disk images).
    Fixed,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a repository.
    Init {
        #[arg(long, value_enum, default_value_t = Chunking::Cdc)]
        chunking: Chunking,
        /// Average chunk size in KiB (cdc: min = avg/4, max = avg*4) or the chunk size (fixed).
        #[arg(long, default_value_t = 512)]
        chunk_kib: u32,
        /// zstd compression level.
        #[arg(long, default_value_t = 3)]
        zstd_level: i32,
        /// Pack size target in KiB.
        #[arg(long, default_value_t = 16 * 1024)]
        pack_kib: u64,
    },
    /// Back up a directory or a file.
    Backup {
        source: PathBuf,
        /// Read every file instead of reusing unchanged files from the parent snapshot.
        #[arg(long)]
        full: bool,
        /// Parent snapshot (default: the newest of the same source on this host).
        #[arg(long)]
        parent: Option<SnapshotId>,
        #[arg(long = "tag")]
        tags: Vec<String>,
    },
    /// List snapshots.
    Snapshots,
    /// List the entries of a snapshot (`latest` for the newest).
    Ls {
        snapshot: String,
        #[arg(default_value = "")]
        path: String,
    },
    /// Restore a snapshot (or a path inside it) into an empty or new directory.
    Restore {
        snapshot: String,
        #[arg(long, short = 't')]
        target: PathBuf,
        /// Only this path inside the snapshot.
        #[arg(long, default_value = "")]
        path: String,
    },
    /// Write a file from a snapshot to standard output.
    Cat { snapshot: String, path: String },
    /// Verify the repository; `--read-data` also re-hashes every stored byte.
    Check {
        #[arg(long)]
        read_data: bool,
    },
    /// Repository figures.
    Stats,
    /// Remove expired snapshots and reclaim the space nothing references any more (two phases:
    /// unreferenced packs are condemned, and deleted by a later collection after the grace period).
    Gc {
        /// Seconds a condemned pack waits before it is deleted.
        #[arg(long, default_value_t = 3600)]
        grace_secs: u64,
    },
    /// Back up a real directory twice into a temporary repository, restore it, verify it and
    /// print the dedup and speed figures.
    Demo {
        /// Directory to protect (default: /usr/include, else /usr/share/doc, else /etc).
        source: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("COLDKEEP_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            if cli.json {
                println!("{}", serde_json::json!({ "error": format!("{e:#}") }));
            } else {
                eprintln!("error: {e:#}");
            }
            ExitCode::from(1)
        }
    }
}

fn repo_path(cli: &Cli) -> Result<&Path> {
    cli.repo.as_deref().context("no repository: pass --repo or set COLDKEEP_REPO")
}

fn open(cli: &Cli) -> Result<Engine> {
    let path = repo_path(cli)?;
    Engine::open(path).with_context(|| format!("opening repository {}", path.display()))
}

fn parse_snapshot(engine: &Engine, s: &str) -> Result<SnapshotId> {
    if s == "latest" {
        return engine.snapshots()?.last().map(|s| s.id).context("the repository has no snapshot");
    }
    s.parse().with_context(|| format!("not a snapshot id: {s:?}"))
}

/// A progress line on stderr while `work` runs, only when stderr is a terminal.
pub(crate) fn with_progress<T>(
    label: &str,
    progress: &Arc<Progress>,
    work: impl FnOnce() -> T,
) -> T {
    if !std::io::stderr().is_terminal() {
        return work();
    }
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
            .expect("valid template"),
    );
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    let done = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let st = progress.stats();
                bar.set_message(format!(
                    "{} files, {} processed, {} new",
                    st.files,
                    view::bytes(st.bytes.max(st.bytes_read)),
                    view::bytes(st.new_bytes)
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let out = work();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        out
    });
    bar.finish_and_clear();
    out
}

fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Init { chunking, chunk_kib, zstd_level, pack_kib } => {
            let avg = chunk_kib * 1024;
            let chunker = match chunking {
                Chunking::Cdc => ChunkerConfig::Cdc(CdcParams { min: avg / 4, avg, max: avg * 4 }),
                Chunking::Fixed => ChunkerConfig::Fixed(avg),
            };
            let opts =
                InitOptions { chunker, zstd_level: *zstd_level, pack_target_size: pack_kib << 10 };
            let path = repo_path(cli)?;
            Engine::init(path, &opts)
                .with_context(|| format!("creating repository {}", path.display()))?;
            view::print(cli.json, &serde_json::json!({ "initialized": path }), || {
                format!("created repository {}", path.display())
            });
        }
        Command::Backup { source, full, parent, tags } => {
            let engine = open(cli)?;
            let progress = Arc::new(Progress::default());
            let opts = BackupOptions {
                kind: if *full { BackupKind::Full } else { BackupKind::Incremental },
                parent: *parent,
                tags: tags.clone(),
                progress: Some(progress.clone()),
                ..BackupOptions::default()
            };
            let snap = with_progress("backup", &progress, || engine.backup(source, &opts))
                .with_context(|| format!("backing up {}", source.display()))?;
            let v = view::Snapshot::from(&snap);
            view::print(cli.json, &v, || v.summary());
        }
        Command::Snapshots => {
            let engine = open(cli)?;
            let snaps: Vec<view::Snapshot> =
                engine.snapshots()?.iter().map(view::Snapshot::from).collect();
            view::print(cli.json, &snaps, || view::Snapshot::table(&snaps));
        }
        Command::Ls { snapshot, path } => {
            let engine = open(cli)?;
            let id = parse_snapshot(&engine, snapshot)?;
            let entries: Vec<view::Entry> =
                engine.list(id, path.as_bytes())?.iter().map(view::Entry::from).collect();
            view::print(cli.json, &entries, || {
                entries.iter().map(view::Entry::line).collect::<Vec<_>>().join("\n")
            });
        }
        Command::Restore { snapshot, target, path } => {
            let engine = open(cli)?;
            let id = parse_snapshot(&engine, snapshot)?;
            let progress = Arc::new(Progress::default());
            let opts = RestoreOptions { threads: None, progress: Some(progress.clone()) };
            let summary = with_progress("restore", &progress, || {
                engine.restore(id, path.as_bytes(), target, &opts)
            })
            .with_context(|| format!("restoring snapshot {id} into {}", target.display()))?;
            view::print(cli.json, &summary, || view::restore_summary(&summary, id, target));
        }
        Command::Cat { snapshot, path } => {
            let engine = open(cli)?;
            let id = parse_snapshot(&engine, snapshot)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            engine.cat(id, path.as_bytes(), &mut out)?;
            std::io::Write::flush(&mut out)?;
        }
        Command::Check { read_data } => {
            let engine = open(cli)?;
            let report = engine.check(CheckOptions { read_data: *read_data })?;
            view::print(cli.json, &report, || view::check_summary(&report));
            if !report.is_clean() {
                return Ok(ExitCode::from(3));
            }
        }
        Command::Stats => {
            let engine = open(cli)?;
            let stats = engine.stats()?;
            view::print(cli.json, &stats, || view::stats_summary(&stats));
        }
        Command::Gc { grace_secs } => {
            let engine = open(cli)?;
            let opts = coldkeep::GcOptions {
                grace: std::time::Duration::from_secs(*grace_secs),
                ..coldkeep::GcOptions::default()
            };
            let report = engine.gc(opts)?;
            view::print(cli.json, &report, || view::gc_summary(&report));
        }
        Command::Demo { source } => {
            let source = match source {
                Some(s) => s.clone(),
                None => ["/usr/include", "/usr/share/doc", "/etc"]
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_dir())
                    .context("no default directory to back up; pass one")?,
            };
            if !source.is_dir() {
                bail!("{} is not a directory", source.display());
            }
            return demo::run(&source, cli.json);
        }
    }
    Ok(ExitCode::SUCCESS)
}
