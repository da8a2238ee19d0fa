//! The command line as a user meets it: the standard matrix snapshots,
//! byte-identical output across workers, shards, replay, and bad flags.

use assert_cmd::Command;

use crate::support;

fn freezefuzz() -> Command {
    let mut cmd = Command::cargo_bin("freezefuzz").expect("the binary is built");
    cmd.current_dir(support::root());
    cmd
}

/// Asserts two long texts are equal, showing only the first differing line.
fn assert_same(left: &str, right: &str, what: &str) {
    if left != right {
        let (i, (l, r)) = left
            .lines()
            .zip(right.lines())
            .enumerate()
            .find(|(_, (l, r))| l != r)
            .unwrap_or((0, ("<length differs>", "")));
        panic!(
            "{what}: first difference at line {}:\n  left:  {l}\n  right: {r}",
            i + 1
        );
    }
}

fn stdout_of(args: &[&str]) -> String {
    let output = freezefuzz().args(args).output().expect("runs");
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// The standard matrix for a fixed seed and run count: a change to a policy
/// or to the engine shows up here as a snapshot diff (review with
/// `cargo insta review`).
#[test]
fn standard_matrix_snapshots() {
    let markdown = stdout_of(&["matrix", "--runs", "2000", "--seed", "1", "--format", "markdown"]);
    insta::assert_snapshot!("standard_matrix_markdown", markdown);
    let json = stdout_of(&["matrix", "--runs", "2000", "--seed", "1", "--format", "json"]);
    insta::assert_snapshot!("standard_matrix_json", json);
}

#[test]
fn exhaustive_matrix_snapshots() {
    let markdown = stdout_of(&["matrix", "--exhaustive", "--format", "markdown"]);
    insta::assert_snapshot!("exhaustive_matrix_markdown", markdown);
    let json = stdout_of(&["matrix", "--exhaustive", "--format", "json"]);
    insta::assert_snapshot!("exhaustive_matrix_json", json);
    // The same for any number of workers.
    assert_eq!(
        json,
        stdout_of(&["matrix", "--exhaustive", "--format", "json", "--jobs", "1"])
    );
}

#[test]
fn output_is_byte_identical_for_any_number_of_workers() {
    let args = ["matrix", "--runs", "3000", "--seed", "42", "--format", "json"];
    let one = stdout_of(&[&args[..], &["--jobs", "1"]].concat());
    let two = stdout_of(&[&args[..], &["--jobs", "2"]].concat());
    let eight = stdout_of(&[&args[..], &["--jobs", "8"]].concat());
    assert_eq!(one, two);
    assert_eq!(one, eight);
    assert_eq!(
        one,
        stdout_of(&[&args[..], &["--jobs", "2"]].concat()),
        "same seed twice"
    );
}

#[test]
fn merged_shards_equal_the_unsplit_matrix() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let base = ["matrix", "--runs", "5000", "--seed", "7", "--format", "json"];
    let whole = stdout_of(&base);
    let mut paths = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let text = stdout_of(&[&base[..], &["--shard", &shard]].concat());
        let path = dir.path().join(format!("shard{k}.json"));
        std::fs::write(&path, text).unwrap();
        paths.push(path.display().to_string());
    }
    let mut args = vec!["merge"];
    args.extend(paths.iter().map(String::as_str));
    assert_same(&stdout_of(&args), &whole, "merged shards vs unsplit");
    // A shard given twice is refused.
    let output = freezefuzz()
        .args(["merge", &paths[0], &paths[0]])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("given twice"));
}

#[test]
fn run_prints_seed_schedule_and_replay_command_and_replay_reproduces_it() {
    let text = stdout_of(&["run", "block-on-mapped", "case3-after-freeze", "--runs", "500"]);
    let replay_line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("replay:"))
        .unwrap_or_else(|| panic!("no replay command in:\n{text}"))
        .trim();
    assert!(text.contains("seed 0x"), "{text}");
    assert!(text.contains("schedule: "), "{text}");
    // Run the printed command as printed (minus the program name).
    let schedule = replay_line.split('\'').nth(1).expect("quoted schedule");
    let output = freezefuzz()
        .args([
            "replay",
            "block-on-mapped",
            "case3-after-freeze",
            "--schedule",
            schedule,
            "--expect",
            "deadlock",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let trace = String::from_utf8(output.stdout).unwrap();
    assert!(trace.ends_with("outcomes: deadlock\n"), "{trace}");
}

#[test]
fn replay_trace_snapshot() {
    let trace = stdout_of(&[
        "replay",
        "no-block",
        "case3-after-freeze",
        "--schedule",
        "freezer*5 user*4 freezer user*2 flusher*9 freezer*3",
    ]);
    insta::assert_snapshot!("replay_no_block_case3", trace);
}

#[test]
fn expect_fails_when_a_cell_changes() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("expected.json");
    std::fs::write(&saved, stdout_of(&["matrix", "--exhaustive", "--format", "json"])).unwrap();
    let saved = saved.display().to_string();
    freezefuzz()
        .args(["matrix", "--exhaustive", "--expect", &saved])
        .assert()
        .success();
    // A different policy set for the same cells: no-block's verdicts under wait-in-mkwrite's name.
    let edited =
        std::fs::read_to_string(&saved)
            .unwrap()
            .replacen("\"frozen-write\": 18", "\"deadlock\": 18", 1);
    std::fs::write(&saved, edited).unwrap();
    let output = freezefuzz()
        .args(["matrix", "--exhaustive", "--expect", &saved])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("no-block × case3-after-freeze: expected {safe, deadlock}, got {safe, frozen-write}")
    );
}

