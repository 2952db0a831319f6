//! Where `--repo` points: a directory, or a bucket (`s3://bucket/prefix`, with the endpoint,
//! region and credentials from the usual `AWS_*` environment) whose catalog this machine keeps
//! as a cache under `--cache-dir` (`Engine::open_remote`). Everything else in the CLI is the
//! same for both.

use std::fmt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use coldkeep::{
    CacheRefresh, Engine, InitError, InitOptions, OpenError, OpenOptions, RebuildReport, Remote,
};
use coldkeep_store_s3::{S3Backend, S3Options};

/// A repository's address.
#[derive(Debug, Clone)]
pub enum Address {
    Dir(PathBuf),
    Bucket { url: String, cache: PathBuf },
}

/// The directory of catalog caches unless told otherwise: `$XDG_CACHE_HOME/coldkeep`, else
/// `~/.cache/coldkeep`.
fn default_cache() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("coldkeep"));
    }
    let home = std::env::var_os("HOME").context("no HOME: pass --cache-dir")?;
    Ok(PathBuf::from(home).join(".cache").join("coldkeep"))
}

impl Address {
    /// `repo` as the user gave it; `cache` is `--cache-dir`.
    pub fn parse(repo: &Path, cache: Option<&Path>) -> Result<Self> {
        match repo.to_str() {
            Some(url) if url.starts_with("s3://") => {
                let cache = match cache {
                    Some(dir) => dir.to_owned(),
                    None => default_cache()?,
                };
                Ok(Self::Bucket { url: url.to_owned(), cache })
            }
            _ => Ok(Self::Dir(repo.to_owned())),
        }
    }

    /// The repository in its bucket, its cache under the cache directory.
    fn remote(url: &str, cache: &Path) -> Result<Remote> {
        let store = S3Backend::from_env(url, S3Options::default())
            .with_context(|| format!("repository address {url}"))?;
        Ok(Remote { store: Arc::new(store), cache: cache.to_owned(), location: url.into() })
    }

    /// The directory of this machine's control socket for the repository: the repository's
    /// own, or one under the cache directory named after the address.
    pub fn control_dir(&self) -> Result<PathBuf> {
        match self {
            Self::Dir(path) => Ok(path.clone()),
            Self::Bucket { url, cache } => {
                let name = blake3::hash(url.as_bytes()).to_hex();
                let dir = cache.join("control").join(&name.as_str()[..32]);
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Ok(dir)
            }
        }
    }

    /// Creates the repository.
    pub fn init(&self, opts: &InitOptions) -> Result<Result<Engine, InitError>> {
        Ok(match self {
            Self::Dir(path) => Engine::init(path, opts),
            Self::Bucket { url, cache } => Engine::init_remote(Self::remote(url, cache)?, opts),
        })
    }

    /// Opens the repository (a bucket's cache made current first).
    pub fn open(&self, opts: &OpenOptions) -> Result<Result<Engine, OpenError>> {
        Ok(match self {
            Self::Dir(path) => Engine::open_with(path, opts),
            Self::Bucket { url, cache } => Engine::open_remote(Self::remote(url, cache)?, opts)
                .map(|(engine, refresh)| {
                    tracing::info!(?refresh, "catalog cache");
                    engine
                }),
        })
    }

    /// Recreates the catalog from the repository's objects (a bucket's: a new cache).
    pub fn rebuild(
        &self,
        opts: &OpenOptions,
    ) -> Result<Result<(Engine, RebuildReport), OpenError>> {
        Ok(match self {
            Self::Dir(path) => Engine::rebuild_catalog(path, opts),
            Self::Bucket { url, cache } => {
                Engine::rebuild_catalog_remote(Self::remote(url, cache)?, opts).map(
                    |(engine, refresh)| match refresh {
                        CacheRefresh::Filled { report, .. } => (engine, report),
                        other => unreachable!("a rebuild fills the cache, not {other:?}"),
                    },
                )
            }
        })
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dir(path) => write!(f, "{}", path.display()),
            Self::Bucket { url, .. } => f.write_str(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_urls_are_buckets_and_everything_else_a_directory() {
        let cache = Path::new("/c");
        let bucket = Address::parse(Path::new("s3://b/p"), Some(cache)).expect("parse");
        assert!(matches!(&bucket, Address::Bucket { url, .. } if url == "s3://b/p"));
        assert_eq!(bucket.to_string(), "s3://b/p");
        let dir = Address::parse(Path::new("s3:/not-a-url"), Some(cache)).expect("parse");
        assert!(matches!(dir, Address::Dir(_)));
    }
}
