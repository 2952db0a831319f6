//! `Engine::read_file`: the seed's download of a file by offset and length. Exactly the bytes
//! asked for (across chunk boundaries, into holes, past the end), the 8 MiB bound, and only the
//! chunks the range overlaps are read.

use coldkeep::{
    BackupOptions, CdcParams, ChunkerConfig, Engine, InitOptions, NodeKind, Piece, ReadError,
    SnapshotId, MAX_READ_LEN,
};
use coldkeep_testing::{Dataset, Rng};

const MIB: u64 = 1 << 20;

struct Fixture {
    _dir: tempfile::TempDir,
    engine: Engine,
    snap: SnapshotId,
    data: Vec<u8>,
    sparse: Vec<u8>,
}

/// Small chunks, so that ranges cross many chunk boundaries: a 12 MiB noise file and a 20 MiB
/// sparse file with 3 MiB of data in its middle.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut ds = Dataset::new(&dir.path().join("src"), 11);
    let data = ds.rng().bytes((12 * MIB) as usize, false);
    ds.file("data.bin", &data);
    let middle = ds.rng().bytes((3 * MIB) as usize, false);
    let sparse_path = ds.sparse_file("sparse.img", 20 * MIB, 8 * MIB, &middle);
    let sparse = std::fs::read(sparse_path).expect("read sparse");
    let opts = InitOptions {
        chunker: ChunkerConfig::Cdc(CdcParams { min: 16 << 10, avg: 64 << 10, max: 256 << 10 }),
        ..InitOptions::unencrypted()
    };
    let engine = Engine::init(&dir.path().join("repo"), &opts).expect("init");
    let snap = engine.backup(&ds.root, &BackupOptions::default()).expect("backup").id;
    Fixture { _dir: dir, engine, snap, data, sparse }
}

/// The stored chunks of `path` that `[offset, offset + len)` overlaps, from its node.
fn chunks_overlapping(f: &Fixture, path: &[u8], offset: u64, len: u64) -> u32 {
    let entries = f.engine.list(f.snap, path).expect("list");
    let NodeKind::File { pieces, .. } = &entries[0].node.kind else { panic!("not a file") };
    let (mut start, mut n) = (0, 0);
    for piece in pieces {
        let end = start + piece.len();
        if matches!(piece, Piece::Data { .. }) && start < offset + len && offset < end {
            n += 1;
        }
        start = end;
    }
    n
}

fn expect_slice(content: &[u8], offset: u64, len: u64) -> &[u8] {
    let size = content.len() as u64;
    let (a, b) = (offset.min(size), offset.saturating_add(len).min(size));
    &content[a as usize..b as usize]
}

#[test]
fn random_ranges_return_exactly_the_bytes_and_read_only_their_chunks() {
    let f = fixture();
    let mut rng = Rng::new(5);
    for (path, content) in [(&b"data.bin"[..], &f.data), (&b"sparse.img"[..], &f.sparse)] {
        let size = content.len() as u64;
        let total = chunks_overlapping(&f, path, 0, size);
        for i in 0..60 {
            let offset = match i % 4 {
                0 => rng.below(size),
                1 => size - rng.below(1000), // near the end
                2 => size + rng.below(1000), // past the end
                _ => rng.below(64 << 10),    // near the start
            };
            let len = match i % 3 {
                0 => rng.below(4096) + 1,
                1 => rng.below(MAX_READ_LEN) + 1,
                _ => MAX_READ_LEN,
            };
            let slice = f.engine.read_file(f.snap, path, offset, len).expect("read");
            assert_eq!(slice.file_size, size);
            assert!(slice.data == expect_slice(content, offset, len), "{offset}+{len}");
            assert_eq!(slice.chunks_read, chunks_overlapping(&f, path, offset, len));
        }
        // A small range reads one or two chunks, not the file.
        let small = f.engine.read_file(f.snap, path, size / 2, 100).expect("read");
        assert!(small.chunks_read <= 2 && total > 20, "{} of {total}", small.chunks_read);
    }
    // Inside the hole: zeros, and nothing read at all.
    let hole = f.engine.read_file(f.snap, b"sparse.img", MIB, 4 * MIB).expect("read");
    assert_eq!((hole.data.len() as u64, hole.chunks_read), (4 * MIB, 0));
    assert!(hole.data.iter().all(|b| *b == 0));
}

#[test]
fn more_than_8_mib_at_once_is_refused() {
    let f = fixture();
    let whole = f.engine.read_file(f.snap, b"data.bin", 0, MAX_READ_LEN).expect("8 MiB");
    assert_eq!(whole.data.len() as u64, 8 * MIB);
    match f.engine.read_file(f.snap, b"data.bin", 0, MAX_READ_LEN + 1) {
        Err(ReadError::ReadTooLarge { requested, max }) => {
            assert_eq!((requested, max), (8 * MIB + 1, 8 * MIB));
        }
        other => panic!("8 MiB + 1 must be refused, got {other:?}"),
    }
    assert!(matches!(f.engine.read_file(f.snap, b"", 0, 1), Err(ReadError::NotAFile(_))));
    assert!(matches!(
        f.engine.read_file(f.snap, b"missing", 0, 1),
        Err(ReadError::PathNotFound(_))
    ));
}
