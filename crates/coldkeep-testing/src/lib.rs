//! Helpers shared by coldkeep's tests, benchmarks and the CLI `demo`:
//!
//! * [`compare_trees`]: entry-by-entry comparison of two directory trees — type, content, mode,
//!   mtime to the nanosecond, symlink targets, extended attributes, hard-link structure and
//!   (optionally) owners. It is how every round-trip test decides "byte-exact with metadata".
//! * [`Dataset`]: deterministic generators of source trees with the awkward cases a backup
//!   tool must survive (empty files, sparse files, odd names, deep nesting, hard links).
//! * [`engine`] (feature `engine`): the tests' fixed time, a daily group, runs waited for.

#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "engine")]
pub mod remote;
#[cfg(feature = "engine")]
pub mod store_lock;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What [`compare_trees`] compares besides names, types and content.
#[derive(Debug, Clone, Copy)]
pub struct Compare {
    /// Owner and group (only meaningful when the restore ran as root).
    pub owner: bool,
    /// Modification times of directories (files and symlinks are always compared).
    pub dir_mtime: bool,
}

impl Default for Compare {
    fn default() -> Self {
        Self { owner: rustix::process::geteuid().is_root(), dir_mtime: true }
    }
}

/// Every entry under `root` by relative path; a directory or entry that cannot be read is a
/// difference of its own (in `errors`), never silently nothing.
fn list(root: &Path, errors: &mut Vec<String>) -> BTreeMap<Vec<u8>, PathBuf> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut BTreeMap<Vec<u8>, PathBuf>,
        errors: &mut Vec<String>,
    ) {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                errors.push(format!("unreadable directory: {}: {e}", dir.display()));
                return;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    errors.push(format!("unreadable directory: {}: {e}", dir.display()));
                    continue;
                }
            };
            let path = entry.path();
            let rel = path.strip_prefix(root).expect("under root").as_os_str().as_bytes().to_vec();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            out.insert(rel, path.clone());
            if is_dir {
                walk(root, &path, out, errors);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out, errors);
    out
}

/// The extended attributes of `path` (none where the filesystem has no support for them).
/// Extended attributes as (name, value) pairs, sorted.
type Xattrs = Vec<(Vec<u8>, Vec<u8>)>;

fn xattrs(path: &Path) -> Result<Xattrs, rustix::io::Errno> {
    let mut names = vec![0u8; 65536];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(vec![]),
        Err(e) => return Err(e),
    };
    names.truncate(n);
    let mut out = Vec::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(name_str) = std::str::from_utf8(name) else { continue };
        let mut value = vec![0u8; 65536];
        let n = rustix::fs::lgetxattr(path, name_str, &mut value[..])?;
        value.truncate(n);
        out.push((name.to_vec(), value));
    }
    out.sort();
    Ok(out)
}

