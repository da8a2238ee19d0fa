//! Schedules with labels, shrinking, the corpus and the pictures.

use assert_cmd::Command;
use proptest::prelude::*;

use freezefuzz::engine::exec::Choice;
use freezefuzz::engine::run;
use freezefuzz::engine::schedule::{self, ScheduledStep};
use freezefuzz::engine::shrink;
use freezefuzz::oracle::{OracleSet, Outcome};
use freezefuzz::report::{html, svg};

use crate::support;

fn freezefuzz() -> Command {
    let mut cmd = Command::cargo_bin("freezefuzz").expect("the binary is built");
    cmd.current_dir(support::root());
    cmd
}

const NAMES: [&str; 4] = ["user", "freezer", "flusher", "user2-b_c"];

fn label_strategy() -> impl Strategy<Value = String> {
    // Words of label characters joined by single spaces: labels as printed.
    prop::collection::vec("[a-z0-9_:=>!*.#-]{1,6}", 1..4).prop_map(|words| words.join(" "))
}

fn steps_strategy() -> impl Strategy<Value = Vec<ScheduledStep>> {
    let step = (
        0u8..4,
        1usize..5,
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(label_strategy(), 4),
    );
    prop::collection::vec(step, 0..12).prop_map(|runs| {
        let mut steps = Vec::new();
        for (thread, count, fire, labelled, labels) in runs {
            let count = if fire { 1 } else { count };
            for label in labels.into_iter().take(count) {
                steps.push(ScheduledStep {
                    choice: Choice { thread, fire },
                    label: labelled.then_some(label),
                });
            }
        }
        steps
    })
}

/// Back from parsed steps to moves, by the fixed name table.
fn moves(text: &str) -> Vec<ScheduledStep> {
    let mut out = Vec::new();
    for step in schedule::parse(text).expect("printed schedules parse") {
        let thread = NAMES.iter().position(|n| *n == step.thread).expect("known name") as u8;
        for i in 0..step.count as usize {
            out.push(ScheduledStep {
                choice: Choice {
                    thread,
                    fire: step.fire,
                },
                label: step.labels.get(i).cloned(),
            });
        }
    }
    out
}

proptest! {
    /// print → parse → print is the identity, labels or not.
    #[test]
    fn schedule_strings_round_trip(steps in steps_strategy()) {
        let text = schedule::format_steps(&NAMES, &steps);
        let back = moves(&text);
        prop_assert_eq!(&back, &steps);
        prop_assert_eq!(schedule::format_steps(&NAMES, &back), text);
    }

    /// Any text at all gives steps or a clean error with a column, never a panic.
    #[test]
    fn any_text_parses_or_fails_cleanly(text in "[a-z*!\\[\\]| 0-9\\t\\n_-]{0,40}") {
        match schedule::parse(&text) {
            Ok(_) => {}
            Err(e) => prop_assert!(e.to_string().starts_with("schedule column "), "{}", e),
        }
    }
}

#[test]
fn a_stale_label_says_which_step_and_why() {
    let program = &support::shipped_cell("no-block", "case3-after-freeze");
    let steps = schedule::resolve_labelled(program, "freezer*2[lock umount write|set_level fs]").unwrap();
    let fit = schedule::fit(program, &steps);
    assert_eq!(fit.fitting.len(), 1);
    assert_eq!(
        fit.error.unwrap().to_string(),
        "step 2: the schedule expects `freezer[set_level fs]`, but `freezer` is at `set_level write` (freeze)"
    );
    // Labels printed by format_labelled fit the program they came from.
    let choices = schedule::resolve(program, "freezer*6 user*5 flusher*6").unwrap();
    let text = schedule::format_labelled(program, &choices);
    let fit = schedule::fit(program, &schedule::resolve_labelled(program, &text).unwrap());
    assert_eq!((fit.fitting, fit.error), (choices, None));
}

