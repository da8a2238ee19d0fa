//! Adversarial inputs and hostile environments (issue #10): oversized and
//! non-regular files, signals, failing stdout, concurrent corpus saves. Every
//! process started here has a bounded timeout, so no test can hang.

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::support;

/// Long enough for a debug build on a loaded 2-core machine; a hang fails.
const TIMEOUT: Duration = Duration::from_secs(120);

fn freezefuzz() -> Command {
    let mut cmd = Command::cargo_bin("freezefuzz").expect("the binary is built");
    cmd.current_dir(support::root()).timeout(TIMEOUT);
    cmd
}

fn run(args: &[&str]) -> Output {
    freezefuzz().args(args).output().expect("runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

/// Waits for `child` at most `limit`; kills it and fails the test otherwise.
fn wait_bounded(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("waits") {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// F03: every file the CLI reads is bounded and must be a regular file.
#[test]
fn devices_and_fifos_are_refused_not_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("fifo.json");
    mkfifo(&fifo);
    let fifo = fifo.to_str().expect("utf-8");
    let link_dir = dir.path().join("corpus");
    std::fs::create_dir(&link_dir).expect("mkdir");
    std::os::unix::fs::symlink("/dev/zero", link_dir.join("zero.toml")).expect("symlink");
    let link_dir = link_dir.to_str().expect("utf-8");
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", "/dev/zero"],
        vec!["check", fifo],
        vec![
            "run",
            "no-block",
            "case1-racing",
            "-f",
            "/dev/zero",
            "--runs",
            "1",
        ],
        vec!["merge", "/dev/zero"],
        vec!["merge", fifo],
        vec![
            "matrix",
            "--runs",
            "1",
            "--coverage-states",
            "0",
            "--expect",
            "/dev/zero",
        ],
        vec![
            "matrix",
            "--runs",
            "1",
            "--coverage-states",
            "0",
            "--expect",
            fifo,
        ],
        vec!["replay", "--corpus", "/dev/zero"],
        vec!["corpus", "check", "--dir", link_dir],
    ];
    for args in cases {
        let output = run(&args);
        assert!(!output.status.success(), "{args:?} succeeded");
        let err = stderr(&output);
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn an_oversized_policy_is_refused_after_reading_its_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.ff");
    std::fs::write(&path, vec![b' '; (1 << 20) + 10]).expect("writes");
    let output = run(&["check", path.to_str().expect("utf-8")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("more than FILE_BYTES_MAX"),
        "{}",
        stderr(&output)
    );
}
