//! The data-protection commands (`policy`, `group`, `run`, `audit`, `serve`) driven through the
//! real binary: the seed's rules hold on the command line, refusals exit 1 with the engine's
//! reason and change nothing, and a run started in one process is controlled from another.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{assert_ok, coldkeep, json, refused, spawn};
use serde_json::Value;

struct Fixture {
    _dir: tempfile::TempDir,
    repo: PathBuf,
    source: PathBuf,
}

/// A repository and a small source tree with one binary file of a few frames.
fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = dir.path().join("repo");
    let source = dir.path().join("src");
    std::fs::create_dir_all(source.join("sub")).expect("mkdir");
    std::fs::write(source.join("hello.txt"), b"hello\n").expect("write");
    let blob = coldkeep_testing::Rng::new(7).bytes(300_000, false);
    std::fs::write(source.join("sub/blob.bin"), blob).expect("write");
    assert_ok(&coldkeep(&repo, &["init"]), "init");
    Fixture { _dir: dir, repo, source }
}

fn id(v: &Value) -> String {
    v["id"].as_u64().expect("id").to_string()
}

/// A policy and a group protecting the fixture's tree; returns the group id.
fn group(f: &Fixture, policy_flags: &[&str]) -> String {
    let mut args = vec!["policy", "create", "nightly", "--incremental", "1d"];
    args.extend_from_slice(policy_flags);
    let policy = id(&json(&f.repo, &args));
    let src = f.source.to_str().expect("utf-8");
    let group = json(&f.repo, &["group", "create", "g", "--policy", &policy, "--dir", src]);
    assert_eq!(group["objects"][0]["spec"]["path"], src, "paths are strings in JSON");
    id(&group)
}

