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

/// Runs `args` with the given stdout and stderr, within [`TIMEOUT`].
fn spawn_bounded(args: &[&str], out: Stdio, err: Stdio) -> std::process::ExitStatus {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("freezefuzz"))
        .current_dir(support::root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("starts");
    wait_bounded(&mut child, TIMEOUT)
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

const FAULTS_LARGE: &str =
    "io-error:0.5:16,evict:0.5:16,trylock-fail:0.5:16,emergency-thaw:0.5:4,second-freezer:0.5:4";

/// Starts `args`, sends `signal` once the command has worked for a while,
/// and returns its output; the command must stop within a few seconds.
fn interrupted(args: &[&str], signal: libc::c_int) -> (std::process::ExitStatus, String, String, Duration) {
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("freezefuzz"))
        .current_dir(support::root())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().expect("polls").is_none(),
        "{args:?} ended before the signal"
    );
    let sent = Instant::now();
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    // Generous for a debug build on a busy machine; before the fix these
    // commands ran for minutes (or to the end) after the signal.
    let status = wait_bounded(&mut child, Duration::from_secs(20));
    let took = sent.elapsed();
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read as _;
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("reads");
    child
        .stderr
        .take()
        .expect("piped")
        .read_to_string(&mut err)
        .expect("reads");
    (status, out, err, took)
}

// F11, M10: Ctrl-C, SIGTERM and SIGHUP stop a huge campaign at once, and
// what was found is printed, marked partial.
#[test]
fn signals_stop_a_campaign_quickly_with_partial_output() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        let (status, out, err, _) = interrupted(
            &[
                "matrix",
                "--runs",
                "100000000000",
                "--coverage-states",
                "0",
                "-j",
                "2",
            ],
            signal,
        );
        assert_eq!(status.code(), Some(130), "signal {signal}: {err}");
        assert!(out.contains("PARTIAL"), "signal {signal}: {out}");
        assert!(err.contains("partial"), "signal {signal}: {err}");
    }
}

// F12, M13: an exhaustive matrix, `explore` and the coverage search of `run`
// stop on Ctrl-C and say that their results are partial; no coverage line
// is printed for an interrupted campaign.
#[test]
fn signals_stop_exhaustive_searches_with_partial_output() {
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "matrix",
            "--exhaustive",
            "--policy",
            "no-block+faults",
            "--scenario",
            "case4-racing",
            "--faults",
            FAULTS_LARGE,
        ],
        vec![
            "explore",
            "no-block+faults",
            "case4-racing",
            "--faults",
            FAULTS_LARGE,
        ],
        vec![
            "run",
            "no-block+faults",
            "case4-racing",
            "--runs",
            "1",
            "--coverage-states",
            "100000000",
            "--faults",
            FAULTS_LARGE,
        ],
    ];
    for args in cases {
        let (status, out, err, _) = interrupted(&args, libc::SIGINT);
        assert_eq!(status.code(), Some(130), "{args:?}: {err}");
        assert!(err.contains("partial"), "{args:?}: {err}");
        assert!(
            out.contains("PARTIAL") || out.contains("INCOMPLETE"),
            "{args:?}: {out}"
        );
        assert!(!out.contains("coverage:"), "{args:?}: {out}");
    }
}

fn dev_full() -> Stdio {
    Stdio::from(
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full opens"),
    )
}

// F13: a failing stdout or stderr is an error exit, never a panic (101).
#[test]
fn a_full_stdout_or_stderr_is_a_clean_error() {
    let bad = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(bad.path(), "policy p { freeze { lokc } }").expect("writes");
    let bad = bad.path().to_str().expect("utf-8");
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", "policies/no-block.ff"],
        vec!["check", bad],
        vec!["corpus", "check"],
        vec!["run", "no-block", "case1-racing", "--runs", "10"],
    ];
    for args in &cases {
        let err_file = tempfile::NamedTempFile::new().expect("temp file");
        let status = spawn_bounded(args, dev_full(), Stdio::from(err_file.reopen().expect("reopens")));
        let err = std::fs::read_to_string(err_file.path()).expect("reads");
        assert_ne!(status.code(), Some(0), "{args:?}");
        assert_ne!(status.code(), Some(101), "{args:?}: {err}");
        assert!(err.contains("cannot write the output"), "{args:?}: {err}");
        let status = spawn_bounded(args, Stdio::null(), dev_full());
        assert_ne!(status.code(), Some(101), "{args:?} with stderr full");
    }
}

