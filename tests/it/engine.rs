//! The engine against the contract: the seed thread's verdicts, random and
//! PCT campaigns inside the exhaustive ground truth, determinism, replay.

use std::sync::atomic::AtomicBool;

use freezefuzz::engine::campaign::{self, CampaignConfig, CellResult, Shard};
use freezefuzz::engine::explore::{self, ExploreLimits};
use freezefuzz::engine::program::{self, Program};
use freezefuzz::engine::run;
use freezefuzz::engine::schedule;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::oracle::{OracleSet, Outcome, Outcomes};

use crate::support;

fn program<'a>(programs: &'a [Program], policy: &str, scenario: &str) -> &'a Program {
    programs
        .iter()
        .find(|p| p.policy == policy && p.scenario == scenario)
        .unwrap_or_else(|| panic!("no cell {policy} × {scenario}"))
}

fn exhaustive(program: &Program) -> explore::Exploration {
    let result = explore::explore(program, &OracleSet::standard(), &ExploreLimits::default());
    assert!(
        result.complete(),
        "{} × {} did not finish",
        program.policy,
        program.scenario
    );
    result
}

fn set(outcomes: &[Outcome]) -> Outcomes {
    let mut set = Outcomes::default();
    for o in outcomes {
        set.insert(*o);
    }
    set
}

fn campaign(programs: &[Program], config: &CampaignConfig, jobs: usize) -> Vec<CellResult> {
    campaign::campaign(
        programs,
        &OracleSet::standard(),
        config,
        jobs,
        &AtomicBool::new(false),
        &|_| {},
    )
}

fn config(seed: u64, runs: u64, scheduler: SchedulerKind) -> CampaignConfig {
    CampaignConfig {
        seed,
        runs,
        scheduler,
        steps_max: 1000,
        shard: Shard::WHOLE,
    }
}

/// The seed thread (and the "done when"), one snapshot per shipped
/// policy in the format `freezefuzz snapshot` writes: in the after-freeze
/// timing, no-block writes while frozen in cases 3 and 4 only;
/// block-on-mapped deadlocks in cases 3 and 4; wait-in-mkwrite and mainline
/// are safe everywhere; skip-frozen loses a write in case 3, sigbus gives the
/// user an error, sync-before-block writes while frozen in the racing case 3.
/// An intended verdict change shows here and is accepted with `cargo insta
/// review` (the same round as the other snapshots).
#[test]
fn exhaustive_verdicts_reproduce_the_seed_thread() {
    use freezefuzz::report::{matrix, snapshot};
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let cells = programs
        .iter()
        .map(|p| matrix::cell_from_exploration(&exhaustive(p), p, &Default::default()))
        .collect();
    let report = matrix::MatrixReport {
        schema: matrix::SCHEMA.into(),
        mode: "exhaustive".into(),
        campaign: matrix::CampaignInfo {
            seed: None,
            runs: None,
            scheduler: None,
            steps_max: 1000,
            shard: None,
            states_max: None,
            oracles: vec![],
            files: vec![],
            faults: None,
            no_shrink: false,
        },
        partial: false,
        policies: workspace.policies.iter().map(|p| p.name.clone()).collect(),
        scenarios: workspace.scenarios.iter().map(|s| s.name.clone()).collect(),
        cells,
    };
    for policy in &report.policies {
        insta::assert_snapshot!(
            format!("verdicts_{policy}"),
            snapshot::policy_body(&report, policy)
        );
    }
}

/// Random and PCT campaigns only ever see outcomes the exhaustive search
/// says are reachable; on the standard cells they find all of them.
#[test]
fn campaigns_find_exactly_the_reachable_outcomes() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let truth: Vec<Outcomes> = programs.iter().map(|p| exhaustive(p).outcomes).collect();
    for scheduler in [SchedulerKind::Random, SchedulerKind::Pct { depth: 3 }] {
        let cells = campaign(&programs, &config(11, 3000, scheduler), 2);
        for (cell, reachable) in cells.iter().zip(&truth) {
            let seen = cell.outcomes();
            assert_eq!(
                seen.union(*reachable),
                *reachable,
                "{} × {} under {}: saw {seen}, reachable {reachable}",
                cell.policy,
                cell.scenario,
                scheduler.label()
            );
        }
        // Together with the subset check, this is equality on the random walk.
        if scheduler == SchedulerKind::Random {
            let missed: Vec<String> = cells
                .iter()
                .zip(&truth)
                .filter(|(cell, reachable)| cell.outcomes() != **reachable)
                .map(|(cell, reachable)| {
                    format!(
                        "{} × {}: {} of {reachable}",
                        cell.policy,
                        cell.scenario,
                        cell.outcomes()
                    )
                })
                .collect();
            // A 3000-run random walk misses at most the rarest interleavings;
            // name them so a change in that is visible.
            assert!(missed.len() <= 2, "random walk missed: {missed:#?}");
        }
    }
}

#[test]
fn a_campaign_does_not_depend_on_the_number_of_workers() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    for scheduler in [SchedulerKind::Random, SchedulerKind::Pct { depth: 2 }] {
        let config = config(5, 2500, scheduler);
        let one = campaign(&programs, &config, 1);
        let two = campaign(&programs, &config, 2);
        let eight = campaign(&programs, &config, 8);
        assert_eq!(one, two);
        assert_eq!(one, eight);
        // And the same seed twice gives the same result.
        assert_eq!(one, campaign(&programs, &config, 2));
        // A different seed changes the counts somewhere.
        let other = campaign(
            &programs,
            &CampaignConfig {
                seed: 6,
                ..config.clone()
            },
            2,
        );
        assert_ne!(one, other);
    }
}

