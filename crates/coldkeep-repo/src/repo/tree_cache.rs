//! A remote repository's directory trees, kept on local disk.
//!
//! Every walk of a snapshot reads its trees: indexing it for search after its backup, reading
//! the parent snapshot during the next backup, planning a restore. From a local repository a
//! tree is a `pread`; from a bucket it is a request, and a Linux tree has 5 000 of them. Trees
//! are small (a few MB for that whole tree) and immutable under their id, so a remote
//! repository keeps a copy of each one it writes or reads, and reads the store only for those
//! it has not seen.
//!
//! ```text
//! <cache>/<repo id>/trees/<2 hex>/<tree id, hex>   the tree's bytes (sealed when encrypted)
//! ```
//!
//! The cache is never trusted: an entry is used only when it opens under the repository's key
//! (encrypted repositories) and hashes to its id under the chunk key, so a damaged, truncated or
//! planted file is a miss and the store is read instead. And it never decides what exists: a
//! tree is looked up here only once the catalog has found it indexed ([`Repository::load_tree`]),
//! and `check` reads the store itself. An entry that fails is replaced by the tree read from
//! the store. Writing is best-effort (a full cache disk costs speed,
//! not a backup): a new name, then a rename, so a reader never sees half an entry; nothing is
//! fsynced, since losing an entry loses nothing.
//!
//! [`Repository::load_tree`]: super::Repository::load_tree

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use coldkeep_store::crypto::SealingKey;
use coldkeep_store::{ChunkId, ChunkKey};

/// Binds a sealed entry to this use and to its id: it opens as nothing else.
const AAD_PREFIX: &[u8] = b"coldkeep tree cache v1\0";

/// Names of entries being written, unique within the process (the pid tells processes apart).
static WRITING: AtomicU64 = AtomicU64::new(0);

/// The directory of a remote repository's cached trees (see the module documentation).
#[derive(Debug)]
pub struct TreeCache {
    dir: PathBuf,
}

fn aad(id: &ChunkId) -> Vec<u8> {
    [AAD_PREFIX, id.as_bytes()].concat()
}

impl TreeCache {
    /// The cache in `<repo dir>/trees`; made when the first entry is written.
    pub fn new(repo_dir: &Path) -> Self {
        Self { dir: repo_dir.join("trees") }
    }

    fn path_of(&self, id: &ChunkId) -> PathBuf {
        let name = id.to_string();
        self.dir.join(&name[..2]).join(name)
    }

    /// The plaintext of tree `id`, when an entry is there and proves to be it.
    pub fn get(
        &self,
        id: &ChunkId,
        chunk_key: &ChunkKey,
        seal: Option<&SealingKey>,
    ) -> Option<Vec<u8>> {
        let path = self.path_of(id);
        let stored = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::debug!(path = %path.display(), %e, "tree cache entry unreadable");
                }
                return None;
            }
        };
        let plain = match seal {
            Some(key) => key.open(&aad(id), &stored).ok(),
            None => Some(stored),
        };
        match plain {
            Some(plain) if chunk_key.id_of(&plain) == *id => Some(plain),
            _ => {
                tracing::warn!(path = %path.display(), "tree cache entry is not its tree: ignored");
                None
            }
        }
    }

    /// Keeps `plain`, the bytes of tree `id`, replacing an entry that is there (one `get`
    /// found wanting). Failures are logged.
    pub fn put(&self, id: &ChunkId, plain: &[u8], seal: Option<&SealingKey>) {
        let path = self.path_of(id);
        let bytes = match seal {
            Some(key) => key.seal(&aad(id), plain),
            None => plain.to_vec(),
        };
        if let Err(e) = write_new(&path, &bytes) {
            tracing::debug!(path = %path.display(), %e, "tree not cached");
        }
    }

    /// Removes the entries of trees `keep` says no (those the catalog no longer indexes);
    /// returns how many.
    pub fn retain(&self, keep: impl Fn(&ChunkId) -> bool) -> u64 {
        let Ok(fans) = std::fs::read_dir(&self.dir) else { return 0 };
        let mut removed = 0;
        for fan in fans.flatten() {
            let Ok(entries) = std::fs::read_dir(fan.path()) else { continue };
            for entry in entries.flatten() {
                let name = entry.file_name();
                // An unfinished write (another name) is left to its writer.
                let Some(id) = name.to_str().and_then(|n| n.parse::<ChunkId>().ok()) else {
                    continue;
                };
                if !keep(&id) && std::fs::remove_file(entry.path()).is_ok() {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Writes `bytes` at `path` through a new name and a rename.
fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("an entry is in a fan-out directory");
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    let n = WRITING.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{}.{n}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;
    use coldkeep_store::crypto::MasterKey;

    fn fixture() -> (tempfile::TempDir, TreeCache, ChunkKey) {
        let dir = tempfile::tempdir().unwrap();
        let cache = TreeCache::new(dir.path());
        (dir, cache, ChunkKey::generate())
    }

    #[test]
    fn an_entry_is_read_back_and_a_tampered_one_is_a_miss() {
        let (_dir, cache, key) = fixture();
        let tree = b"a tree's bytes".to_vec();
        let id = key.id_of(&tree);
        assert_eq!(cache.get(&id, &key, None), None);
        cache.put(&id, &tree, None);
        assert_eq!(cache.get(&id, &key, None), Some(tree.clone()));

        std::fs::write(cache.path_of(&id), b"another tree").unwrap();
        assert_eq!(cache.get(&id, &key, None), None);
        std::fs::write(cache.path_of(&id), b"").unwrap();
        assert_eq!(cache.get(&id, &key, None), None);
    }

    #[test]
    fn a_sealed_entry_hides_its_bytes_and_opens_only_under_its_key_and_name() {
        let (_dir, cache, key) = fixture();
        let (master, other) = (MasterKey::generate(), MasterKey::generate());
        let seal = master.object_key();
        let tree = b"secret-file-name.txt".to_vec();
        let id = key.id_of(&tree);
        cache.put(&id, &tree, Some(&seal));

        let stored = std::fs::read(cache.path_of(&id)).unwrap();
        assert!(!stored.windows(tree.len()).any(|w| w == tree.as_slice()));
        assert_eq!(cache.get(&id, &key, Some(&seal)), Some(tree.clone()));
        assert_eq!(cache.get(&id, &key, Some(&other.object_key())), None);
        assert_eq!(cache.get(&id, &key, None), None, "sealed bytes are not the tree");

        // The entry of one tree copied under another's name does not open.
        let second = b"second tree".to_vec();
        let second_id = key.id_of(&second);
        std::fs::create_dir_all(cache.path_of(&second_id).parent().unwrap()).unwrap();
        std::fs::copy(cache.path_of(&id), cache.path_of(&second_id)).unwrap();
        assert_eq!(cache.get(&second_id, &key, Some(&seal)), None);
    }

    #[test]
    fn retain_removes_what_is_not_kept() {
        let (_dir, cache, key) = fixture();
        let trees: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 10]).collect();
        let ids: Vec<ChunkId> = trees.iter().map(|t| key.id_of(t)).collect();
        for (id, tree) in ids.iter().zip(&trees) {
            cache.put(id, tree, None);
        }
        let kept: std::collections::HashSet<ChunkId> = ids[..5].iter().copied().collect();
        assert_eq!(cache.retain(|id| kept.contains(id)), 15);
        for (i, (id, tree)) in ids.iter().zip(&trees).enumerate() {
            let expected = (i < 5).then(|| tree.clone());
            assert_eq!(cache.get(id, &key, None), expected);
        }
    }
}
