//! How results are shown: JSON views (ids as hex or decimal strings, names as [`Name`]s) and
//! one-line text summaries (names escaped, so no name can forge a line).

use std::path::Path;

use base64::Engine as _;

use coldkeep::{CheckReport, ListEntry, NodeKind, RepoStats, RestoreSummary, SnapshotRecord};
use serde::ser::SerializeMap as _;
use serde::Serialize;

/// Bytes in human units (powers of 1000, as `du --si`).
pub fn bytes(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < units.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

pub fn time(us: i64) -> String {
    coldkeep::model::Usecs(us).to_string()
}

/// RFC 3339 with nanoseconds: `2026-11-23T09:00:00.123456789Z`.
fn time_ns(secs: i64, nanos: u32) -> String {
    let whole = time(secs.saturating_mul(1_000_000));
    format!("{}.{nanos:09}Z", whole.trim_end_matches('Z'))
}

/// A name or path as stored: raw bytes, which need not be UTF-8. In JSON it is a string when
/// it is UTF-8 and `{"base64": "..."}` (the standard alphabet, padded) when it is not, so no
/// name is lost or altered; in text it is [`escaped`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(pub Vec<u8>);

impl Serialize for Name {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let Ok(text) = std::str::from_utf8(&self.0) {
            return s.serialize_str(text);
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("base64", &base64::engine::general_purpose::STANDARD.encode(&self.0))?;
        map.end()
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&escaped(&self.0))
    }
}

/// A name for a line of text: control characters, backslashes and bytes that are not UTF-8
/// are escaped (`\n`, `\t`, `\\`, `\xNN`), so a newline in a name cannot forge a line.
pub fn escaped(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for chunk in name.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    for b in c.to_string().bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub id: u64,
    pub time: String,
    pub start_time_usecs: i64,
    pub end_time_usecs: i64,
    pub hostname: String,
    pub source: Name,
    pub root: String,
    pub parent: Option<u64>,
    pub kind: String,
    pub stats: coldkeep::SnapshotStats,
    pub warnings: Vec<String>,
    pub tags: Vec<String>,
}

impl From<&SnapshotRecord> for Snapshot {
    fn from(s: &SnapshotRecord) -> Self {
        Self {
            id: s.id.get(),
            time: time(s.start_time_us),
            start_time_usecs: s.start_time_us,
            end_time_usecs: s.end_time_us,
            hostname: s.hostname.clone(),
            source: Name(s.source.clone()),
            root: s.root.to_string(),
            parent: s.parent.map(coldkeep::SnapshotId::get),
            kind: format!("{:?}", s.kind),
            stats: s.stats,
            warnings: s
                .warnings
                .iter()
                .map(|w| format!("{}: {}", escaped(&w.path), w.message))
                .collect(),
            tags: s.tags.clone(),
        }
    }
}

impl Snapshot {
    pub fn summary(&self) -> String {
        let st = &self.stats;
        let secs = (self.end_time_usecs - self.start_time_usecs) as f64 / 1e6;
        let mut out = format!(
            "snapshot {} of {} ({:?} backup): {} files, {} dirs, {} in {:.2}s\n  read {} files ({}), reused {} unchanged; new: {} chunks, {} ({} stored)",
            self.id,
            self.source,
            self.kind,
            st.files,
            st.dirs,
            bytes(st.bytes),
            secs,
            st.files_read,
            bytes(st.bytes_read),
            st.files_reused,
            st.new_chunks,
            bytes(st.new_bytes),
            bytes(st.stored_bytes),
        );
        for w in &self.warnings {
            out.push_str(&format!("\n  warning: {w}"));
        }
        out
    }

    pub fn table(snaps: &[Self]) -> String {
        let mut out = format!(
            "{:>6}  {:<19}  {:<12}  {:>10}  {:>8}  source",
            "id", "time", "kind", "size", "files"
        );
        for s in snaps {
            out.push_str(&format!(
                "\n{:>6}  {:<19}  {:<12}  {:>10}  {:>8}  {}{}",
                s.id,
                s.time,
                s.kind,
                bytes(s.stats.bytes),
                s.stats.files,
                s.source,
                if s.warnings.is_empty() {
                    String::new()
                } else {
                    format!("  ({} warnings)", s.warnings.len())
                }
            ));
        }
        out
    }
}

#[derive(Debug, Serialize)]
pub struct Entry {
    pub path: Name,
    pub kind: &'static str,
    pub size: u64,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<Name>,
}

impl From<&ListEntry> for Entry {
    fn from(e: &ListEntry) -> Self {
        let (kind, size, target) = match &e.node.kind {
            NodeKind::File { size, .. } => ("file", *size, None),
            NodeKind::Dir { .. } => ("dir", 0, None),
            NodeKind::Symlink { target } => ("symlink", 0, Some(Name(target.clone()))),
        };
        let m = &e.node.meta;
        Self {
            path: Name(e.path.clone()),
            kind,
            size,
            mode: format!("{:04o}", m.mode),
            uid: m.uid,
            gid: m.gid,
            mtime: time_ns(m.mtime.secs, m.mtime.nanos),
            target,
        }
    }
}