#[test]
fn shards_merge_into_the_unsplit_campaign() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let whole_config = config(9, 5000, SchedulerKind::Random);
    let whole = campaign(&programs, &whole_config, 2);
    let mut merged: Option<Vec<CellResult>> = None;
    for index in 0..3 {
        let shard = CampaignConfig {
            shard: Shard { index, count: 3 },
            ..whole_config.clone()
        };
        let part = campaign(&programs, &shard, 1);
        match &mut merged {
            None => merged = Some(part),
            Some(cells) => cells.iter_mut().zip(&part).for_each(|(cell, p)| cell.merge(p)),
        }
    }
    assert_eq!(merged.unwrap(), whole);
}

/// Every first witness of a campaign replays, alone, to its outcome: from
/// its schedule string and from its seed.
#[test]
fn every_witness_replays_to_its_outcome() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let oracles = OracleSet::standard();
    let config = config(3, 2000, SchedulerKind::Random);
    let cells = campaign(&programs, &config, 2);
    let mut witnesses = 0;
    for (cell, program) in cells.iter().zip(&programs) {
        for outcome in Outcome::ALL {
            let Some(witness) = &cell.witnesses[outcome as usize] else {
                continue;
            };
            witnesses += 1;
            let choices = schedule::resolve(program, &witness.schedule).expect("witness schedules parse");
            let (result, _) =
                run::replay(program, &oracles, &choices, config.steps_max).expect("witness fits");
            assert_eq!(
                result.outcomes, witness.outcomes,
                "{} × {} {}",
                cell.policy, cell.scenario, witness.schedule
            );
            // The run seed alone reproduces the run.
            let mut scheduler = config.scheduler.build();
            let again = run::run(
                program,
                &oracles,
                scheduler.as_mut(),
                witness.seed,
                config.steps_max,
                None,
            );
            assert_eq!(again.outcomes, witness.outcomes);
            assert_eq!(
                witness.seed,
                freezefuzz::engine::seeds::run_seed(
                    config.seed,
                    &program.policy,
                    &program.scenario,
                    witness.run_index
                )
            );
        }
    }
    assert!(
        witnesses > 50,
        "the standard matrix has many findings, got {witnesses}"
    );
}

/// A shortest counterexample replays to its outcome, and no run reaches the
/// outcome in fewer steps (checked here by a bounded search of all shorter
/// schedules on small cells).
#[test]
fn shortest_counterexamples_replay_and_are_shortest() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let oracles = OracleSet::standard();
    for program in &programs {
        let result = exhaustive(program);
        for outcome in result.outcomes.iter() {
            let shortest = result.shortest[outcome as usize]
                .as_ref()
                .expect("a reachable outcome has a witness");
            assert_eq!(shortest.depth as usize, shortest.choices.len());
            let (run, _) = run::replay(program, &oracles, &shortest.choices, 1000).expect("fits");
            assert!(
                run.outcomes.contains(outcome),
                "{} × {} {outcome}",
                program.policy,
                program.scenario
            );
            // Every prefix one step shorter fails to reach it as an ended run:
            // either the outcome is absent or the run had not ended there.
            if outcome.is_bad() && shortest.depth > 0 {
                let prefix = &shortest.choices[..shortest.choices.len() - 1];
                let (run, _) = run::replay(program, &oracles, prefix, 1000).expect("fits");
                assert!(
                    !run.outcomes.contains(outcome),
                    "{} × {}: a shorter witness of {outcome}",
                    program.policy,
                    program.scenario
                );
            }
        }
    }
}

/// A known race — sync-before-block's freeze syncs before it blocks page
/// faults — is found by PCT within a stated budget on every racing case
/// where it is reachable.
#[test]
fn pct_finds_the_sync_before_block_race_quickly() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let oracles = OracleSet::standard();
    for case in ["case1-racing", "case2-racing", "case3-racing", "case4-racing"] {
        let program = program(&programs, "sync-before-block", case);
        let mut scheduler = SchedulerKind::Pct { depth: 3 }.build();
        let found = (0..2000u64).find(|&i| {
            let seed = freezefuzz::engine::seeds::run_seed(1, &program.policy, &program.scenario, i);
            run::run(program, &oracles, scheduler.as_mut(), seed, 1000, None)
                .outcomes
                .contains(Outcome::FrozenWrite)
        });
        assert!(
            found.is_some(),
            "PCT did not find the race in {case} within 2000 runs"
        );
    }
}

#[test]
fn step_limit_is_reported_never_silent() {
    // A writeback that never cleans keeps the page dirty: the flusher wakes forever.
    let workspace = support::with_standard(
        "policy spin {
            freeze { lock umount write; set_level complete; unlock umount; }
            page_mkwrite { lock_page; }
            writeback { skip; }
        }",
    );
    let policy = workspace.policy("spin").unwrap();
    let scenario = workspace.scenario("case4-racing").unwrap();
    let program = program::compile(policy, scenario).unwrap();
    let oracles = OracleSet::standard();
    let mut scheduler = SchedulerKind::Random.build();
    let result = run::run(&program, &oracles, scheduler.as_mut(), 1, 200, None);
    assert!(result.step_limit && result.outcomes.contains(Outcome::StepLimit));
    assert!(!result.outcomes.contains(Outcome::Safe));
    let limits = ExploreLimits {
        steps_max: 200,
        ..ExploreLimits::default()
    };
    let explored = explore::explore(&program, &oracles, &limits);
    assert!(explored.outcomes.contains(Outcome::StepLimit));
    // The witness of an endless run really runs past the budget.
    let witness = explored.shortest[Outcome::StepLimit as usize].as_ref().unwrap();
    let (replayed, _) = run::replay(&program, &oracles, &witness.choices, 200).unwrap();
    assert!(replayed.step_limit);
}

