//! Where the CLI finds what unlocks an encrypted repository, as restic users expect: a key
//! file (`--key-file`), a password file (`--password-file`), `COLDKEEP_PASSWORD`, or a prompt on
//! the terminal, in that order. A repository without encryption asks for nothing: the secret is
//! looked for only when opening says the repository needs one.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use crate::address::Address;

use anyhow::{bail, Context, Result};
use coldkeep::{Engine, OpenError, OpenMode, OpenOptions, Secret};

/// The CLI's sources of a secret.
#[derive(Debug, Clone)]
pub struct SecretSource {
    pub key_file: Option<PathBuf>,
    pub password_file: Option<PathBuf>,
    /// The environment variable holding the passphrase.
    pub env: &'static str,
}

/// The environment variable holding the passphrase.
pub const PASSWORD_ENV: &str = "COLDKEEP_PASSWORD";

impl SecretSource {
    /// The secret, from the first source that has one. `confirm` asks twice at a prompt (a
    /// new passphrase).
    pub fn resolve(&self, what: &str, confirm: bool) -> Result<Secret> {
        if let Some(path) = &self.key_file {
            return read_key_file(path);
        }
        if let Some(path) = &self.password_file {
            return read_password_file(path);
        }
        if let Ok(p) = std::env::var(self.env) {
            return Ok(Secret::passphrase(p));
        }
        prompt(what, confirm, self.env)
    }
}

fn read_key_file(path: &Path) -> Result<Secret> {
    let bytes =
        std::fs::read(path).with_context(|| format!("reading key file {}", path.display()))?;
    Ok(Secret::key_file(bytes))
}

/// A password file's first line (without its line ending).
fn read_password_file(path: &Path) -> Result<Secret> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading password file {}", path.display()))?;
    Ok(Secret::passphrase(text.lines().next().unwrap_or_default()))
}

/// Asks on the terminal, without echo.
fn prompt(what: &str, confirm: bool, env: &str) -> Result<Secret> {
    let Ok(tty) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty") else {
        bail!("{what}: no terminal to ask on; set {env}, or pass a password file or a key file");
    };
    let first = read_hidden(&tty, &format!("{what}: "))?;
    if confirm && read_hidden(&tty, "again: ")? != first {
        bail!("the passphrases differ");
    }
    if first.is_empty() {
        bail!("an empty passphrase protects nothing");
    }
    Ok(Secret::passphrase(first))
}

fn read_hidden(tty: &std::fs::File, label: &str) -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let mut out = tty;
    out.write_all(label.as_bytes())?;
    out.flush()?;
    let saved = tcgetattr(tty).context("reading the terminal's settings")?;
    let mut hidden = saved.clone();
    hidden.local_modes.remove(LocalModes::ECHO);
    tcsetattr(tty, OptionalActions::Now, &hidden).context("turning echo off")?;
    let mut line = String::new();
    let read = std::io::BufReader::new(tty).read_line(&mut line);
    let _ = tcsetattr(tty, OptionalActions::Now, &saved);
    let _ = out.write_all(b"\n");
    read.context("reading the passphrase")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Runs `f` (an open or a rebuild of `repo`) without a secret, and once more with one from
/// `source` if the repository turns out to be encrypted.
fn unlocking<T>(
    repo: &Address,
    source: &SecretSource,
    opts: OpenOptions,
    f: impl Fn(&OpenOptions) -> Result<Result<T, OpenError>>,
) -> Result<Result<T, OpenError>> {
    match f(&opts)? {
        Err(OpenError::SecretRequired) => {
            let secret = source.resolve(&format!("passphrase of {repo}"), false)?;
            f(&OpenOptions { secret: Some(secret), ..opts })
        }
        other => Ok(other),
    }
}

/// Rebuilds the catalog of `repo` (`coldkeep rebuild-catalog`).
pub fn rebuild(
    repo: &Address,
    source: &SecretSource,
) -> Result<Result<(Engine, coldkeep::RebuildReport), OpenError>> {
    unlocking(repo, source, OpenOptions::default(), |opts| repo.rebuild(opts))
}

/// Opens `repo` in `mode`.
pub fn open(
    repo: &Address,
    mode: OpenMode,
    source: &SecretSource,
) -> Result<Result<Engine, OpenError>> {
    let opts = OpenOptions { mode, ..OpenOptions::default() };
    unlocking(repo, source, opts, |opts| repo.open(opts))
}