fn diagnostics_of(text: &str) -> Vec<freezefuzz::dsl::Diagnostic> {
    freezefuzz::dsl::load_str("big.ff", text)
        .expect_err("has errors")
        .diagnostics
}

// F02: errors are capped ("and N more"), each counted but not built past the
// cap; the work done is bounded by the limits, not by the file.
#[test]
fn diagnostics_are_capped_with_a_count_of_the_rest() {
    let text = format!(
        "policy p {{ freeze {{ skip }} page_mkwrite {{ lock_page }} faults {{ {} }} }}",
        "io-error probability 0.1 max 1; ".repeat(3000)
    );
    let list = diagnostics_of(&text);
    assert_eq!(list.len(), freezefuzz::ir::limits::DIAGNOSTICS_MAX + 1);
    let last = list.last().expect("not empty");
    assert_eq!(last.code.name(), "ff::too-many-errors");
    assert!(
        last.message.starts_with("and 2899 more errors"),
        "{}",
        last.message
    );
    // The ones shown are the first, in order.
    assert!(list[..100].windows(2).all(|w| w[0].offset < w[1].offset));
}

#[test]
fn a_scenario_with_too_many_threads_stops_at_the_limit() {
    let threads = "thread t { store a 2; }\n".repeat(5000);
    let list = diagnostics_of(&format!("scenario s {{ page a {{ }}\n{threads}}}"));
    let codes: Vec<&str> = list.iter().map(|d| d.code.name()).collect();
    assert!(codes.contains(&"ff::too-many-threads"), "{codes:?}");
    // Only the threads up to the limit are looked at (and found duplicate).
    let duplicates = codes.iter().filter(|c| **c == "ff::duplicate-thread").count();
    assert!(
        duplicates <= freezefuzz::ir::limits::THREADS_MAX,
        "{duplicates} duplicate errors"
    );
}

#[test]
fn an_extends_chain_is_bounded() {
    let mut text = String::from("policy p0 { freeze { skip } page_mkwrite { lock_page } }\n");
    for i in 1..100 {
        text.push_str(&format!("policy p{i} extends p{} {{ }}\n", i - 1));
    }
    let list = diagnostics_of(&text);
    assert!(
        list.iter().all(|d| d.code.name() == "ff::extends-too-deep"),
        "{list:?}"
    );
    // p64 … p99 have chains of more than 64 policies.
    assert_eq!(list.len(), 36);
    assert!(list[0].message.contains("policy `p64`"), "{}", list[0].message);
    // And a chain of 64 is fine.
    let ok: String = text.lines().take(64).map(|l| format!("{l}\n")).collect();
    freezefuzz::dsl::load_str("ok.ff", &ok).expect("a chain of 64 loads");
}

/// Runs a printed command verbatim in `sh`, with the built binary first on
/// PATH; returns its exit status and stderr.
fn run_in_shell(command: &str) -> (Option<i32>, String) {
    let bin = assert_cmd::cargo::cargo_bin("freezefuzz");
    let dir = bin.parent().expect("a directory");
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    let err_file = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .env("PATH", path)
        .current_dir(support::root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_file.reopen().expect("reopens")))
        .spawn()
        .expect("sh starts");
    let status = wait_bounded(&mut child, TIMEOUT);
    (
        status.code(),
        std::fs::read_to_string(err_file.path()).unwrap_or_default(),
    )
}

