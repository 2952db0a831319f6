//! `coldkeep key list | add | remove`: the key slots of an encrypted repository.
//!
//! The new secret of `key add` is read here, in the process the user typed the command into,
//! and travels with the command to whichever process has the repository open.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use coldkeep::{Engine, KdfParams, Secret};
use serde::{Deserialize, Serialize};

use crate::secret::SecretSource;
use crate::session::Session;

/// Where `key add` finds the new passphrase when no file is given.
pub const NEW_PASSWORD_ENV: &str = "COLDKEEP_NEW_PASSWORD";

#[derive(Subcommand, Debug, Clone, Serialize, Deserialize)]
pub enum KeyCmd {
    /// List the key slots.
    List,
    /// Add a key slot, unlocked by a new passphrase (--new-password-file, COLDKEEP_NEW_PASSWORD
    /// or a prompt) or by a key file (--new-key-file, at least 32 bytes).
    Add {
        /// Whose key it is (default: user@host).
        #[arg(long)]
        label: Option<String>,
        #[arg(long, conflicts_with = "new_key_file")]
        new_password_file: Option<PathBuf>,
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        #[command(flatten)]
        kdf: KdfArgs,
        /// The new secret, read before the command is sent.
        #[arg(skip)]
        secret: Option<NewSecret>,
    },
    /// Remove a key slot. The last one cannot be removed.
    Remove { id: String },
}

/// Argon2id's cost for a new passphrase.
#[derive(clap::Args, Debug, Clone, Copy, Serialize, Deserialize)]
#[allow(clippy::struct_field_names)] // the fields name the flags: --kdf-memory-kib, ...
pub struct KdfArgs {
    /// Memory per passphrase guess, KiB.
    #[arg(long, env = "COLDKEEP_KDF_MEMORY_KIB", default_value_t = KdfParams::default().memory_kib)]
    pub kdf_memory_kib: u32,
    /// Passes over that memory.
    #[arg(long, env = "COLDKEEP_KDF_ITERATIONS", default_value_t = KdfParams::default().iterations)]
    pub kdf_iterations: u32,
    /// Lanes, filled in parallel: more lanes unlock faster on more cores, at the same cost
    /// per guess to an attacker.
    #[arg(long, env = "COLDKEEP_KDF_LANES", default_value_t = KdfParams::default().parallelism)]
    pub kdf_lanes: u32,
}

impl KdfArgs {
    pub fn params(self) -> KdfParams {
        KdfParams {
            memory_kib: self.kdf_memory_kib,
            iterations: self.kdf_iterations,
            parallelism: self.kdf_lanes,
        }
    }
}

/// A secret as it travels with a command (over the repository's owner-only control socket).
/// `Debug` never shows it.
#[derive(Clone, Serialize, Deserialize)]
pub enum NewSecret {
    Passphrase(String),
    KeyFile(Vec<u8>),
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Passphrase(_) => f.write_str("NewSecret::Passphrase(<secret>)"),
            Self::KeyFile(_) => f.write_str("NewSecret::KeyFile(<secret>)"),
        }
    }
}

impl NewSecret {
    fn secret(&self) -> Secret {
        match self {
            Self::Passphrase(p) => Secret::passphrase(p.clone()),
            Self::KeyFile(bytes) => Secret::key_file(bytes.clone()),
        }
    }
}

impl KeyCmd {
    /// Reads the new secret of `key add` (before the command leaves this process).
    pub fn read_new_secret(&mut self) -> Result<()> {
        let Self::Add { new_password_file, new_key_file, secret, .. } = self else { return Ok(()) };
        // The new secret's own sources: never the current passphrase's COLDKEEP_PASSWORD.
        let source = SecretSource {
            key_file: new_key_file.clone(),
            password_file: new_password_file.clone(),
            env: NEW_PASSWORD_ENV,
        };
        let found = source.resolve("new passphrase", true).context("reading the new secret")?;
        *secret = Some(match found {
            Secret::Passphrase(p) => NewSecret::Passphrase(p.to_string()),
            Secret::KeyFile(bytes) => NewSecret::KeyFile(bytes.to_vec()),
        });
        Ok(())
    }
}

pub fn run(engine: &Engine, cmd: &KeyCmd, s: &mut Session<'_>) -> Result<()> {
    match cmd {
        KeyCmd::List => {
            let keys = engine.keys()?;
            s.print(&keys, || {
                if keys.is_empty() {
                    return "the repository is not encrypted: it has no keys".to_owned();
                }
                keys.iter()
                    .map(|k| {
                        format!(
                            "{}  {:<10}  {}  {}",
                            k.id,
                            k.kind,
                            crate::view::time(k.created_us),
                            k.label
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        }
        KeyCmd::Add { label, kdf, secret, .. } => {
            let secret = secret.as_ref().context("the new secret was not read")?.secret();
            let label = label.clone().unwrap_or_else(coldkeep::default_key_label);
            let added = engine.add_key(&secret, kdf.params(), &label)?;
            s.print(&added, || format!("added key {} ({})", added.id, added.kind))
        }
        KeyCmd::Remove { id } => {
            engine.remove_key(id)?;
            s.print(&serde_json::json!({ "removed": id }), || format!("removed key {id}"))
        }
    }
}
