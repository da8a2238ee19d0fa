//! Swarm mode (`freezefuzz swarm`, issue #13): what members find is reachable
//! and replays, a known bad outcome is found, the output does not depend on
//! `--jobs` or on a `--shard` split once merged, bad flags are clean errors,
//! and an interrupt stops it with partial output.

use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use freezefuzz::engine::campaign::Shard;
use freezefuzz::engine::explore::{self, ExploreLimits};
use freezefuzz::engine::program::{self, Program};
use freezefuzz::engine::run;
use freezefuzz::engine::swarm::{self, Swarm, SwarmConfig};
use freezefuzz::oracle::{OracleSet, Outcome, Outcomes};

use crate::support;

const TIMEOUT: Duration = Duration::from_secs(180);

fn freezefuzz() -> Command {
    let mut cmd = Command::cargo_bin("freezefuzz").expect("the binary is built");
    cmd.current_dir(support::root()).timeout(TIMEOUT);
    cmd
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

fn config(members: u32) -> SwarmConfig {
    SwarmConfig {
        seed: 1,
        members,
        states_max: 1_000_000,
        bits: 1 << 20,
        hashes: 3,
        depth_max: 1000,
        steps_max: 1000,
        symmetry: true,
        shrink: false,
        shard: Shard::WHOLE,
        jobs: 1,
    }
}

fn run_swarm(program: &Program, config: &SwarmConfig) -> Swarm {
    swarm::swarm(program, &OracleSet::standard(), config, &AtomicBool::new(false))
}

fn union(swarm: &Swarm) -> Outcomes {
    swarm
        .members
        .iter()
        .fold(Outcomes::default(), |all, m| all.union(m.outcomes()))
}

/// Every witness of every member replays to its outcome.
#[track_caller]
fn assert_witnesses_replay(program: &Program, swarm: &Swarm, steps_max: u32) {
    let oracles = OracleSet::standard();
    for m in &swarm.members {
        for outcome in m.outcomes().iter() {
            let w = m.witnesses[outcome as usize].as_ref().expect("found");
            let (result, _) = run::replay(program, &oracles, &w.choices, steps_max).expect("fits");
            assert!(
                result.outcomes.contains(outcome),
                "{} × {} member {}: the witness of {} replays to {}",
                program.policy,
                program.scenario,
                m.index,
                outcome.name(),
                result.outcomes
            );
        }
    }
}

/// The test that can fail: no-block's race is found by every member, with a
/// shrunk witness that replays; mainline, which has no race there, never
/// shows one.
#[test]
fn members_find_no_block_frozen_write_and_not_mainlines() {
    let config = SwarmConfig {
        shrink: true,
        ..config(3)
    };
    let program = support::shipped_cell("no-block", "case3-racing");
    let found = run_swarm(&program, &config);
    assert_eq!(found.members.len(), 3);
    for m in &found.members {
        let w = m.witnesses[Outcome::FrozenWrite as usize]
            .as_ref()
            .unwrap_or_else(|| panic!("member {} missed frozen-write", m.index));
        assert!(
            w.choices.len() as u32 <= w.found_steps,
            "shrinking never lengthens"
        );
    }
    assert_witnesses_replay(&program, &found, config.steps_max);
    let mainline = run_swarm(&support::shipped_cell("mainline", "case3-racing"), &config);
    assert!(!union(&mainline).contains(Outcome::FrozenWrite));
    assert!(union(&mainline).contains(Outcome::Safe));
}

/// On every shipped cell, with roomy and with tiny bit arrays (many
/// omissions) and with short depth bounds (many cuts), the members' outcomes
/// are outcomes the exact search reaches; and a member that stored as many
/// states as the exact search counts, with no cut, has visited them all and
/// found exactly the exact outcomes.
#[test]
fn swarm_outcomes_are_a_subset_of_the_exact_outcomes() {
    let workspace = support::shipped();
    let mut programs = support::shipped_programs(&workspace);
    // And a generated family with interchangeable users (canonical states,
    // lost-write's "last value stored" permuted with them).
    let mut text: String = support::shipped_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("reads") + "\n")
        .collect();
    text += "scenario p1-u2-c2 {
            page p0 { cached; buffers = mapped; pte = readonly; }
            thread user0 { store p0 2; munmap p0; }
            thread user1 { store p0 3; munmap p0; }
            thread freezer { freeze; thaw; freeze; thaw; }
            flusher;
        }
        scenario p2-u3-c1 {
            page p0 { cached; buffers = mapped; pte = readonly; }
            page p1 { cached; }
            thread user0 { store p0 2; store p1 2; munmap p0; munmap p1; }
            thread user1 { store p0 3; store p1 3; munmap p0; munmap p1; }
            thread user2 { store p0 4; store p1 4; munmap p0; munmap p1; }
            thread freezer { freeze; thaw; }
            flusher;
        }";
    let family = freezefuzz::dsl::load_str("family.ff", &text).expect("the family loads");
    for scenario in ["p1-u2-c2", "p2-u3-c1"] {
        for policy in ["skip-frozen", "no-block", "sigbus"] {
            let policy = family.policy(policy).expect("a policy");
            programs.push(
                program::compile(policy, family.scenario(scenario).expect("scenario")).expect("compiles"),
            );
        }
    }
    let oracles = OracleSet::standard();
    let configs = [
        config(2),
        SwarmConfig {
            bits: 1 << 9,
            hashes: 1,
            ..config(2)
        },
        SwarmConfig {
            depth_max: 14,
            ..config(2)
        },
        SwarmConfig {
            symmetry: false,
            seed: 7,
            ..config(1)
        },
    ];
    let mut complete_members = 0;
    let mut partial_members = 0;
    for program in &programs {
        let exact = explore::explore(program, &oracles, &ExploreLimits::default());
        assert!(exact.complete());
        for config in &configs {
            let found = run_swarm(program, config);
            let cell = format!("{} × {}", program.policy, program.scenario);
            for m in &found.members {
                let outcomes = m.outcomes();
                assert_eq!(
                    outcomes.union(exact.outcomes),
                    exact.outcomes,
                    "{cell}: member {} found {outcomes}, the exact search {}",
                    m.index,
                    exact.outcomes
                );
                if !config.symmetry {
                    // It counts the full graph, the exact search the reduced one.
                    continue;
                }
                // Each state stored is a distinct reachable (canonical) state.
                assert!(m.states <= exact.states, "{cell}: member {}", m.index);
                if m.states == exact.states && m.depth_cuts == 0 && m.limit.is_none() {
                    assert_eq!(outcomes, exact.outcomes, "{cell}: a complete member");
                    complete_members += 1;
                } else {
                    partial_members += 1;
                }
            }
            assert_witnesses_replay(program, &found, config.steps_max);
        }
    }
    // Both kinds were seen: the tiny arrays and short bounds did cut.
    assert!(complete_members > 50, "{complete_members}");
    assert!(partial_members > 50, "{partial_members}");
}

