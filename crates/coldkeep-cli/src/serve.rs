//! `coldkeep serve` and how other commands reach it.
//!
//! A repository is open for writing in one process at a time (the catalog holds a lock), and a
//! run executes inside the process that started it. So that a run started in one shell can be
//! listed, paused or canceled from another, and so that scheduled runs happen at all,
//! `coldkeep serve` keeps the repository open, ticks the scheduler every `--tick-secs`, and
//! answers commands on a Unix socket in the repository directory (`control.sock`, mode 0600).
//! Every other command first tries that socket and, when nobody answers, opens the repository
//! itself (read-only for the commands that only read).
//!
//! Protocol, one command per connection: the client sends one JSON line (a [`Request`]); the
//! server answers with the command's standard output in frames (a little-endian `u32` length,
//! then that many bytes; binary-safe, so `cat` streams), a zero-length frame, then one JSON line
//! (an [`Outcome`]). The caller's rights come from the socket's peer credentials, never from the
//! request.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use coldkeep::{Engine, OpenError, OpenMode};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::session::{principal, Session};
use crate::Request;

/// Largest request line a server reads.
const MAX_REQUEST: u64 = 1 << 20;

/// The control socket in `dir` (a repository's directory, or its control directory under the
/// cache for a bucket: `Address::control_dir`).
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("control.sock")
}

/// How a command ended, sent after its output.
#[derive(Debug, Serialize, Deserialize)]
struct Outcome {
    exit: u8,
    error: Option<String>,
}

/// Where commands run: in this process, or in the `coldkeep serve` that has the repository open.
pub enum Backend {
    /// The repository opened here, and its path.
    Local(Arc<Engine>, PathBuf),
    Remote(PathBuf),
}

impl Backend {
    /// The server of `repo` if one answers, else the repository opened here in `mode`. While
    /// another process has the repository open without answering (a one-off command), waits
    /// for it up to `patience`.
    pub fn connect(
        repo: &Address,
        mode: OpenMode,
        patience: Duration,
        secret: &crate::secret::SecretSource,
    ) -> Result<Self> {
        let control = repo.control_dir()?;
        let socket = socket_path(&control);
        let deadline = Instant::now() + patience;
        loop {
            if UnixStream::connect(&socket).is_ok() {
                return Ok(Self::Remote(socket));
            }
            let opened = crate::secret::open(repo, mode, secret)?;
            match opened {
                Ok(engine) => {
                    if let Some(lost) = engine.catalog_behind() {
                        eprintln!("warning: {lost}; what is listed may be incomplete");
                    }
                    return Ok(Self::Local(Arc::new(engine), control));
                }
                Err(OpenError::Busy(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(OpenError::Busy(_)) => {
                    anyhow::bail!(
                        "repository {repo} is in use by another process, which answers no \
                         commands: run `coldkeep serve` to share a repository between processes, \
                         or pass a longer --lock-wait-secs"
                    );
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("opening repository {repo}"));
                }
            }
        }
    }

    /// Runs one command, its output written to `out`; returns the exit code.
    pub fn call(&self, request: &Request, out: &mut dyn Write, interactive: bool) -> Result<u8> {
        match self {
            Self::Local(engine, _) => {
                let uid = rustix::process::geteuid().as_raw();
                let mut session = Session {
                    json: request.json,
                    interactive,
                    out,
                    principal: principal(uid, request.admin)?,
                };
                crate::execute(engine, &request.command, &mut session)
            }
            Self::Remote(socket) => call_remote(socket, request, out),
        }
    }
}

fn call_remote(socket: &Path, request: &Request, out: &mut dyn Write) -> Result<u8> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("connecting to the server at {}", socket.display()))?;
    let mut writer = BufWriter::new(&stream);
    serde_json::to_writer(&mut writer, request)?;
    writer.write_all(b"\n")?;
    writer.flush()?;
    drop(writer);
    let mut reader = BufReader::new(&stream);
    let mut frame = Vec::new();
    loop {
        let mut len = [0u8; 4];
        reader.read_exact(&mut len).context("the server closed the connection")?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            break;
        }
        frame.resize(len, 0);
        reader.read_exact(&mut frame).context("the server closed the connection")?;
        out.write_all(&frame)?;
    }
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let outcome: Outcome = serde_json::from_str(&line).context("bad answer from the server")?;
    match outcome.error {
        Some(e) => Err(anyhow!(e)),
        None => Ok(outcome.exit),
    }
}

