//! Reviewing a policy change from any repository: the installed binary with
//! its shipped policies built in, `show`, snapshots in insta's format,
//! `diff`, and the pull-request recipe. Every command here runs in a
//! temporary directory outside the checkout.

use std::path::Path;

use assert_cmd::Command;

/// The binary, run in `dir` (not the checkout: nothing from `policies/` on disk).
fn freezefuzz_in(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("freezefuzz").expect("the binary is built");
    cmd.current_dir(dir).env_remove("NO_COLOR").env("COLUMNS", "200");
    cmd
}

fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = freezefuzz_in(dir).args(args).output().expect("runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("utf-8 stdout"),
        String::from_utf8(output.stderr).expect("utf-8 stderr"),
    )
}

const MINE: &str = "// Mine: mainline whose page_mkwrite forgets the freeze protection.\n\
policy mine extends mainline {\n    page_mkwrite {\n        lock_page;\n    }\n}\n";

#[test]
fn the_shipped_set_is_built_in_and_files_add_to_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.ff"), MINE).unwrap();
    // No policies/ here, yet the standard matrix runs.
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "matrix",
            "--exhaustive",
            "--policy",
            "mainline",
            "--scenario",
            "case1-racing",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("mainline"), "{stdout}");
    // -f adds to the shipped set: both rows are there.
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "matrix",
            "--exhaustive",
            "-f",
            "mine.ff",
            "--scenario",
            "case1-racing",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let policies: Vec<&str> = report["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(
        policies.contains(&"mainline") && policies.contains(&"mine"),
        "{policies:?}"
    );
    // --no-shipped leaves them out, but `extends mainline` still resolves.
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "matrix",
            "--exhaustive",
            "-f",
            "mine.ff",
            "--no-shipped",
            "--format",
            "json",
        ],
    );
    // No scenario is loaded then: a clean usage error naming what to do.
    assert_eq!(code, 2, "{stdout}");
    assert!(stderr.contains("no scenario loaded"), "{stderr}");
    std::fs::write(
        dir.path().join("one.ff"),
        "scenario solo { page a { cached; buffers = mapped; pte = readonly; }\n thread user { store a 2; munmap a; }\n thread freezer { freeze; thaw; }\n flusher; }\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "matrix",
            "--exhaustive",
            "-f",
            "mine.ff",
            "-f",
            "one.ff",
            "--no-shipped",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["policies"], serde_json::json!(["mine"]));
    assert_eq!(report["scenarios"], serde_json::json!(["solo"]));
}

#[test]
fn an_unknown_policy_names_the_loaded_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_in(dir.path(), &["run", "mainlin", "case1-racing"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown policy `mainlin`; loaded: block-on-mapped, mainline, no-block"),
        "{stderr}"
    );
}

#[test]
fn a_users_file_shadows_a_shipped_policy_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("no-block.ff"),
        "policy no-block extends mainline { }\n",
    )
    .unwrap();
    let (code, stdout, stderr) = run_in(dir.path(), &["show", "no-block", "-f", "no-block.ff"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with("policy no-block extends mainline {"),
        "{stdout}"
    );
}

