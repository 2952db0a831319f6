//! Indexed-file search (the seed's `POST /data-protect/search/indexed-objects` for files).
//!
//! A snapshot is indexed once (runs index every snapshot they make; `Engine::index_snapshot`
//! indexes any other): each file and directory becomes an entry of the catalog's file index,
//! and each trigram of its name a posting (see `coldkeep_catalog`'s `file_index`). A search
//! reads the postings of its pattern's trigrams, intersects them — a handful of short key
//! ranges, whatever the number of indexed files — and checks the few candidates against the
//! pattern and the filters. A pattern without three literal characters in a row (`*.c`,
//! `a?`) cannot use the postings and reads every entry instead.
//!
//! Results come in key order (snapshot, then walk order); a page ends with a cookie, the key of
//! its last entry, from which the next page continues.

use std::collections::HashMap;

use coldkeep_catalog::{
    file_key, grams, hex, key_snapshot, Batch, Catalog, FileKey, SnapshotId, SnapshotRecord,
};
use coldkeep_model::{GroupId, IndexedFile, ObjectId, Usecs};
use serde::Serialize;

use crate::error::ReadError;
use crate::read::list;
use crate::repo::Repository;
use crate::tree::NodeKind;

/// Entries written per catalog batch while indexing.
const INDEX_BATCH: usize = 20_000;

/// A search of indexed files. Empty lists and `None` match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSearch {
    /// Matched against file and directory names, case-insensitively: a glob when it holds `*`
    /// or `?`, else a substring.
    pub pattern: String,
    pub group_ids: Vec<GroupId>,
    pub object_ids: Vec<ObjectId>,
    /// Only snapshots taken at or after this time.
    pub from_time_usecs: Option<Usecs>,
    /// Only snapshots taken at or before this time.
    pub to_time_usecs: Option<Usecs>,
    /// Results per page.
    pub page_size: usize,
    /// Where the previous page ended.
    pub cookie: Option<String>,
}

impl Default for FileSearch {
    fn default() -> Self {
        Self {
            pattern: String::new(),
            group_ids: vec![],
            object_ids: vec![],
            from_time_usecs: None,
            to_time_usecs: None,
            page_size: 100,
            cookie: None,
        }
    }
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSearchResult {
    pub files: Vec<IndexedFile>,
    /// Every match, on all pages.
    pub count: u64,
    /// Pass it back for the next page; `None` on the last.
    pub cookie: Option<String>,
}

/// The `key=value` tag of a snapshot that a run made (`group=3`).
fn tag<T: std::str::FromStr>(snap: &SnapshotRecord, key: &str) -> Option<T> {
    snap.tags.iter().find_map(|t| t.strip_prefix(key)?.strip_prefix('=')?.parse().ok())
}

/// Adds every entry of `snap` to the file index, unless it is indexed already; returns the
/// number of entries added.
pub fn index_snapshot(repo: &Repository, snap: &SnapshotRecord) -> Result<u64, ReadError> {
    if repo.catalog().is_indexed(snap.id)? {
        return Ok(0);
    }
    let (group, object) = (tag(snap, "group"), tag(snap, "object"));
    let entries = list(repo, snap, b"")?;
    let mut batch = Batch::new();
    let mut added = HashMap::new();
    for (seq, entry) in entries.iter().enumerate() {
        let (is_dir, size) = match &entry.node.kind {
            NodeKind::Dir { .. } => (true, 0),
            NodeKind::File { size, .. } => (false, *size),
            NodeKind::Symlink { .. } => (false, 0),
        };
        let file = IndexedFile {
            snapshot: snap.id,
            path: entry.path.clone(),
            is_dir,
            size,
            mtime_secs: entry.node.meta.mtime.secs,
            group,
            object,
            snapshot_time_usecs: Usecs(snap.start_time_us),
        };
        Catalog::stage_indexed_file(&mut batch, file_key(snap.id, seq as u64), &file, &mut added);
        if (seq + 1) % INDEX_BATCH == 0 {
            repo.catalog().write(std::mem::take(&mut batch))?;
        }
    }
    // The counts are read and written under the index lock: two snapshots indexed at once
    // (two runs finishing together) must not lose each other's additions.
    let _counts = repo.index_lock().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    repo.catalog().stage_indexed_mark(&mut batch, snap.id, &added)?;
    repo.catalog().write(batch)?;
    Ok(entries.len() as u64)
}

/// `*` matches any run of bytes, `?` any one byte; everything else itself.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// A lowercased pattern, ready to test names.
struct Matcher {
    needle: Vec<u8>,
    glob: bool,
}

impl Matcher {
    fn new(pattern: &str) -> Self {
        let needle = pattern.as_bytes().to_ascii_lowercase();
        let glob = needle.iter().any(|c| matches!(c, b'*' | b'?'));
        Self { needle, glob }
    }

    fn matches(&self, name: &[u8]) -> bool {
        let name = name.to_ascii_lowercase();
        if self.glob {
            glob_match(&self.needle, &name)
        } else {
            self.needle.is_empty() || name.windows(self.needle.len()).any(|w| w == self.needle)
        }
    }

