//! Helpers shared by the tests that drive the real `coldkeep` binary.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs `coldkeep --repo <repo> <args>` to completion.
pub fn coldkeep(repo: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coldkeep"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .output()
        .expect("run coldkeep")
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

/// Starts `coldkeep --repo <repo> <args>` and SIGKILLs it after `delay`; true if it was still
/// running then.
pub fn killed_after(repo: &Path, args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_coldkeep"))
        .arg("--repo")
        .arg(repo)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn coldkeep");
    std::thread::sleep(delay);
    let running = child.try_wait().expect("poll child").is_none();
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    child.wait().expect("reap child");
    running
}
