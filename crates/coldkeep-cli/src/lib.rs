//! `coldkeep`: the command-line face of the engine.
//!
//! Every command prints a human summary, or one JSON document with `--json`. Exit codes: 0 on
//! success, 1 on error, 2 on bad usage (clap), 3 when `check` finds damage, 4 when a run waited
//! for did not succeed.
//!
//! Commands run against the repository in this process, or — when a `coldkeep serve` (or a
//! `run start` still executing its run) has the repository open — in that process, through its
//! control socket (see `serve`).
//!
//! The binary is `src/main.rs`, which calls [`main`]; this library exists so that the
//! workspace's system tests (`tests/`) can build the same command line as a binary of their own.

mod address;
mod demo;
mod keys;
mod protect;
mod secret;
mod serve;
mod session;
mod view;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use coldkeep::{
    BackupKind, BackupOptions, CdcParams, CheckOptions, ChunkerConfig, Engine, InitOptions,
    OpenMode, Progress, RestoreOptions, SnapshotId,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use address::Address;
use protect::{GroupCmd, ObjectCmd, PolicyCmd, RecoveryCmd, RunCmd, RunView, SourceCmd};
use serve::Backend;
use session::Session;

#[derive(Parser, Debug)]
#[command(name = "coldkeep", version, about = "Deduplicating, crash-safe backups")]
struct Cli {
    /// Repository: a directory, or a bucket `s3://bucket/prefix` (endpoint, region and
    /// credentials from AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    #[arg(long, short = 'r', env = "COLDKEEP_REPO", global = true)]
    repo: Option<PathBuf>,
    /// Where the catalogs of repositories in buckets are cached on this machine (default
    /// $XDG_CACHE_HOME/coldkeep, else ~/.cache/coldkeep).
    #[arg(long, env = "COLDKEEP_CACHE_DIR", global = true)]
    cache_dir: Option<PathBuf>,
    /// Print one JSON document instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// Act with the DataLock-administrator and legal-hold rights (root only).
    #[arg(long, global = true)]
    admin: bool,
    /// How long to wait while another process has the repository open.
    #[arg(long, global = true, default_value_t = 10)]
    lock_wait_secs: u64,
    /// The passphrase is this file's first line (else COLDKEEP_PASSWORD, else a prompt).
    #[arg(long, env = "COLDKEEP_PASSWORD_FILE", global = true)]
    password_file: Option<PathBuf>,
    /// Unlock with this key file instead of a passphrase.
    #[arg(long, env = "COLDKEEP_KEY_FILE", global = true)]
    key_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// One command as it runs here or travels to a server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Request {
    command: Command,
    json: bool,
    admin: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize, Deserialize)]