impl Entry {
    pub fn line(&self) -> String {
        let t = match self.kind {
            "dir" => 'd',
            "symlink" => 'l',
            _ => '-',
        };
        let target = self.target.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default();
        format!(
            "{t}{} {:>5}:{:<5} {:>12} {} {}{}",
            self.mode, self.uid, self.gid, self.size, self.mtime, self.path, target
        )
    }
}

/// A range of a file, for `cat --json`.
#[derive(Debug, Serialize)]
pub struct FileRange {
    pub path: Name,
    pub offset: u64,
    pub length: u64,
    pub file_size: u64,
    /// The bytes, base64 (standard alphabet, padded).
    pub data_base64: String,
}

impl FileRange {
    pub fn new(path: &[u8], offset: u64, slice: &coldkeep::FileSlice) -> Self {
        Self {
            path: Name(path.to_vec()),
            offset,
            length: slice.data.len() as u64,
            file_size: slice.file_size,
            data_base64: base64::engine::general_purpose::STANDARD.encode(&slice.data),
        }
    }
}

pub fn restore_summary(s: &RestoreSummary, id: coldkeep::SnapshotId, target: &Path) -> String {
    let mut out = format!(
        "restored snapshot {id} into {}: {} files ({} hard links), {} dirs, {} symlinks, {}",
        target.display(),
        s.files,
        s.hardlinks,
        s.dirs,
        s.symlinks,
        bytes(s.bytes)
    );
    for w in &s.warnings {
        out.push_str(&format!("\n  warning: {w}"));
    }
    out
}

/// What `rebuild-catalog` did, in words.
pub fn rebuild_summary(r: &coldkeep::RebuildReport) -> String {
    let mut out = format!(
        "catalog rebuilt: {} snapshots, {} journal entries replayed, {} packs indexed ({} still condemned)",
        r.snapshots, r.journal_entries, r.packs_indexed, r.packs_condemned
    );
    if let Some(old) = &r.old_catalog {
        out.push_str(&format!("\nthe old catalog is in {} (delete it when done)", old.display()));
    }
    if !r.packs_unreadable.is_empty() {
        out.push_str(&format!(
            "\n{} packs could not be read and are not indexed: {} (run check --read-data)",
            r.packs_unreadable.len(),
            r.packs_unreadable.join(", ")
        ));
    }
    out
}

pub fn check_summary(r: &CheckReport) -> String {
    let mut out = format!(
        "checked {} snapshots, {} trees, {} chunks in {} packs{}",
        r.snapshots,
        r.trees,
        r.chunks,
        r.packs,
        if r.blobs_verified > 0 {
            format!(", {} blobs re-hashed", r.blobs_verified)
        } else {
            String::new()
        }
    );
    if !r.unindexed_packs.is_empty() {
        out.push_str(&format!(
            "\n{} unindexed packs (left by an interrupted backup; reclaimable)",
            r.unindexed_packs.len()
        ));
    }
    if !r.unindexed_packs_with_trees.is_empty() {
        out.push_str(&format!(
            "\n{} of them hold trees no snapshot reaches (a backup killed while sealing, or \
             snapshots a damaged catalog lost): gc keeps them",
            r.unindexed_packs_with_trees.len()
        ));
    }
    if r.is_clean() {
        out.push_str("\nno problems found");
    } else {
        for p in &r.problems {
            out.push_str(&format!("\nPROBLEM: {p}"));
        }
    }
    out
}

pub fn stats_summary(s: &RepoStats) -> String {
    format!(
        "{} snapshots, {} logical\n{} unique chunks, {} unique\n{} packs, {} on disk (dedup+compression ratio {:.2}x)",
        s.snapshots,
        bytes(s.logical_bytes),
        s.chunks,
        bytes(s.unique_bytes),
        s.packs,
        bytes(s.pack_bytes),
        s.logical_bytes as f64 / s.pack_bytes.max(1) as f64
    )
}

pub fn gc_summary(r: &coldkeep::GcReport) -> String {
    format!(
        "{} runs expired ({} snapshots removed)
{} packs condemned ({} repacked), {} deleted, {} resurrected, {} orphans deleted
{} freed, {} file index entries purged{}{}",
        r.runs_expired,
        r.snapshots_removed,
        r.packs_condemned,
        r.packs_repacked,
        r.packs_deleted,
        r.packs_resurrected,
        r.orphan_packs_deleted,
        bytes(r.bytes_freed),
        r.index_entries_purged,
        if r.orphan_packs_kept.is_empty() {
            String::new()
        } else {
            format!(
                "\n{} unindexed packs kept: they hold trees no snapshot reaches (see check)",
                r.orphan_packs_kept.len()
            )
        },
        if r.packs_locked_in_store == 0 {
            String::new()
        } else {
            format!(
                "\n{} packs left as they are: the store retains or holds them (Object Lock)",
                r.packs_locked_in_store
            )
        }
    )
}

pub fn search_summary(r: &coldkeep::FileSearchResult) -> String {
    let mut lines: Vec<String> = r
        .files
        .iter()
        .map(|f| {
            let kind = if f.is_dir { "dir " } else { "file" };
            format!("{kind} {:>12}  snapshot {:>4}  {}", f.size, f.snapshot, escaped(&f.path))
        })
        .collect();
    lines.push(match &r.cookie {
        Some(c) => format!("{} of {} matches; next page: --cookie {c}", r.files.len(), r.count),
        None => format!("{} matches", r.count),
    });
    lines.join("\n")
}
