//! `check`: is the repository whole?
//!
//! * **Structure** (always): every catalog record decodes; every snapshot's trees decode; every
//!   chunk a snapshot references is indexed; every indexed chunk's pack exists and its trailer
//!   lists the chunk at the indexed place.
//! * **Data** (`read_data`): every blob of every pack is read, its CRC checked, decompressed and
//!   re-hashed against its id.
//!
//! Damage is collected into a [`CheckReport`], never returned as an error: one bad byte must not
//! hide the next. Each damaged chunk is traced back to the snapshots that need it, so the report
//! says not only where the damage is (pack, offset) but what it costs.

use std::collections::{HashMap, HashSet};

use coldkeep_catalog::{CatalogError, ChunkLocation, SnapshotId, SnapshotRecord};
use coldkeep_store::{Access, BlobEntry, ChunkId, PackId, StoreError};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::{CheckError, DataError, ErrorKind, HasErrorKind, Unreadable};
use crate::reach::walk;
use crate::repo::Repository;

/// What to check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Also read and re-hash every blob.
    pub read_data: bool,
}

/// One thing wrong with the repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// A catalog record does not decode.
    CorruptRecord { detail: String },
    /// A referenced chunk is not in the index.
    MissingChunk { chunk: String, snapshots: Vec<SnapshotId> },
    /// A tree blob does not decode or is invalid.
    CorruptTree { tree: String, detail: String, snapshots: Vec<SnapshotId> },
    /// The catalog lists a pack that is not on disk.
    MissingPack { pack: String },
    /// Bytes in a pack are damaged.
    CorruptPack {
        pack: String,
        offset: u64,
        chunk: Option<String>,
        detail: String,
        snapshots: Vec<SnapshotId>,
    },
    /// The index says a chunk is somewhere its pack's trailer disagrees with.
    IndexMismatch { pack: String, chunk: String, detail: String },
    /// The catalog holds fewer commits than the repository recorded: it lost commits (see
    /// [`OpenError::CatalogBehind`](crate::error::OpenError::CatalogBehind)).
    CatalogBehind(crate::repo::CatalogBehind),
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snaps =
            |s: &[SnapshotId]| s.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        match self {
            Problem::CorruptRecord { detail } => write!(f, "corrupt catalog record: {detail}"),
            Problem::MissingChunk { chunk, snapshots } => {
                write!(f, "chunk {chunk} is missing; damages snapshots [{}]", snaps(snapshots))
            }
            Problem::CorruptTree { tree, detail, snapshots } => {
                write!(
                    f,
                    "tree {tree} is corrupt ({detail}); damages snapshots [{}]",
                    snaps(snapshots)
                )
            }
            Problem::MissingPack { pack } => write!(f, "pack {pack} is missing"),
            Problem::CorruptPack { pack, offset, chunk, detail, snapshots } => {
                write!(f, "pack {pack} is damaged at offset {offset}")?;
                if let Some(c) = chunk {
                    write!(f, " (chunk {c})")?;
                }
                write!(f, ": {detail}; damages snapshots [{}]", snaps(snapshots))
            }
            Problem::IndexMismatch { pack, chunk, detail } => {
                write!(f, "index entry of chunk {chunk} disagrees with pack {pack}: {detail}")
            }
            Problem::CatalogBehind(lost) => {
                write!(f, "{lost} (snapshots and records after it are missing from it)")
            }
        }
    }
}

/// The result of a check.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub snapshots: u64,
    pub trees: u64,
    pub chunks: u64,
    pub packs: u64,
    /// Blobs read and re-hashed (`read_data` only).
    pub blobs_verified: u64,
    pub problems: Vec<Problem>,
    /// Sealed packs the catalog does not know (left by an interrupted backup): not damage, only
    /// space to reclaim.
    pub unindexed_packs: Vec<String>,
    /// Those of them holding trees that no snapshot reaches: a backup killed while sealing, or
    /// snapshots a damaged catalog lost. Garbage collection never deletes them.
    pub unindexed_packs_with_trees: Vec<String>,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