/// Waits until a process answers on the repository's control socket (polling with commands
/// before then would open the repository, and could keep the starting process from it).
fn wait_for_socket(repo: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !repo.join("control.sock").exists() {
        assert!(Instant::now() < deadline, "nobody listened");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `run show` until `done` holds for the run's record (through whichever process has the
/// repository open).
fn wait_for(repo: &Path, group: &str, run: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_mins(1);
    loop {
        let out = coldkeep(repo, &["--json", "run", "show", group, run]);
        if out.status.success() {
            let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            if done(&v["run"]) {
                return v["run"].clone();
            }
        }
        assert!(Instant::now() < deadline, "run {run} never reached the awaited state");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn policies_groups_and_runs_follow_the_seed_rules() {
    let f = fixture();
    let g =
        group(&f, &["--retain", "30d", "--lock", "compliance:7d", "--blackout", "sun 01:00-02:00"]);
    let policy = json(&f.repo, &["policy", "list", "--name", "nightly"]);
    assert_eq!(policy.as_array().expect("list").len(), 1);
    let policy_id = id(&policy[0]);
    assert_eq!(policy[0]["spec"]["blackout_windows"][0]["day"], "Sunday");

    // A run executes to the end; its snapshot is tagged with group, run and object.
    let run = json(&f.repo, &["run", "start", &g, "--wait"])["run"].clone();
    assert_eq!(run["status"], "Succeeded");
    assert_eq!(run["run_type"], "kRegular");
    let run_id = id(&run);
    let lock_until = run["retention"]["data_lock"]["until"].as_i64().expect("locked");
    assert_eq!(run["retention"]["data_lock"]["mode"], "Compliance");
    let snaps = json(&f.repo, &["snapshots"]);
    assert!(snaps[0]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .any(|t| *t == format!("run={run_id}")));

    let objects = json(&f.repo, &["object", "search", "src"]);
    assert_eq!(
        objects[0]["latest_snapshot"]["run"].as_u64().map(|r| r.to_string()),
        Some(run_id.clone())
    );

    // A source registered over the protected tree lists it, and stays while it is protected.
    let parent = f.source.parent().expect("parent").to_str().expect("utf-8").to_owned();
    let source = json(&f.repo, &["source", "register", "host", &parent]);
    let found: Vec<_> =
        source["objects"].as_array().expect("objects").iter().map(|o| o["name"].clone()).collect();
    assert!(found.contains(&"src".into()), "{found:?}");
    let why = refused(&f.repo, &["source", "delete", &id(&source)]);
    assert!(why.contains("protected by protection groups"), "{why}");

    // The run indexed its snapshot: its files are found by name.
    let found = json(&f.repo, &["search", "HELLO"]);
    assert_eq!(found["count"], 1);
    assert_eq!(found["files"][0]["path"], "hello.txt");
    assert_eq!(json(&f.repo, &["search", "*.bin"])["files"][0]["path"], "sub/blob.bin");
    assert_eq!(json(&f.repo, &["index", "latest"])["entries_indexed"], 0, "indexed once");

    // Filters.
    let of_object = json(&f.repo, &["object", "snapshots", "1", "--type", "regular"]);
    assert_eq!(of_object[0]["run"].as_u64().map(|r| r.to_string()), Some(run_id.clone()));
    assert_eq!(
        json(&f.repo, &["object", "snapshots", "1", "--type", "full"]).as_array().map(Vec::len),
        Some(0)
    );
    let span = ["--from", "2000-01-01", "--to", "2100-01-01"];
    let points = json(&f.repo, &[&["object", "restore-points", "1"][..], &span].concat());
    let base = points["full_snapshots"][0]["run"].as_u64().map(|r| r.to_string());
    assert_eq!(base, Some(run_id.clone()));
    assert_eq!(points["log_ranges"].as_array().map(Vec::len), Some(0));
    let (t, l) = (f.repo.with_extension("pitr"), f.repo.with_extension("logs"));
    let (t, l) = (t.to_str().expect("utf-8"), l.to_str().expect("utf-8"));
    let why = refused(
        &f.repo,
        &["restore", "--at", "2100-01-01", "--object", "1", "-t", t, "--logs-target", l],
    );
    assert!(why.contains("no log snapshot reaches"), "{why}");
    assert_eq!(
        json(&f.repo, &["run", "list", &g, "--type", "full"]).as_array().map(Vec::len),
        Some(0)
    );
    let ok = json(&f.repo, &["run", "list", &g, "--status", "succeeded", "--objects"]);
    assert_eq!(ok[0]["objects"][0]["stats"]["files"], 2);

    // Refusals: exit 1, the engine's reason, nothing changed.
    let why = refused(&f.repo, &["policy", "delete", &policy_id]);
    assert!(why.contains("used by protection groups"), "{why}");
    assert_eq!(json(&f.repo, &["policy", "list"]).as_array().map(Vec::len), Some(1));

    let why = refused(&f.repo, &["run", "update", &g, &run_id, "--reduce-days", "30", "--admin"]);
    assert!(why.contains("Compliance"), "{why}");
    let why = refused(&f.repo, &["run", "update", &g, &run_id, "--delete-snapshots", "--admin"]);
    assert!(why.contains("Compliance"), "{why}");
    let why = refused(&f.repo, &["run", "update", &g, &run_id, "--legal-hold", "on"]);
    assert!(why.contains("legal hold"), "{why}");
    let after = json(&f.repo, &["run", "show", &g, &run_id])["run"].clone();
    assert_eq!(after["retention"], run["retention"], "a refused update changes nothing");
    assert_eq!(json(&f.repo, &["audit"]).as_array().map(Vec::len), Some(0));
    let cat = coldkeep(&f.repo, &["cat", "latest", "hello.txt"]);
    assert_eq!(cat.stdout, b"hello\n", "the locked snapshot is intact");

    // An allowed change is applied and audited with the principal.
    let extended = json(&f.repo, &["run", "update", &g, &run_id, "--extend-days", "5"]);
    let day = 86_400_000_000_i64;
    let before = run["retention"]["expiry"].as_i64().expect("expiry");
    assert_eq!(extended[0]["retention"]["expiry"].as_i64(), Some(before + 5 * day));
    assert_eq!(extended[0]["retention"]["data_lock"]["until"].as_i64(), Some(lock_until));
    let audit = json(&f.repo, &["audit"]);
    assert_eq!(audit.as_array().map(Vec::len), Some(1));
    assert_eq!(audit[0]["action"], "update_run");

    // Stale updates are refused; fresh ones change only what they name.
    let stale = refused(
        &f.repo,
        &["policy", "update", &policy_id, "--retain", "60d", "--if-modified-at", "1"],
    );
    assert!(stale.contains("last modified"), "{stale}");
    let updated = json(&f.repo, &["policy", "update", &policy_id, "--retain", "60d"]);
    let retention = &updated["spec"]["backup"]["regular"]["retention"];
    assert_eq!(retention["duration"], 60);
    assert_eq!(retention["data_lock"]["mode"], "Compliance", "the lock stays");
    let paused = json(&f.repo, &["group", "update", &g, "--paused"]);
    assert_eq!(paused["is_paused"], true);
    assert_eq!(paused["objects"][0]["id"], 1, "objects keep their ids");
    let listed = json(&f.repo, &["group", "list", "--paused", "true", "--last-run"]);
    assert_eq!(listed[0]["last_run"]["id"].as_u64().map(|r| r.to_string()), Some(run_id.clone()));

    // A group whose snapshots are locked cannot be deleted with them.
    let why = refused(&f.repo, &["group", "delete", &g, "--delete-snapshots"]);
    assert!(why.contains("Compliance"), "{why}");
    assert_eq!(json(&f.repo, &["group", "show", &g])["is_deleted"], false);
}

#[test]
fn a_run_is_paused_resumed_and_canceled_from_another_process() {
    let f = fixture();
    let g = group(&f, &["--retain", "7d"]);

    // Started suspended: the starting process executes the run and answers on its socket.
    let child = spawn(&f.repo, &["--json", "run", "start", &g, "--suspended"]);
    wait_for_socket(&f.repo);
    let paused = wait_for(&f.repo, &g, "1", |r| r["status"] == "Paused");
    assert!(f.repo.join("control.sock").exists());
    assert_eq!(paused["objects"][0]["snapshot"], Value::Null);
    let resumed = json(&f.repo, &["run", "resume", &g, "1"]);
    assert_ne!(resumed["run"]["status"], "Paused");
    let out = child.wait_with_output().expect("wait");
    assert_ok(&out, "run start --suspended");
    let done: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(done["run"]["status"], "Succeeded");
    assert!(!f.repo.join("control.sock").exists(), "the socket goes with its process");

    // Canceled while paused: nothing committed, the waiting process exits 4.
    let child = spawn(&f.repo, &["--json", "run", "start", &g, "--suspended", "--type", "full"]);
    wait_for_socket(&f.repo);
    wait_for(&f.repo, &g, "2", |r| r["status"] == "Paused");
    json(&f.repo, &["run", "cancel", &g, "2"]);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
    let canceled: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(canceled["run"]["status"], "Canceled");
    assert_eq!(json(&f.repo, &["snapshots"]).as_array().map(Vec::len), Some(1));
    let why = refused(&f.repo, &["run", "pause", &g, "2"]);
    assert!(why.contains("it is Canceled"), "{why}");
}

#[test]
fn serve_answers_every_command_and_runs_in_the_background() {
    let f = fixture();
    let g = group(&f, &["--retain", "7d"]);
    let mut server = spawn(&f.repo, &["serve", "--tick-secs", "0"]);
    wait_for_socket(&f.repo);

    // `run start` returns at once; the server executes the run.
    let started = json(&f.repo, &["run", "start", &g]);
    assert!(["Accepted", "Running", "Succeeded"]
        .contains(&started["run"]["status"].as_str().expect("status")));
    wait_for(&f.repo, &g, "1", |r| r["status"] == "Succeeded");

    // A relative path is the client's, not the server's; `cat` streams binary output.
    let out = common::binary()
        .current_dir(f.source.parent().expect("parent"))
        .args(["--repo", f.repo.to_str().expect("utf-8"), "--json", "backup", "src"])
        .output()
        .expect("backup");
    assert_ok(&out, "backup through the server");
    let snap: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(snap["source"], f.source.to_str().expect("utf-8"));
    let cat = coldkeep(&f.repo, &["cat", "latest", "sub/blob.bin"]);
    assert_ok(&cat, "cat through the server");
    let blob = std::fs::read(f.source.join("sub/blob.bin")).expect("read");
    assert_eq!(cat.stdout, blob);
    let range = coldkeep(
        &f.repo,
        &["cat", "latest", "sub/blob.bin", "--offset", "1000", "--length", "5000"],
    );
    assert_ok(&range, "cat a range");
    assert_eq!(range.stdout, &blob[1000..6000]);
    let why = refused(&f.repo, &["cat", "latest", "sub/blob.bin", "--length", "8388609"]);
    assert!(why.contains("at most 8388608"), "{why}");
    let check = coldkeep(&f.repo, &["check", "--read-data"]);
    assert_ok(&check, "check through the server");

    // Errors come back typed; a killed server leaves a socket nobody answers, and commands then
    // open the repository themselves.
    let why = refused(&f.repo, &["run", "show", &g, "99"]);
    assert!(why.contains("99"), "{why}");
    server.kill().expect("SIGKILL");
    server.wait().expect("reap");
    assert!(f.repo.join("control.sock").exists());
    assert_eq!(json(&f.repo, &["snapshots"]).as_array().map(Vec::len), Some(2));
}