    /// The trigrams every matching name holds: those of its literal runs.
    fn grams(&self) -> Vec<[u8; 3]> {
        let runs = self.needle.split(|c| matches!(c, b'*' | b'?'));
        let mut all: Vec<[u8; 3]> = runs.flat_map(grams).collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

fn parse_cookie(cookie: &str) -> Result<FileKey, ReadError> {
    let bad = || ReadError::BadCookie(cookie.to_owned());
    if cookie.len() != 32 {
        return Err(bad());
    }
    let mut key = [0u8; 16];
    for (i, b) in key.iter_mut().enumerate() {
        *b = u8::from_str_radix(cookie.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16)
            .map_err(|_| bad())?;
    }
    Ok(key)
}

fn cookie_of(key: &FileKey) -> String {
    hex(key)
}

/// Candidates for a pattern: keys of files whose names hold all of its rarest trigrams, in key
/// order. The shortest posting list is read first; another is read and intersected only while
/// it is short next to the candidates left (reading a long list costs more than checking the
/// few candidates against the pattern, which the caller does anyway).
fn candidates(repo: &Repository, grams: &[[u8; 3]]) -> Result<Vec<FileKey>, ReadError> {
    let mut by_count = grams
        .iter()
        .map(|g| Ok((repo.catalog().gram_count(g)?, *g)))
        .collect::<Result<Vec<_>, ReadError>>()?;
    by_count.sort_unstable();
    let Some(((_, rarest), rest)) = by_count.split_first() else { return Ok(vec![]) };
    let mut keys = repo.catalog().gram_postings(rarest)?;
    for (count, gram) in rest {
        if keys.len() <= 64 || *count > 4 * keys.len() as u64 {
            break;
        }
        let other = repo.catalog().gram_postings(gram)?;
        keys.retain(|k| other.binary_search(k).is_ok());
    }
    Ok(keys)
}

pub fn search(repo: &Repository, q: &FileSearch) -> Result<FileSearchResult, ReadError> {
    let matcher = Matcher::new(&q.pattern);
    let after = q.cookie.as_deref().map(parse_cookie).transpose()?;
    // Snapshots deleted since they were indexed are left out.
    let mut live: HashMap<SnapshotId, bool> = HashMap::new();
    let mut keep = |key: &FileKey, f: &IndexedFile| -> Result<bool, ReadError> {
        let wanted = matcher.matches(f.name())
            && (q.group_ids.is_empty() || f.group.is_some_and(|g| q.group_ids.contains(&g)))
            && (q.object_ids.is_empty() || f.object.is_some_and(|o| q.object_ids.contains(&o)))
            && q.from_time_usecs.is_none_or(|t| f.snapshot_time_usecs >= t)
            && q.to_time_usecs.is_none_or(|t| f.snapshot_time_usecs <= t);
        if !wanted {
            return Ok(false);
        }
        let snapshot = key_snapshot(key);
        if let Some(alive) = live.get(&snapshot) {
            return Ok(*alive);
        }
        let alive = repo.catalog().snapshot(snapshot)?.is_some();
        live.insert(snapshot, alive);
        Ok(alive)
    };
    let mut result = FileSearchResult { files: vec![], count: 0, cookie: None };
    let (mut last, mut more) = (None, false);
    let mut take = |key: FileKey, f: IndexedFile| {
        result.count += 1;
        if after.is_some_and(|a| key <= a) {
            return; // on an earlier page
        }
        if result.files.len() < q.page_size {
            result.files.push(f);
            last = Some(key);
        } else {
            more = true;
        }
    };
    let grams = matcher.grams();
    if grams.is_empty() {
        for item in repo.catalog().indexed_files() {
            let (key, f) = item?;
            if keep(&key, &f)? {
                take(key, f);
            }
        }
    } else {
        for key in candidates(repo, &grams)? {
            let Some(f) = repo.catalog().indexed_file(&key)? else { continue };
            if keep(&key, &f)? {
                take(key, f);
            }
        }
    }
    result.cookie = last.filter(|_| more).as_ref().map(cookie_of);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_substrings() {
        assert!(glob_match(b"*.rs", b"main.rs"));
        assert!(glob_match(b"m?in.*", b"main.rs"));
        assert!(!glob_match(b"*.rs", b"main.rc"));
        assert!(glob_match(b"*a*b*", b"xxaxxbxx"));
        assert!(!glob_match(b"a*b", b"acbd"));
        assert!(Matcher::new("README").matches(b"readme.md"));
        assert!(!Matcher::new("readme").matches(b"read.md"));
        assert_eq!(Matcher::new("*.md").grams(), vec![*b".md"]);
        assert_eq!(Matcher::new("*.c").grams(), Vec::<[u8; 3]>::new());
        assert_eq!(Matcher::new("ab*cde").grams(), vec![*b"cde"]);
        let key = file_key(SnapshotId::new(3), 77);
        assert_eq!(parse_cookie(&cookie_of(&key)).expect("cookie"), key);
        assert!(parse_cookie("zz").is_err());
    }
}
