//! The `coldkeep` binary: commands, `--json`, `COLDKEEP_REPO`, messages and exit codes.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use coldkeep_testing::{compare_trees, Compare, Dataset};

fn coldkeep(repo: &Path, args: &[&str]) -> Output {
    common::binary().env("COLDKEEP_REPO", repo).args(args).output().expect("run coldkeep")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).expect("valid JSON")
}

#[test]
fn backup_list_cat_restore_check_stats() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 1);
    data.mixed(40, 20_000);
    data.file("docs/readme.txt", b"hello from coldkeep\n");
    let repo = tmp.path().join("repo");
    let src_arg = src.to_str().expect("utf-8 path");

    ok(&coldkeep(&repo, &["init"]));
    let snap = json(&coldkeep(&repo, &["--json", "backup", src_arg, "--tag", "first"]));
    assert_eq!(snap["id"], 1);
    assert_eq!(snap["tags"][0], "first");
    assert!(snap["stats"]["files"].as_u64().expect("files") > 40);
    let again = json(&coldkeep(&repo, &["--json", "backup", src_arg]));
    assert_eq!(again["parent"], 1);
    assert_eq!(again["stats"]["new_bytes"], 0);

    let list = json(&coldkeep(&repo, &["--json", "snapshots"]));
    assert_eq!(list.as_array().expect("array").len(), 2);
    assert!(ok(&coldkeep(&repo, &["snapshots"])).contains(src_arg));

    let entries = json(&coldkeep(&repo, &["--json", "ls", "latest", "docs"]));
    assert_eq!(entries[1]["path"], "docs/readme.txt");
    assert_eq!(entries[1]["size"], 20);
    assert_eq!(ok(&coldkeep(&repo, &["cat", "1", "docs/readme.txt"])), "hello from coldkeep\n");

    let target = tmp.path().join("restored");
    let restored = json(&coldkeep(
        &repo,
        &["--json", "restore", "latest", "--target", target.to_str().expect("utf-8")],
    ));
    assert!(restored["files"].as_u64().expect("files") > 40);
    assert_eq!(compare_trees(&src, &target, Compare::default()), Vec::<String>::new());

    let check = json(&coldkeep(&repo, &["--json", "check", "--read-data"]));
    assert_eq!(check["problems"].as_array().expect("problems").len(), 0);
    assert!(check["blobs_verified"].as_u64().expect("verified") > 0);
    let stats = json(&coldkeep(&repo, &["--json", "stats"]));
    assert_eq!(stats["snapshots"], 2);
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let repo = tmp.path().join("nothing-here");
    let out = coldkeep(&repo, &["snapshots"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a coldkeep repository"));

    let out = coldkeep(&repo, &["--json", "snapshots"]);
    assert_eq!(out.status.code(), Some(1));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    assert!(err["error"].as_str().expect("message").contains("not a coldkeep repository"));

    ok(&coldkeep(&repo, &["init"]));
    let out = coldkeep(&repo, &["init"]);
    assert_eq!(out.status.code(), Some(1), "a second init must refuse");
    let out = coldkeep(&repo, &["cat", "7", "x"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("snapshot 7 does not exist"));
    let out = coldkeep(&repo, &["restore", "latest", "--target", "/tmp"]);
    assert_eq!(out.status.code(), Some(1));
    let out = coldkeep(&repo, &["backup"]);
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");

    // Another process holds the repository and answers no commands: the message starts with
    // what is wrong, then says what to do.
    // The shell takes the lock on a descriptor and becomes `sleep`, so killing it frees it.
    let mut holder = Command::new("sh")
        .args(["-c", "exec 9>\"$0\"; flock -x 9; exec sleep 30"])
        .arg(repo.join("lock"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("flock");
    let mut busy = None;
    for _ in 0..200 {
        let out = coldkeep(&repo, &["--lock-wait-secs", "0", "gc"]);
        if out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).contains("in use") {
            busy = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20)); // flock has not started yet
    }
    holder.kill().expect("kill flock");
    holder.wait().expect("reap flock");
    let busy = busy.expect("the busy repository was refused");
    let expected =
        format!("error: repository {} is in use by another process, which", repo.display());
    assert!(busy.starts_with(&expected), "{busy}");
    assert!(busy.contains("coldkeep serve"), "{busy}");
}

#[test]
fn check_exits_3_on_damage() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 2).file("f", &vec![b'x'; 100_000]);
    let repo = tmp.path().join("repo");
    ok(&coldkeep(&repo, &["init"]));
    ok(&coldkeep(&repo, &["backup", src.to_str().expect("utf-8")]));
    let pack = walk_files(&repo.join("packs"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .expect("a pack");
    let mut bytes = std::fs::read(&pack).expect("read pack");
    bytes[20] ^= 0xff;
    std::fs::write(&pack, bytes).expect("damage pack");
    let out = coldkeep(&repo, &["check", "--read-data"]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("PROBLEM") && text.contains("damages snapshots [1]"), "{text}");
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A backup that could not read an entry commits its snapshot, says so on stderr and exits 3
/// (issue 13, item 8); one whose only gaps are special files exits 0.
#[test]
fn an_incomplete_backup_exits_3() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let src = tmp.path().join("src");
    Dataset::new(&src, 4).mixed(5, 1_000);
    let fifo = src.join("fifo");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    let repo = tmp.path().join("repo");
    // Root reads everything: the commands run as nobody, who owns the source.
    let root = rustix::process::geteuid().is_root();
    let run = |args: &[&str]| {
        let mut cmd = if root {
            let mut c = Command::new("setpriv");
            c.envs(common::TEST_ENV);
            c.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]);
            c.arg(env!("CARGO_BIN_EXE_coldkeep-under-test"));
            c
        } else {
            common::binary()
        };
        cmd.env("COLDKEEP_REPO", &repo).args(args).output().expect("run coldkeep")
    };
    if root {
        let nobody = rustix::process::Uid::from_raw(65534);
        let mut dirs = vec![src.clone()];
        while let Some(d) = dirs.pop() {
            rustix::fs::chown(&d, Some(nobody), None).expect("chown");
            for e in std::fs::read_dir(&d).expect("read dir").flatten() {
                let p = e.path();
                if std::fs::symlink_metadata(&p).expect("stat").is_dir() {
                    dirs.push(p);
                } else {
                    std::os::unix::fs::lchown(&p, Some(65534), None).expect("chown");
                }
            }
        }
    }
    ok(&run(&["init"]));
    let src_arg = src.to_str().expect("utf-8");
    let clean = run(&["backup", src_arg]);
    assert_eq!(clean.status.code(), Some(0), "a skipped fifo is no loss: {clean:?}");

    let secret = src.join("secret");
    std::fs::write(&secret, b"unreadable").expect("write");
    if root {
        rustix::fs::chown(&secret, Some(rustix::process::Uid::from_raw(65534)), None)
            .expect("chown");
    }
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o000)).expect("chmod");
    let partial = run(&["backup", src_arg]);
    assert_eq!(partial.status.code(), Some(3), "{partial:?}");
    let stderr = String::from_utf8_lossy(&partial.stderr);
    assert!(stderr.contains("backup incomplete: snapshot 2 lacks 1 entries"), "{stderr}");
    let listed = run(&["--json", "snapshots"]);
    let snaps: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("json");
    assert_eq!(snaps.as_array().map(Vec::len), Some(2), "the snapshot is committed");
}

