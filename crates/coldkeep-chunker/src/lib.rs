//! Chunking: how coldkeep cuts a byte stream into the pieces it deduplicates.
//!
//! Two strategies, chosen per protected object:
//!
//! * **Content-defined** ([`ChunkerConfig::Cdc`]): FastCDC 2020 with normalization level 1, through
//!   the `fastcdc` crate's cut function. Boundaries follow the content, so an insertion shifts only
//!   the chunks around it and everything else still deduplicates. Used for directory trees and logs.
//! * **Fixed-size** ([`ChunkerConfig::Fixed`]): every chunk is `size` bytes (the last may be
//!   shorter). Disk images change in place at block granularity, where fixed cuts deduplicate as
//!   well as CDC at a fraction of the cost, and all-zero blocks are recognisable.
//!
//! The crate only cuts: it never hashes, compresses or stores. [`Chunker::split`] cuts a slice that
//! is already in memory; [`ChunkReader`] cuts any [`std::io::Read`] with a buffer of twice the
//! maximum chunk size, so memory is bounded whatever the input size.
//!
//! Boundaries are part of the repository format: changing them silently would make every new
//! backup stop deduplicating against the old ones. `tests/golden.rs` pins them.

use std::io::{self, Read};
use std::ops::Range;

use fastcdc::v2020::{self as cdc, Normalization};

/// Why a chunker configuration was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The CDC sizes are outside what FastCDC supports or are not ordered `min <= avg <= max`.
    #[error("invalid content-defined chunk sizes min={min} avg={avg} max={max}")]
    CdcSizes { min: u32, avg: u32, max: u32 },
    /// Fixed-size chunks must be between 4 KiB and 16 MiB.
    #[error("invalid fixed chunk size {0} (must be 4 KiB ..= 16 MiB)")]
    FixedSize(u32),
}

/// The parameters of content-defined chunking: minimum, average and maximum chunk size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CdcParams {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl CdcParams {
    /// The default, chosen by measurement on the Linux 6.1 A→B pair (docs/BENCHMARKS.md):
    /// 128 KiB / 512 KiB / 2 MiB. Against 512 KiB / 1 MiB / 8 MiB (restic's sizes) it stores
    /// 21 % fewer new bytes for a changed large file, for 0.4 % more repository on a source tree.
    pub const DEFAULT: Self = Self { min: 128 * 1024, avg: 512 * 1024, max: 2 * 1024 * 1024 };
}

/// Which chunking strategy to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkerConfig {
    /// Content-defined chunking (FastCDC 2020, normalization level 1).
    Cdc(CdcParams),
    /// Fixed-size chunks of this many bytes.
    Fixed(u32),
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self::Cdc(CdcParams::DEFAULT)
    }
}

/// A validated chunker, cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Chunker {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Cdc { min: usize, avg: usize, max: usize, mask_s: u64, mask_l: u64 },
    Fixed(usize),
}

impl Chunker {
    /// Validates `config` and precomputes the FastCDC masks.
    pub fn new(config: ChunkerConfig) -> Result<Self, ConfigError> {
        let kind = match config {
            ChunkerConfig::Cdc(p) => {
                let valid = (cdc::MINIMUM_MIN..=cdc::MINIMUM_MAX).contains(&p.min)
                    && (cdc::AVERAGE_MIN..=cdc::AVERAGE_MAX).contains(&p.avg)
                    && (cdc::MAXIMUM_MIN..=cdc::MAXIMUM_MAX).contains(&p.max)
                    && p.min <= p.avg
                    && p.avg <= p.max;
                if !valid {
                    return Err(ConfigError::CdcSizes { min: p.min, avg: p.avg, max: p.max });
                }
                let bits = cdc::logarithm2(p.avg);
                let level = Normalization::Level1.bits();
                Kind::Cdc {
                    min: p.min as usize,
                    avg: p.avg as usize,
                    max: p.max as usize,
                    mask_s: cdc::MASKS[(bits + level) as usize],
                    mask_l: cdc::MASKS[(bits - level) as usize],
                }
            }
            ChunkerConfig::Fixed(size) => {
                if !(4096..=16 * 1024 * 1024).contains(&size) {
                    return Err(ConfigError::FixedSize(size));
                }
                Kind::Fixed(size as usize)
            }
        };
        Ok(Self { kind })
    }

    /// The largest chunk this chunker can produce.
    pub fn max_chunk_len(&self) -> usize {
        match self.kind {
            Kind::Cdc { max, .. } => max,
            Kind::Fixed(size) => size,
        }
    }

    /// Length of the first chunk of `data`, or `None` when `data` is not final (`eof == false`)
    /// and too short for the cut to be decided yet. Returns `Some(0)` only for empty final data.
    fn next_cut(&self, data: &[u8], eof: bool) -> Option<usize> {
        if !eof && data.len() < self.max_chunk_len() {
            return None;
        }
        match self.kind {
            Kind::Cdc { min, avg, max, mask_s, mask_l } => {
                let (_hash, len) =
                    cdc::cut(data, min, avg, max, mask_s, mask_l, mask_s << 1, mask_l << 1);
                Some(len)
            }
            Kind::Fixed(size) => Some(size.min(data.len())),
        }
    }

