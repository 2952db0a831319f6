//! Golden test: the chunk boundaries of a seeded 32 MiB input are part of the repository format.
//! If this test fails, chunking changed and new backups would stop deduplicating against old
//! ones. Change the expected values only together with a repository format version bump.

use coldkeep_chunker::{CdcParams, Chunker, ChunkerConfig};

/// 32 MiB from a xorshift64 generator seeded with a fixed value, with repeated regions so that
/// both content-defined and maximum-size cuts occur.
fn seeded_input() -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut data = Vec::with_capacity(32 << 20);
    while data.len() < 32 << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    // A long run of zeros exercises the max-size cut.
    data[20 << 20..(20 << 20) + (9 << 20)].fill(0);
    data
}

fn boundaries(config: ChunkerConfig) -> Vec<usize> {
    let data = seeded_input();
    let chunker = Chunker::new(config).expect("valid config");
    chunker.split(&data).map(|r| r.end).collect()
}

fn digest(ends: &[usize]) -> String {
    let mut hasher = blake3::Hasher::new();
    for end in ends {
        hasher.update(&(*end as u64).to_le_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

#[test]
fn default_cdc_boundaries_are_pinned() {
    let ends = boundaries(ChunkerConfig::default());
    assert_eq!(ends, EXPECTED_DEFAULT_ENDS, "default chunk boundaries changed");
}

#[test]
fn small_cdc_boundaries_are_pinned() {
    let ends = boundaries(ChunkerConfig::Cdc(CdcParams { min: 2048, avg: 8192, max: 65536 }));
    assert_eq!(
        (ends.len(), digest(&ends).as_str()),
        EXPECTED_SMALL,
        "small chunk boundaries changed"
    );
}

#[test]
fn fixed_boundaries_are_pinned() {
    let ends = boundaries(ChunkerConfig::Fixed(1 << 20));
    let expected: Vec<usize> = (1..=32).map(|i| i << 20).collect();
    assert_eq!(ends, expected);
}

const EXPECTED_DEFAULT_ENDS: &[usize] = &[
    532_150, 1_150_732, 1_743_523, 2_414_571, 2_955_488, 3_982_536, 4_587_343, 5_411_883,
    6_033_623, 6_992_405, 7_779_122, 8_093_057, 8_967_623, 9_752_081, 10_502_801, 11_383_797,
    12_044_932, 12_631_263, 13_422_082, 13_637_284, 13_780_228, 14_643_774, 15_308_335, 16_026_353,
    16_725_201, 17_745_708, 18_030_791, 18_612_477, 19_155_252, 19_868_035, 20_412_421, 22_509_573,
    24_606_725, 26_703_877, 28_801_029, 30_484_102, 30_698_344, 31_285_802, 32_195_925, 32_791_755,
    33_554_432,
];
const EXPECTED_SMALL: (usize, &str) =
    (2520, "1f6f599054a790d0684739ea11aea2e55445e90b379cfe5b92579fa51675700d");
