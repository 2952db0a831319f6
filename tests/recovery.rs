//! `coldkeep recovery` through the real binary: files and downloads recovered, listed with
//! filters, and a recovery whose process is killed is reported `Failed`, never left running.

mod common;

use std::time::Duration;

use common::{assert_ok, coldkeep, json, killed_after};

#[test]
fn recoveries_run_from_the_command_line_and_a_killed_one_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (repo, src) = (dir.path().join("repo"), dir.path().join("src"));
    std::fs::create_dir_all(src.join("sub")).expect("mkdir");
    std::fs::write(src.join("a.txt"), b"a\n").expect("write");
    std::fs::write(src.join("sub/b.txt"), b"b\n").expect("write");
    let big = coldkeep_testing::Rng::new(1).bytes(200 << 20, false);
    std::fs::write(src.join("big.bin"), big).expect("write");
    assert_ok(&coldkeep(&repo, &["init"]), "init");
    let snap = json(&repo, &["backup", src.to_str().expect("utf-8")])["id"].to_string();

    let target = dir.path().join("target");
    let t = target.to_str().expect("utf-8");
    let done = json(&repo, &["recovery", "files", &snap, "sub", "a.txt", "-t", t]);
    assert_eq!(done["recovery"]["status"], "Succeeded", "{done}");
    assert_eq!(std::fs::read(target.join("sub/b.txt")).expect("read"), b"b\n");
    let again = json(&repo, &["recovery", "files", &snap, "a.txt", "-t", t]);
    assert_eq!(again["recovery"]["stats"]["skipped"], 1, "it exists now");

    let tar = dir.path().join("sub.tar");
    let done =
        json(&repo, &["recovery", "download", &snap, "sub", "-o", tar.to_str().expect("utf-8")]);
    assert_eq!(done["recovery"]["status"], "Succeeded", "{done}");
    assert!(tar.metadata().expect("tar").len() > 1024);
    let listed = json(&repo, &["recovery", "list", "--status", "succeeded"]);
    assert_eq!(listed.as_array().map(Vec::len), Some(3));

    // Killed while it restores 200 MB (under 0.1 s here, so a few delays are tried): on the
    // next open the recovery is Failed, with the reason; none is ever left unfinished.
    let mut interrupted = false;
    for (i, delay) in [40, 25, 60, 15, 80, 10, 50, 30, 120, 200, 300, 500].into_iter().enumerate() {
        let slow = dir.path().join(format!("slow-{i}"));
        let args = ["recovery", "files", &snap, "big.bin", "-t", slow.to_str().expect("utf-8")];
        killed_after(&repo, &args, Duration::from_millis(delay));
        let all = json(&repo, &["recovery", "list"]);
        let all = all.as_array().expect("list");
        assert!(all
            .iter()
            .all(|r| !["Accepted", "Running", "Canceling"]
                .contains(&r["status"].as_str().unwrap_or(""))));
        let last = all.last().expect("recoveries");
        if last["status"] == "Failed" {
            assert!(last["message"].as_str().expect("message").contains("interrupted"), "{last}");
            interrupted = true;
            break;
        }
    }
    assert!(interrupted, "no kill landed while a recovery ran");
}
