//! The file index: every file and directory of an indexed snapshot, and an index of the
//! trigrams of their names, so that a name search reads the posting lists of its pattern's
//! trigrams instead of every tree of every snapshot.
//!
//! * `files`: snapshot id ‖ sequence number (u64 big-endian each) → [`IndexedFile`] (record v1).
//! * `file_grams`: trigram of the lowercased name (3 bytes) ‖ that same 16-byte key → empty;
//!   and under the bare trigram, how many postings it has (u64 little-endian), which lets a
//!   search read the shortest lists first. The counts only order the work: one that is off
//!   (concurrent indexing) slows a search, never changes its result.
//! * `meta` `indexed_` ‖ snapshot id → empty, written with the snapshot's last entries: a
//!   snapshot whose index was cut short by a crash is not marked and is indexed again.

use std::collections::BTreeSet;

use coldkeep_model::{IndexedFile, SnapshotId};

use crate::{Batch, Catalog, CatalogError, Table};

const FILE_VERSION: u8 = 1;

/// The key of an indexed file: snapshot id and sequence number, big-endian.
pub type FileKey = [u8; 16];

/// A name's trigrams, of its lowercased bytes.
pub type Gram = [u8; 3];

pub fn file_key(snapshot: SnapshotId, seq: u64) -> FileKey {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&snapshot.key());
    key[8..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// The snapshot a file key belongs to.
pub fn key_snapshot(key: &FileKey) -> SnapshotId {
    SnapshotId::from_key(&key[..8]).expect("8 bytes")
}

/// The distinct trigrams of `text`, ASCII-lowercased (names are matched case-insensitively).
pub fn grams(text: &[u8]) -> BTreeSet<Gram> {
    let lower = text.to_ascii_lowercase();
    lower.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

const INDEXED_PREFIX: &[u8] = b"indexed_";

fn indexed_mark(snapshot: SnapshotId) -> Vec<u8> {
    [INDEXED_PREFIX, &snapshot.key()].concat()
}

/// Whether a key of the meta table is a snapshot's mark of being in the file index (derived
/// state, like the index itself).
pub fn is_index_mark(key: &[u8]) -> bool {
    key.starts_with(INDEXED_PREFIX)
}

impl Catalog {
    /// Adds a file (and its name's trigrams) to `batch`; counts the trigrams in `added`.
    pub fn stage_indexed_file(
        batch: &mut Batch,
        key: FileKey,
        file: &IndexedFile,
        added: &mut std::collections::HashMap<Gram, u64>,
    ) {
        batch.put(Table::Files, key.to_vec(), crate::record::encode(FILE_VERSION, file));
        for gram in grams(file.name()) {
            batch.put(Table::FileGrams, [&gram[..], &key].concat(), Vec::new());
            *added.entry(gram).or_default() += 1;
        }
    }

    /// Marks a snapshot's index complete, and adds its postings to the trigrams' counts.
    pub fn stage_indexed_mark(
        &self,
        batch: &mut Batch,
        snapshot: SnapshotId,
        added: &std::collections::HashMap<Gram, u64>,
    ) -> Result<(), CatalogError> {
        batch.put(Table::Meta, indexed_mark(snapshot), Vec::new());
        for (gram, n) in added {
            let count = self.gram_count(gram)? + n;
            batch.put(Table::FileGrams, gram.to_vec(), count.to_le_bytes().to_vec());
        }
        Ok(())
    }

    /// How many files' names hold `gram` (0 when none ever did).
    pub fn gram_count(&self, gram: &Gram) -> Result<u64, CatalogError> {
        Ok(self
            .kv
            .get(Table::FileGrams, gram)?
            .and_then(|v| v.try_into().ok().map(u64::from_le_bytes))
            .unwrap_or(0))
    }

    pub fn is_indexed(&self, snapshot: SnapshotId) -> Result<bool, CatalogError> {
        Ok(self.kv.get(Table::Meta, &indexed_mark(snapshot))?.is_some())
    }

    pub fn indexed_file(&self, key: &FileKey) -> Result<Option<IndexedFile>, CatalogError> {
        self.kv
            .get(Table::Files, key)?
            .map(|v| Self::decode(Table::Files, FILE_VERSION, key, &v))
            .transpose()
    }

    /// The keys of the files whose names hold `gram`, in key order.
    pub fn gram_postings(&self, gram: &Gram) -> Result<Vec<FileKey>, CatalogError> {
        self.kv
            .scan(Table::FileGrams, gram)
            .filter(|item| item.as_ref().map_or(true, |(key, _)| key.len() != gram.len()))
            .map(|item| {
                let (key, _) = item?;
                key.get(3..).and_then(|k| FileKey::try_from(k).ok()).ok_or_else(|| {
                    let reason = crate::RecordError::TooShort(key.len());
                    CatalogError::corrupted(Table::FileGrams, &key, reason)
                })
            })
            .collect()
    }

    /// Removes a file and its postings from the index (its snapshot is gone). The trigram
    /// counts are left as they are: they only order a search's work.
    pub fn stage_unindex_file(batch: &mut Batch, key: &FileKey, file: &IndexedFile) {
        batch.delete(Table::Files, key.to_vec());
        for gram in grams(file.name()) {
            batch.delete(Table::FileGrams, [&gram[..], key].concat());
        }
    }

    /// Removes a snapshot's "indexed" mark.
    pub fn stage_unindex_mark(batch: &mut Batch, snapshot: SnapshotId) {
        batch.delete(Table::Meta, indexed_mark(snapshot));
    }

    /// Every indexed file, in key order (the search's fallback when a pattern has no trigram).
    pub fn indexed_files(
        &self,
    ) -> impl Iterator<Item = Result<(FileKey, IndexedFile), CatalogError>> + '_ {
        self.kv.scan(Table::Files, &[]).map(|item| {
            let (key, value) = item?;
            let file = Self::decode(Table::Files, FILE_VERSION, &key, &value)?;
            let key = FileKey::try_from(key.as_slice()).map_err(|_| {
                CatalogError::corrupted(Table::Files, &key, crate::RecordError::TooShort(key.len()))
            })?;
            Ok((key, file))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grams_are_lowercased_and_distinct() {
        let g = grams(b"ReadMe.md");
        assert!(g.contains(b"rea") && g.contains(b".md") && !g.contains(b"Rea"));
        assert_eq!(grams(b"aaaa").len(), 1);
        assert!(grams(b"ab").is_empty());
        let key = file_key(SnapshotId::new(7), 9);
        assert_eq!(key_snapshot(&key), SnapshotId::new(7));
    }
}
