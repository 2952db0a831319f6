//! Helpers shared by the tests that drive the real `coldkeep` binary.

// Each test binary includes this module and uses only some of it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// What every test's `coldkeep` runs with: a passphrase (repositories are encrypted by default)
/// and Argon2id at its cheapest, so that each `init` costs no 64 MiB pass.
pub const TEST_ENV: [(&str, &str); 4] = [
    ("COLDKEEP_PASSWORD", "cli tests passphrase"),
    ("COLDKEEP_KDF_MEMORY_KIB", "8"),
    ("COLDKEEP_KDF_ITERATIONS", "1"),
    ("COLDKEEP_KDF_LANES", "1"),
];

/// The `coldkeep` binary, with [`TEST_ENV`].
pub fn binary() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coldkeep-under-test"));
    cmd.envs(TEST_ENV);
    cmd
}

/// Runs `coldkeep --repo <repo> <args>` to completion.
pub fn coldkeep(repo: &Path, args: &[&str]) -> Output {
    binary().arg("--repo").arg(repo).args(args).output().expect("run coldkeep")
}

/// Fails the test with the command's output unless it succeeded.
pub fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed ({:?}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts `coldkeep --repo <repo> <args>`, its output piped.
pub fn spawn(repo: &Path, args: &[&str]) -> Child {
    binary()
        .arg("--repo")
        .arg(repo)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn coldkeep")
}

/// Starts `coldkeep --repo <repo> <args>` and SIGKILLs it after `delay`; true if it was still
/// running then.
pub fn killed_after(repo: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child = spawn(repo, args);
    std::thread::sleep(delay);
    let running = child.try_wait().expect("poll child").is_none();
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    child.wait().expect("reap child");
    running
}

/// Runs `coldkeep --repo <repo> --json <args>`, which must succeed, and parses its output.
pub fn json(repo: &Path, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = coldkeep(repo, &all);
    assert_ok(&out, &args.join(" "));
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// Runs `coldkeep --repo <repo> --json <args>`, which must fail with exit code 1, and returns
/// its error message.
pub fn refused(repo: &Path, args: &[&str]) -> String {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = coldkeep(repo, &all);
    assert_eq!(out.status.code(), Some(1), "{} should have been refused", args.join(" "));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON error");
    v["error"].as_str().expect("error message").to_owned()
}