pub fn run(repo: &Repository, opts: CheckOptions) -> Result<CheckReport, CheckError> {
    let mut report = CheckReport::default();
    if let Some(b) = repo.catalog_behind() {
        report.problems.push(Problem::CatalogBehind(b));
    }
    // chunk → what is wrong with it; resolved to snapshots at the end.
    let mut damaged: HashMap<ChunkId, Problem> = HashMap::new();

    let mut snapshots = Vec::new();
    for item in repo.catalog().scan_snapshots() {
        match item {
            Ok(s) => snapshots.push(s),
            Err(e) => record_problem(&mut report, e)?,
        }
    }
    report.snapshots = snapshots.len() as u64;

    let mut index: HashMap<PackId, Vec<BlobEntry>> = HashMap::new();
    for item in repo.catalog().chunks() {
        match item {
            Ok(ChunkLocation { pack, entry }) => index.entry(pack).or_default().push(entry),
            Err(e) => record_problem(&mut report, e)?,
        }
    }
    report.chunks = index.values().map(|v| v.len() as u64).sum();
    // The index was just read whole: reference checks look here, not in the catalog again.
    let indexed: HashSet<ChunkId> = index.values().flatten().map(|e| e.id).collect();

    // Trees and references.
    let mut seen_trees = HashSet::new();
    let mut unreadable = None;
    for snap in &snapshots {
        walk(
            &|id| repo.load_stored_tree(id),
            snap.root,
            &mut seen_trees,
            &mut |id, is_tree, loaded| {
                if let Err(e) = loaded {
                    if e.kind() != ErrorKind::Corrupt {
                        unreadable.get_or_insert_with(|| Unreadable::new(id, e));
                    }
                    damaged.entry(id).or_insert_with(|| tree_problem(id, e));
                } else if !is_tree && !indexed.contains(&id) {
                    damaged.entry(id).or_insert(Problem::MissingChunk {
                        chunk: id.to_string(),
                        snapshots: vec![],
                    });
                }
            },
        );
    }
    if let Some(e) = unreadable {
        return Err(e.into());
    }
    report.trees = seen_trees.len() as u64;

    // Packs: catalog vs disk vs trailers (and data).
    let catalog_packs: HashSet<PackId> = match repo.catalog().packs() {
        Ok(p) => p.into_iter().map(|(id, _)| id).collect(),
        Err(e) => {
            record_problem(&mut report, e)?;
            index.keys().copied().collect()
        }
    };
    let on_disk: HashSet<PackId> = repo.stored_packs()?.into_iter().map(|(id, _)| id).collect();
    report.packs = catalog_packs.len() as u64;
    for pack in on_disk.difference(&catalog_packs) {
        report.unindexed_packs.push(pack.to_string());
        // A pack whose trailer does not read holds unknown trees: listed too.
        let lost = crate::reach::lost_trees(repo, *pack, &seen_trees);
        if !matches!(lost, Ok(0)) {
            report.unindexed_packs_with_trees.push(pack.to_string());
        }
    }
    report.unindexed_packs.sort();
    report.unindexed_packs_with_trees.sort();
    // A condemned pack whose file is gone was deleted by a sweep that did not get to forget it.
    let deleted: HashSet<PackId> = match repo.catalog().condemned() {
        Ok(c) => c.into_iter().map(|(id, _)| id).filter(|id| !on_disk.contains(id)).collect(),
        Err(e) => {
            report.problems.push(Problem::CorruptRecord { detail: e.to_string() });
            HashSet::new()
        }
    };
    let mut to_read: Vec<PackId> = catalog_packs
        .iter()
        .chain(index.keys())
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .filter(|id| !deleted.contains(id) || index.contains_key(id))
        .collect();
    to_read.sort_unstable();
    let results: Vec<PackFindings> = to_read
        .par_iter()
        .map(|id| {
            check_pack(
                repo,
                *id,
                on_disk.contains(id),
                index.get(id).map_or(&[][..], Vec::as_slice),
                opts,
            )
        })
        .collect();
    for found in results {
        if let Some(e) = found.unreadable {
            return Err(e.into());
        }
        report.blobs_verified += found.verified;
        report.problems.extend(found.problems);
        for (chunk, problem) in found.damaged {
            damaged.entry(chunk).or_insert(problem);
        }
    }

    if !damaged.is_empty() {
        let owners = owners_of(repo, &snapshots, &damaged.keys().copied().collect());
        let mut damaged: Vec<_> = damaged.into_iter().collect();
        damaged.sort_by_key(|(id, _)| *id);
        for (chunk, mut problem) in damaged {
            let who = owners.get(&chunk).cloned().unwrap_or_default();
            match &mut problem {
                Problem::MissingChunk { snapshots, .. }
                | Problem::CorruptTree { snapshots, .. }
                | Problem::CorruptPack { snapshots, .. } => *snapshots = who,
                _ => {}
            }
            report.problems.push(problem);
        }
    }
    Ok(report)
}

/// A damaged record is a problem to report; a catalog that cannot be read stops the check.
fn record_problem(report: &mut CheckReport, e: CatalogError) -> Result<(), CheckError> {
    match e {
        CatalogError::Kv(e) => Err(e.into()),
        damaged => {
            report.problems.push(Problem::CorruptRecord { detail: damaged.to_string() });
            Ok(())
        }
    }
}

