//! docs/FORMAT.md states the format's constants; this test holds them against the code, so the
//! spec cannot silently go stale.

use coldkeep_store::{PACK_MAGIC, PACK_TRAILER_MAGIC, PACK_VERSION};

fn spec() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/FORMAT.md"))
        .expect("docs/FORMAT.md")
}

#[test]
fn docs_match_the_code() {
    let spec = spec();
    let magic = |m: &[u8; 8]| format!("`{}`", std::str::from_utf8(m).expect("ascii magic"));
    let key_magic =
        format!("`{}\\0`", std::str::from_utf8(&coldkeep::KEY_MAGIC[..7]).expect("ascii"));
    for m in
        [magic(&PACK_MAGIC), magic(&PACK_TRAILER_MAGIC), magic(&coldkeep::CONFIG_MAGIC), key_magic]
    {
        assert!(spec.contains(&m), "FORMAT.md does not mention magic {m}");
    }
    assert!(spec.contains(&format!("pack format version, u32 = `{PACK_VERSION}`")));
    assert!(
        spec.contains(&format!("repository format version, u32 = `{}`", coldkeep::REPO_VERSION))
    );
    assert!(spec.contains(&format!("Format version {} (", coldkeep::REPO_VERSION)));
    assert!(spec.contains("| 60 | 4 | blob length, u32 |"), "entry layout changed?");
    assert!(spec.contains(&format!(
        "A data blob shorter than {} KiB waits in the writer's group; the group becomes one frame \
         once its\nplaintext reaches {} KiB",
        coldkeep_store::GROUP_BLOB_MAX >> 10,
        coldkeep_store::GROUP_TARGET >> 10
    )));
    assert!(spec.contains(&format!(
        "frame plaintext length ≤ {} MiB",
        coldkeep_store::MAX_FRAME_LEN >> 20
    )));
}
