//! Faults: each one changes the verdict (or the run) it should, and leaves
//! the shipped policies' verdicts alone where it should. The fault scenarios
//! live in `tests/data/faults/faults.ff`, so the default matrix keeps its
//! eight standard columns.

use std::sync::atomic::AtomicBool;

use freezefuzz::engine::campaign::{self, CampaignConfig, Shard};
use freezefuzz::engine::explore::{self, Exploration, ExploreLimits};
use freezefuzz::engine::program::{self, Program};
use freezefuzz::engine::run::{self, TraceStep};
use freezefuzz::engine::schedule;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::fault::{self, FaultKind};
use freezefuzz::ir::{self, Level, Workspace};
use freezefuzz::model::record;
use freezefuzz::oracle::{OracleSet, Outcome, Outcomes};

use crate::support;

/// The shipped policies plus the fault policies and scenarios.
fn workspace() -> Workspace {
    let mut files = support::shipped_files();
    files.retain(|f| !f.ends_with("standard.ff"));
    files.push(support::root().join("tests/data/faults/faults.ff"));
    freezefuzz::dsl::load(&files, &mut |p| std::fs::read(p))
        .unwrap_or_else(|e| panic!("fault files load: {e}"))
}

fn compile(workspace: &Workspace, policy: &str, scenario: &str) -> Program {
    let policy = workspace.policy(policy).expect("policy");
    let scenario = workspace.scenario(scenario).expect("scenario");
    program::compile(policy, scenario).expect("compiles")
}

fn exhaustive(program: &Program) -> Exploration {
    let result = explore::explore(program, &OracleSet::standard(), &ExploreLimits::default());
    assert!(result.complete(), "{} × {}", program.policy, program.scenario);
    result
}

fn set(outcomes: &[Outcome]) -> Outcomes {
    let mut set = Outcomes::default();
    for o in outcomes {
        set.insert(*o);
    }
    set
}