#[test]
fn exploration_limits_are_explicit() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let program = program(&programs, "no-block", "case3-racing");
    let limits = ExploreLimits {
        states_max: 10,
        ..ExploreLimits::default()
    };
    let result = explore::explore(program, &OracleSet::standard(), &limits);
    assert!(!result.complete());
    assert_eq!(
        result.limit.unwrap().to_string(),
        "state limit (10 states, --max-states)"
    );
    let limits = ExploreLimits {
        depth_max: 5,
        ..ExploreLimits::default()
    };
    let result = explore::explore(program, &OracleSet::standard(), &limits);
    assert!(!result.complete());
    // An incomplete search never reaches a terminal state this shallow: no claim of safety.
    assert!(!result.outcomes.contains(Outcome::Safe));
    // The memory guard stops the search before the allocation that would
    // pass it, and names the flag.
    let limits = ExploreLimits {
        memory_max: 1 << 20,
        ..ExploreLimits::default()
    };
    let result = explore::explore(program, &OracleSet::standard(), &limits);
    assert_eq!(
        result.limit.unwrap().to_string(),
        "memory limit (1 MiB, --max-memory)"
    );
    assert!(result.states < exhaustive(program).states);
}

#[test]
fn dirty_at_freeze_is_optional_and_informational() {
    let workspace = support::shipped();
    let programs = support::shipped_programs(&workspace);
    let program = program(&programs, "sync-before-block", "case3-racing");
    let standard = exhaustive(program);
    assert!(!standard.outcomes.contains(Outcome::DirtyAtFreeze));
    let oracles = OracleSet::with_optional(&["dirty-at-freeze".to_string()]).unwrap();
    let with = explore::explore(program, &oracles, &ExploreLimits::default());
    assert!(with.outcomes.contains(Outcome::DirtyAtFreeze));
    assert!(with.outcomes.contains(Outcome::Safe));
    assert!(OracleSet::with_optional(&["bogus".to_string()]).is_err());
}

/// Explores `policy` (a shipped one) against a scenario written inline.
fn explore_inline(policy: &str, scenario_text: &str) -> Outcomes {
    let root = support::root();
    let mut text = String::new();
    // The shipped policy and its ancestors, so that `extends` resolves in one text.
    let mut name = policy.to_string();
    loop {
        let file = std::fs::read_to_string(root.join(format!("policies/{name}.ff"))).unwrap();
        let parent = file
            .lines()
            .find_map(|l| l.trim().strip_prefix(&format!("policy {name} extends ")))
            .map(|rest| rest.trim_end_matches('{').trim().to_string());
        text.push_str(&file);
        text.push('\n');
        match parent {
            Some(p) => name = p,
            None => break,
        }
    }
    text.push_str(scenario_text);
    let workspace = freezefuzz::dsl::load_str("inline.ff", &text).unwrap_or_else(|e| panic!("{e}"));
    let scenario = workspace.scenarios.last().unwrap();
    let program = program::compile(workspace.policy(policy).unwrap(), scenario).unwrap();
    exhaustive(&program).outcomes
}

#[test]
fn msync_on_a_frozen_filesystem_writes_through_a_policy_that_does_not_block() {
    use Outcome::*;
    let scenario = "scenario s {
        page a { cached; buffers = mapped; pte = readonly; }
        thread user { await frozen; store a 2; msync a; munmap a; }
        thread freezer { freeze; thaw; }
    }";
    // No flusher: the only writer is msync, and it writes inside the window.
    support::expect_verdict(
        "no-block × the scenario above",
        explore_inline("no-block", scenario),
        &[Safe, FrozenWrite],
    );
    support::expect_verdict(
        "wait-in-mkwrite × the scenario above",
        explore_inline("wait-in-mkwrite", scenario),
        &[Safe],
    );
}

#[test]
fn the_final_sync_of_the_lost_write_oracle_writes_dirty_pages() {
    use Outcome::*;
    // Nobody writes back during the run: the store is still in memory at the
    // end, and the oracle's plain final sync writes it: no lost write.
    let scenario = "scenario s {
        page a { cached; buffers = mapped; pte = writable; dirty; }
        thread user { store a 2; }
    }";
    support::expect_verdict(
        "no-block × the scenario above",
        explore_inline("no-block", scenario),
        &[Safe],
    );
}

#[test]
fn two_users_on_one_page_lose_nothing_without_a_freeze() {
    use Outcome::*;
    for page in [
        "page a { }",
        "page a { cached; }",
        "page a { cached; buffers = mapped; pte = readonly; }",
    ] {
        let scenario = format!(
            "scenario s {{
                {page}
                thread user1 {{ store a 2; munmap a; }}
                thread user2 {{ store a 3; munmap a; }}
                flusher;
            }}"
        );
        for policy in ["no-block", "block-on-mapped", "wait-in-mkwrite", "mainline"] {
            assert_eq!(
                explore_inline(policy, &scenario),
                set(&[Safe]),
                "{policy} with {page}"
            );
        }
    }
}

#[test]
fn await_frozen_is_a_latch_that_survives_the_thaw() {
    use Outcome::*;
    // The user may start only after the thaw; it must still run to the end.
    let scenario = "scenario s {
        page a { cached; buffers = mapped; pte = readonly; }
        thread user { await frozen; store a 2; munmap a; }
        thread freezer { freeze; thaw; }
    }";
    support::expect_verdict(
        "wait-in-mkwrite × the scenario above",
        explore_inline("wait-in-mkwrite", scenario),
        &[Safe],
    );
}