fn tree_problem(id: ChunkId, e: &DataError) -> Problem {
    match e {
        DataError::MissingChunk(_) => {
            Problem::MissingChunk { chunk: id.to_string(), snapshots: vec![] }
        }
        DataError::Store(StoreError::Corrupted { pack, offset, reason }) => Problem::CorruptPack {
            pack: pack.to_string(),
            offset: *offset,
            chunk: Some(id.to_string()),
            detail: reason.clone(),
            snapshots: vec![],
        },
        other => Problem::CorruptTree {
            tree: id.to_string(),
            detail: other.to_string(),
            snapshots: vec![],
        },
    }
}

/// For each damaged chunk, the snapshots whose trees reference it (directly or through a
/// damaged tree).
fn owners_of(
    repo: &Repository,
    snapshots: &[SnapshotRecord],
    damaged: &HashSet<ChunkId>,
) -> HashMap<ChunkId, Vec<SnapshotId>> {
    let mut owners: HashMap<ChunkId, Vec<SnapshotId>> = HashMap::new();
    for snap in snapshots {
        let mut seen = HashSet::new();
        walk(&|id| repo.load_tree(id), snap.root, &mut seen, &mut |id, _, _| {
            if damaged.contains(&id) {
                let list = owners.entry(id).or_default();
                if list.last() != Some(&snap.id) {
                    list.push(snap.id);
                }
            }
        });
    }
    owners
}

#[derive(Default)]
struct PackFindings {
    /// The store failed to read the pack for a reason other than damage: the check stops.
    unreadable: Option<StoreError>,
    verified: u64,
    problems: Vec<Problem>,
    damaged: Vec<(ChunkId, Problem)>,
}

fn check_pack(
    repo: &Repository,
    id: PackId,
    exists: bool,
    indexed: &[BlobEntry],
    opts: CheckOptions,
) -> PackFindings {
    let mut out = PackFindings::default();
    let pack_problem = |offset, chunk: Option<ChunkId>, detail: String| Problem::CorruptPack {
        pack: id.to_string(),
        offset,
        chunk: chunk.map(|c| c.to_string()),
        detail,
        snapshots: vec![],
    };
    let mark_all = |out: &mut PackFindings, offset, detail: &str| {
        for e in indexed {
            out.damaged.push((e.id, pack_problem(offset, Some(e.id), detail.to_owned())));
        }
    };
    if !exists {
        out.problems.push(Problem::MissingPack { pack: id.to_string() });
        for e in indexed {
            out.damaged
                .push((e.id, Problem::MissingChunk { chunk: e.id.to_string(), snapshots: vec![] }));
        }
        return out;
    }
    let opened = repo.open_pack(id, Access::Sequential).and_then(|p| p.entries().map(|e| (p, e)));
    let (pack, entries) = match opened {
        Ok(found) => found,
        Err(StoreError::Corrupted { offset, reason, .. }) => {
            out.problems.push(pack_problem(offset, None, reason.clone()));
            mark_all(&mut out, offset, &reason);
            return out;
        }
        Err(e) if HasErrorKind::kind(&e) != ErrorKind::Corrupt => {
            out.unreadable = Some(e);
            return out;
        }
        Err(e) => {
            out.problems.push(pack_problem(0, None, e.to_string()));
            mark_all(&mut out, 0, &e.to_string());
            return out;
        }
    };
    let in_trailer: HashMap<ChunkId, &BlobEntry> = entries.iter().map(|e| (e.id, e)).collect();
    for e in indexed {
        if in_trailer.get(&e.id).is_none_or(|t| *t != e) {
            out.problems.push(Problem::IndexMismatch {
                pack: id.to_string(),
                chunk: e.id.to_string(),
                detail: "not at the indexed offset in the pack trailer".into(),
            });
        }
    }
    if opts.read_data {
        let key = Some(repo.chunk_key());
        // A frame of grouped blobs is decompressed once; damage to it damages all of them.
        let mut plain = Vec::new();
        for blobs in entries.chunk_by(|a, b| a.frame == b.frame) {
            let read = match pack.read_frame_into(&blobs[0].frame, &mut plain) {
                Err(e) if HasErrorKind::kind(&e) != ErrorKind::Corrupt => {
                    out.unreadable = Some(e);
                    return out;
                }
                read => read,
            };
            for e in blobs {
                let failure = match &read {
                    Ok(()) => pack.blob_in_frame(&plain, e, key).err().map(|err| located(&err, e)),
                    Err(err) => Some(located(err, e)),
                };
                match failure {
                    None => out.verified += 1,
                    Some((offset, detail)) => {
                        out.damaged.push((e.id, pack_problem(offset, Some(e.id), detail)));
                    }
                }
            }
        }
    }
    out
}

/// Where a read error happened (the frame's offset unless the store says) and what it was.
fn located(err: &StoreError, entry: &BlobEntry) -> (u64, String) {
    match err {
        StoreError::Corrupted { offset, reason, .. } => (*offset, reason.clone()),
        other => (entry.frame.offset, other.to_string()),
    }
}