fn html_unescape(text: &str) -> String {
    text.replace("&#39;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

// F15: every printed replay command (JSON and table findings, the HTML page,
// exhaustive shortest schedules, shrink's output) reproduces its outcome
// when run verbatim: -f paths with spaces, --faults, --oracle, --steps-max.
#[test]
fn every_printed_replay_command_reproduces() {
    let dir = tempfile::Builder::new()
        .prefix("policy dir ")
        .tempdir()
        .expect("tempdir");
    for name in ["no-block.ff", "standard.ff"] {
        std::fs::copy(support::root().join("policies").join(name), dir.path().join(name)).expect("copies");
    }
    let policy = dir.path().join("no-block.ff").display().to_string();
    let standard = dir.path().join("standard.ff").display().to_string();
    let html = dir.path().join("it's.html").display().to_string();
    let common = [
        "-f",
        &policy,
        "-f",
        &standard,
        "--faults",
        "io-error:0.2:1,evict:0.1:1",
        "--oracle",
        "dirty-at-freeze",
        "--steps-max",
        "17",
        "--scenario",
        "case3-racing",
        "--scenario",
        "case1-racing",
        "--format",
        "json",
    ];
    let mut commands: Vec<(String, String)> = Vec::new();
    for extra in [
        vec!["--runs", "400", "--html", html.as_str()],
        vec!["--exhaustive"],
    ] {
        let output = freezefuzz()
            .arg("matrix")
            .args(common)
            .args(&extra)
            .output()
            .expect("runs");
        assert!(output.status.success(), "{}", stderr(&output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        for cell in report["cells"].as_array().expect("cells") {
            for (outcome, w) in cell["witnesses"].as_object().expect("witnesses") {
                commands.push((outcome.clone(), w["replay"].as_str().expect("replay").to_string()));
            }
        }
    }
    let page = std::fs::read_to_string(&html).expect("the HTML page");
    let mut from_html = 0;
    for line in page.lines() {
        if let Some(at) = line.find("freezefuzz replay ") {
            let end = line[at..].find('<').map_or(line.len(), |e| at + e);
            let command = html_unescape(&line[at..end]);
            let outcome = command.rsplit("--expect ").next().expect("expects").to_string();
            commands.push((outcome, command));
            from_html += 1;
        }
    }
    assert!(from_html > 0, "no replay command in the HTML page");
    assert!(commands.iter().any(|(o, _)| o == "step-limit"), "{commands:?}");
    assert!(
        commands.iter().any(|(o, _)| o == "dirty-at-freeze"),
        "{commands:?}"
    );
    assert!(
        commands.iter().any(|(_, c)| c.contains("+faults")),
        "{commands:?}"
    );
    // shrink prints one too.
    let (_, frozen) = commands
        .iter()
        .find(|(o, c)| o == "frozen-write" && c.contains("+faults"))
        .expect("a frozen-write");
    let schedule = frozen.split('\'').nth(1).expect("a quoted schedule");
    let output = freezefuzz()
        .args([
            "shrink",
            "no-block+faults",
            "case3-racing",
            "--schedule",
            schedule,
            "--outcome",
            "frozen-write",
        ])
        .args([
            "-f",
            &policy,
            "-f",
            &standard,
            "--faults",
            "io-error:0.2:1,evict:0.1:1",
            "--oracle",
            "dirty-at-freeze",
            "--steps-max",
            "17",
        ])
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", stderr(&output));
    let shrunk = stdout(&output);
    let line = shrunk
        .lines()
        .find_map(|l| l.strip_prefix("replay:   "))
        .expect("a replay line");
    commands.push(("frozen-write".into(), line.to_string()));
    for (outcome, command) in &commands {
        let command = if command.contains("--expect") {
            command.clone()
        } else {
            format!("{command} --expect {outcome}")
        };
        let (code, err) = run_in_shell(&command);
        assert_eq!(code, Some(0), "{command}\n{err}");
    }
}

fn corpus_entries(dir: &Path) -> Vec<freezefuzz::corpus::Entry> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| freezefuzz::corpus::parse(&std::fs::read_to_string(p).expect("reads")).expect("parses"))
        .collect()
}

const SAVE_ARGS: [&str; 12] = [
    "matrix",
    "--policy",
    "no-block",
    "--scenario",
    "case3-racing",
    "--faults",
    "io-error:0.2:1",
    "--oracle",
    "dirty-at-freeze",
    "--steps-max",
    "17",
    "--save",
];

// F06, F07, F08 and the `--policy X --faults` row: a saved entry keeps its
// step budget, oracles and fault spec, and checks and replays unchanged.
#[test]
fn saved_witnesses_replay_to_their_outcomes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().to_str().expect("utf-8");
    let output = run(&[&SAVE_ARGS[..], &["--runs", "300", "--corpus-dir", corpus]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    let entries = corpus_entries(dir.path());
    assert!(
        entries
            .iter()
            .any(|e| e.outcomes.contains(&"step-limit".to_string())),
        "{entries:?}"
    );
    assert!(
        entries.iter().any(|e| e.policy == "no-block+faults"),
        "{entries:?}"
    );
    for entry in &entries {
        assert!(!entry.outcomes.is_empty(), "{entry:?}");
        assert_eq!(entry.oracles, ["dirty-at-freeze"]);
        assert_eq!(entry.steps_max, 17);
        let faulty = entry.policy.ends_with("+faults");
        assert_eq!(
            entry.faults.as_deref(),
            faulty.then_some("io-error:0.2:1"),
            "{entry:?}"
        );
    }
    let output = run(&["corpus", "check", "--dir", corpus]);
    assert!(output.status.success(), "{}{}", stdout(&output), stderr(&output));
    assert!(stdout(&output).contains("0 changed"), "{}", stdout(&output));
    for path in std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
    {
        if path.extension().is_some_and(|e| e == "toml") {
            let output = run(&["replay", "--corpus", path.to_str().expect("utf-8")]);
            assert!(output.status.success(), "{}: {}", path.display(), stderr(&output));
        }
    }
    // Flags `replay --corpus` would ignore are refused.
    let any = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .find(|p| p.extension().is_some_and(|e| e == "toml"))
        .expect("an entry");
    for flag in [["--steps-max", "5"], ["--oracle", "dirty-at-freeze"]] {
        let output = run(&[
            &["replay", "--corpus", any.to_str().expect("utf-8")][..],
            &flag[..],
        ]
        .concat());
        assert_eq!(output.status.code(), Some(2), "{flag:?}: {}", stderr(&output));
    }
}

// F09, M6, M14: concurrent saves neither lose nor duplicate witnesses; stale
// temp files of killed saves are removed; an unreadable entry is reported
// and does not block the save.
#[test]
fn concurrent_saves_keep_every_witness_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corpus = dir.path().to_str().expect("utf-8").to_string();
    std::fs::write(dir.path().join("broken.toml"), "this is not toml = = =").expect("writes");
    std::fs::write(dir.path().join(".x.toml.tmp-999999"), "torn").expect("writes");
    let children: Vec<Child> = (1..=4)
        .map(|seed| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("freezefuzz"))
                .current_dir(support::root())
                .args(SAVE_ARGS)
                .args([
                    "--runs",
                    "200",
                    "--no-shrink",
                    "--seed",
                    &seed.to_string(),
                    "--corpus-dir",
                    &corpus,
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("starts")
        })
        .collect();
    let mut added = 0;
    for mut child in children {
        let status = wait_bounded(&mut child, TIMEOUT);
        let mut err = String::new();
        use std::io::Read as _;
        child
            .stderr
            .take()
            .expect("piped")
            .read_to_string(&mut err)
            .expect("reads");
        assert!(status.success(), "{err}");
        assert!(err.contains("broken.toml"), "{err}");
        added += err
            .lines()
            .filter(|l| l.contains("witness(es) added"))
            .filter_map(|l| l.split(": ").last()?.split(' ').next()?.parse::<usize>().ok())
            .sum::<usize>();
    }
    assert!(
        !dir.path().join(".x.toml.tmp-999999").exists(),
        "the stale temp file is left"
    );
    let entries: Vec<_> = corpus_entries_skipping(dir.path(), "broken.toml");
    let mut keys: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e.policy.clone(),
                e.scenario.clone(),
                freezefuzz::corpus::plain_schedule(&e.schedule).expect("plain"),
            )
        })
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total, "duplicate witnesses saved");
    assert_eq!(
        added, total,
        "the saves said they added {added}, the corpus holds {total}"
    );
}