#[test]
fn two_freeze_cycles_keep_the_verdicts() {
    let scenario = "scenario s {
        page a { cached; buffers = mapped; pte = readonly; }
        page b { }
        thread user { store a 2; munmap a; store b 3; munmap b; }
        thread freezer { freeze; thaw; freeze; thaw; }
        flusher;
    }";
    // Expected: mainline safe; no-block writes while frozen; block-on-mapped deadlocks.
    let verdicts: String = ["mainline", "no-block", "block-on-mapped"]
        .iter()
        .map(|policy| format!("{policy}: {}\n", explore_inline(policy, scenario)))
        .collect();
    insta::assert_snapshot!("two_freeze_cycles", verdicts);
}

/// With a single freezer, `freeze` and `thaw` run exactly as written: a
/// freeze that stops short of `complete` is still undone by the thaw (the
/// kernel's EBUSY/EINVAL nesting rule only applies when several threads can
/// freeze or thaw; see docs/faults.md).
#[test]
fn a_single_freezer_runs_its_hooks_as_written() {
    let workspace = support::with_standard(
        "policy half {
            freeze { lock umount write; set_level write; sync; set_level fs; unlock umount; }
            page_mkwrite { if buffers == unmapped { wait_unfrozen fs; allocate; } lock_page; }
        }",
    );
    let policy = workspace.policy("half").unwrap();
    let program = program::compile(policy, workspace.scenario("case1-racing").unwrap()).unwrap();
    support::expect_verdict(
        "half × case1-racing",
        exhaustive(&program).outcomes,
        &[Outcome::Safe],
    );
}

/// Partial-order reduction never changes a verdict: on every shipped cell and
/// on a generated family of larger scenarios (pages × users × freeze cycles),
/// the reduced search reaches exactly the outcomes of the full one, from no
/// more states.
#[test]
fn partial_order_reduction_keeps_every_verdict() {
    let workspace = support::shipped();
    let mut programs = support::shipped_programs(&workspace);
    let pages = [
        "page a { cached; buffers = mapped; pte = readonly; }",
        "page b { cached; }",
        "page c { cached; buffers = mapped; pte = writable; dirty; }",
    ];
    let names = ["a", "b", "c"];
    let mut family = String::new();
    for p in 1..=2 {
        for u in 1..=2 {
            for c in 1..=2 {
                if p * u * c == 8 {
                    continue; // the largest, kept out of the default suite for time
                }
                family.push_str(&format!("scenario f{p}{u}{c} {{\n"));
                for page in &pages[..p] {
                    family.push_str(&format!("    {page}\n"));
                }
                for user in 0..u {
                    let stores: String = names[..p]
                        .iter()
                        .map(|n| format!("store {n} {}; ", user + 2))
                        .collect();
                    let unmaps: String = names[..p].iter().map(|n| format!("munmap {n}; ")).collect();
                    family.push_str(&format!("    thread user{user} {{ {stores}{unmaps}}}\n"));
                }
                family.push_str(&format!(
                    "    thread freezer {{ {}}}\n    flusher;\n}}\n",
                    "freeze; thaw; ".repeat(c)
                ));
            }
        }
    }
    let mut files = support::shipped_files();
    files.retain(|f| !f.ends_with("standard.ff"));
    let mut read = |path: &std::path::Path| {
        if path.ends_with("family.ff") {
            Ok(family.clone().into_bytes())
        } else {
            std::fs::read(path)
        }
    };
    files.push(std::path::PathBuf::from("family.ff"));
    let family_ws = freezefuzz::dsl::load(&files, &mut read).unwrap_or_else(|e| panic!("{e}"));
    for policy in &family_ws.policies {
        for scenario in &family_ws.scenarios {
            programs.push(program::compile(policy, scenario).unwrap());
        }
    }
    let oracles = OracleSet::standard();
    let reduced_limits = ExploreLimits {
        reduce: true,
        ..ExploreLimits::default()
    };
    // Against the full graph: no symmetry reduction either.
    let full_limits = ExploreLimits {
        symmetry: false,
        ..ExploreLimits::default()
    };
    for program in &programs {
        let full = explore::explore(program, &oracles, &full_limits);
        assert!(full.complete());
        let reduced = explore::explore(program, &oracles, &reduced_limits);
        assert!(reduced.complete());
        assert_eq!(
            reduced.outcomes, full.outcomes,
            "{} × {}",
            program.policy, program.scenario
        );
        assert!(reduced.states <= full.states);
        // Its witnesses still replay to their outcomes.
        for outcome in reduced.outcomes.iter().filter(|o| o.is_bad()) {
            let witness = reduced.shortest[outcome as usize].as_ref().unwrap();
            let (run, _) = run::replay(program, &oracles, &witness.choices, 10_000).unwrap();
            assert!(
                run.outcomes.contains(outcome),
                "{} × {} {outcome}",
                program.policy,
                program.scenario
            );
        }
    }
}

/// Generated policies — random freezes, page faults and writebacks built from
/// the language's statements — never break the model's invariants (checked
/// after every step in debug builds), and random runs stay inside the
/// exhaustive truth.
mod generated {
    use proptest::prelude::*;

    use super::*;

    const LEVELS: [&str; 4] = ["write", "pagefault", "fs", "complete"];

    fn freeze() -> impl Strategy<Value = String> {
        (proptest::collection::vec(0usize..6, 0..6), any::<bool>()).prop_map(|(steps, drop_lock)| {
            let mut body = String::from("lock umount write; ");
            for step in steps {
                body.push_str(match step {
                    0 => "set_level write; ",
                    1 => "set_level pagefault; ",
                    2 => "set_level fs; ",
                    3 => "sync; ",
                    4 => "wait_writers pagefault; ",
                    _ => "wait_writers fs; ",
                });
            }
            if drop_lock {
                body.push_str("unlock umount; wait_writers write; lock umount write; ");
            }
            body.push_str("set_level complete; unlock umount;");
            body
        })
    }