#[test]
fn replay_continue_random_finishes_a_stale_schedule() {
    let output = freezefuzz()
        .args([
            "replay",
            "no-block",
            "case3-after-freeze",
            "--schedule",
            "freezer*2[lock umount write|set_level fs] user",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("step 2: the schedule expects `freezer[set_level fs]`"),
        "{stderr}"
    );
    let output = freezefuzz()
        .args([
            "replay",
            "no-block",
            "case3-after-freeze",
            "--schedule",
            "freezer*2[lock umount write|set_level fs] user",
            "--continue-random",
            "7",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("end: no thread can move"), "{stdout}");
}

/// Every bad witness of the exhaustive matrix shrinks to a schedule that is
/// no larger, still reaches its outcome, and is the same when shrunk again.
#[test]
fn shrinking_keeps_the_outcome_and_is_a_fixpoint() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let oracles = OracleSet::standard();
    for program in &programs {
        let found = freezefuzz::engine::explore::explore(program, &oracles, &Default::default());
        for outcome in Outcome::ALL
            .into_iter()
            .filter(|o| o.is_bad() && *o != Outcome::StepLimit)
        {
            let Some(shortest) = &found.shortest[outcome as usize] else {
                continue;
            };
            let shrunk = shrink::shrink(program, &oracles, &shortest.choices, outcome, 1000).unwrap();
            assert!(
                shrunk.after <= shrunk.before,
                "{} {}",
                program.policy,
                program.scenario
            );
            let (result, _) = run::replay(program, &oracles, &shrunk.choices, 1000).unwrap();
            assert!(result.outcomes.contains(outcome));
            let again = shrink::shrink(program, &oracles, &shrunk.choices, outcome, 1000).unwrap();
            assert_eq!(again.choices, shrunk.choices);
        }
    }
}

#[test]
fn shrink_command_prints_before_and_after() {
    let output = freezefuzz()
        .args([
            "shrink",
            "no-block",
            "case3-after-freeze",
            "--schedule",
            "freezer*5 user*4 freezer user*2 flusher*9 freezer*3",
            "--outcome",
            "frozen-write",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    insta::assert_snapshot!("shrink_no_block_case3", stdout);
}

/// The shipped corpus replays to its recorded outcomes.
#[test]
fn corpus_check_passes() {
    let output = freezefuzz().args(["corpus", "check"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("0 changed, 0 unreadable"), "{stdout}");
}

#[test]
fn corpus_check_reports_changes_and_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let entry = std::fs::read_to_string(
        support::root().join("corpus/no-block--case3-after-freeze--frozen-write.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("changed.toml"),
        entry.replace("frozen-write\"]", "safe\"]"),
    )
    .unwrap();
    let dir_arg = dir.path().display().to_string();
    let output = freezefuzz()
        .args(["corpus", "check", "--dir", &dir_arg])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("- expected: safe\n+ got:      frozen-write"),
        "{stdout}"
    );
    std::fs::write(dir.path().join("broken.toml"), "format = 1\npolicy = [\n").unwrap();
    let output = freezefuzz()
        .args(["corpus", "check", "--dir", &dir_arg])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.toml:2:11: unclosed array"), "{stderr}");
}

#[test]
fn save_is_deduplicated() {
    let dir = tempfile::tempdir().unwrap();
    let dir_arg = dir.path().display().to_string();
    let args = [
        "run",
        "no-block",
        "case3-after-freeze",
        "--runs",
        "2000",
        "--save",
        "--corpus-dir",
        &dir_arg,
    ];
    assert!(freezefuzz().args(args).output().unwrap().status.success());
    // Entries only: the save's lock file (`.freezefuzz.lock`) is not one.
    let entries = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "toml")
            })
            .count()
    };
    assert_eq!(entries(), 1);
    assert!(freezefuzz().args(args).output().unwrap().status.success());
    assert_eq!(entries(), 1);
    let output = freezefuzz()
        .args(["corpus", "check", "--dir", &dir_arg])
        .output()
        .unwrap();
    assert!(output.status.success());
}

/// A small well-formedness check: every tag is closed in order, attributes
/// are quoted, and entities are known.
pub fn assert_well_formed(text: &str) {
    let mut stack: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let between = &rest[..open];
        for (i, _) in between.match_indices('&') {
            let entity = &between[i..between[i..].find(';').map_or(between.len(), |e| i + e + 1)];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"].contains(&entity),
                "unknown entity {entity}"
            );
        }
        let close = rest[open..].find('>').expect("every tag closes") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if tag.starts_with('!') || tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
            continue;
        }
        assert_eq!(tag.matches('"').count() % 2, 0, "unbalanced quotes in <{tag}>");
        let name: String = tag
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '/')
            .collect();
        if !tag.ends_with('/') && name != "meta" {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed tags: {stack:?}");
}

fn witness_svg() -> String {
    let program = &support::shipped_cell("block-on-mapped", "case1-racing");
    let choices = schedule::resolve(program, "freezer*3 user*7 freezer*3 flusher*3").unwrap();
    let (result, steps) = run::replay(program, &OracleSet::standard(), &choices, 1000).unwrap();
    svg::render(program, &steps, &result)
}

#[test]
fn svg_is_well_formed_and_stable() {
    let svg = witness_svg();
    assert_well_formed(&svg);
    insta::assert_snapshot!("svg_block_on_mapped_case1_racing_deadlock", svg);
}

#[test]
fn html_report_is_self_contained_and_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("matrix.html");
    let output = freezefuzz()
        .args(["matrix", "--exhaustive", "--html", &path.display().to_string()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let page = std::fs::read_to_string(&path).unwrap();
    assert_well_formed(&page);
    assert!(
        !page.contains("http://")
            || page.matches("http://").count()
                == page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(!page.contains("https://") && !page.contains("<script"));
    // One picture per bad (cell, outcome) of the same matrix.
    let json = freezefuzz()
        .args(["matrix", "--exhaustive", "--format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let witnesses: usize = report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["witnesses"].as_object().map_or(0, |w| w.len()))
        .sum();
    assert!(witnesses > 0);
    assert_eq!(
        page.matches("<svg ").count(),
        witnesses,
        "one picture per bad (cell, outcome)"
    );
    // The renderer alone, on an empty matrix, is well formed too.
    let _ = html::render;
}

/// Opt-in (`FREEZEFUZZ_BROWSER_TESTS=1`): renders the HTML page in headless
/// Chromium (installed with apt-get if missing) and checks the screenshot.
#[test]
fn html_report_renders_in_a_browser() {
    if std::env::var("FREEZEFUZZ_BROWSER_TESTS").as_deref() != Ok("1") {
        return;
    }
    let chromium = std::path::Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        let status = std::process::Command::new("apt-get")
            .args(["install", "-y", "chromium"])
            .status()
            .expect("apt-get runs");
        assert!(status.success(), "apt-get install chromium failed");
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("matrix.html");
    let shot = dir.path().join("shot.png");
    let profile = tempfile::tempdir().unwrap();
    let output = freezefuzz()
        .args(["matrix", "--exhaustive", "--html", &page.display().to_string()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let status = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1400,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .status()
        .expect("chromium runs");
    assert!(status.success());
    let png = std::fs::read(&shot).expect("a screenshot was written");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "an empty screenshot"
    );
}