fn corpus_entries_skipping(dir: &Path, skip: &str) -> Vec<freezefuzz::corpus::Entry> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("corpus dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml") && !p.ends_with(skip))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| freezefuzz::corpus::parse(&std::fs::read_to_string(p).expect("reads")).expect("parses"))
        .collect()
}

// F10: `--save | head` saves before the reader goes away.
#[test]
fn a_closed_pipe_does_not_lose_the_save() {
    let dir = tempfile::tempdir().expect("tempdir");
    let command = format!(
        "freezefuzz {} --runs 300 --corpus-dir '{}' | head -c 1 > /dev/null",
        SAVE_ARGS.join(" "),
        dir.path().display()
    );
    let (_, err) = run_in_shell(&command);
    assert!(!corpus_entries(dir.path()).is_empty(), "nothing saved: {err}");
}

/// Runs `args` with its address space limited to `bytes` (RLIMIT_AS), so
/// that a command that would grow without bound aborts instead of eating
/// the machine; returns the exit status and stderr.
fn run_limited(args: &[&str], bytes: u64) -> (std::process::ExitStatus, String) {
    use std::os::unix::process::CommandExt as _;
    let err_file = tempfile::NamedTempFile::new().expect("temp file");
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("freezefuzz"));
    command
        .current_dir(support::root())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(err_file.reopen().expect("reopens")));
    // SAFETY: setrlimit is async-signal-safe; it runs in the child before exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("starts");
    let status = wait_bounded(&mut child, TIMEOUT);
    (
        status,
        std::fs::read_to_string(err_file.path()).unwrap_or_default(),
    )
}