    fn page_mkwrite() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            0usize..4,
            0usize..3,
            any::<bool>(),
            any::<bool>(),
            0usize..4,
        )
            .prop_map(|(pagefault_writer, journal, alloc, mark, sigbus, sigbus_level)| {
                let mut body = String::new();
                if sigbus {
                    body.push_str(&format!(
                        "if level >= {} {{ fail sigbus; }} ",
                        LEVELS[sigbus_level]
                    ));
                }
                if pagefault_writer {
                    body.push_str("sb_start pagefault; ");
                }
                let journal = match journal {
                    0 => String::new(),
                    1 => "wait_unfrozen fs; ".into(),
                    2 => "sb_start fs; sb_end fs; ".into(),
                    _ => "wait_unfrozen pagefault; ".into(),
                };
                // `skip` would leave `sb_start pagefault` without its `sb_end`.
                let alloc = [
                    "allocate;",
                    "reserve;",
                    if pagefault_writer { "allocate;" } else { "skip;" },
                ][alloc];
                body.push_str(&format!(
                    "if buffers == unmapped {{ {journal}{alloc} }} lock_page; "
                ));
                if mark {
                    body.push_str("mark_dirty; ");
                }
                if pagefault_writer {
                    body.push_str("sb_end pagefault;");
                }
                body
            })
    }

    fn writeback() -> impl Strategy<Value = String> {
        (0usize..3, any::<bool>(), 0usize..4, 0usize..3).prop_map(|(journal, give_up, level, on_error)| {
            let journal = ["", "wait_unfrozen fs; ", "sb_start fs; sb_end fs; "][journal];
            let give_up = if give_up {
                format!("if level >= {} {{ unlock_page; skip; }} ", LEVELS[level])
            } else {
                String::new()
            };
            let submit = ["submit;", "submit else { mark_dirty; }", "submit else { unlock_page; skip; }"][on_error];
            format!("{journal}lock_page; clean; {give_up}if buffers == delayed {{ allocate; }} {submit} unlock_page;")
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: if std::env::var_os("FREEZEFUZZ_LONG_TESTS").is_some() { 4096 } else { 256 },
            ..ProptestConfig::default()
        })]
        #[test]
        fn generated_policies_keep_the_model_sound(
            freeze in freeze(),
            page_mkwrite in page_mkwrite(),
            writeback in writeback(),
            io_error in any::<bool>(),
        ) {
            let faults = if io_error { "faults { io-error probability 0.2 max 1; }" } else { "" };
            let text = format!(
                "policy g {{ freeze {{ {freeze} }} page_mkwrite {{ {page_mkwrite} }} writeback {{ {writeback} }} {faults} }}"
            );
            let workspace = support::with_standard(&text);
            let policy = workspace.policy("g").unwrap();
            let oracles = OracleSet::standard();
            for scenario in &workspace.scenarios {
                let program = program::compile(policy, scenario).unwrap();
                let truth = explore::explore(&program, &oracles, &ExploreLimits { steps_max: 200, ..ExploreLimits::default() });
                prop_assert!(truth.complete());
                let mut scheduler = SchedulerKind::Random.build();
                for seed in 0..40 {
                    // Debug builds assert the model's invariants after every step.
                    let result = run::run(&program, &oracles, scheduler.as_mut(), seed, 200, None);
                    prop_assert_eq!(result.outcomes.union(truth.outcomes), truth.outcomes, "{}\n{}", text, scenario.name);
                }
            }
        }
    }
}

/// The scaled family of benches/support, written as one text: `pages` pages
/// (cases 3, 2, 4 in turn), `users` users each storing its own value to
/// every page then unmapping them, a freezer doing `cycles` freeze/thaw
/// pairs, the flusher; with `faults` (a `faults` block body) when not empty.
fn scaled_scenario(pages: usize, users: usize, cycles: usize, faults: &str) -> String {
    let inits = [
        "cached; buffers = mapped; pte = readonly;",
        "cached;",
        "cached; buffers = mapped; pte = writable; dirty;",
    ];
    let name = if faults.is_empty() { "" } else { "-faults" };
    let mut text = format!("scenario p{pages}-u{users}-c{cycles}{name} {{\n");
    for j in 0..pages {
        text += &format!("    page p{j} {{ {} }}\n", inits[j % 3]);
    }
    for user in 0..users {
        let stores: String = (0..pages).map(|j| format!("store p{j} {}; ", user + 2)).collect();
        let unmaps: String = (0..pages).map(|j| format!("munmap p{j}; ")).collect();
        text += &format!("    thread user{user} {{ {stores}{unmaps}}}\n");
    }
    text += &format!(
        "    thread freezer {{ {}}}\n    flusher;\n",
        "freeze; thaw; ".repeat(cycles)
    );
    if !faults.is_empty() {
        text += &format!("    faults {{ {faults} }}\n");
    }
    text + "}\n"
}

