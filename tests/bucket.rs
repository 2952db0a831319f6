//! The CLI with `--repo s3://bucket/prefix` on the real S3 server that `scripts/test.sh` starts
//! (`scripts/s3-server.sh`): a repository in a bucket backs up, lists, restores and checks like
//! one in a directory; with this machine's catalog cache deleted, a fresh cache is filled from
//! the bucket alone and the restore is byte-exact. Skips loudly without a server, and fails in
//! CI.

mod common;

use std::path::Path;
use std::process::Output;

use coldkeep_testing::{compare_trees, Compare, Dataset};

fn run(url: &str, cache: &Path, args: &[&str]) -> Output {
    common::binary()
        .arg("--repo")
        .arg(url)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("run coldkeep")
}

fn json(out: &Output) -> serde_json::Value {
    common::assert_ok(out, "coldkeep");
    serde_json::from_slice(&out.stdout).expect("json output")
}

#[test]
fn a_repository_in_a_bucket_restores_byte_exact_from_a_fresh_cache() {
    let Ok(bucket) = std::env::var("COLDKEEP_TEST_S3") else {
        coldkeep_testing::skip(
            "no S3 server: COLDKEEP_TEST_S3 is not set (scripts/test.sh starts one)",
        );
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let url = format!("{}/cli-{}", bucket.trim_end_matches('/'), coldkeep::PackId::random());
    let cache = tmp.path().join("cache");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 21);
    data.mixed(40, 100_000);
    let src_arg = src.to_str().expect("utf-8 path");

    common::assert_ok(&run(&url, &cache, &["init"]), "init");
    let first = json(&run(&url, &cache, &["--json", "backup", src_arg]));
    assert_eq!(first["id"], 1);
    let again = json(&run(&url, &cache, &["--json", "backup", src_arg]));
    assert_eq!(again["stats"]["new_bytes"], 0, "unchanged: nothing new in the bucket");
    assert_eq!(
        json(&run(&url, &cache, &["--json", "snapshots"])).as_array().map(Vec::len),
        Some(2)
    );

    // This machine's cache gone: the bucket and the passphrase are enough.
    std::fs::remove_dir_all(&cache).expect("delete the cache");
    let target = tmp.path().join("restored");
    let restore = ["--json", "restore", "latest", "--target", target.to_str().expect("utf-8")];
    json(&run(&url, &cache, &restore));
    assert_eq!(compare_trees(&src, &target, Compare::default()), Vec::<String>::new());
    let check = json(&run(&url, &cache, &["--json", "check", "--read-data"]));
    assert_eq!(check["problems"].as_array().map(Vec::len), Some(0), "{check}");
    let rebuilt = json(&run(&url, &cache, &["--json", "rebuild-catalog"]));
    assert_eq!(rebuilt["snapshots"], 2, "{rebuilt}");

    // A wrong passphrase opens nothing.
    let wrong = run(&url, &cache, &["snapshots"]);
    let mut cmd = common::binary();
    cmd.env("COLDKEEP_PASSWORD", "not the passphrase");
    let refused = cmd.arg("--repo").arg(&url).arg("--cache-dir").arg(&cache).arg("snapshots");
    let refused = refused.output().expect("run coldkeep");
    assert!(wrong.status.success() && !refused.status.success());
}
