//! Throughput of each stage of the backup path on the same 32 MiB input (text-like, as source
//! trees are): chunking, keyed hashing, compression at several zstd levels, decompression, and
//! sealing (encryption at rest) of frames, alone and as a restore reads a sealed pack.
//! `cargo bench -p coldkeep-benches --bench components`

use coldkeep_chunker::{CdcParams, Chunker, ChunkerConfig};
use coldkeep_store::crypto::MasterKey;
use coldkeep_store::{
    encode_frame, Access, BlobKind, ChunkKey, MemoryBackend, PackFile, PackWriter, GROUP_TARGET,
};
use coldkeep_testing::Rng;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

fn input() -> Vec<u8> {
    let mut rng = Rng::new(42);
    let mut data = rng.bytes(24 << 20, true);
    data.extend(rng.bytes(8 << 20, false));
    data
}

fn chunking(c: &mut Criterion) {
    let data = input();
    let mut g = c.benchmark_group("chunking");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    for (name, config) in [
        ("cdc-1MiB", ChunkerConfig::Cdc(CdcParams::DEFAULT)),
        (
            "cdc-64KiB",
            ChunkerConfig::Cdc(CdcParams { min: 16 << 10, avg: 64 << 10, max: 256 << 10 }),
        ),
        ("fixed-1MiB", ChunkerConfig::Fixed(1 << 20)),
    ] {
        let chunker = Chunker::new(config).expect("valid");
        g.bench_function(name, |b| b.iter(|| chunker.split(&data).count()));
    }
    let chunker = Chunker::new(ChunkerConfig::default()).expect("valid");
    g.bench_function("cdc-1MiB-stream", |b| {
        b.iter(|| {
            let mut reader = chunker.reader(&data[..]);
            let mut n = 0;
            while let Some(chunk) = reader.next_chunk().expect("in memory") {
                n += chunk.len();
            }
            n
        });
    });
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let data = input();
    let key = ChunkKey::from_bytes([1; 32]);
    let mut g = c.benchmark_group("hashing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("blake3-keyed-1MiB-chunks", |b| {
        b.iter(|| data.chunks(1 << 20).map(|c| key.id_of(c)).collect::<Vec<_>>());
    });
    g.bench_function("blake3-keyed-16KiB-chunks", |b| {
        b.iter(|| data.chunks(16 << 10).map(|c| key.id_of(c)).collect::<Vec<_>>());
    });
    g.finish();
}

fn compression(c: &mut Criterion) {
    let data = input();
    let mut g = c.benchmark_group("compression");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    for level in [1, 2, 3] {
        g.bench_with_input(BenchmarkId::new("zstd-16KiB-blobs", level), &level, |b, &level| {
            b.iter(|| data.chunks(16 << 10).map(|c| encode_frame(c, level).1.len()).sum::<usize>());
        });
        g.bench_with_input(BenchmarkId::new("zstd-128KiB-frames", level), &level, |b, &level| {
            b.iter(|| {
                data.chunks(GROUP_TARGET).map(|c| encode_frame(c, level).1.len()).sum::<usize>()
            });
        });
    }
    let frames: Vec<Vec<u8>> =
        data.chunks(16 << 10).map(|c| zstd::bulk::compress(c, 3).expect("compress")).collect();
    g.bench_function("unzstd-16KiB-blobs", |b| {
        b.iter(|| {
            frames
                .iter()
                .map(|f| zstd::bulk::decompress(f, 16 << 10).expect("decompress").len())
                .sum::<usize>()
        });
    });
    g.finish();
}

fn sealing(c: &mut Criterion) {
    let data = input();
    let key = MasterKey::from_bytes([7; 32]).object_key();
    let mut g = c.benchmark_group("sealing");
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.sample_size(10);
    g.bench_function("seal-128KiB-frames", |b| {
        b.iter(|| data.chunks(GROUP_TARGET).map(|c| key.seal(b"frame", c).len()).sum::<usize>());
    });
    let sealed: Vec<Vec<u8>> = data.chunks(GROUP_TARGET).map(|c| key.seal(b"frame", c)).collect();
    g.bench_function("open-128KiB-frames", |b| {
        b.iter(|| {
            sealed.iter().map(|s| key.open(b"frame", s).expect("opens").len()).sum::<usize>()
        });
    });
    // A sealed pack of 1 MiB chunks (compressed at level 1), read back frame by frame.
    let store = MemoryBackend::new();
    let chunk_key = ChunkKey::from_bytes([1; 32]);
    let mut writer = PackWriter::create(&store, 1, Some(&key)).expect("create");
    for chunk in data.chunks(1 << 20) {
        writer.add(chunk_key.id_of(chunk), BlobKind::Data, chunk).expect("add");
    }
    let pack = writer.finish().expect("finish");
    let file = PackFile::open(&store, pack.id, Access::Sequential, Some(&key)).expect("open");
    g.bench_function("read-sealed-pack-1MiB-frames", |b| {
        let mut plain = Vec::new();
        b.iter(|| {
            let mut n = 0;
            for entry in &pack.entries {
                file.read_frame_into(&entry.frame, &mut plain).expect("read");
                n += plain.len();
            }
            n
        });
    });
    g.finish();
}

criterion_group!(benches, chunking, hashing, compression, sealing);
criterion_main!(benches);