/// Every difference between the trees under `expected` and `actual` (the roots themselves are
/// not compared), as readable lines. Empty means identical.
pub fn compare_trees(expected: &Path, actual: &Path, how: Compare) -> Vec<String> {
    let mut diffs = Vec::new();
    let a = list(expected, &mut diffs);
    let b = list(actual, &mut diffs);
    if !expected.is_dir() || !actual.is_dir() {
        diffs.push(format!("not a directory: {} or {}", expected.display(), actual.display()));
    }
    let show = |rel: &[u8]| String::from_utf8_lossy(rel).into_owned();
    for rel in a.keys().filter(|k| !b.contains_key(*k)) {
        diffs.push(format!("missing: {}", show(rel)));
    }
    for rel in b.keys().filter(|k| !a.contains_key(*k)) {
        diffs.push(format!("extra: {}", show(rel)));
    }
    // Hard-link groups: entries sharing an inode in one tree must share one in the other.
    let mut links_a: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut links_b: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    for (rel, pa) in &a {
        let Some(pb) = b.get(rel) else { continue };
        let (Ok(ma), Ok(mb)) = (fs::symlink_metadata(pa), fs::symlink_metadata(pb)) else {
            diffs.push(format!("unreadable: {}", show(rel)));
            continue;
        };
        let (ta, tb) = (ma.file_type(), mb.file_type());
        let kind = |t: fs::FileType| {
            if t.is_dir() {
                "dir"
            } else if t.is_symlink() {
                "symlink"
            } else if t.is_file() {
                "file"
            } else {
                "other"
            }
        };
        if kind(ta) != kind(tb) {
            diffs.push(format!("type: {} is {} vs {}", show(rel), kind(ta), kind(tb)));
            continue;
        }
        let mut differ = |what: &str, x: String, y: String| {
            if x != y {
                diffs.push(format!("{what}: {} {x} vs {y}", show(rel)));
            }
        };
        if ta.is_symlink() {
            match (fs::read_link(pa), fs::read_link(pb)) {
                (Ok(x), Ok(y)) => {
                    differ("target", x.display().to_string(), y.display().to_string());
                }
                (x, y) => differ("unreadable symlink", format!("{x:?}, {y:?}"), String::new()),
            }
        } else {
            differ(
                "mode",
                format!("{:o}", ma.mode() & 0o7777),
                format!("{:o}", mb.mode() & 0o7777),
            );
        }
        if ta.is_file() {
            differ("size", ma.len().to_string(), mb.len().to_string());
            if ma.len() == mb.len() {
                match (fs::read(pa), fs::read(pb)) {
                    (Ok(x), Ok(y)) => differ("content", (x == y).to_string(), true.to_string()),
                    (x, y) => differ(
                        "unreadable content",
                        format!("{:?}, {:?}", x.err(), y.err()),
                        String::new(),
                    ),
                }
            }
            if ma.nlink() > 1 {
                let first_a =
                    links_a.entry((ma.dev(), ma.ino())).or_insert_with(|| rel.clone()).clone();
                let first_b =
                    links_b.entry((mb.dev(), mb.ino())).or_insert_with(|| rel.clone()).clone();
                differ("hardlink", show(&first_a), show(&first_b));
            }
        }
        if !ta.is_dir() || how.dir_mtime {
            differ(
                "mtime",
                format!("{}.{:09}", ma.mtime(), ma.mtime_nsec()),
                format!("{}.{:09}", mb.mtime(), mb.mtime_nsec()),
            );
        }
        if how.owner {
            differ(
                "owner",
                format!("{}:{}", ma.uid(), ma.gid()),
                format!("{}:{}", mb.uid(), mb.gid()),
            );
        }
        match (xattrs(pa), xattrs(pb)) {
            (Ok(x), Ok(y)) => differ("xattrs", format!("{x:?}"), format!("{y:?}")),
            (x, y) => differ("unreadable xattrs", format!("{x:?}, {y:?}"), String::new()),
        }
    }
    diffs
}

/// Every pack file of the repository at `repo`, sorted.
pub fn pack_files(repo: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "pack") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo.join("packs"), &mut out);
    out.sort();
    out
}

/// Bytes actually allocated on disk for a file.
pub fn allocated_bytes(path: &Path) -> u64 {
    fs::symlink_metadata(path).map_or(0, |m| m.blocks() * 512)
}

/// A deterministic pseudo-random generator (xorshift64*), so datasets are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Text-like bytes (compressible, like source code) or noise.
    pub fn bytes(&mut self, len: usize, text: bool) -> Vec<u8> {
        const WORDS: [&[u8]; 12] = [
            b"fn ",
            b"let ",
            b"struct ",
            b"return ",
            b"{\n",
            b"}\n",
            b"    ",
            b"data",
            b"index",
            b"(x)",
            b";\n",
            b"// note\n",
        ];
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            if text {
                out.extend_from_slice(WORDS[self.below(WORDS.len() as u64) as usize]);
            } else {
                out.extend_from_slice(&self.next_u64().to_le_bytes());
            }
        }
        out.truncate(len);
        out
    }
}

/// Builds source trees for tests and benchmarks.
#[derive(Debug)]
pub struct Dataset {
    pub root: PathBuf,
    rng: Rng,
}