    /// The chunk ranges of an in-memory buffer, in order, covering it exactly.
    pub fn split<'a>(&'a self, data: &'a [u8]) -> impl Iterator<Item = Range<usize>> + 'a {
        let mut start = 0;
        std::iter::from_fn(move || {
            let rest = data.get(start..)?;
            let len = self.next_cut(rest, true)?;
            if len == 0 {
                return None;
            }
            let range = start..start + len;
            start += len;
            Some(range)
        })
    }

    /// A streaming chunker over `reader`.
    pub fn reader<R: Read>(&self, reader: R) -> ChunkReader<'_, R> {
        ChunkReader { chunker: self, reader, buf: Vec::new(), start: 0, end: 0, eof: false }
    }
}

/// Cuts a [`Read`] stream into chunks with a buffer of at most twice the maximum chunk size.
///
/// It is a lending iterator: each chunk borrows the internal buffer until the next call.
#[derive(Debug)]
pub struct ChunkReader<'c, R> {
    chunker: &'c Chunker,
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> ChunkReader<'_, R> {
    /// The next chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<&[u8]>> {
        loop {
            if let Some(len) = self.chunker.next_cut(&self.buf[self.start..self.end], self.eof) {
                if len == 0 {
                    return Ok(None);
                }
                let chunk = self.start..self.start + len;
                self.start += len;
                return Ok(Some(&self.buf[chunk]));
            }
            self.fill()?;
        }
    }

    /// Moves the undecided tail to the front of the buffer and reads until it holds at least one
    /// maximum-size chunk or the stream ends.
    fn fill(&mut self) -> io::Result<()> {
        let want = 2 * self.chunker.max_chunk_len();
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < self.chunker.max_chunk_len() {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small() -> Chunker {
        Chunker::new(ChunkerConfig::Cdc(CdcParams { min: 256, avg: 1024, max: 4096 }))
            .expect("valid params")
    }

    /// A reader that returns at most `step` bytes per call, to exercise refills.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn stream_lengths(chunker: &Chunker, data: &[u8], step: usize) -> Vec<usize> {
        let mut reader = chunker.reader(Trickle { data, step });
        let mut lens = Vec::new();
        while let Some(chunk) = reader.next_chunk().expect("in-memory read") {
            lens.push(chunk.len());
        }
        lens
    }

    #[test]
    fn rejects_bad_configs() {
        let bad = CdcParams { min: 4096, avg: 1024, max: 8192 };
        assert_eq!(
            Chunker::new(ChunkerConfig::Cdc(bad)).unwrap_err(),
            ConfigError::CdcSizes { min: 4096, avg: 1024, max: 8192 }
        );
        assert_eq!(
            Chunker::new(ChunkerConfig::Fixed(100)).unwrap_err(),
            ConfigError::FixedSize(100)
        );
    }

    #[test]
    fn empty_input_has_no_chunks() {
        assert_eq!(small().split(&[]).count(), 0);
        assert!(stream_lengths(&small(), &[], 7).is_empty());
    }

    #[test]
    fn fixed_chunks_are_exact() {
        let chunker = Chunker::new(ChunkerConfig::Fixed(4096)).expect("valid");
        let data = vec![7u8; 4096 * 3 + 5];
        let lens: Vec<_> = chunker.split(&data).map(|r| r.len()).collect();
        assert_eq!(lens, vec![4096, 4096, 4096, 5]);
        assert_eq!(stream_lengths(&chunker, &data, 1000), lens);
    }

    #[test]
    fn an_insertion_changes_only_nearby_chunks() {
        let mut rng = 0x1234_5678_u64;
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        let mut edited = data.clone();
        edited.splice(100_000..100_000, *b"inserted bytes");
        let chunker = small();
        let ids = |d: &[u8]| -> std::collections::HashSet<blake3::Hash> {
            chunker.split(d).map(|r| blake3::hash(&d[r])).collect()
        };
        let (before, after) = (ids(&data), ids(&edited));
        let changed = after.difference(&before).count();
        assert!(changed <= 3, "{changed} chunks changed for one insertion");
    }

    proptest! {
        #[test]
        fn stream_and_slice_agree(data in proptest::collection::vec(any::<u8>(), 0..40_000),
                                  step in 1usize..9000) {
            let chunker = small();
            let ranges: Vec<_> = chunker.split(&data).collect();
            // The ranges tile the input exactly and respect the maximum.
            let mut next = 0;
            for r in &ranges {
                prop_assert_eq!(r.start, next);
                prop_assert!(r.len() <= 4096 && !r.is_empty());
                next = r.end;
            }
            prop_assert_eq!(next, data.len());
            let lens: Vec<_> = ranges.iter().map(ExactSizeIterator::len).collect();
            prop_assert_eq!(stream_lengths(&chunker, &data, step), lens);
        }
    }
}