fn coldkeep_os(repo: &Path, args: &[&std::ffi::OsStr]) -> Output {
    common::binary().env("COLDKEEP_REPO", repo).args(args).output().expect("run coldkeep")
}

/// Names that are not UTF-8 are addressed and shown losslessly, names cannot forge lines, times
/// are RFC 3339, `cat --json` is JSON, a bad snapshot id is a usage error, a closed pipe ends
/// the output quietly, the first snapshot is a full one (issue 13, items 7 and the paper cuts).
#[test]
fn names_times_and_output_are_exact() {
    use base64::Engine as _;
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    let mut data = Dataset::new(&src, 3);
    data.mixed(1_500, 10);
    let latin1 = b"caf\xe9.txt";
    std::fs::write(src.join(OsStr::from_bytes(latin1)), b"not utf-8\n").expect("write");
    std::fs::write(src.join("evil\nd--------- 0:0 forged"), b"x").expect("write");
    let repo = tmp.path().join("repo");
    ok(&coldkeep(&repo, &["init"]));
    let snap = json(&coldkeep(&repo, &["--json", "backup", src.to_str().expect("utf-8")]));
    assert_eq!(snap["kind"], "Full", "a backup with no parent reads everything");

    // ls: one line per entry, whatever the names hold.
    let listing = ok(&coldkeep(&repo, &["ls", "latest"]));
    assert!(listing.contains("evil\\nd--------- 0:0 forged"), "{listing}");
    assert!(listing.contains("caf\\xe9.txt"));
    assert!(!listing.lines().any(|l| l.starts_with("d--------- 0:0")), "a name forged a line");
    let entries = json(&coldkeep(&repo, &["--json", "ls", "latest"]));
    let entries = entries.as_array().expect("array");
    let encoded = entries
        .iter()
        .find_map(|e| e["path"]["base64"].as_str())
        .expect("the non-UTF-8 name as base64");
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
    assert_eq!(decoded, latin1);
    let mtime = entries[0]["mtime"].as_str().expect("mtime");
    assert_eq!(mtime.len(), "2026-11-23T09:00:00.123456789Z".len(), "{mtime}");
    assert!(mtime.ends_with('Z') && mtime.as_bytes()[19] == b'.', "RFC 3339: {mtime}");

    // cat and restore take the name as bytes.
    let name = OsStr::from_bytes(latin1);
    let cat = coldkeep_os(&repo, &[OsStr::new("cat"), OsStr::new("1"), name]);
    assert_eq!(ok(&cat), "not utf-8\n");
    let target = tmp.path().join("one");
    let args = [OsStr::new("restore"), OsStr::new("1"), OsStr::new("--path"), name];
    let restore =
        coldkeep_os(&repo, &[&args[..], &[OsStr::new("-t"), target.as_os_str()]].concat());
    ok(&restore);
    assert_eq!(std::fs::read(target.join(name)).expect("restored"), b"not utf-8\n");
    let cat = json(&coldkeep_os(
        &repo,
        &[OsStr::new("--json"), OsStr::new("cat"), OsStr::new("1"), name],
    ));
    assert_eq!(cat["data_base64"], "bm90IHV0Zi04Cg==");
    assert_eq!((cat["file_size"].as_u64(), cat["length"].as_u64()), (Some(10), Some(10)));

    // A recovery's paths are names in JSON, not arrays of numbers.
    let into = tmp.path().join("recovered");
    std::fs::create_dir(&into).expect("mkdir");
    let args = [OsStr::new("--json"), OsStr::new("recovery"), OsStr::new("files"), OsStr::new("1")];
    let rec = json(&coldkeep_os(
        &repo,
        &[&args[..], &[name, OsStr::new("-t"), into.as_os_str()]].concat(),
    ));
    let params = &rec["recovery"]["params"]["RecoverFiles"];
    assert_eq!(params["paths"][0]["base64"], "Y2Fm6S50eHQ=", "{rec}");
    assert_eq!(params["target"], into.to_str().expect("utf-8"));

    // Usage errors exit 2, before the repository is opened.
    let bad = coldkeep(&repo, &["restore", "abc", "-t", "/nonexistent"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");

    // A reader that goes away ends the output quietly.
    let mut child = common::binary()
        .env("COLDKEEP_REPO", &repo)
        .args(["ls", "latest"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn keys_unlock_what_they_should_and_the_last_one_stays() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let src = tmp.path().join("src");
    Dataset::new(&src, 31).mixed(10, 10_000);
    let repo = tmp.path().join("repo");
    ok(&coldkeep(&repo, &["init"]));
    ok(&coldkeep(&repo, &["backup", src.to_str().expect("utf-8")]));
    let keys = json(&coldkeep(&repo, &["--json", "key", "list"]));
    let keys = keys.as_array().expect("a list");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kind"], "passphrase");
    let passphrase_id = keys[0]["id"].as_str().expect("id").to_owned();

    let wrong = common::binary()
        .env("COLDKEEP_REPO", &repo)
        .env("COLDKEEP_PASSWORD", "not the passphrase")
        .arg("snapshots")
        .output()
        .expect("run");
    assert!(!wrong.status.success());
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(stderr.contains("wrong passphrase or key file"), "{stderr}");

    let key_file = tmp.path().join("key");
    std::fs::write(&key_file, Dataset::new(&tmp.path().join("k"), 32).rng().bytes(64, false))
        .expect("key file");
    let key_arg = key_file.to_str().expect("utf-8");
    ok(&coldkeep(&repo, &["key", "add", "--new-key-file", key_arg, "--label", "offsite"]));
    let with_file = |args: &[&str]| {
        common::binary()
            .env("COLDKEEP_REPO", &repo)
            .env_remove("COLDKEEP_PASSWORD")
            .args(["--key-file", key_arg])
            .args(args)
            .output()
            .expect("run")
    };
    let listed = json(&with_file(&["--json", "key", "list"]));
    assert_eq!(listed.as_array().expect("list").len(), 2);
    ok(&with_file(&["key", "remove", &passphrase_id]));
    let refused = coldkeep(&repo, &["snapshots"]);
    assert!(!refused.status.success(), "the removed passphrase no longer opens it");
    let listed = json(&with_file(&["--json", "key", "list"]));
    let last = listed[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(listed[0]["label"], "offsite");
    let out = with_file(&["key", "remove", &last]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is the last one"));
    let snaps = json(&with_file(&["--json", "snapshots"]));
    assert_eq!(snaps.as_array().expect("snapshots").len(), 1);

    // Without encryption there is nothing to unlock, and no key.
    let plain = tmp.path().join("plain");
    ok(&common::binary()
        .env_remove("COLDKEEP_PASSWORD")
        .env("COLDKEEP_REPO", &plain)
        .args(["init", "--no-encryption"])
        .output()
        .expect("run"));
    let out = common::binary()
        .env_remove("COLDKEEP_PASSWORD")
        .env("COLDKEEP_REPO", &plain)
        .args(["key", "list"])
        .output()
        .expect("run");
    assert!(ok(&out).contains("not encrypted"));
}