#[test]
fn show_prints_the_effective_policy_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.ff"), MINE).unwrap();
    let (code, stdout, stderr) = run_in(dir.path(), &["show", "mine", "-f", "mine.ff"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("show_mine", stdout);
    let (code, _, stderr) = run_in(dir.path(), &["show", "nothing"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("policies: block-on-mapped,"), "{stderr}");
    assert!(stderr.contains("scenarios: case1-after-freeze,"), "{stderr}");
}

#[test]
fn snapshots_are_written_reviewed_and_accepted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.ff"), MINE).unwrap();
    let snap = dir.path().join("snapshots/freezefuzz__mine.snap");
    let pending = dir.path().join("snapshots/freezefuzz__mine.snap.new");
    let args = [
        "snapshot",
        "snapshots",
        "-f",
        "mine.ff",
        "--policy",
        "mine",
        "--scenario",
        "case1-racing",
        "--scenario",
        "case1-after-freeze",
    ];
    // The first time: pending, exit 1 (as insta does for a new snapshot).
    let (code, stdout, _) = run_in(dir.path(), &args);
    assert_eq!(code, 1);
    assert!(stdout.contains("new snapshot"), "{stdout}");
    assert!(pending.exists() && !snap.exists());
    // --accept writes it; a second run is clean.
    let (code, _, stderr) = run_in(dir.path(), &[&args[..], &["--accept"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(snap.exists() && !pending.exists());
    let (code, _, stderr) = run_in(dir.path(), &args);
    assert_eq!(code, 0, "{stderr}");

    // insta itself reads the file: its header and its body.
    let read = insta::Snapshot::from_file(&snap).expect("insta parses the snapshot");
    assert_eq!(read.metadata().source(), Some("mine.ff"));
    assert_eq!(
        read.metadata().expression(),
        Some("freezefuzz snapshot snapshots -f mine.ff --policy mine")
    );
    let text = std::fs::read_to_string(&snap).unwrap();
    let body = freezefuzz::report::snapshot::body(&text).unwrap();
    let ours = insta::internals::TextSnapshotContents::new(body.to_string(), insta::TextSnapshotKind::File);
    let theirs = read.contents().as_text().expect("a text snapshot");
    assert!(
        theirs.matches_latest(&ours),
        "insta read {theirs:?}, we wrote {body:?}"
    );
    assert!(theirs.to_string().starts_with("policy mine\n"), "{theirs}");
    // insta writes the file back byte for byte (so accepting with cargo-insta
    // or with --accept gives the same file).
    let copy = dir.path().join("copy.snap");
    read.save(&copy).expect("insta writes the snapshot");
    assert_eq!(std::fs::read_to_string(&copy).unwrap(), text);

    // A change: a pending .snap.new beside it, the changed cells, exit 1.
    std::fs::write(
        dir.path().join("mine.ff"),
        MINE.replace("lock_page;", "wait_unfrozen pagefault;\n        lock_page;"),
    )
    .unwrap();
    let (code, stdout, stderr) = run_in(dir.path(), &args);
    assert_eq!(code, 1, "{stderr}");
    assert!(pending.exists());
    assert!(
        stderr.contains("cargo insta review --workspace-root snapshots"),
        "{stderr}"
    );
    insta::assert_snapshot!("snapshot_change", stdout);
    let pending_read = insta::Snapshot::from_file(&pending).expect("insta parses the pending snapshot");
    assert!(pending_read.metadata().source().is_some());
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .output()
        .expect("git runs");
    assert!(
        status.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// A repository of policies with two commits: `mine` as in [`MINE`], then
/// with its page_mkwrite waiting for the thaw.
fn two_revisions() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/mine.ff"), MINE).unwrap();
    git(dir.path(), &["add", "policies"]);
    git(dir.path(), &["commit", "-qm", "mine"]);
    std::fs::write(
        dir.path().join("policies/mine.ff"),
        MINE.replace("lock_page;", "wait_unfrozen pagefault;\n        lock_page;"),
    )
    .unwrap();
    git(dir.path(), &["commit", "-qam", "mine waits"]);
    dir
}

#[test]
fn diff_of_two_git_revisions_names_the_step_where_the_runs_part() {
    let repo = two_revisions();
    let args = [
        "diff",
        "HEAD~1:policies",
        "HEAD:policies",
        "--scenario",
        "case1-after-freeze",
        "--scenario",
        "case1-racing",
    ];
    let (code, stdout, stderr) = run_in(repo.path(), &args);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("diff_revisions_table", stdout);
    let (code, markdown, stderr) = run_in(repo.path(), &[&args[..], &["--format", "markdown"]].concat());
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("diff_revisions_markdown", markdown);
    let (code, json, stderr) = run_in(repo.path(), &[&args[..], &["--format", "json"]].concat());
    assert_eq!(code, 0, "{stderr}");
    let report: freezefuzz::report::diff::DiffReport = serde_json::from_str(&json).unwrap();
    let change = &report.changed[0];
    assert_eq!(
        (change.policy.as_str(), change.scenario.as_str()),
        ("mine", "case1-after-freeze")
    );
    assert_eq!(change.removed, ["frozen-write"]);
    let divergence = change.explanations[0].divergence.as_ref().expect("the runs part");
    assert_eq!(divergence.thread, "user");
    assert!(
        divergence.other_does.contains("wait_unfrozen pagefault"),
        "{divergence:?}"
    );
    // --exit-code: 1 when a cell changed.
    let (code, _, _) = run_in(repo.path(), &[&args[..], &["--exit-code"]].concat());
    assert_eq!(code, 1);
    // A directory on disk is a side too; the working tree equals HEAD.
    let (code, stdout, _) = run_in(
        repo.path(),
        &["diff", "HEAD:policies", "policies", "--scenario", "case1-racing"],
    );
    assert_eq!(code, 0);
    assert!(stdout.contains("no cell changed (1 compared)"), "{stdout}");
    let (code, _, _) = run_in(
        repo.path(),
        &[
            "diff",
            "HEAD:policies",
            "policies",
            "--scenario",
            "case1-racing",
            "--exit-code",
        ],
    );
    assert_eq!(code, 0, "nothing changed");
}

#[test]
fn diff_of_two_policies_and_of_two_json_matrices() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &["diff", "mainline", "no-block", "--scenario", "case3-after-freeze"],
    );
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!("diff_policies", stdout);
    for (file, policy) in [("old.json", "mainline"), ("new.json", "no-block")] {
        let (code, json, stderr) = run_in(
            dir.path(),
            &[
                "matrix",
                "--exhaustive",
                "--policy",
                policy,
                "--scenario",
                "case3-after-freeze",
                "--format",
                "json",
            ],
        );
        assert_eq!(code, 0, "{stderr}");
        // Same row name on both sides, so the cells match.
        std::fs::write(dir.path().join(file), json.replace(policy, "p")).unwrap();
    }
    let (code, stdout, stderr) = run_in(dir.path(), &["diff", "old.json", "new.json"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("p × case3-after-freeze\n  + frozen-write (bad)"),
        "{stdout}"
    );
    // Mixed kinds are a usage error.
    let (code, _, stderr) = run_in(dir.path(), &["diff", "old.json", "mainline"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("both sides must be of one kind"), "{stderr}");
}

#[test]
fn the_pull_request_script_comments_on_two_revisions() {
    let repo = two_revisions();
    let script = crate::support::root().join("scripts/pr-diff.sh");
    let binary = assert_cmd::cargo::cargo_bin("freezefuzz");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .args(["HEAD~1", "HEAD", "policies"])
        .current_dir(repo.path())
        .env("FREEZEFUZZ", &binary)
        .output()
        .expect("bash runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let comment = String::from_utf8(output.stdout).unwrap();
    // The changed cell, marked, and the explanation folded away.
    assert!(
        comment.contains("| mine × case1-after-freeze |  | ✅ **frozen-write** |"),
        "{comment}"
    );
    assert!(
        comment.contains("<details>") && comment.contains("wait_unfrozen pagefault"),
        "{comment}"
    );
    assert!(comment.contains("`freezefuzz diff "), "{comment}");
    // The workflow in docs/ci calls this script with the pull request's base and head.
    let workflow = std::fs::read_to_string(crate::support::root().join("docs/ci/freezefuzz-pr.yml")).unwrap();
    assert!(
        workflow.contains("scripts/pr-diff.sh \"${{ github.event.pull_request.base.sha }}\""),
        "{workflow}"
    );
    assert!(
        workflow.contains("fetch-depth: 0"),
        "the base revision must be fetched"
    );
    // Bad usage is exit 2.
    let output = std::process::Command::new("bash")
        .arg(&script)
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}

/// Whether cargo-insta is installed (it is not needed: `--accept` does the same).
fn cargo_insta_available() -> bool {
    std::process::Command::new("cargo")
        .args(["insta", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The "done when", as a user outside the checkout does it with the
/// installed binary: a policy extending mainline, its snapshot, a change,
/// the diff with the diverging step, and the review.
#[test]
fn a_policy_change_is_reviewed_from_any_repository() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    git(dir, &["init", "-q"]);
    std::fs::create_dir(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/mine.ff"), MINE).unwrap();
    let snapshot = [
        "snapshot",
        "snapshots",
        "-f",
        "policies/mine.ff",
        "--policy",
        "mine",
    ];
    let (code, _, stderr) = run_in(dir, &[&snapshot[..], &["--accept"]].concat());
    assert_eq!(code, 0, "{stderr}");
    git(dir, &["add", "."]);
    git(dir, &["commit", "-qm", "mine and its snapshot"]);

    // The change: page_mkwrite now waits for the thaw.
    std::fs::write(
        dir.join("policies/mine.ff"),
        MINE.replace("lock_page;", "wait_unfrozen pagefault;\n        lock_page;"),
    )
    .unwrap();
    let (code, stdout, _) = run_in(dir, &snapshot);
    assert_eq!(code, 1, "the snapshot changed");
    assert!(stdout.contains("(removed: frozen-write)"), "{stdout}");
    let pending = dir.join("snapshots/freezefuzz__mine.snap.new");
    assert!(pending.exists());

    // The diff against the last commit names where the runs part.
    let (code, diff, stderr) = run_in(dir, &["diff", "HEAD:policies", "policies"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        diff.contains("under policies it cannot move: it is blocked at `wait_unfrozen pagefault`"),
        "{diff}"
    );

    // Accept: with cargo-insta when it is installed, else with --accept.
    if cargo_insta_available() {
        let output = std::process::Command::new("cargo")
            .args(["insta", "accept", "--workspace-root", "snapshots"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    } else {
        let (code, _, stderr) = run_in(dir, &[&snapshot[..], &["--accept"]].concat());
        assert_eq!(code, 0, "{stderr}");
    }
    assert!(!pending.exists());
    let (code, _, stderr) = run_in(dir, &snapshot);
    assert_eq!(code, 0, "accepted: {stderr}");
}

/// docs/json.md's "modes" column says which fields each mode writes; the
/// JSON of both modes is checked against it.
#[test]
fn json_docs_mark_each_field_with_the_modes_that_write_it() {
    let docs = std::fs::read_to_string(crate::support::root().join("docs/json.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let json = |args: &[&str]| -> serde_json::Value {
        let (code, stdout, stderr) = run_in(dir.path(), args);
        assert_eq!(code, 0, "{stderr}");
        serde_json::from_str(&stdout).unwrap()
    };
    let cell = [
        "--policy",
        "no-block",
        "--scenario",
        "case3-after-freeze",
        "--format",
        "json",
    ];
    let random = json(&[&["matrix", "--runs", "300"][..], &cell].concat());
    let exhaustive = json(&[&["matrix", "--exhaustive"][..], &cell].concat());
    // The rows of a section's table: (field names, modes).
    let rows = |heading: &str| -> Vec<(Vec<String>, String)> {
        let section = docs
            .split(heading)
            .nth(1)
            .expect("section")
            .split("\n## ")
            .next()
            .unwrap();
        section
            .lines()
            .filter(|l| l.starts_with("| `"))
            .map(|l| {
                let cols: Vec<&str> = l.split('|').map(str::trim).collect();
                let names = cols[1]
                    .split(',')
                    .map(|n| n.trim().trim_matches('`').to_string())
                    .collect();
                (names, cols[2].to_string())
            })
            .collect()
    };
    let check = |heading: &str, pick: &dyn Fn(&serde_json::Value) -> serde_json::Value| {
        for (names, modes) in rows(heading) {
            for name in names {
                for (mode, doc) in [("random", &random), ("exhaustive", &exhaustive)] {
                    let present = pick(doc).get(&name).is_some();
                    let documented = modes == "both" || modes == mode;
                    // Optional fields (absent when empty) may be missing; a
                    // field written in a mode the docs exclude is the bug.
                    assert!(
                        documented || !present,
                        "docs/json.md {heading}: `{name}` is marked `{modes}` but {mode} output has it"
                    );
                }
            }
        }
    };
    check("## A cell", &|d| d["cells"][0].clone());
    check("## A witness", &|d| {
        d["cells"][0]["witnesses"]["frozen-write"].clone()
    });
    check("## `campaign`", &|d| d["campaign"].clone());
}

/// Every document stands alone: each `*.md` it names exists in the repository.
#[test]
fn docs_cite_only_files_in_the_repository() {
    let root = crate::support::root();
    let mut docs = vec![root.join("README.md"), root.join("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        for word in text.split(|c: char| c.is_whitespace() || "()[]`'\",;".contains(c)) {
            let Some(name) = word
                .strip_suffix(".md")
                .or_else(|| word.split_once(".md#").map(|(n, _)| n))
            else {
                continue;
            };
            if name.is_empty() || name.starts_with("http") || name.contains('*') {
                continue;
            }
            let file = format!("{name}.md");
            let found = [
                doc.parent().unwrap().join(&file),
                root.join(&file),
                root.join("docs").join(&file),
            ]
            .iter()
            .any(|p| p.exists());
            assert!(
                found,
                "{} cites {file}, which is not in the repository",
                doc.display()
            );
        }
    }
}

/// A random witness prints a seed (the run as drawn) and a shrunk schedule:
/// the text says which is which, never the shrunk length beside the seed.
#[test]
fn a_witness_says_its_seed_replays_the_run_before_shrinking() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "run",
            "no-block",
            "case4-racing",
            "--runs",
            "500",
            "--coverage-states",
            "0",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let seed_line = stdout
        .lines()
        .find(|l| l.contains("seed 0x"))
        .expect("a witness seed line");
    assert!(seed_line.contains("replays that run as drawn"), "{stdout}");
    assert!(
        !seed_line.contains("steps"),
        "the seed's line must not carry the shrunk length: {seed_line}"
    );
    let schedule_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("schedule:"))
        .unwrap();
    assert!(schedule_line.contains("that run shrunk"), "{schedule_line}");
}

/// The HTML page's header carries the campaign (seed, runs), and a witness
/// that shrinking could not shorten does not claim it shrank.
#[test]
fn the_html_header_names_the_campaign() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_in(
        dir.path(),
        &[
            "run",
            "no-block",
            "case3-after-freeze",
            "--runs",
            "300",
            "--seed",
            "7",
            "--html",
            "r.html",
            "--coverage-states",
            "0",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let page = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(page.contains("seed 7") && page.contains("300 runs"), "{page}");
    let note = freezefuzz::report::html::shrink_note("frozen-write", "run 3", (15, 2), (15, 2));
    assert!(!note.contains("shrunk from 15 to 15"), "{note}");
    assert!(note.contains("found nothing shorter"), "{note}");
    for line in page.lines().filter(|l| l.contains("shrunk from")) {
        let numbers: Vec<&str> = line
            .split("shrunk from ")
            .nth(1)
            .unwrap()
            .split(" steps")
            .next()
            .unwrap()
            .split(" to ")
            .collect();
        assert_ne!(numbers[0], numbers[1], "{line}");
    }
}

/// `--expect` against a file made with other oracles says so first.
#[test]
fn expect_names_an_oracle_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let cell = [
        "--exhaustive",
        "--policy",
        "no-block",
        "--scenario",
        "case3-racing",
    ];
    let (code, json, stderr) = run_in(
        dir.path(),
        &[
            &["matrix"][..],
            &cell,
            &["--oracle", "dirty-at-freeze", "--format", "json"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(dir.path().join("expected.json"), json).unwrap();
    let (code, _, stderr) = run_in(
        dir.path(),
        &[&["matrix"][..], &cell, &["--expect", "expected.json"]].concat(),
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "the expectation was made with --oracle dirty-at-freeze, this run with the standard oracles only"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("regenerate"), "{stderr}");
}

/// A thread blocked inside an inlined named body: the `blocked:` line names
/// the hook's call of the body, then the body's line.
#[test]
fn a_blocked_line_in_a_named_body_points_at_the_call_site() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_in(
        dir.path(),
        &[
            "replay",
            "no-block",
            "case1-after-freeze",
            "--schedule",
            "freezer*5 user*3",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    // no-block.ff:36 calls `journal_start`, whose `wait_unfrozen fs` is line 12.
    assert!(
        stdout.contains("blocked: user at wait_unfrozen fs (<shipped>/no-block.ff:36, in a body at <shipped>/no-block.ff:12)"),
        "{stdout}"
    );
}

/// A snapshot whose policy is gone is reported, and removed by --accept.
#[test]
fn an_obsolete_snapshot_is_reported_and_removed_on_accept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.ff"), MINE).unwrap();
    let args = ["snapshot", "s", "-f", "mine.ff", "--no-shipped", "-f", "one.ff"];
    std::fs::write(
        dir.path().join("one.ff"),
        "scenario solo { page a { cached; buffers = mapped; pte = readonly; }\n thread user { store a 2; munmap a; }\n thread freezer { freeze; thaw; }\n flusher; }\n",
    )
    .unwrap();
    let (code, _, stderr) = run_in(dir.path(), &[&args[..], &["--accept"]].concat());
    assert_eq!(code, 0, "{stderr}");
    std::fs::write(
        dir.path().join("s/freezefuzz__gone.snap"),
        "---\nsource: x\n---\nold\n",
    )
    .unwrap();
    let (code, stdout, _) = run_in(dir.path(), &args);
    assert_eq!(code, 1);
    assert!(stdout.contains("obsolete s/freezefuzz__gone.snap"), "{stdout}");
    let (code, _, _) = run_in(dir.path(), &[&args[..], &["--accept"]].concat());
    assert_eq!(code, 0);
    assert!(!dir.path().join("s/freezefuzz__gone.snap").exists());
    assert!(dir.path().join("s/freezefuzz__mine.snap").exists());
}

/// The table fits COLUMNS: a grid when it fits, a list when it does not;
/// bad outcomes in colour only when asked (or on a terminal without NO_COLOR).
#[test]
fn the_table_fits_the_width_and_colours_bad_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "matrix",
        "--exhaustive",
        "--policy",
        "mainline",
        "--policy",
        "no-block",
        "--scenario",
        "case1-racing",
        "--scenario",
        "case3-racing",
    ];
    let narrow = freezefuzz_in(dir.path())
        .args(args)
        .env("COLUMNS", "40")
        .output()
        .unwrap();
    let narrow = String::from_utf8(narrow.stdout).unwrap();
    insta::assert_snapshot!("table_narrow", narrow);
    let wide = freezefuzz_in(dir.path())
        .args(args)
        .env("COLUMNS", "200")
        .output()
        .unwrap();
    let wide = String::from_utf8(wide.stdout).unwrap();
    assert!(wide.contains("policy   │ case1-racing"), "{wide}");
    assert!(wide.contains("@N: a shortest schedule"), "{wide}");
    assert!(!wide.contains('\x1b'), "no colour in a pipe by default");
    let coloured = freezefuzz_in(dir.path())
        .args(args)
        .arg("--color=always")
        .output()
        .unwrap();
    let coloured = String::from_utf8(coloured.stdout).unwrap();
    assert!(coloured.contains("\x1b[1;31mfrozen-write@"), "{coloured}");
    let never = freezefuzz_in(dir.path())
        .args(args)
        .arg("--color=never")
        .output()
        .unwrap();
    assert!(!String::from_utf8(never.stdout).unwrap().contains('\x1b'));
}

#[test]
fn completions_and_man_page_come_from_the_clap_definition() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let (code, stdout, stderr) = run_in(dir.path(), &["completions", shell]);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            stdout.contains("snapshot") && stdout.contains("max-steps"),
            "{shell}"
        );
    }
    let (code, man, stderr) = run_in(dir.path(), &["man"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        man.contains(".TH freezefuzz 1") && man.contains("snapshot"),
        "{man}"
    );
    // Old spellings still work.
    let (code, _, stderr) = run_in(
        dir.path(),
        &[
            "run",
            "mainline",
            "case1-racing",
            "--runs",
            "10",
            "--steps-max",
            "500",
            "--coverage-states",
            "0",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
}