/// An endless run (a writeback that never cleans: the flusher wakes
/// forever) is found as a cycle on the search's path, and a run past a tight
/// budget as a path that reaches it; both witnesses replay to step-limit.
#[test]
fn step_limit_is_found_and_replays() {
    let workspace = support::with_standard(
        "policy spin {
            freeze { lock umount write; set_level complete; unlock umount; }
            page_mkwrite { lock_page; }
            writeback { skip; }
        }",
    );
    let program = program::compile(
        workspace.policy("spin").expect("spin"),
        workspace.scenario("case4-racing").expect("case4-racing"),
    )
    .expect("compiles");
    let endless = SwarmConfig {
        steps_max: 200,
        depth_max: 200,
        ..config(2)
    };
    let found = run_swarm(&program, &endless);
    for m in &found.members {
        let w = m.witnesses[Outcome::StepLimit as usize]
            .as_ref()
            .unwrap_or_else(|| panic!("member {} missed the endless run", m.index));
        let (replayed, _) = run::replay(&program, &OracleSet::standard(), &w.choices, 200).expect("fits");
        assert!(replayed.step_limit);
    }
    let tight = SwarmConfig {
        steps_max: 5,
        ..config(1)
    };
    let program = support::shipped_cell("no-block", "case3-racing");
    let found = run_swarm(&program, &tight);
    assert_eq!(union(&found), {
        let mut only = Outcomes::default();
        only.insert(Outcome::StepLimit);
        only
    });
    assert_witnesses_replay(&program, &found, 5);
}