/// Writes each buffer as one length-prefixed frame.
struct FrameWriter<W: Write>(W);

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let len = buf.len().min(u32::MAX as usize);
        if len > 0 {
            self.0.write_all(&(len as u32).to_le_bytes())?;
            self.0.write_all(&buf[..len])?;
        }
        Ok(len)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// The control socket of a repository open in this process; removed when dropped.
pub struct Listening(PathBuf);

impl Drop for Listening {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Answers commands for `engine` (the repository at `repo`) on its control socket, on a
/// background thread, until the returned guard is dropped or the process ends.
pub fn listen(engine: Arc<Engine>, repo: &Path) -> Result<Listening> {
    let socket = socket_path(repo);
    // This process holds the repository's lock, so a socket file left here is from one that died.
    match std::fs::remove_file(&socket) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing stale {}", socket.display()));
        }
        _ => {}
    }
    let listener = UnixListener::bind(&socket)
        .with_context(|| format!("listening on {}", socket.display()))?;
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
    std::thread::Builder::new().name("control".into()).spawn(move || {
        for conn in listener.incoming() {
            match conn {
                Ok(conn) => {
                    let engine = Arc::clone(&engine);
                    std::thread::spawn(move || {
                        if let Err(e) = answer(&engine, &conn) {
                            tracing::warn!(error = %format!("{e:#}"), "request failed");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            }
        }
    })?;
    Ok(Listening(socket))
}

/// `coldkeep serve`: keeps the repository open, answers commands on its control socket, runs
/// the scheduler every `tick` (never when zero) and at most `max_concurrent_runs` runs at once,
/// until the process is stopped. Stopping it, even
/// with SIGKILL, is safe: runs it was executing are marked `Failed` when the repository is next
/// opened.
pub fn serve(
    repo: &Address,
    tick: Duration,
    max_concurrent_runs: usize,
    secret: &crate::secret::SecretSource,
) -> Result<u8> {
    let engine = Arc::new(
        crate::secret::open(repo, OpenMode::ReadWrite, secret)?
            .with_context(|| format!("opening repository {repo}"))?,
    );
    engine.set_max_concurrent_runs(max_concurrent_runs);
    let listening = listen(Arc::clone(&engine), &repo.control_dir()?)?;
    eprintln!("serving {repo} on {}", listening.0.display());
    loop {
        if tick.is_zero() {
            std::thread::park();
            continue;
        }
        match engine.tick() {
            Ok(r) if !r.started.is_empty() || !r.missed.is_empty() => {
                tracing::info!(started = r.started.len(), missed = r.missed.len(), "tick");
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "scheduler tick failed"),
        }
        std::thread::sleep(tick);
    }
}

/// Reads one request from `conn`, runs it with the peer's rights, writes output and outcome.
fn answer(engine: &Engine, conn: &UnixStream) -> Result<()> {
    let uid = rustix::net::sockopt::socket_peercred(conn)?.uid.as_raw();
    let mut line = String::new();
    BufReader::new(conn.take(MAX_REQUEST)).read_line(&mut line)?;
    if line.is_empty() {
        return Ok(()); // a client checking whether anyone answers
    }
    let mut out = FrameWriter(BufWriter::new(conn));
    let result =
        serde_json::from_str::<Request>(&line).context("malformed request").and_then(|request| {
            let mut session = Session {
                json: request.json,
                interactive: false,
                out: &mut out,
                principal: principal(uid, request.admin)?,
            };
            crate::execute(engine, &request.command, &mut session)
        });
    let outcome = match result {
        Ok(exit) => Outcome { exit, error: None },
        Err(e) => Outcome { exit: 1, error: Some(format!("{e:#}")) },
    };
    let mut inner = out.0;
    inner.write_all(&0u32.to_le_bytes())?;
    serde_json::to_writer(&mut inner, &outcome)?;
    inner.write_all(b"\n")?;
    inner.flush()?;
    Ok(())
}