const ONE_GIB: u64 = 1 << 30;

// F19: a policy `check` accepts, whose `sync` unrolls `writeback` over eight
// pages two thousand times, is refused while compiling, not after asking
// for gigabytes.
#[test]
fn an_oversized_program_is_refused_while_compiling() {
    let writeback = "lock_page; if dirty { clean; submit; } unlock_page; ".repeat(800);
    let freeze = format!(
        "lock umount write; set_level write; {} set_level fs; set_level complete; unlock umount;",
        "sync; ".repeat(2000)
    );
    let pages: String = (0..8).map(|i| format!("page p{i} {{ }}\n")).collect();
    let text = format!(
        "policy big {{ freeze {{ {freeze} }} page_mkwrite {{ lock_page }} writeback {{ {writeback} }} }}\n\
         scenario s {{ {pages} thread user {{ store p0 2; }} thread freezer {{ freeze; thaw; }} flusher; }}\n"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.ff");
    std::fs::write(&path, text).expect("writes");
    let path = path.to_str().expect("utf-8");
    assert!(run(&["check", path]).status.success());
    let (status, err) = run_limited(
        &["run", "big", "s", "-f", path, "--runs", "1", "-j", "1"],
        ONE_GIB,
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("compiles to more than 65534 instructions"), "{err}");
    // Compile-step errors say where: here, the policy's definition.
    assert!(err.contains("big.ff:1:8: thread `freezer`"), "{err}");
}

// F04: a short schedule that asks for 200 million moves is refused before
// it is expanded, by replay, shrink and a corpus check.
#[test]
fn a_schedule_of_too_many_moves_is_refused_before_expansion() {
    let schedule = "user*1000000 ".repeat(200);
    let dir = tempfile::tempdir().expect("tempdir");
    let entry = dir.path().join("huge.toml");
    std::fs::write(
        &entry,
        format!(
            "format = 1\npolicy = \"no-block\"\nscenario = \"case1-racing\"\noutcomes = [\"safe\"]\nnote = \"x\"\nschedule = \"{schedule}\"\n"
        ),
    )
    .expect("writes");
    let cases: Vec<Vec<&str>> = vec![
        vec!["replay", "no-block", "case1-racing", "--schedule", &schedule],
        vec![
            "shrink",
            "no-block",
            "case1-racing",
            "--schedule",
            &schedule,
            "--outcome",
            "safe",
        ],
        vec!["replay", "--corpus", entry.to_str().expect("utf-8")],
        vec!["corpus", "check", "--dir", dir.path().to_str().expect("utf-8")],
    ];
    for args in cases {
        let (status, err) = run_limited(&args, ONE_GIB);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("more than 10000000 moves"), "{args:?}: {err}");
    }
}