/// A different seed gives members different seeds, depth bounds and orders.
#[test]
fn members_are_diversified_by_their_seeds() {
    let program = support::shipped_cell("no-block", "case4-racing");
    let found = run_swarm(&program, &config(4));
    let mut seeds: Vec<u64> = found.members.iter().map(|m| m.seed).collect();
    seeds.dedup();
    assert_eq!(seeds.len(), 4);
    let bounds: Vec<u32> = found.members.iter().map(|m| m.depth_bound).collect();
    assert!(bounds.iter().all(|b| (500..=1000).contains(b)), "{bounds:?}");
    assert!(bounds.windows(2).any(|w| w[0] != w[1]), "{bounds:?}");
    // Members share no order: their first witnesses (unshrunk) differ.
    let witnesses: Vec<_> = found
        .members
        .iter()
        .map(|m| {
            m.witnesses[Outcome::Safe as usize]
                .as_ref()
                .map(|w| w.choices.clone())
        })
        .collect();
    assert!(witnesses.windows(2).any(|w| w[0] != w[1]));
    assert_eq!(
        swarm::member_seed(1, "no-block", "case4-racing", 2),
        found.members[2].seed
    );
}

const SMALL: &[&str] = &[
    "swarm",
    "no-block",
    "case3-racing",
    "--members",
    "5",
    "--max-memory",
    "1",
];

fn with(extra: &[&str]) -> Vec<String> {
    SMALL.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn stdout_of_owned(args: &[String]) -> String {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stdout_of(&args)
}

/// What a user sees, on a small cell: the members, the coverage figures,
/// the finding with its replay command, and the line that says this is no
/// proof.
#[test]
fn swarm_text_output() {
    let text = stdout_of_owned(&with(&["-j", "2"]));
    assert!(text.contains("NOT A PROOF"), "{text}");
    insta::assert_snapshot!("swarm_no_block_case3_racing", text);
}

#[test]
fn json_says_the_result_is_not_exhaustive() {
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of_owned(&with(&["--format", "json"]))).expect("JSON");
    assert_eq!(json["schema"], "freezefuzz-swarm/1");
    assert_eq!(json["exhaustive"], false);
    assert_eq!(json["members"].as_array().expect("members").len(), 5);
    assert!(json["summary"]["witnesses"]["frozen-write"]["replay"].is_string());
}

#[test]
fn output_is_byte_identical_for_any_jobs() {
    let one = stdout_of_owned(&with(&["--format", "json", "-j", "1"]));
    let two = stdout_of_owned(&with(&["--format", "json", "-j", "2"]));
    let four = stdout_of_owned(&with(&["--format", "json", "-j", "4"]));
    assert_eq!(one, two);
    assert_eq!(one, four);
}