fn replay(program: &Program, text: &str) -> (run::RunResult, Vec<TraceStep>) {
    let choices = schedule::resolve(program, text).unwrap_or_else(|e| panic!("{text}: {e}"));
    run::replay(program, &OracleSet::standard(), &choices, 1000).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `io-error` + a policy that drops the page on error → lost-write; the
/// shipped no-block (submit without `else` redirties) keeps the data.
#[test]
fn io_error_with_drop_on_error_loses_the_write() {
    let ws = workspace();
    let drop = exhaustive(&compile(&ws, "drop-on-error", "case3-io-error"));
    assert_eq!(drop.outcomes, set(&[Outcome::Safe, Outcome::LostWrite]));
    // The witness fires the fault: without it there is no loss.
    let witness = drop.shortest[Outcome::LostWrite as usize]
        .as_ref()
        .expect("witness");
    assert!(
        witness.choices.iter().any(|c| c.fire),
        "the lost write needs the I/O error"
    );
    let keep = exhaustive(&compile(&ws, "no-block", "case3-io-error"));
    assert_eq!(keep.outcomes, set(&[Outcome::Safe]));
}

/// `sync else`: a freeze that gives up when its sync reports a failed
/// write, as freeze_super does when sync_filesystem fails. The write is
/// lost, nothing reaches the disk while frozen, the filesystem ends
/// unfrozen and the freezer's thaw is refused (FITHAW → EINVAL). mainline,
/// whose freeze completes after a failed data write (as ext4's and xfs's
/// do, docs/faults.md), reaches the same outcomes but never a failed freeze.
#[test]
fn a_freeze_whose_sync_fails_is_undone_and_its_thaw_refused() {
    let ws = workspace();
    let text =
        freezefuzz::report::ir_text::policy_text(&ws, ws.policy("abort-on-sync-error").expect("policy"));
    assert!(
        text.contains("sync else {") && text.contains("set_level unfrozen;"),
        "{text}"
    );
    let abort = compile(&ws, "abort-on-sync-error", "freeze-io-error");
    let result = exhaustive(&abort);
    support::expect_verdict(
        "abort-on-sync-error × freeze-io-error",
        result.outcomes,
        &[Outcome::Safe, Outcome::LostWrite],
    );
    // The user stores, the freeze's sync fails on it and undoes the freeze.
    let witness = result.shortest[Outcome::LostWrite as usize]
        .as_ref()
        .expect("witness");
    let (end, trace) = run::replay(&abort, &OracleSet::standard(), &witness.choices, 1000).expect("replays");
    let after = trace.last().expect("steps").after;
    assert_eq!(after.level(), Level::Unfrozen);
    assert!(after.has_record(record::FREEZE_FAILED) && after.has_record(record::THAW_REFUSED));
    assert!(!after.has_record(record::WINDOW_EVER));
    assert_eq!(after.umount_writer(), None, "s_umount was dropped");
    let (steps, result) = (trace, end);
    let root = format!("{}/", support::root().display());
    insta::assert_snapshot!(
        "sync_else_trace",
        freezefuzz::report::trace::render(&ws, &abort, &steps, &result).replace(&root, "")
    );
    let mainline = compile(&ws, "mainline", "freeze-io-error");
    let result = exhaustive(&mainline);
    support::expect_verdict(
        "mainline × freeze-io-error",
        result.outcomes,
        &[Outcome::Safe, Outcome::LostWrite],
    );
    assert_eq!(mainline.records_mask() & record::FREEZE_FAILED, 0);
}

/// Scenario `scenario` with `faults` added (they override the policy's).
fn with_faults(scenario: &ir::Scenario, faults: &str) -> ir::Scenario {
    let mut scenario = scenario.clone();
    scenario
        .faults
        .extend(fault::parse_specs(faults).expect("fault spec"));
    scenario
}

/// The shipped policies keep every verdict they had under I/O errors and
/// failed trylocks, and what the faults add is pinned here. Most shipped
/// writebacks redirty a page whose write failed (a `submit` without `else`),
/// so they never lose a write to an I/O error; a failed submit in the
/// freeze's own `sync` then leaves a dirty page behind the freeze, which the
/// flusher may write inside the frozen window where nothing blocks it.
/// `mainline` (and `sync-before-block`, which extends it) leaves the page
/// clean with the error recorded, as Linux 6.1 did in QEMU with dm-flakey
/// (docs/conformance.md): the write is lost, and nothing reaches the disk
/// while frozen.
#[test]
fn shipped_policies_keep_their_verdicts_with_io_errors_and_trylock_failures() {
    let ws = support::shipped();
    let mut changed = Vec::new();
    for policy in &ws.policies {
        for scenario in &ws.scenarios {
            let plain = exhaustive(&program::compile(policy, scenario).expect("compiles"));
            let faulty = with_faults(scenario, "io-error:0.5:1,trylock-fail:0.5:1");
            let faulty = exhaustive(&program::compile(policy, &faulty).expect("compiles"));
            let cell = format!("{} × {}", policy.name, scenario.name);
            assert!(faulty.states > plain.states, "{cell}: the faults add states");
            assert_eq!(
                faulty.outcomes.union(plain.outcomes),
                faulty.outcomes,
                "{cell}: lost a verdict"
            );
            let drops_failed_writes = ["mainline", "sync-before-block"].contains(&policy.name.as_str());
            assert_eq!(
                faulty.outcomes.contains(Outcome::LostWrite),
                plain.outcomes.contains(Outcome::LostWrite) || drops_failed_writes,
                "{cell}: lost-write"
            );
            if drops_failed_writes {
                assert!(
                    !faulty.outcomes.contains(Outcome::FrozenWrite)
                        || plain.outcomes.contains(Outcome::FrozenWrite),
                    "{cell}: a failed write is never retried while frozen"
                );
            }
            if faulty.outcomes != plain.outcomes {
                changed.push(format!("{cell}: {} → {}", plain.outcomes, faulty.outcomes));
            }
        }
    }
    insta::assert_snapshot!("io_error_changed_cells", changed.join("\n"));
}

/// `evict` drops the clean page before the store: the store then takes a
/// major fault (the trace reads the page in), which it never does without.
#[test]
fn evict_turns_a_minor_fault_into_a_major_one() {
    let ws = workspace();
    let program = compile(&ws, "no-block", "case3-evict");
    let reads_in = |trace: &[TraceStep]| {
        trace
            .iter()
            .any(|s| !s.before.pages[0].cached() && s.after.pages[0].cached())
    };
    let (_, trace) = replay(&program, "reclaim user*5");
    assert!(!trace[0].after.pages[0].cached(), "reclaim evicted the page");
    assert_eq!(trace[0].after.faults_fired[FaultKind::Evict as usize], 1);
    assert!(reads_in(&trace), "the store read the page back in");
    // The schedule names the environment thread; it replays to itself.
    let choices: Vec<_> = trace.iter().map(|s| s.choice).collect();
    assert!(schedule::format(&program, &choices).starts_with("reclaim user"));
    // Without the fault no run reads the page in.
    let mut scenario = ws.scenario("case3-evict").expect("scenario").clone();
    scenario.faults.clear();
    let plain = program::compile(ws.policy("no-block").expect("policy"), &scenario).expect("compiles");
    assert!(
        plain.thread_index("reclaim").is_none(),
        "no reclaim thread without the fault"
    );
    let (_, trace) = replay(&plain, "user*4");
    assert!(!reads_in(&trace));
    // A page being faulted on holds a reference: reclaim cannot take it.
    let (_, trace) = replay(&program, "user");
    let reclaim = program.thread_index("reclaim").expect("thread");
    assert!(!freezefuzz::engine::exec::enabled(
        &program,
        &trace[0].after,
        reclaim
    ));
    // A major fault needs a transaction: under block-on-mapped the evicted
    // page's store waits for the thaw like case 1, but the deadlock stays
    // reachable (the fault is optional).
    let bom = exhaustive(&compile(&ws, "block-on-mapped", "case3-evict"));
    assert!(bom.outcomes.contains(Outcome::Deadlock));
}

/// A failed trylock makes the flusher skip its pass: the page stays dirty
/// and the flusher sleeps again; without the fault the same steps write it.
#[test]
fn trylock_fail_makes_the_flusher_skip_its_pass() {
    let ws = workspace();
    let program = compile(&ws, "no-block", "flusher-trylock-fail");
    let (_, trace) = replay(&program, "user flusher flusher!");
    let last = trace.last().expect("steps");
    assert!(last.after.pages[0].dirty(), "the pass was skipped");
    assert_eq!(last.after.pages[0].disk, 1);
    assert_eq!(last.after.faults_fired[FaultKind::TrylockFail as usize], 1);
    let (_, trace) = replay(&program, "user flusher flusher");
    assert_ne!(
        trace.last().expect("steps").after.umount_readers(),
        0,
        "the trylock took the lock"
    );
    // At most `max` firings: a second `!` does not fit.
    let choices =
        schedule::resolve(&program, "user flusher flusher! flusher flusher flusher!").expect("parses");
    assert!(run::replay(&program, &OracleSet::standard(), &choices, 1000).is_err());
}

/// An emergency thaw takes `s_umount` for writing and thaws only a fully
/// frozen filesystem: in the middle of mainline's freeze (which drops
/// `s_umount` while it waits for writers) it is refused; after a 2011
/// freeze it thaws, and the freezer's own thaw is then refused.
#[test]
fn emergency_thaw_during_a_freeze() {
    let ws = workspace();
    let mainline = compile(&ws, "mainline", "case3-emergency-thaw");
    // freezer: lock, set_level write, unlock; then the emergency thaw.
    let (_, trace) = replay(&mainline, "freezer*3 emergency-thaw*2");
    let after = trace.last().expect("steps").after;
    assert_eq!(after.level(), Level::Write, "a half-done freeze is not thawed");
    assert!(after.has_record(record::THAW_REFUSED));
    assert_eq!(after.umount_writer(), None, "the refused thaw released s_umount");
    // 2011 freeze holds s_umount throughout: the emergency thaw waits, then thaws.
    let no_block = compile(&ws, "no-block", "case3-emergency-thaw");
    let thread = no_block.thread_index("emergency-thaw").expect("thread");
    let (_, trace) = replay(&no_block, "freezer emergency-thaw");
    assert!(
        !freezefuzz::engine::exec::enabled(&no_block, &trace[1].after, thread),
        "waits for s_umount"
    );
    let (result, trace) = replay(
        &no_block,
        "freezer emergency-thaw freezer*5 emergency-thaw*3 freezer",
    );
    let after = trace.last().expect("steps").after;
    assert_eq!(after.level(), Level::Unfrozen);
    assert!(after.has_record(record::WINDOW_EVER) && after.has_record(record::THAW_REFUSED));
    assert!(!result.outcomes.contains(Outcome::Deadlock));
    // SysRq-j cannot break block-on-mapped's deadlock: it needs s_umount too.
    let bom = exhaustive(&compile(&ws, "block-on-mapped", "case3-emergency-thaw"));
    assert!(bom.outcomes.contains(Outcome::Deadlock));
    // mainline stays safe with an emergency thaw at any moment.
    support::expect_verdict(
        "mainline × case3-emergency-thaw",
        exhaustive(&mainline).outcomes,
        &[Outcome::Safe],
    );
}

/// `fsfreeze -f` on a frozen filesystem is refused with EBUSY.
#[test]
fn a_second_freezer_gets_ebusy() {
    let ws = workspace();
    let program = compile(&ws, "no-block", "two-freezer-threads");
    // admin1 freezes completely (6 steps, 1 page), then admin2 tries.
    let (_, trace) = replay(&program, "admin1*6 admin2");
    let after = trace.last().expect("steps").after;
    assert!(after.has_record(record::FREEZE_REFUSED), "EBUSY");
    assert_eq!(after.level(), Level::Complete, "the first freeze stands");
    assert_eq!(after.umount_writer(), None);
    // admin2's thaw thaws admin1's freeze (fsfreeze -u by anyone does);
    // admin1's thaw then gets EINVAL. Every run ends thawed.
    let (result, trace) = replay(&program, "admin1*6 admin2 admin2*3 admin1");
    let after = trace.last().expect("steps").after;
    assert_eq!(after.level(), Level::Unfrozen);
    assert!(after.has_record(record::THAW_REFUSED));
    assert_eq!(result.outcomes, set(&[Outcome::Safe]));
    // As an environment fault, under every shipped policy: the verdicts of
    // case 3 racing stay those of the single freezer's.
    for policy in ["no-block", "block-on-mapped", "mainline", "wait-in-mkwrite"] {
        let two = exhaustive(&compile(&ws, policy, "two-freezers"));
        let mut one = ws.scenario("two-freezers").expect("scenario").clone();
        one.faults.clear();
        let one = exhaustive(&program::compile(ws.policy(policy).expect("policy"), &one).expect("compiles"));
        assert_eq!(two.outcomes, one.outcomes, "{policy}");
        assert!(two.states > one.states);
    }
}

/// Random and PCT campaigns on fault cells see only what exhaustive search
/// says is reachable, and every witness replays to its outcome.
#[test]
fn fault_campaigns_stay_inside_the_exhaustive_truth_and_replay() {
    let ws = workspace();
    let scenarios = [
        "case3-io-error",
        "case3-evict",
        "flusher-trylock-fail",
        "case3-emergency-thaw",
        "two-freezers",
    ];
    let mut programs = Vec::new();
    for policy in ["no-block", "drop-on-error", "block-on-mapped", "mainline"] {
        for scenario in scenarios {
            programs.push(compile(&ws, policy, scenario));
        }
    }
    let oracles = OracleSet::standard();
    for scheduler in [SchedulerKind::Random, SchedulerKind::Pct { depth: 3 }] {
        let config = CampaignConfig {
            seed: 5,
            runs: 2000,
            scheduler,
            steps_max: 1000,
            shard: Shard::WHOLE,
        };
        let cells = campaign::campaign(&programs, &oracles, &config, 2, &AtomicBool::new(false), &|_| {});
        for (cell, program) in cells.iter().zip(&programs) {
            let truth = exhaustive(program).outcomes;
            assert_eq!(
                cell.outcomes().union(truth),
                truth,
                "{} × {}",
                cell.policy,
                cell.scenario
            );
            for outcome in cell.outcomes().iter() {
                let witness = cell.witnesses[outcome as usize].as_ref().expect("witness");
                let choices = schedule::resolve(program, &witness.schedule).expect("resolves");
                let (result, _) = run::replay(program, &oracles, &choices, 1000).expect("replays");
                assert!(
                    result.outcomes.contains(outcome),
                    "{} × {}: {}",
                    cell.policy,
                    cell.scenario,
                    witness.schedule
                );
            }
        }
    }
}

#[test]
fn fault_specs_parse_and_reject_bad_input() {
    let specs = fault::parse_specs("io-error:0.1:1, evict:0.05:2").expect("parses");
    assert_eq!(specs.len(), 2);
    assert_eq!(
        (specs[1].name.as_str(), specs[1].probability, specs[1].max),
        ("evict", 0.05, 2)
    );
    for bad in [
        "",
        "nope:0.1:1",
        "io-error",
        "io-error:2:1",
        "io-error:0.1:0",
        "io-error:0.1:99",
        "io-error:x:1",
        // Judged on the digits, as in a `faults` block: no float rounding
        // to 1, no exponents, signs or special values.
        "io-error:1.0000000000000000000001:1",
        "io-error:1e-1:1",
        "io-error:-0:1",
        "io-error:NaN:1",
        "io-error:.5:1",
        "io-error:0.:1",
        "io-error:0.1:1:4",
        "io-error:0.1:1,io-error:0.2:1",
    ] {
        assert!(fault::parse_specs(bad).is_err(), "{bad:?} should be rejected");
    }
}

/// `matrix --faults`: each policy once as written and once with the faults,
/// so the faults' effect is one snapshot diff apart. Exhaustive: exact.
#[test]
fn matrix_with_faults_snapshot() {
    let output = assert_cmd::Command::cargo_bin("freezefuzz")
        .expect("the binary is built")
        .current_dir(support::root())
        .args([
            "matrix",
            "--exhaustive",
            "--format",
            "markdown",
            "--faults",
            "io-error:0.1:1,evict:0.1:1,emergency-thaw:0.1:1,second-freezer:0.1:1",
        ])
        .args(["--policy", "no-block", "--policy", "no-block+faults"])
        .args(["--policy", "mainline", "--policy", "mainline+faults"])
        .args([
            "--policy",
            "wait-in-mkwrite",
            "--policy",
            "wait-in-mkwrite+faults",
        ])
        .output()
        .expect("runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    insta::assert_snapshot!(
        "exhaustive_matrix_with_faults",
        String::from_utf8_lossy(&output.stdout)
    );
    // A bad spec is bad input, never a panic.
    let output = assert_cmd::Command::cargo_bin("freezefuzz")
        .expect("the binary is built")
        .current_dir(support::root())
        .args(["matrix", "--exhaustive", "--faults", "io-error:2:1"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a decimal between 0 and 1"));
}

#[path = "../../examples/plugins.rs"]
mod plugins;

/// The example plug-ins (`examples/plugins.rs`) run against the library:
/// the custom fault adds its thread and states, the custom oracle sees the
/// thaw refused after an emergency thaw.
#[test]
fn example_plugins_run() {
    insta::assert_snapshot!("example_plugins", plugins::demo().join("\n"));
}