// Flags that would be ignored are usage errors.
#[test]
fn flags_that_would_be_ignored_are_usage_errors() {
    for flag in [
        ["--runs", "5"],
        ["--seed", "3"],
        ["--scheduler", "pct"],
        ["--shard", "0/2"],
    ] {
        let output = run(&[&["matrix", "--exhaustive"][..], &flag[..]].concat());
        assert_eq!(output.status.code(), Some(2), "{flag:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("cannot be used with"),
            "{flag:?}: {}",
            stderr(&output)
        );
    }
}

// M11: --max-memory bounds the coverage search of a random matrix too
// (before, this search ran on to the default 4 GiB guard, past the timeout).
#[test]
fn max_memory_bounds_the_coverage_search() {
    let output = run(&[
        "matrix",
        "--policy",
        "no-block+faults",
        "--scenario",
        "case4-racing",
        "--faults",
        FAULTS_LARGE,
        "--runs",
        "1",
        "--coverage-states",
        "100000000",
        "--max-memory",
        "1",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("coverage: the campaign found"),
        "{}",
        stdout(&output)
    );
}

// F18: a replay's trace is streamed: an endless run of 300 000 steps (a
// writeback that never cleans, so the flusher never rests) replays within
// 80 MiB of address space, where holding the trace took more.
#[test]
fn a_long_trace_is_streamed_not_held() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("endless.ff");
    std::fs::write(
        &path,
        "policy endless {\n\
         freeze { lock umount write; set_level write; set_level fs; set_level complete; unlock umount; }\n\
         page_mkwrite { lock_page; }\n\
         writeback { lock_page; unlock_page; }\n}\n\
         scenario s { page a { } thread user { store a 2; munmap a; } thread freezer { freeze; thaw; } flusher; }\n",
    )
    .expect("writes");
    let path = path.to_str().expect("utf-8");
    let args = [
        "replay",
        "endless",
        "s",
        "-f",
        path,
        "--seed",
        "1",
        "--steps-max",
        "300000",
        "--expect",
        "step-limit",
    ];
    let (status, err) = run_limited(&args, 80 << 20);
    assert_eq!(status.code(), Some(0), "{err}");
}

// F16: exhaustive search ignores probability, 0 included.
#[test]
fn a_fault_of_probability_zero_is_still_explored() {
    let outcomes = |probability: &str| {
        let workspace = support::with_standard(&format!(
            "policy p {{ freeze {{ lock umount write; set_level write; sync; set_level fs; set_level complete; unlock umount; }} page_mkwrite {{ lock_page; }} faults {{ io-error probability {probability} max 1; }} }}"
        ));
        let program = freezefuzz::engine::program::compile(
            workspace.policy("p").expect("p"),
            workspace.scenario("case3-racing").expect("scenario"),
        )
        .expect("compiles");
        let result = freezefuzz::engine::explore::explore(
            &program,
            &freezefuzz::oracle::OracleSet::standard(),
            &Default::default(),
        );
        (result.outcomes, result.states)
    };
    assert_eq!(outcomes("0"), outcomes("0.5"));
}

// F17: numbers are judged on their digits, whatever their length, and an
// exponent is a clear error, not a syntax error further on.
#[test]
fn fault_probabilities_are_judged_on_their_digits() {
    let check = |probability: &str| {
        freezefuzz::dsl::load_str(
            "p.ff",
            &format!("policy p {{ freeze {{ skip }} page_mkwrite {{ lock_page }} faults {{ io-error probability {probability} max 1; }} }}"),
        )
        .map(|ws| ws.policies[0].faults[0].probability)
        .map_err(|e| e.diagnostics[0].message.clone())
    };
    assert_eq!(check("0.5000000000000000000000000000001"), Ok(0.5));
    assert_eq!(check("1"), Ok(1.0));
    assert_eq!(check("0"), Ok(0.0));
    let error = check("1.0000000000000000000001").expect_err("above 1");
    assert!(
        error.contains("`1.0000000000000000000001` is not a decimal between 0 and 1"),
        "{error}"
    );
    let error = check("1e-5").expect_err("an exponent");
    assert!(error.contains("`1e-5` is not a decimal"), "{error}");
    let long = format!("2{}", "0".repeat(100));
    let error = check(&long).expect_err("too large");
    assert!(error.contains(&format!("`{}…`", &long[..32])), "{error}");
}