enum Chunking {
    /// Content-defined chunks (directory trees, logs).
    Cdc,
    /// Fixed-size chunks (disk images).
    Fixed,
}

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
enum Command {
    /// Create a repository.
    Init {
        #[arg(long, value_enum, default_value_t = Chunking::Cdc)]
        chunking: Chunking,
        /// Average chunk size in KiB (cdc: min = avg/4, max = avg*4) or the chunk size (fixed).
        #[arg(long, default_value_t = 512)]
        chunk_kib: u32,
        /// zstd compression level.
        #[arg(long, default_value_t = coldkeep::DEFAULT_ZSTD_LEVEL)]
        zstd_level: i32,
        /// Pack size target in KiB.
        #[arg(long, default_value_t = 16 * 1024)]
        pack_kib: u64,
        /// Store plaintext (recorded in the config; the default encrypts, unlocked by the
        /// passphrase or key file).
        #[arg(long)]
        no_encryption: bool,
        #[command(flatten)]
        kdf: keys::KdfArgs,
    },
    /// Recreate the catalog from the repository's own objects (pack trailers and the catalog's
    /// journal), for a catalog that is missing, damaged or lost commits. The old one is moved
    /// aside to catalog.replaced-<time>.
    RebuildCatalog,
    /// Key slots of an encrypted repository: list, add (a passphrase or a key file), remove.
    #[command(subcommand)]
    Key(keys::KeyCmd),
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
        /// The source is a disk image: fixed-size chunks, blocks of zeros kept as holes.
        #[arg(long)]
        disk_image: bool,
    },
    /// List snapshots.
    Snapshots,
    /// List the entries of a snapshot (`latest` for the newest).
    Ls {
        snapshot: SnapshotArg,
        #[arg(default_value = "")]
        path: OsString,
    },
    /// Restore a snapshot (or a path inside it) into an empty or new directory; or, with
    /// --at, an object as it was at a point in time (its newest base before then, and the log
    /// directory protected with it into --logs-target, for the database to replay).
    Restore {
        #[arg(required_unless_present = "at")]
        snapshot: Option<SnapshotArg>,
        #[arg(long, short = 't')]
        target: PathBuf,
        /// Only this path inside the snapshot.
        #[arg(long, default_value = "")]
        path: OsString,
        /// Point in time (2026-11-23T07:45:00Z, or µs since the epoch).
        #[arg(long, requires_all = ["object", "logs_target"], conflicts_with = "snapshot")]
        at: Option<coldkeep::model::Usecs>,
        /// With --at: the protected object to recover.
        #[arg(long)]
        object: Option<coldkeep::model::ObjectId>,
        /// With --at: where the log segments go.
        #[arg(long)]
        logs_target: Option<PathBuf>,
        /// Write everything through the page cache (keeps the restored data cached; by
        /// default large writes bypass it).
        #[arg(long)]
        buffered: bool,
    },
    /// Write a file from a snapshot to standard output, or with --offset / --length the
    /// range of it (at most 8 MiB at once; only the chunks it overlaps are read).
    Cat {
        snapshot: SnapshotArg,
        path: OsString,
        #[arg(long)]
        offset: Option<u64>,
        #[arg(long)]
        length: Option<u64>,
    },
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
    /// Protection policies: schedules, retention, DataLock, blackout windows.
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// Protection groups: a policy applied to directories, log directories and disk images.
    #[command(subcommand)]
    Group(GroupCmd),
    /// Runs of a protection group: start, list, pause, resume, cancel, update retention.
    #[command(subcommand)]
    Run(RunCmd),
    /// Search the file index: names by substring, or by glob with `*` and `?`.
    Search {
        pattern: String,
        #[arg(long = "group")]
        groups: Vec<coldkeep::model::GroupId>,
        #[arg(long = "object")]
        objects: Vec<coldkeep::model::ObjectId>,
        /// When the snapshots were taken.
        #[command(flatten)]
        span: protect::TimeRange,
        /// Results per page.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Continue after the page that returned this cookie.
        #[arg(long)]
        cookie: Option<String>,
    },
    /// Add a snapshot to the file index (runs index theirs; `latest` for the newest).
    Index { snapshot: SnapshotArg },
    /// Protected objects: their snapshots, with the seed's filters.
    #[command(subcommand)]
    Object(ObjectCmd),
    /// Source registrations: host paths, log directories and disk images, enumerated.
    #[command(subcommand)]
    Source(SourceCmd),
    /// Recoveries: restore files, download an archive, recover to a point in time.
    #[command(subcommand)]
    Recovery(RecoveryCmd),
    /// The audit log of retention, legal-hold, DataLock and deletion changes.
    Audit,
    /// Run the scheduler once and wait for the runs it starts (for cron).
    Tick,
    /// Keep the repository open: run the scheduler and answer other coldkeep commands (run
    /// control from any shell) on a socket in the repository, until stopped.
    Serve {
        /// Seconds between scheduler ticks (0: never schedule).
        #[arg(long, default_value_t = 60)]
        tick_secs: u64,
        /// Runs executing at once; the others wait OnHold, highest priority first.
        #[arg(long, default_value_t = 2)]
        max_concurrent_runs: usize,
    },
    /// Back up a real directory twice into a temporary repository, restore it, verify it and
    /// print the dedup and speed figures.
    Demo {
        /// Directory to protect (default: /usr/include, else /usr/share/doc, else /etc).
        source: Option<PathBuf>,
    },
}

