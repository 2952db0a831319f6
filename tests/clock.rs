//! One command with the clock set years ahead (`faketime`) ends no Compliance lock and expires
//! no run, then or later (issue 13, item 2): retention time only advances with the real time
//! the kernel measures (`/proc/uptime`, which `faketime` does not fake).

mod common;

use std::process::Command;

use coldkeep_testing::Dataset;
use common::{assert_ok, coldkeep, json};

fn faked(repo: &std::path::Path, offset: &str, args: &[&str]) -> std::process::Output {
    Command::new("faketime")
        .envs(common::TEST_ENV)
        .args(["-f", offset, env!("CARGO_BIN_EXE_coldkeep-under-test"), "--repo"])
        .arg(repo)
        .args(args)
        .output()
        .expect("run faketime")
}

#[test]
fn a_clock_set_five_years_ahead_unlocks_nothing() {
    if Command::new("faketime").arg("--version").output().is_err() {
        coldkeep_testing::skip("faketime is not installed (scripts/install-deps.sh installs it)");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 2).mixed(10, 5_000);
    let repo = tmp.path().join("repo");
    assert_ok(&coldkeep(&repo, &["init"]), "init");
    let policy = ["policy", "create", "locked", "--incremental", "1d", "--retain", "7d"];
    assert_ok(&coldkeep(&repo, &[&policy[..], &["--lock", "compliance:7d"]].concat()), "policy");
    let src_arg = src.to_str().expect("utf-8");
    assert_ok(
        &coldkeep(&repo, &["group", "create", "g", "--policy", "1", "--dir", src_arg]),
        "group",
    );
    let run = json(&repo, &["run", "start", "1", "--wait"]);
    let run_id = run["run"]["id"].as_u64().expect("run id").to_string();

    // The clock five years ahead: the lock holds, gc expires nothing.
    let ahead = "+1826d";
    let refused =
        faked(&repo, ahead, &["--admin", "run", "update", "1", &run_id, "--delete-snapshots"]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Compliance"), "{refused:?}");
    let gc = faked(&repo, ahead, &["--json", "gc", "--grace-secs", "0"]);
    assert_ok(&gc, "gc with the clock ahead");
    let report: serde_json::Value = serde_json::from_slice(&gc.stdout).expect("json");
    assert_eq!(report["runs_expired"], 0, "{report}");

    // Back on the right clock, the future time seen before unlocks nothing either.
    let report = json(&repo, &["gc", "--grace-secs", "0"]);
    assert_eq!(report["runs_expired"], 0, "{report}");
    assert_eq!(json(&repo, &["snapshots"]).as_array().map(Vec::len), Some(1));
    let audit = json(&repo, &["audit"]);
    let steps =
        audit.as_array().expect("array").iter().filter(|e| e["action"] == "clock_step").count();
    assert!(steps >= 1, "the step is audited: {audit}");
}