/// The shipped cells, the fault cells of tests/data/faults, and a generated
/// family of scaled scenarios (up to three interchangeable users, with and
/// without faults) under every shipped policy and drop-on-error.
fn symmetric_family() -> Vec<Program> {
    let mut programs = support::shipped_programs(&support::shipped());
    let mut family = String::new();
    let mut scales = vec![(1, 2, 1), (1, 3, 1), (2, 2, 1)];
    if std::env::var_os("FREEZEFUZZ_LONG_TESTS").is_some() {
        scales.extend([(1, 2, 2), (2, 3, 1), (2, 2, 2)]);
    }
    for (pages, users, cycles) in scales {
        family += &scaled_scenario(pages, users, cycles, "");
    }
    family += &scaled_scenario(
        1,
        2,
        1,
        "io-error probability 0.5 max 1; evict probability 0.5 max 1;",
    );
    family += &scaled_scenario(
        1,
        3,
        1,
        "trylock-fail probability 0.5 max 1; emergency-thaw probability 0.5 max 1;",
    );
    let mut files = support::shipped_files();
    files.retain(|f| !f.ends_with("standard.ff"));
    files.push(support::root().join("tests/data/faults/faults.ff"));
    files.push(std::path::PathBuf::from("family.ff"));
    let mut read = |path: &std::path::Path| {
        if path.ends_with("family.ff") {
            Ok(family.clone().into_bytes())
        } else {
            std::fs::read(path)
        }
    };
    let workspace = freezefuzz::dsl::load(&files, &mut read).unwrap_or_else(|e| panic!("{e}"));
    // Policies with each verdict: safe, frozen-write, deadlock, lost-write
    // (stored values compared), lost-write through an I/O error.
    let policies = [
        "mainline",
        "no-block",
        "block-on-mapped",
        "skip-frozen",
        "drop-on-error",
    ];
    for policy in workspace
        .policies
        .iter()
        .filter(|p| policies.contains(&p.name.as_str()))
    {
        for scenario in &workspace.scenarios {
            programs.push(program::compile(policy, scenario).unwrap());
        }
    }
    programs
}

/// Symmetry reduction never changes a verdict: on every shipped cell, the
/// fault cells and a generated family with interchangeable users, the
/// reduced search reaches exactly the outcomes of the full one, each at the
/// same shortest depth, with the same longest run, from fewer states where
/// users are interchangeable; and each of its witnesses, mapped back to the
/// real threads, replays to its outcome in exactly that many steps.
#[test]
fn symmetry_reduction_keeps_every_verdict() {
    let oracles = OracleSet::standard();
    let full_limits = ExploreLimits {
        symmetry: false,
        ..ExploreLimits::default()
    };
    let mut reduced_cells = 0;
    let mut lost_writes = 0;
    for program in &symmetric_family() {
        let cell = format!("{} × {}", program.policy, program.scenario);
        let full = explore::explore(program, &oracles, &full_limits);
        let reduced = exhaustive(program);
        assert!(full.complete(), "{cell}");
        assert!(full.reductions.describe().is_empty(), "{cell}");
        assert_eq!(reduced.outcomes, full.outcomes, "{cell}");
        assert_eq!(reduced.longest_run, full.longest_run, "{cell}");
        for outcome in full.outcomes.iter() {
            let (r, f) = (
                reduced.shortest[outcome as usize].as_ref().unwrap(),
                full.shortest[outcome as usize].as_ref().unwrap(),
            );
            assert_eq!(r.depth, f.depth, "{cell} {outcome}");
            let steps_max = if outcome == Outcome::StepLimit {
                10_000
            } else {
                1000
            };
            let (run, _) = run::replay(program, &oracles, &r.choices, steps_max)
                .unwrap_or_else(|e| panic!("{cell} {outcome}: {e:?}"));
            assert!(run.outcomes.contains(outcome), "{cell} {outcome}");
            if outcome != Outcome::StepLimit {
                assert_eq!(r.choices.len() as u32, r.depth, "{cell} {outcome}");
            }
        }
        let users = program
            .threads
            .iter()
            .filter(|t| t.name.starts_with("user"))
            .count();
        if users >= 2 || program.scenario == "two-freezer-threads" {
            assert!(
                !reduced.reductions.symmetry.is_empty(),
                "{cell}: no symmetry found"
            );
            assert!(reduced.states < full.states, "{cell}");
            reduced_cells += 1;
        } else {
            assert_eq!(reduced.states, full.states, "{cell}");
        }
        lost_writes += full.outcomes.contains(Outcome::LostWrite) as usize;
    }
    assert!(reduced_cells >= 25, "the family exercises the reduction");
    assert!(
        lost_writes > 0,
        "the family reaches lost-write, whose values are permuted"
    );
}

/// The canonical form is a function of the orbit: every permutation of the
/// interchangeable users (with their values) of any reachable state has the
/// same representative, and packing is exact (unpack inverts pack).
#[test]
fn canonical_states_are_the_same_for_every_permutation() {
    use freezefuzz::engine::exec;
    use freezefuzz::engine::pack::Packer;
    use freezefuzz::engine::symmetry::Symmetry;
    let oracles = OracleSet::standard();
    let mut checked = 0;
    for program in symmetric_family() {
        let packer = Packer::new(&program);
        let symmetry = Symmetry::new(&program, &oracles);
        // Walk pseudo-random runs (a fixed LCG: deterministic).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20 {
            let mut state = program.initial;
            for _ in 0..200 {
                let words: [u64; 11] = packer.pack(&state);
                assert_eq!(packer.unpack(&words, &program.initial), state);
                if let Some(symmetry) = &symmetry {
                    let (canonical, _) = symmetry.canonical::<11>(&packer, &state);
                    let class = &symmetry.classes()[0];
                    let mut perm = [0, 1, 2, 3, 4, 5, 6, 7];
                    for k in 0..class.len() {
                        // Rotations of the first class by every amount.
                        for (i, &t) in class.iter().enumerate() {
                            perm[t] = class[(i + k) % class.len()] as u8;
                        }
                        let moved = symmetry.apply(&state, &perm);
                        assert_eq!(symmetry.canonical::<11>(&packer, &moved).0, canonical);
                        checked += 1;
                    }
                }
                let movable = exec::enabled_mask(&program, &state) | exec::gate_mask(&program, &state);
                if movable == 0 {
                    break;
                }
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let mut pick = (seed >> 33) as u32 % movable.count_ones();
                let mut thread = 0;
                for t in 0..program.threads.len() {
                    if movable & (1 << t) != 0 {
                        if pick == 0 {
                            thread = t;
                            break;
                        }
                        pick -= 1;
                    }
                }
                let fire = exec::fault_point(&program, &state, thread).is_some() && seed >> 63 == 1;
                exec::step(&program, &mut state, thread, fire);
            }
        }
    }
    assert!(checked > 1000);
}