/// Exit code of a backup that committed its snapshot without some entries it could not read
/// (as restic's 3).
const INCOMPLETE: u8 = 3;
/// Exit code of a `check` that found damage.
const DAMAGE: u8 = 3;

/// The `coldkeep` command line: parses the process's arguments and runs the command.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("COLDKEEP_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match dispatch(cli.clone_request(), &cli) {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`coldkeep ls | head -1`): nothing to say, nobody to say it to.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
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

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = cause.downcast_ref::<std::io::Error>().map(std::io::Error::kind).or_else(|| {
            cause.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind)
        });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

impl Cli {
    fn clone_request(&self) -> Request {
        Request { command: self.command.clone(), json: self.json, admin: self.admin }
    }

    fn secret_source(&self) -> secret::SecretSource {
        secret::SecretSource {
            key_file: self.key_file.clone(),
            password_file: self.password_file.clone(),
            env: secret::PASSWORD_ENV,
        }
    }
}

fn repo_address(cli: &Cli) -> Result<Address> {
    let repo = cli.repo.as_deref().context("no repository: pass --repo or set COLDKEEP_REPO")?;
    Address::parse(repo, cli.cache_dir.as_deref())
}

/// A snapshot named on the command line: its id, or `latest`. Anything else is a usage error
/// (exit 2), found before the repository is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SnapshotArg {
    Latest,
    Id(SnapshotId),
}

impl std::str::FromStr for SnapshotArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "latest" {
            return Ok(Self::Latest);
        }
        s.parse().map(Self::Id).map_err(|_| format!("not a snapshot id or `latest`: {s:?}"))
    }
}

fn parse_snapshot(engine: &Engine, s: &SnapshotArg) -> Result<SnapshotId> {
    match s {
        SnapshotArg::Latest => {
            engine.snapshots()?.last().map(|s| s.id).context("the repository has no snapshot")
        }
        SnapshotArg::Id(id) => Ok(*id),
    }
}

/// The bytes of a name given on the command line (names need not be UTF-8).
pub(crate) fn arg_bytes(s: &std::ffi::OsStr) -> &[u8] {
    use std::os::unix::ffi::OsStrExt;
    s.as_bytes()
}