impl Dataset {
    pub fn new(root: &Path, seed: u64) -> Self {
        fs::create_dir_all(root).expect("create dataset root");
        Self { root: root.to_owned(), rng: Rng::new(seed) }
    }

    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Writes a file (creating parents) and returns its path.
    pub fn file(&mut self, rel: impl AsRef<Path>, content: &[u8]) -> PathBuf {
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().expect("has parent")).expect("create parent");
        fs::write(&path, content).expect("write file");
        path
    }

    /// A file of `size` bytes with data only in `[at, at + data.len())`: the rest are holes.
    pub fn sparse_file(
        &mut self,
        rel: impl AsRef<Path>,
        size: u64,
        at: u64,
        data: &[u8],
    ) -> PathBuf {
        use std::os::unix::fs::FileExt;
        let path = self.root.join(rel);
        fs::create_dir_all(path.parent().expect("has parent")).expect("create parent");
        let file = fs::File::create(&path).expect("create sparse");
        file.set_len(size).expect("size");
        file.write_all_at(data, at).expect("write data");
        path
    }

    /// A mixed tree: `files` files of up to `max_size` bytes over nested directories, plus an
    /// empty file, an empty directory, a symlink, a hard link and odd names.
    pub fn mixed(&mut self, files: usize, max_size: usize) {
        for i in 0..files {
            let depth = self.rng.below(4) as usize;
            let mut rel = PathBuf::new();
            for d in 0..depth {
                rel.push(format!("d{}_{}", d, self.rng.below(3)));
            }
            rel.push(format!("f{i}.txt"));
            let size = self.rng.below(max_size as u64 + 1) as usize;
            let text = self.rng.below(4) != 0;
            let content = self.rng.bytes(size, text);
            self.file(rel, &content);
        }
        self.file("empty", b"");
        fs::create_dir_all(self.root.join("empty_dir")).expect("empty dir");
        std::os::unix::fs::symlink("f0.txt", self.root.join("link_to_f0")).expect("symlink");
        std::os::unix::fs::symlink("/nonexistent/absolute", self.root.join("dangling"))
            .expect("symlink");
        let first = self.file("hard_a", b"hard linked content");
        fs::hard_link(first, self.root.join("hard_b")).expect("hard link");
        let odd = std::ffi::OsStr::from_bytes(b"odd \xff name\nwith newline");
        fs::write(self.root.join(odd), b"odd").expect("odd name");
    }

    /// Entries whose metadata a restore cannot get for free: set-id and sticky bits, modes the
    /// usual umask strips, a private file, and (when running as root) owners other than the
    /// restoring user.
    pub fn odd_metadata(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |path: &Path, mode: u32| {
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
        };
        for (name, mode) in [("setuid", 0o4755), ("world", 0o777), ("private", 0o600)] {
            let path = self.file(Path::new("modes").join(name), name.as_bytes());
            chmod(&path, mode);
        }
        for (name, mode) in [("setgid_dir", 0o2775), ("sticky_dir", 0o1777)] {
            let path = self.root.join("modes").join(name);
            fs::create_dir_all(&path).expect("mode dir");
            chmod(&path, mode);
        }
        if rustix::process::geteuid().is_root() {
            let file = self.file("owners/file", b"someone else's");
            let (uid, gid) =
                (Some(rustix::fs::Uid::from_raw(1234)), Some(rustix::fs::Gid::from_raw(5678)));
            rustix::fs::chown(&file, uid, gid).expect("chown file");
            rustix::fs::chown(self.root.join("owners"), uid, gid).expect("chown dir");
        }
    }

    /// Changes a tree the way a day of work does: rewrites some files, appends to others,
    /// deletes a few, adds new ones.
    pub fn mutate(&mut self, changes: usize) {
        let files: Vec<PathBuf> = list(&self.root, &mut Vec::new())
            .into_values()
            .filter(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file() && m.nlink() == 1))
            .collect();
        for i in 0..changes {
            if files.is_empty() {
                break;
            }
            let victim = &files[self.rng.below(files.len() as u64) as usize];
            match self.rng.below(3) {
                0 => {
                    let mut f = fs::OpenOptions::new().append(true).open(victim).expect("open");
                    let extra = self.rng.bytes(1000, true);
                    f.write_all(&extra).expect("append");
                }
                1 => {
                    let content = self.rng.bytes(5000, true);
                    fs::write(victim, content).expect("rewrite");
                }
                _ => {
                    let content = self.rng.bytes(3000, true);
                    self.file(format!("new_{i}.txt"), &content);
                }
            }
        }
    }
}

/// A test that cannot run here says so loudly and passes — except in CI (`CI` set), where every
/// test must run: there it fails with the reason.
pub fn skip(reason: &str) {
    assert!(std::env::var_os("CI").is_none(), "this test must run in CI, but {reason}");
    eprintln!("SKIPPED: {reason}");
}

#[cfg(test)]
mod compare_tests {
    use super::*;

    #[test]
    fn missing_or_unreadable_trees_are_differences() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        assert!(!compare_trees(&a, &b, Compare::default()).is_empty(), "two missing trees");
        std::fs::create_dir(&a).expect("mkdir");
        assert!(!compare_trees(&a, &b, Compare::default()).is_empty(), "one missing tree");
        std::fs::create_dir(&b).expect("mkdir");
        assert!(compare_trees(&a, &b, Compare::default()).is_empty(), "two empty trees");
    }
}