/// F05: an exhaustive search honours the step budget as a random run does: an
/// outcome only reachable past the budget is not reported, and step-limit is,
/// with a witness that replays to it.
#[test]
fn exhaustive_search_honours_the_step_budget() {
    let program = support::shipped_cell("no-block", "case3-racing");
    let oracles = OracleSet::standard();
    for budget in [5, 18] {
        let limits = ExploreLimits {
            steps_max: budget,
            ..ExploreLimits::default()
        };
        let result = explore::explore(&program, &oracles, &limits);
        assert!(result.complete());
        assert!(
            result.outcomes.contains(Outcome::StepLimit),
            "budget {budget}: {}",
            result.outcomes
        );
        for outcome in result.outcomes.iter() {
            let shortest = result.shortest[outcome as usize]
                .as_ref()
                .unwrap_or_else(|| panic!("budget {budget}: {} has no schedule", outcome.name()));
            let (run, _) = run::replay(&program, &oracles, &shortest.choices, budget).expect("fits");
            assert!(
                run.outcomes.contains(outcome),
                "budget {budget}: {} does not replay",
                outcome.name()
            );
        }
        // And a campaign with the same budget finds exactly these outcomes.
        let config = CampaignConfig {
            steps_max: budget,
            ..config(1, 20_000, SchedulerKind::Random)
        };
        let found = campaign(std::slice::from_ref(&program), &config, 2);
        assert_eq!(found[0].outcomes(), result.outcomes, "budget {budget}");
    }
    let tight = explore::explore(
        &program,
        &oracles,
        &ExploreLimits {
            steps_max: 5,
            ..ExploreLimits::default()
        },
    );
    assert_eq!(tight.outcomes, set(&[Outcome::StepLimit]));
}

/// The cells whose step-limit check matters: every symmetric-family cell
/// with the CLI's budget, the step-budget cells (a run longer than the
/// budget on an acyclic graph) and an endless run (a cycle).
fn step_limit_cells() -> Vec<(Program, u32)> {
    let mut cells: Vec<(Program, u32)> = symmetric_family().into_iter().map(|p| (p, 1000)).collect();
    for budget in [5, 18] {
        cells.push((support::shipped_cell("no-block", "case3-racing"), budget));
    }
    let workspace = support::with_standard(
        "policy spin {
            freeze { lock umount write; set_level complete; unlock umount; }
            page_mkwrite { lock_page; }
            writeback { skip; }
        }",
    );
    let policy = workspace.policy("spin").unwrap();
    for scenario in ["case4-racing", "case3-racing"] {
        let scenario = workspace.scenario(scenario).unwrap();
        cells.push((program::compile(policy, scenario).unwrap(), 200));
    }
    cells
}

/// Asserts that `got` is complete and says what `want` says: the same
/// outcomes, witnesses, counts and longest run.
fn assert_same_exploration(got: &explore::Exploration, want: &explore::Exploration, cell: &str) {
    assert!(got.complete(), "{cell}: {:?}", got.limit);
    assert_eq!(got.outcomes, want.outcomes, "{cell}");
    assert_eq!(got.shortest, want.shortest, "{cell}");
    assert_eq!(
        (got.states, got.transitions, got.depth, got.longest_run),
        (want.states, want.transitions, want.depth, want.longest_run),
        "{cell}"
    );
}

/// Dropping the edge list (the step-limit check then re-expands each state
/// from its key) changes nothing a user sees: the same outcomes, counts,
/// longest run and witnesses, schedule for schedule, on every cell of the
/// family, on acyclic graphs with a run past the budget and on endless runs,
/// for any number of workers. (The family's cells with the CLI's budget are
/// acyclic with no run past it: their check is the parallel Kahn rounds.)
#[test]
fn the_step_limit_check_without_an_edge_list_gives_the_same_result() {
    let oracles = OracleSet::standard();
    let (mut cyclic, mut past_budget) = (0, 0);
    for (program, steps_max) in step_limit_cells() {
        let cell = format!("{} × {} (budget {steps_max})", program.policy, program.scenario);
        let limits = ExploreLimits {
            steps_max,
            ..ExploreLimits::default()
        };
        let with = explore::explore(&program, &oracles, &limits);
        assert!(with.complete(), "{cell}");
        // Without the edge list, the check's rounds are re-expanded by the
        // caller alone, and by two workers.
        for jobs in [1, 2] {
            let without = explore::explore(
                &program,
                &oracles,
                &ExploreLimits {
                    keep_edges: false,
                    jobs,
                    ..limits
                },
            );
            assert_same_exploration(&without, &with, &format!("{cell}, {jobs} jobs"));
        }
        if let Some(witness) = &with.shortest[Outcome::StepLimit as usize] {
            let (run, _) = run::replay(&program, &oracles, &witness.choices, steps_max).expect("replays");
            assert!(run.step_limit, "{cell}: the witness runs past the budget");
            match with.longest_run {
                None => cyclic += 1,
                Some(longest) => {
                    assert!(longest > steps_max, "{cell}");
                    past_budget += 1;
                }
            }
        }
    }
    assert!(
        cyclic >= 1 && past_budget >= 2,
        "{cyclic} cyclic, {past_budget} past the budget"
    );
}