/// Shards run members K, K+N, …; merged, they give the unsharded document
/// byte for byte (JSON and text), in any order; some shards only merge
/// into a partial result; shards of another swarm are refused.
#[test]
fn shards_merge_into_the_unsharded_result() {
    let dir = tempfile::tempdir().expect("tempdir");
    let whole = stdout_of_owned(&with(&["--format", "json"]));
    let mut paths = Vec::new();
    for k in 0..3 {
        let shard = format!("{k}/3");
        let text = stdout_of_owned(&with(&["--format", "json", "--shard", &shard]));
        let members: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        let indices: Vec<u64> = members["members"]
            .as_array()
            .expect("members")
            .iter()
            .map(|m| m["index"].as_u64().expect("index"))
            .collect();
        let expected: Vec<u64> = (k..5).step_by(3).collect();
        assert_eq!(indices, expected, "shard {shard}");
        let path = dir.path().join(format!("s{k}.json"));
        std::fs::write(&path, text).expect("writes");
        paths.push(path.display().to_string());
    }
    let merged = stdout_of(&["merge", &paths[2], &paths[0], &paths[1]]);
    assert_eq!(merged, whole);
    let merged_text = stdout_of(&["merge", &paths[0], &paths[1], &paths[2], "--format", "table"]);
    assert_eq!(merged_text, stdout_of_owned(&with(&[])));

    let output = freezefuzz()
        .args(["merge", &paths[0], &paths[2]])
        .output()
        .expect("runs");
    assert!(output.status.success());
    let some: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(some["partial"], true);
    assert_eq!(some["shard"], "0+2/3");
    assert!(String::from_utf8_lossy(&output.stderr).contains("PARTIAL"));

    let other = dir.path().join("other.json");
    let text = stdout_of_owned(&with(&["--format", "json", "--shard", "1/3", "--seed", "2"]));
    std::fs::write(&other, text).expect("writes");
    let output = freezefuzz()
        .args(["merge", &paths[0], other.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("different swarm"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = freezefuzz()
        .args(["merge", &paths[0], &paths[0]])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));

    let matrix = dir.path().join("matrix.json");
    let text = stdout_of(&[
        "run",
        "no-block",
        "case3-racing",
        "--runs",
        "10",
        "--format",
        "json",
    ]);
    std::fs::write(&matrix, text).expect("writes");
    let output = freezefuzz()
        .args(["merge", &paths[0], matrix.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a swarm report"));
}

/// The printed replay command of each finding, run verbatim, reproduces it
/// (it carries `--expect`, so a miss exits 1).
#[test]
fn printed_replay_commands_reproduce() {
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "swarm",
        "sigbus",
        "case4-racing",
        "--members",
        "2",
        "--max-memory",
        "1",
        "--format",
        "json",
    ]))
    .expect("JSON");
    let witnesses = json["summary"]["witnesses"].as_object().expect("witnesses");
    assert!(witnesses.contains_key("frozen-write") && witnesses.contains_key("user-error"));
    let bin = assert_cmd::cargo::cargo_bin("freezefuzz");
    let path = format!(
        "{}:{}",
        bin.parent().expect("a directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (outcome, w) in witnesses {
        let command = w["replay"].as_str().expect("replay");
        assert!(command.ends_with(&format!("--expect {outcome}")), "{command}");
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("PATH", &path)
            .current_dir(support::root())
            .output()
            .expect("sh runs");
        assert!(
            output.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn bad_swarm_flags_are_clean_errors() {
    let cases: &[(&[&str], &str)] = &[
        (&["--members", "0"], "--members"),
        (&["--shard", "3/2"], "--shard"),
        (&["--members", "5", "--shard", "6/8"], "has no members"),
        (&["--max-memory", "0"], "--max-memory"),
        (
            &["--max-memory", "1048576", "-j", "64"],
            "lower --max-memory or --jobs",
        ),
        (&["--hashes", "0"], "--hashes"),
        (&["--hashes", "17"], "--hashes"),
        (&["--member-states", "0"], "--member-states"),
        (&["--max-depth", "0"], "--max-depth"),
        (&["--seed", "x"], "--seed"),
    ];
    for (extra, expected) in cases {
        let args: Vec<&str> = ["swarm", "no-block", "case3-racing"]
            .iter()
            .chain(*extra)
            .copied()
            .collect();
        let output = freezefuzz().args(&args).output().expect("runs");
        let err = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
    let output = freezefuzz()
        .args(["swarm", "no-block", "no-such-scenario"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
}

/// Ctrl-C stops a long swarm within seconds; what was found is printed,
/// marked partial, and it exits 130.
#[test]
fn an_interrupt_stops_a_swarm_with_partial_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scenario = dir.path().join("p3.ff");
    std::fs::write(
        &scenario,
        "scenario p3 {
            page p0 { cached; buffers = mapped; pte = readonly; }
            page p1 { cached; }
            page p2 { cached; buffers = mapped; pte = writable; dirty; }
            thread user0 { store p0 2; store p1 2; store p2 2; munmap p0; munmap p1; munmap p2; }
            thread user1 { store p0 3; store p1 3; store p2 3; munmap p0; munmap p1; munmap p2; }
            thread user2 { store p0 4; store p1 4; store p2 4; munmap p0; munmap p1; munmap p2; }
            thread freezer { freeze; thaw; freeze; thaw; }
            flusher;
        }",
    )
    .expect("writes");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("freezefuzz"))
        .current_dir(support::root())
        .args(["swarm", "no-block", "p3", "-f"])
        .arg(&scenario)
        .args(["--members", "4", "--member-states", "1000000000", "-j", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().expect("polls").is_none(),
        "ended before the signal"
    );
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let sent = Instant::now();
    let output = loop {
        if child.try_wait().expect("polls").is_some() {
            break child.wait_with_output().expect("output");
        }
        if sent.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("the swarm did not stop within 30 s of the interrupt");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(out.contains("PARTIAL") && out.contains("interrupted"), "{out}");
    assert!(out.contains("NOT A PROOF"), "{out}");
    assert!(err.contains("partial"), "{err}");
}
