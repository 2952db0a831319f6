//! How results are shown: JSON views (ids as hex or decimal strings, names as lossy UTF-8 with
//! the raw bytes kept when they are not UTF-8) and one-line text summaries.

use std::path::Path;

use coldkeep::{CheckReport, ListEntry, NodeKind, RepoStats, RestoreSummary, SnapshotRecord};
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

fn time(us: i64) -> String {
    coldkeep::model::Usecs(us).to_string()
}

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub id: u64,
    pub time: String,
    pub start_time_usecs: i64,
    pub end_time_usecs: i64,
    pub hostname: String,
    pub source: String,
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
            source: String::from_utf8_lossy(&s.source).into_owned(),
            root: s.root.to_string(),
            parent: s.parent.map(coldkeep::SnapshotId::get),
            kind: format!("{:?}", s.kind),
            stats: s.stats,
            warnings: s
                .warnings
                .iter()
                .map(|w| format!("{}: {}", String::from_utf8_lossy(&w.path), w.message))
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
    pub path: String,
    pub kind: &'static str,
    pub size: u64,
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub mtime: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl From<&ListEntry> for Entry {
    fn from(e: &ListEntry) -> Self {
        let (kind, size, target) = match &e.node.kind {
            NodeKind::File { size, .. } => ("file", *size, None),
            NodeKind::Dir { .. } => ("dir", 0, None),
            NodeKind::Symlink { target } => {
                ("symlink", 0, Some(String::from_utf8_lossy(target).into_owned()))
            }
        };
        let m = &e.node.meta;
        Self {
            path: String::from_utf8_lossy(&e.path).into_owned(),
            kind,
            size,
            mode: format!("{:04o}", m.mode),
            uid: m.uid,
            gid: m.gid,
            mtime: format!("{}.{:09}", time(m.mtime.secs * 1_000_000), m.mtime.nanos),
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
{} freed, {} file index entries purged{}",
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
        }
    )
}

pub fn search_summary(r: &coldkeep::FileSearchResult) -> String {
    let mut lines: Vec<String> = r
        .files
        .iter()
        .map(|f| {
            let kind = if f.is_dir { "dir " } else { "file" };
            format!(
                "{kind} {:>12}  snapshot {:>4}  {}",
                f.size,
                f.snapshot,
                String::from_utf8_lossy(&f.path)
            )
        })
        .collect();
    lines.push(match &r.cookie {
        Some(c) => format!("{} of {} matches; next page: --cookie {c}", r.files.len(), r.count),
        None => format!("{} matches", r.count),
    });
    lines.join("\n")
}