/// A search that starts with the edge list and reaches the memory guard
/// drops it mid-search, turning it into in-degrees, and completes with what
/// the search with the edge list says. At the least guard under which the
/// search without the edge list completes, the edge list (8 bytes a state
/// and 4 a transition, more than the 4-byte in-degree and the rounds' two
/// bits) cannot be kept to the end, and that guard leaves room to drop it.
/// On an acyclic cell (Kahn rounds), one with a run past the budget
/// (heights depth-first) and an endless run (the edge list rebuilt).
#[test]
fn a_search_that_outgrows_its_edge_list_drops_it_and_completes() {
    let oracles = OracleSet::standard();
    let mut cells = step_limit_cells();
    let acyclic = cells
        .iter()
        .filter(|(_, steps_max)| *steps_max == 1000)
        .max_by_key(|(program, _)| (program.threads.len(), program.scenario.clone()))
        .cloned()
        .expect("the family");
    cells.retain(|(_, steps_max)| *steps_max != 1000);
    let past_budget = cells
        .iter()
        .find(|(_, steps_max)| *steps_max == 5)
        .cloned()
        .unwrap();
    let cyclic = cells.last().cloned().unwrap();
    for (program, steps_max) in [acyclic, past_budget, cyclic] {
        let cell = format!("{} × {} (budget {steps_max})", program.policy, program.scenario);
        let limits = ExploreLimits {
            steps_max,
            ..ExploreLimits::default()
        };
        let with = explore::explore(&program, &oracles, &limits);
        let without_edges = |memory_max: u64| ExploreLimits {
            memory_max,
            keep_edges: false,
            ..limits
        };
        // The least guard under which the search without edges completes.
        let (mut low, mut high) = (0u64, limits.memory_max);
        assert!(explore::explore(&program, &oracles, &without_edges(high)).complete());
        while low + 1 < high {
            let mid = (low + high) / 2;
            if explore::explore(&program, &oracles, &without_edges(mid)).complete() {
                high = mid;
            } else {
                low = mid;
            }
        }
        let least = explore::explore(&program, &oracles, &without_edges(low));
        assert_eq!(least.limit, Some(explore::LimitHit::Memory(low)), "{cell}");
        for jobs in [1, 2] {
            let dropped = explore::explore(
                &program,
                &oracles,
                &ExploreLimits {
                    memory_max: high,
                    jobs,
                    ..limits
                },
            );
            assert_same_exploration(&dropped, &with, &format!("{cell}, {jobs} jobs, guard {high} B"));
        }
    }
}

/// Hash compaction (opt-in) finds what the exact search finds on every cell
/// of the family (a fingerprint collision among so few states has a
/// probability under 10⁻⁹, and the fingerprints are deterministic), says
/// that the result is not exact with its omission probability, and its
/// witnesses are real runs that replay; step-limit is reported as undecided
/// unless a run past the budget was found.
#[test]
fn hash_compaction_reports_what_it_does_not_prove() {
    let oracles = OracleSet::standard();
    for (program, steps_max) in step_limit_cells() {
        let cell = format!("{} × {} (budget {steps_max})", program.policy, program.scenario);
        let limits = ExploreLimits {
            steps_max,
            ..ExploreLimits::default()
        };
        let exact = explore::explore(&program, &oracles, &limits);
        let compact = explore::explore(
            &program,
            &oracles,
            &ExploreLimits {
                hash_compact: true,
                jobs: 2,
                ..limits
            },
        );
        assert!(exact.exact() && compact.complete() && !compact.exact(), "{cell}");
        let compaction = compact.reductions.hash_compaction.expect("reported");
        assert_eq!(compaction.states, exact.states, "{cell}");
        assert!(compaction.omission_probability() < 1e-9, "{cell}");
        assert!(
            compact
                .reductions
                .describe()
                .iter()
                .any(|line| line.contains("NOT EXACT") && line.contains("omitted")),
            "{cell}"
        );
        assert_eq!(
            (compact.states, compact.transitions),
            (exact.states, exact.transitions),
            "{cell}"
        );
        let no_step_limit = |outcomes: Outcomes| {
            let mut set = Outcomes::default();
            for outcome in outcomes.iter().filter(|&o| o != Outcome::StepLimit) {
                set.insert(outcome);
            }
            set
        };
        assert_eq!(
            no_step_limit(compact.outcomes),
            no_step_limit(exact.outcomes),
            "{cell}"
        );
        if compaction.step_limit_decided {
            assert!(compact.outcomes.contains(Outcome::StepLimit), "{cell}");
            assert!(exact.outcomes.contains(Outcome::StepLimit), "{cell}");
        } else {
            assert!(!compact.outcomes.contains(Outcome::StepLimit), "{cell}");
            assert!(
                compact
                    .reductions
                    .describe()
                    .iter()
                    .any(|l| l.contains("step-limit")),
                "{cell}"
            );
        }
        for outcome in compact.outcomes.iter() {
            let witness = compact.shortest[outcome as usize].as_ref().unwrap();
            if outcome != Outcome::StepLimit {
                assert_eq!(
                    Some(witness),
                    exact.shortest[outcome as usize].as_ref(),
                    "{cell} {outcome}"
                );
            }
            let (run, _) = run::replay(&program, &oracles, &witness.choices, steps_max).expect("replays");
            assert!(run.outcomes.contains(outcome), "{cell} {outcome}");
        }
    }
}