#[test]
fn absurd_flags_are_usage_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["matrix", "--runs", "0"], "--runs"),
        (&["matrix", "--shard", "3/2"], "expected K/N"),
        (&["matrix", "--shard", "x"], "expected K/N"),
        (&["matrix", "--scheduler", "pct:99"], "pct:D"),
        (&["matrix", "--jobs", "0"], "--jobs"),
        (&["matrix", "--seed", "12x"], "expected a number"),
        (&["matrix", "--policy", "nope"], "unknown policy `nope`"),
        (&["run", "no-block", "nope"], "unknown scenario `nope`"),
        (&["matrix", "--oracle", "nope"], "unknown oracle `nope`"),
        (
            &["replay", "no-block", "case1-racing", "--schedule", "user*0"],
            "count 0 is out of range",
        ),
        (
            &["replay", "no-block", "case1-racing", "--schedule", "ghost"],
            "no thread named `ghost`",
        ),
        (
            &[
                "replay",
                "no-block",
                "case1-after-freeze",
                "--schedule",
                "user user",
            ],
            "cannot move here",
        ),
        (&["matrix", "-f", "does/not/exist.ff"], "does/not/exist.ff"),
        (&["merge", "Cargo.toml"], "not a freezefuzz matrix JSON"),
    ];
    for (args, message) in cases {
        let output = freezefuzz().args(*args).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(message),
            "{args:?}: expected `{message}` in:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    }
}

#[test]
fn replay_takes_a_corpus_file_and_checks_its_outcomes() {
    let entry = support::root().join("corpus/no-block--case3-after-freeze--frozen-write.toml");
    let output = freezefuzz()
        .args(["replay", "--corpus"])
        .arg(&entry)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).ends_with("outcomes: frozen-write\n"));
    // The same entry claiming another outcome fails, saying what it got.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong.toml");
    let text = std::fs::read_to_string(&entry).unwrap();
    std::fs::write(
        &wrong,
        text.replace("outcomes = [\"frozen-write\"]", "outcomes = [\"deadlock\"]"),
    )
    .unwrap();
    let output = freezefuzz()
        .args(["replay", "--corpus"])
        .arg(&wrong)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("expects {deadlock}, got: {frozen-write}"));
    // A file that is not a corpus entry is bad input, named with line and column.
    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "format = 1\npolicy = 3\n").unwrap();
    let output = freezefuzz()
        .args(["replay", "--corpus"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml:2:10: invalid type"), "{stderr}");
}

#[test]
fn a_policy_anywhere_can_extend_a_shipped_one() {
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("strict.ff");
    std::fs::write(
        &mine,
        "policy strict extends no-block { body journal_start { wait_unfrozen pagefault; } }\n",
    )
    .unwrap();
    let output = freezefuzz().arg("check").arg(&mine).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("ok  <shipped>/no-block.ff"), "{stdout}");
    // A parent found nowhere is still an error.
    std::fs::write(&mine, "policy strict extends nowhere { }\n").unwrap();
    let output = freezefuzz().arg("check").arg(&mine).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("ff::missing-parent"));
}

/// `explore --hash-compact` says, in the text a user reads, that its result
/// is not exact, with the omission probability and the undecided
/// step-limit; and its output is the same for any number of workers.
#[test]
fn hash_compaction_says_it_is_not_exact() {
    let text = stdout_of(&["explore", "sigbus", "case4-racing", "--hash-compact"]);
    insta::assert_snapshot!("explore_hash_compact", text);
    let json = stdout_of(&[
        "explore",
        "sigbus",
        "case4-racing",
        "--hash-compact",
        "--format",
        "json",
    ]);
    assert!(json.contains("hash compaction: NOT EXACT"), "{json}");
    // The bound as a number too, 412 states: 412 × 411 / 2^65.
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    let bound = value["cells"][0]["omission_probability"]
        .as_f64()
        .expect("a number");
    assert_eq!(bound, 412.0 * 411.0 / 2f64.powi(65));
    let exact = stdout_of(&["explore", "sigbus", "case4-racing", "--format", "json"]);
    assert!(!exact.contains("omission_probability"), "{exact}");
    assert_same(
        &json,
        &stdout_of(&[
            "explore",
            "sigbus",
            "case4-racing",
            "--hash-compact",
            "--format",
            "json",
            "--jobs",
            "2",
        ]),
        "--hash-compact --jobs 2",
    );
}

/// `explore --timings` prints each phase of the search with its time on
/// stderr, and changes nothing in the result on stdout.
#[test]
fn explore_timings_name_each_phase_and_leave_the_result_alone() {
    let args = ["explore", "mainline", "case4-racing", "--format", "json"];
    let output = freezefuzz().args(args).arg("--timings").output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("timings (wall clock; not part of the result): "))
        .unwrap_or_else(|| panic!("no timings line in {stderr}"));
    for phase in [
        "expand ",
        "dedup ",
        "look-up ",
        "merge ",
        "flush ",
        "step-limit check ",
    ] {
        assert!(line.contains(phase), "{phase} missing from {line}");
    }
    assert!(line.contains("; total "), "{line}");
    assert_same(
        &String::from_utf8_lossy(&output.stdout),
        &stdout_of(&args),
        "--timings",
    );
}