/// A progress line on stderr while `work` runs, when the session may draw one.
pub(crate) fn with_progress<T>(
    s: &Session<'_>,
    label: &str,
    progress: &Arc<Progress>,
    work: impl FnOnce() -> T,
) -> T {
    if !s.interactive {
        return work();
    }
    let bar = spinner(label);
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

fn spinner(label: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner().with_style(
        ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
            .expect("valid template"),
    );
    bar.set_prefix(label.to_owned());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Prints the one result of a command that runs without a [`Backend`] (`init`,
/// `rebuild-catalog`).
fn print_once<T: Serialize>(cli: &Cli, value: &T, human: impl FnOnce() -> String) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut s = Session {
        json: cli.json,
        interactive: false,
        out: &mut stdout,
        principal: coldkeep::model::Principal::user(""),
    };
    s.print(value, human)
}

/// Runs the command: the ones that need no open repository here, the others through a
/// [`Backend`] (this process or the repository's server).
fn dispatch(mut request: Request, cli: &Cli) -> Result<u8> {
    match &request.command {
        Command::Init { chunking, chunk_kib, zstd_level, pack_kib, no_encryption, kdf } => {
            let avg = chunk_kib * 1024;
            let chunker = match chunking {
                Chunking::Cdc => ChunkerConfig::Cdc(CdcParams { min: avg / 4, avg, max: avg * 4 }),
                Chunking::Fixed => ChunkerConfig::Fixed(avg),
            };
            let repo = repo_address(cli)?;
            let secret = if *no_encryption {
                None
            } else {
                let what = format!("passphrase for the new repository {repo}");
                Some(cli.secret_source().resolve(&what, true)?)
            };
            let opts = InitOptions {
                chunker,
                zstd_level: *zstd_level,
                pack_target_size: pack_kib << 10,
                encrypt: !no_encryption,
                secret,
                kdf: kdf.params(),
            };
            repo.init(&opts)?.with_context(|| format!("creating repository {repo}"))?;
            print_once(cli, &serde_json::json!({ "initialized": repo.to_string() }), || {
                format!("created repository {repo}")
            })?;
            return Ok(0);
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
        Command::RebuildCatalog => {
            let repo = repo_address(cli)?;
            let (_engine, report) = secret::rebuild(&repo, &cli.secret_source())?
                .with_context(|| format!("rebuilding the catalog of {repo}"))?;
            print_once(cli, &report, || view::rebuild_summary(&report))?;
            return Ok(0);
        }
        Command::Serve { tick_secs, max_concurrent_runs } => {
            let tick = Duration::from_secs(*tick_secs);
            let repo = repo_address(cli)?;
            return serve::serve(&repo, tick, *max_concurrent_runs, &cli.secret_source());
        }
        _ => {}
    }
    request.command.absolutize()?;
    if let Command::Key(cmd) = &mut request.command {
        cmd.read_new_secret()?;
    }
    let repo = repo_address(cli)?;
    let patience = Duration::from_secs(cli.lock_wait_secs);
    let mode = request.command.open_mode();
    let backend = Backend::connect(&repo, mode, patience, &cli.secret_source())?;
    let interactive = std::io::stderr().is_terminal() && matches!(backend, Backend::Local(..));
    let mut stdout = std::io::stdout().lock();
    if let Command::Run(RunCmd::Start { wait, .. }) = &request.command {
        // A run executes in the process holding the repository: here, unless a server has it,
        // so this process waits for the run and meanwhile answers other commands about it.
        let listening = match &backend {
            Backend::Local(engine, path) => Some(serve::listen(Arc::clone(engine), path)?),
            Backend::Remote(_) => None,
        };
        if *wait || listening.is_some() {
            return start_and_wait(&backend, &request, *wait && std::io::stderr().is_terminal());
        }
    }
    // Likewise a recovery executes where it is created: without a server, this process waits
    // for it and answers other commands (cancel...) meanwhile.
    let _listening = match (&mut request.command, &backend) {
        (Command::Recovery(cmd), Backend::Local(engine, path)) if cmd.creates() => {
            cmd.wait();
            Some(serve::listen(Arc::clone(engine), path)?)
        }
        _ => None,
    };
    let code = backend.call(&request, &mut stdout, interactive)?;
    std::io::Write::flush(&mut stdout)?;
    Ok(code)
}

/// `run start --wait`: starts the run, follows it (with a progress bar on a terminal) until it
/// ends, prints its final record. Exit code 4 unless it succeeded.
fn start_and_wait(backend: &Backend, request: &Request, bar: bool) -> Result<u8> {
    let as_json = |command: Command| Request { command, json: true, admin: request.admin };
    let fetch = |req: &Request| -> Result<RunView> {
        let mut buf = Vec::new();
        backend.call(req, &mut buf, false)?;
        serde_json::from_slice(&buf).context("unreadable run record")
    };
    let started = fetch(&as_json(request.command.clone()))?.run;
    let show = RunCmd::Show { group: started.group, run: started.id };
    let bar = bar.then(|| spinner(&format!("run {}", started.id)));
    let last = loop {
        let view = fetch(&as_json(Command::Run(show.clone())))?;
        if let Some(bar) = &bar {
            // Live counters while it runs, the record's once it has ended.
            let (files, read, new) = if let Some(p) = view.progress {
                (p.files, p.bytes_read, p.new_bytes)
            } else {
                let st = view.run.stats();
                (st.files, st.bytes_read, st.bytes_new)
            };
            bar.set_message(format!(
                "{}: {files} files, {} read, {} new",
                view.run.status,
                view::bytes(read),
                view::bytes(new)
            ));
        }
        if view.run.status.is_terminal() {
            break view.run;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let mut stdout = std::io::stdout().lock();
    let final_show =
        Request { command: Command::Run(show), json: request.json, admin: request.admin };
    backend.call(&final_show, &mut stdout, false)?;
    Ok(if last.status.is_success() { 0 } else { 4 })
}

impl Command {
    /// How the command opens the repository when it runs in this process. Commands that only
    /// read open it read-only: they work on a full disk and on read-only media, and several
    /// may run at once.
    fn open_mode(&self) -> OpenMode {
        match self {
            Self::Snapshots
            | Self::Ls { .. }
            | Self::Restore { .. }
            | Self::Cat { .. }
            | Self::Check { .. }
            | Self::Stats
            | Self::Search { .. }
            | Self::Audit
            | Self::Key(keys::KeyCmd::List) => OpenMode::ReadOnly,
            _ => OpenMode::ReadWrite,
        }
    }

    /// Paths made absolute against this process's directory, so that they mean the same to a
    /// server running elsewhere.
    fn absolutize(&mut self) -> Result<()> {
        match self {
            Self::Backup { source, .. } => *source = std::path::absolute(&*source)?,
            Self::Restore { target, logs_target, .. } => {
                *target = std::path::absolute(&*target)?;
                if let Some(logs) = logs_target {
                    *logs = std::path::absolute(&*logs)?;
                }
            }
            Self::Group(GroupCmd::Create { objects, .. }) => objects.absolutize()?,
            Self::Group(GroupCmd::Update { add, .. }) => add.absolutize()?,
            Self::Recovery(cmd) => cmd.absolutize()?,
            Self::Source(cmd) => cmd.absolutize()?,
            _ => {}
        }
        Ok(())
    }
}

/// Runs one command against an open repository, writing to `s`; returns the exit code.
pub(crate) fn execute(engine: &Engine, command: &Command, s: &mut Session<'_>) -> Result<u8> {
    match command {
        Command::Backup { source, full, parent, tags, disk_image } => {
            let progress = Arc::new(Progress::default());
            let opts = BackupOptions {
                kind: if *full { BackupKind::Full } else { BackupKind::Incremental },
                parent: *parent,
                tags: tags.clone(),
                progress: Some(progress.clone()),
                disk_image: *disk_image,
                ..BackupOptions::default()
            };
            let snap = with_progress(s, "backup", &progress, || engine.backup(source, &opts))
                .with_context(|| format!("backing up {}", source.display()))?;
            let v = view::Snapshot::from(&snap);
            s.print(&v, || v.summary())?;
            if !snap.is_complete() {
                let lost = snap.warnings.iter().filter(|w| w.is_loss()).count();
                eprintln!(
                    "backup incomplete: snapshot {} lacks {lost} entries that could not be read \
                     (see its warnings); exit code {INCOMPLETE}",
                    snap.id
                );
                return Ok(INCOMPLETE);
            }
        }
        Command::Snapshots => {
            let snaps: Vec<view::Snapshot> =
                engine.snapshots()?.iter().map(view::Snapshot::from).collect();
            s.print(&snaps, || view::Snapshot::table(&snaps))?;
        }
        Command::Ls { snapshot, path } => {
            let id = parse_snapshot(engine, snapshot)?;
            let entries: Vec<view::Entry> =
                engine.list(id, arg_bytes(path))?.iter().map(view::Entry::from).collect();
            s.print(&entries, || {
                entries.iter().map(view::Entry::line).collect::<Vec<_>>().join("\n")
            })?;
        }
        Command::Restore {
            at: Some(at),
            object: Some(object),
            logs_target: Some(logs),
            target,
            ..
        } => {
            let opts = RestoreOptions::default();
            let done = engine.recover_point_in_time(*object, *at, target, logs, &opts)?;
            s.print(&done, || {
                let p = &done.plan;
                format!(
                    "object {object} as of {at}: base snapshot {} ({} as of {}) into {}, logs snapshot {} (covering {} .. {}) into {}",
                    p.base.snapshot,
                    p.base.run_type,
                    p.base.captured_usecs,
                    target.display(),
                    p.logs.snapshot,
                    p.logs.range.from_usecs,
                    p.logs.range.to_usecs,
                    logs.display()
                )
            })?;
        }
        Command::Restore { snapshot, target, path, buffered, .. } => {
            let snapshot =
                snapshot.as_ref().context("which snapshot? (or --at for a point in time)")?;
            let id = parse_snapshot(engine, snapshot)?;
            let progress = Arc::new(Progress::default());
            let opts = RestoreOptions {
                progress: Some(progress.clone()),
                buffered: *buffered,
                ..RestoreOptions::default()
            };
            let summary = with_progress(s, "restore", &progress, || {
                engine.restore(id, arg_bytes(path), target, &opts)
            })
            .with_context(|| format!("restoring snapshot {id} into {}", target.display()))?;
            s.print(&summary, || view::restore_summary(&summary, id, target))?;
        }
        Command::Cat { snapshot, path, offset: None, length: None } if !s.json => {
            let id = parse_snapshot(engine, snapshot)?;
            let mut out = std::io::BufWriter::new(&mut *s.out);
            engine.cat(id, arg_bytes(path), &mut out)?;
            std::io::Write::flush(&mut out)?;
        }
        Command::Cat { snapshot, path, offset, length } => {
            let id = parse_snapshot(engine, snapshot)?;
            let (offset, len) = (offset.unwrap_or(0), length.unwrap_or(coldkeep::MAX_READ_LEN));
            let slice = engine.read_file(id, arg_bytes(path), offset, len)?;
            if s.json {
                // JSON carries bytes as base64, one range (at most 8 MiB) at a time: the file's
                // size says whether more ranges follow.
                let v = view::FileRange::new(arg_bytes(path), offset, &slice);
                s.print(&v, String::new)?;
            } else {
                s.out.write_all(&slice.data)?;
            }
        }
        Command::Check { read_data } => {
            let report = engine.check(CheckOptions { read_data: *read_data })?;
            s.print(&report, || view::check_summary(&report))?;
            if !report.is_clean() {
                return Ok(DAMAGE);
            }
        }
        Command::Stats => {
            let stats = engine.stats()?;
            s.print(&stats, || view::stats_summary(&stats))?;
        }
        Command::Gc { grace_secs } => {
            let opts = coldkeep::GcOptions {
                grace: Duration::from_secs(*grace_secs),
                ..coldkeep::GcOptions::default()
            };
            let report = engine.gc(opts)?;
            s.print(&report, || view::gc_summary(&report))?;
        }
        Command::Search { pattern, groups, objects, span, limit, cookie } => {
            let query = coldkeep::FileSearch {
                pattern: pattern.clone(),
                group_ids: groups.clone(),
                object_ids: objects.clone(),
                from_time_usecs: span.from,
                to_time_usecs: span.to,
                page_size: *limit,
                cookie: cookie.clone(),
            };
            let found = engine.search_files(&query)?;
            s.print(&found, || view::search_summary(&found))?;
        }
        Command::Index { snapshot } => {
            let id = parse_snapshot(engine, snapshot)?;
            let added = engine.index_snapshot(id)?;
            s.print(&serde_json::json!({ "snapshot": id, "entries_indexed": added }), || {
                format!("snapshot {id}: {added} entries indexed")
            })?;
        }
        Command::Policy(cmd) => protect::policy(engine, cmd, s)?,
        Command::Group(cmd) => protect::group(engine, cmd, s)?,
        Command::Run(cmd) => protect::run(engine, cmd, s)?,
        Command::Object(cmd) => protect::object(engine, cmd, s)?,
        Command::Source(cmd) => protect::source(engine, cmd, s)?,
        Command::Recovery(cmd) => return protect::recovery(engine, cmd, s),
        Command::Audit => protect::audit(engine, s)?,
        Command::Tick => protect::tick(engine, s)?,
        Command::Key(cmd) => keys::run(engine, cmd, s)?,
        Command::Init { .. }
        | Command::Demo { .. }
        | Command::Serve { .. }
        | Command::RebuildCatalog => {
            bail!("this command does not run against an open repository")
        }
    }
    Ok(0)
}
