//! Pages under writeback (PG_writeback) and writeback that re-tests PG_dirty
//! under the page lock: the msync races of issue 14, the deadlock a
//! writeback that blocks while its write-out is in flight causes, and the
//! hunt — `mainline`, Linux's protocol, exhaustively safe on generated
//! scenarios.

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::PathBuf;

use freezefuzz::engine::explore::{self, ExploreLimits};
use freezefuzz::engine::program::{self, Op, Program};
use freezefuzz::engine::run;
use freezefuzz::engine::schedule;
use freezefuzz::ir::Workspace;
use freezefuzz::model::record;
use freezefuzz::oracle::{OracleSet, Outcome, Outcomes};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};

use crate::support;

/// The shipped policies and scenarios, plus `extra` (more policies or scenarios).
fn shipped_with(extra: &str) -> Workspace {
    let mut files = support::shipped_files();
    let extra_path = PathBuf::from("extra.ff");
    files.push(extra_path.clone());
    let extra = extra.as_bytes().to_vec();
    freezefuzz::dsl::load(&files, &mut |p| {
        if p == extra_path {
            Ok(extra.clone())
        } else {
            std::fs::read(p)
        }
    })
    .unwrap_or_else(|e| panic!("loads: {e}\n{}", String::from_utf8_lossy(&extra)))
}

fn compile(workspace: &Workspace, policy: &str, scenario: &str) -> Program {
    program::compile(
        workspace
            .policy(policy)
            .unwrap_or_else(|| panic!("no policy {policy}")),
        workspace
            .scenario(scenario)
            .unwrap_or_else(|| panic!("no scenario {scenario}")),
    )
    .expect("compiles")
}

fn with_dirty_at_freeze() -> OracleSet {
    OracleSet::with_optional(&["dirty-at-freeze".to_string()]).unwrap()
}

/// Explores completely; panics if a limit stops the search. Partial-order
/// reduction must reach the same outcomes (its footprints include the
/// write-outs a step ends).
fn exhaustive(program: &Program, oracles: &OracleSet) -> explore::Exploration {
    let result = explore::explore(program, oracles, &ExploreLimits::default());
    assert!(
        result.complete(),
        "{} × {} did not finish",
        program.policy,
        program.scenario
    );
    let reduced = explore::explore(
        program,
        oracles,
        &ExploreLimits {
            reduce: true,
            ..ExploreLimits::default()
        },
    );
    assert_eq!(
        reduced.outcomes, result.outcomes,
        "{} × {} with --por",
        program.policy, program.scenario
    );
    result
}

fn only_safe() -> Outcomes {
    let mut set = Outcomes::default();
    set.insert(Outcome::Safe);
    set
}

const MSYNC_RACES: &str = "
    // Issue 14: a user syncs its own page while the freeze runs.
    scenario msync-race {
        page a { cached; buffers = mapped; pte = readonly; }
        thread user { store a 2; msync a; }
        thread freezer { freeze; thaw; }
    }
    // Two users msync one page: two writebacks of one page race each other
    // and the freeze's sync; the flusher joins in.
    scenario msync-two-users {
        page a { cached; buffers = mapped; pte = readonly; }
        thread user1 { store a 2; msync a; }
        thread user2 { store a 3; msync a; }
        thread freezer { freeze; thaw; }
        flusher;
    }
    // Two freeze cycles, a user that stores and syncs across both.
    scenario msync-two-cycles {
        page a { cached; buffers = mapped; pte = readonly; }
        thread user { store a 2; msync a; store a 3; msync a; }
        thread freezer { freeze; thaw; freeze; thaw; }
        flusher;
    }
";

#[test]
fn msync_races_are_safe_under_mainline() {
    let workspace = shipped_with(MSYNC_RACES);
    let oracles = with_dirty_at_freeze();
    for scenario in ["msync-race", "msync-two-users", "msync-two-cycles"] {
        for policy in ["mainline", "wait-in-mkwrite"] {
            let program = compile(&workspace, policy, scenario);
            let result = exhaustive(&program, &oracles);
            assert_eq!(
                result.outcomes,
                only_safe(),
                "{policy} × {scenario}: {}",
                result.outcomes
            );
        }
    }
}

/// Without the re-test of PG_dirty under the page lock, waiting for
/// writeback is not enough: the freeze's sync writes the page out, then the
/// msync, which tested `dirty` before that, takes the lock, cleans a clean
/// page and submits it inside the frozen window. The witness shows it.
#[test]
fn without_the_re_test_msync_writes_inside_the_frozen_window() {
    let workspace = shipped_with(&format!(
        "{MSYNC_RACES}
        policy no-retest extends mainline {{
            writeback {{ lock_page; clean; submit; unlock_page; }}
        }}"
    ));
    let program = compile(&workspace, "no-retest", "msync-race");
    let oracles = OracleSet::standard();
    let result = exhaustive(&program, &oracles);
    assert!(
        result.outcomes.contains(Outcome::FrozenWrite),
        "{}",
        result.outcomes
    );
    let witness = result.shortest[Outcome::FrozenWrite as usize].as_ref().unwrap();
    let (_, trace) = run::replay(&program, &oracles, &witness.choices, 1000).unwrap();
    // The frozen write is the user's own msync, after the freezer's sync
    // wrote the page out.
    let frozen = trace
        .iter()
        .position(|s| !s.before.has_record(record::FROZEN_WRITE) && s.after.has_record(record::FROZEN_WRITE))
        .expect("a step records the frozen write");
    assert_eq!(program.threads[trace[frozen].choice.thread as usize].name, "user");
    let freezer = program.thread_index("freezer").unwrap();
    assert!(
        trace[..frozen]
            .iter()
            .any(|s| s.choice.thread as usize == freezer && s.after.pages[0].disk == 2),
        "{}",
        schedule::format_labelled(&program, &witness.choices)
    );
}

/// A writeback that waits for the thaw while its write-out is in flight
/// (here: `wait_unfrozen write` after `clean`) deadlocks the freeze's sync,
/// which waits for that write-out — as `sync_filesystem` waits in
/// `wait_sb_inodes` in the kernel. The msync cleans the page before the
/// freeze starts; the freeze then blocks it, and its own sync waits for it.
#[test]
fn a_writeback_that_blocks_after_clean_deadlocks_a_sync_that_waits_for_it() {
    let workspace = shipped_with(
        "policy wait-after-clean extends mainline {
            writeback {
                lock_page;
                if dirty { clean; unlock_page; wait_unfrozen write; submit; } else { unlock_page; }
            }
        }
        scenario dirty-msync {
            page a { cached; buffers = mapped; pte = readonly; dirty; }
            thread user { msync a; }
            thread freezer { freeze; thaw; }
        }",
    );
    let oracles = OracleSet::standard();
    let program = compile(&workspace, "wait-after-clean", "dirty-msync");
    let result = exhaustive(&program, &oracles);
    assert!(result.outcomes.contains(Outcome::Deadlock), "{}", result.outcomes);
    let witness = result.shortest[Outcome::Deadlock as usize].as_ref().unwrap();
    let (end, steps) = run::replay(&program, &oracles, &witness.choices, 1000).unwrap();
    let user = program.thread_index("user").unwrap();
    let freezer = program.thread_index("freezer").unwrap();
    // The trace and the picture say why the freezer waits.
    let trace = freezefuzz::report::trace::render(&workspace, &program, &steps, &end);
    assert!(trace.contains("a.writeback no → by user"), "{trace}");
    assert!(trace.contains("— waits for writeback of a (by user)"), "{trace}");
    let svg = freezefuzz::report::svg::render(&program, &steps, &end);
    assert!(svg.contains("<title>user has a under writeback</title>"), "{svg}");
    // The user's write-out is in flight, and it waits for the thaw ...
    assert_eq!(end.state.pages[0].writeback_by(), 1 << user);
    assert!(matches!(
        program.instr(user, end.state.pc[user]).op,
        Op::WaitUnfrozen(_)
    ));
    // ... while the freeze's sync waits for that write-out, the page clean.
    assert!(matches!(
        program.instr(freezer, end.state.pc[freezer]).op,
        Op::TestDirty(0)
    ));
    assert!(!end.state.pages[0].dirty());
    // The sync never ran a writeback: only the user's write-out stops it.
    assert!(end.state.pages[0].disk == 1 && end.state.pages[0].mem == 1);
}

/// A page that starts with a writable pte but clean is outside the kernel
/// (the write fault that makes a pte writable dirties the page, and
/// writeback write-protects the pte before it clears PG_dirty). From it the
/// freeze's sync would skip the page and a store after the freeze would go
/// through the pte without a fault, so `mainline` would write while frozen:
/// the language refuses such a page instead (docs/semantics.md, "Initial
/// pages the kernel cannot reach"), and the same page with `dirty` is safe.
#[test]
fn a_writable_clean_page_is_refused_and_the_dirty_one_is_safe() {
    let scenario = |attributes: &str| {
        format!(
            "scenario writable {{
                page a {{ cached; buffers = mapped; pte = writable; {attributes} }}
                thread user {{ await frozen; store a 2; munmap a; }}
                thread freezer {{ freeze; thaw; }}
                flusher;
            }}"
        )
    };
    let errors = freezefuzz::dsl::load_str("writable.ff", &scenario(""))
        .expect_err("a writable clean page is refused");
    assert_eq!(errors.diagnostics.len(), 1, "{errors}");
    assert_eq!(
        errors.diagnostics[0].code.name(),
        "ff::inconsistent-page",
        "{errors}"
    );
    assert!(
        errors.diagnostics[0]
            .message
            .contains("writable pte but is not dirty"),
        "{errors}"
    );

    let workspace = shipped_with(&scenario("dirty;"));
    let program = compile(&workspace, "mainline", "writable");
    let result = exhaustive(&program, &with_dirty_at_freeze());
    assert_eq!(result.outcomes.to_string(), "safe");
}

// ---- the hunt -------------------------------------------------------------

/// One page's initial state, among those the kernel can reach: a page that
/// is not cached is clean and unmapped; a writable pte belongs to a dirty
/// page (the write fault dirties it, and writeback write-protects the pte
/// before it clears PG_dirty); the pte's dirty bit only on a writable pte.
#[derive(Clone, Copy, Debug)]
struct PageGen {
    cached: bool,
    buffers: usize,
    pte: usize,
    dirty: bool,
    pte_dirty: bool,
}

#[derive(Clone, Copy, Debug)]
enum ActionGen {
    Store(usize),
    Msync(usize),
    Munmap(usize),
    AwaitFrozen,
}

#[derive(Clone, Copy, Debug)]
enum FreezersGen {
    /// One freezer with this many freeze/thaw cycles.
    Cycles(usize),
    /// Two freezers, one cycle each (the kernel's nesting rule applies).
    Two,
}

#[derive(Clone, Debug)]
struct ScenarioGen {
    pages: Vec<PageGen>,
    users: Vec<Vec<ActionGen>>,
    freezers: FreezersGen,
    flusher: bool,
}

impl ScenarioGen {
    fn text(&self) -> String {
        let mut text = String::from("scenario hunt {\n");
        for (i, page) in self.pages.iter().enumerate() {
            let mut attributes = String::new();
            if page.cached {
                attributes.push_str("cached; ");
            }
            attributes.push_str(["", "buffers = delayed; ", "buffers = mapped; "][page.buffers]);
            attributes.push_str(["", "pte = readonly; ", "pte = writable; "][page.pte]);
            if page.dirty {
                attributes.push_str("dirty; ");
            }
            if page.pte_dirty {
                attributes.push_str("pte_dirty; ");
            }
            let _ = writeln!(text, "    page p{i} {{ {attributes}}}");
        }
        let mut value = 1;
        for (u, actions) in self.users.iter().enumerate() {
            let mut body = String::new();
            for action in actions {
                match *action {
                    ActionGen::Store(p) => {
                        value += 1;
                        let _ = write!(body, "store p{p} {value}; ");
                    }
                    ActionGen::Msync(p) => {
                        let _ = write!(body, "msync p{p}; ");
                    }
                    ActionGen::Munmap(p) => {
                        let _ = write!(body, "munmap p{p}; ");
                    }
                    ActionGen::AwaitFrozen => body.push_str("await frozen; "),
                }
            }
            let _ = writeln!(text, "    thread user{u} {{ {body}}}");
        }
        match self.freezers {
            FreezersGen::Cycles(n) => {
                let _ = writeln!(text, "    thread freezer {{ {}}}", "freeze; thaw; ".repeat(n));
            }
            FreezersGen::Two => {
                text.push_str("    thread freezer1 { freeze; thaw; }\n");
                text.push_str("    thread freezer2 { freeze; thaw; }\n");
            }
        }
        if self.flusher {
            text.push_str("    flusher;\n");
        }
        text.push_str("}\n");
        text
    }
}

fn page_gen() -> impl Strategy<Value = PageGen> {
    (any::<bool>(), 0usize..3, 0usize..3, any::<bool>(), any::<bool>()).prop_map(
        |(cached, buffers, pte, dirty, pte_dirty)| {
            if !cached {
                return PageGen {
                    cached,
                    buffers,
                    pte: 0,
                    dirty: false,
                    pte_dirty: false,
                };
            }
            PageGen {
                cached,
                buffers,
                pte,
                dirty: dirty || pte == 2,
                pte_dirty: pte_dirty && pte == 2,
            }
        },
    )
}

fn action_gen(pages: usize) -> impl Strategy<Value = ActionGen> {
    prop_oneof![
        3 => (0..pages).prop_map(ActionGen::Store),
        3 => (0..pages).prop_map(ActionGen::Msync),
        2 => (0..pages).prop_map(ActionGen::Munmap),
        1 => Just(ActionGen::AwaitFrozen),
    ]
}

/// Scenarios of 1–3 pages, 1–3 users of up to `actions_max` actions each,
/// one freezer of 1–2 cycles or two freezers, with or without the flusher.
fn scenario_gen(actions_max: usize) -> impl Strategy<Value = ScenarioGen> {
    prop::collection::vec(page_gen(), 1..=3).prop_flat_map(move |pages| {
        let count = pages.len();
        (
            Just(pages),
            prop::collection::vec(prop::collection::vec(action_gen(count), 1..=actions_max), 1..=3),
            prop_oneof![
                2 => Just(FreezersGen::Cycles(1)),
                1 => Just(FreezersGen::Cycles(2)),
                1 => Just(FreezersGen::Two),
            ],
            any::<bool>(),
        )
            .prop_map(|(pages, users, freezers, flusher)| ScenarioGen {
                pages,
                users,
                freezers,
                flusher,
            })
    })
}

/// What a hunt found.
struct Hunt {
    /// Scenarios explored (shrinking included).
    ran: u32,
    /// Scenarios whose search hit the state limit: they prove nothing.
    skipped: u32,
    states: u64,
    /// The shrunk counterexample (scenario text) and what went wrong.
    counterexample: Option<(String, String)>,
}

/// Explores `policy` (shipped, or defined in `policies_text`) on `cases`
/// generated scenarios with dirty-at-freeze on, each search bounded by
/// `states_max`; stops at the first scenario with an outcome other than
/// safe and shrinks it.
fn hunt(
    policies_text: &str,
    policy: &str,
    cases: u32,
    actions_max: usize,
    states_max: u64,
    seed: u64,
) -> Hunt {
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes));
    let oracles = with_dirty_at_freeze();
    let limits = ExploreLimits {
        states_max,
        ..ExploreLimits::default()
    };
    let (ran, skipped, states) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u64));
    let result = runner.run(&scenario_gen(actions_max), |generated| {
        let text = generated.text();
        let workspace = shipped_with(&format!("{policies_text}\n{text}"));
        let program = compile(&workspace, policy, "hunt");
        let result = explore::explore(&program, &oracles, &limits);
        ran.set(ran.get() + 1);
        if !result.complete() {
            skipped.set(skipped.get() + 1);
            return Ok(());
        }
        states.set(states.get() + result.states);
        let bad: Vec<String> = result
            .outcomes
            .iter()
            .filter(|&o| o != Outcome::Safe)
            .map(|o| {
                let witness = result.shortest[o as usize].as_ref().unwrap();
                format!(
                    "{}: {}",
                    o.name(),
                    schedule::format_labelled(&program, &witness.choices)
                )
            })
            .collect();
        prop_assert!(bad.is_empty(), "{policy} is unsafe: {}", bad.join("\n"));
        Ok(())
    });
    let counterexample = match result {
        Ok(()) => None,
        Err(TestError::Fail(reason, scenario)) => Some((scenario.text(), reason.to_string())),
        Err(TestError::Abort(reason)) => panic!("the hunt aborted: {reason}"),
    };
    Hunt {
        ran: ran.get(),
        skipped: skipped.get(),
        states: states.get(),
        counterexample,
    }
}

/// `mainline` is exhaustively safe, dirty-at-freeze included, on generated
/// scenarios: 1–3 pages in any initial state the kernel can reach, 1–3
/// users (store, msync, munmap, await frozen), one freezer of 1–2 cycles or
/// two freezers, with or without the flusher. Each case's search is bounded
/// by a state limit; a case that hits it proves nothing and is skipped —
/// counted, and the test fails if more than a tenth of the cases are
/// skipped. 300 cases of up to 2 actions per user (20 000 states each);
/// under FREEZEFUZZ_LONG_TESTS 3000 cases of up to 3 actions (500 000
/// states each: run it with `--release`). FREEZEFUZZ_HUNT_SEED picks other
/// cases.
#[test]
fn hunt_mainline_is_safe_on_generated_scenarios() {
    let long = std::env::var_os("FREEZEFUZZ_LONG_TESTS").is_some();
    let (cases, actions_max, states_max) = if long {
        (3000, 3, 500_000)
    } else {
        (300, 2, 20_000)
    };
    let seed = std::env::var("FREEZEFUZZ_HUNT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(14);
    let found = hunt("", "mainline", cases, actions_max, states_max, seed);
    if let Some((scenario, reason)) = &found.counterexample {
        panic!("shrunk counterexample (seed {seed}): {reason}\n{scenario}");
    }
    eprintln!(
        "hunt: {} scenarios, {} skipped at the state limit of {states_max}, {} states explored",
        found.ran, found.skipped, found.states
    );
    assert!(
        found.skipped * 10 <= found.ran,
        "{} of {} scenarios hit the state limit of {states_max}: the hunt proves too little",
        found.skipped,
        found.ran
    );
}

/// The hunt can fail: with the writeback of before issue 14 (no re-test of
/// PG_dirty under the page lock) it finds the msync race and shrinks it to
/// one page, a store and an msync of it, one freeze cycle and no flusher.
#[test]
fn the_hunt_finds_and_shrinks_the_missing_re_test() {
    let found = hunt(
        "policy no-retest extends mainline { writeback { lock_page; clean; submit; unlock_page; } }",
        "no-retest",
        100,
        2,
        20_000,
        14,
    );
    let (scenario, reason) = found.counterexample.expect("the hunt finds the race");
    assert!(reason.contains("frozen-write"), "{reason}");
    assert!(
        scenario.contains("msync p0") && scenario.contains("store p0"),
        "{scenario}"
    );
    assert!(
        scenario.contains("thread freezer { freeze; thaw; }"),
        "{scenario}"
    );
    assert!(
        !scenario.contains("p1") && !scenario.contains("flusher") && !scenario.contains("user2"),
        "not shrunk:\n{scenario}"
    );
}
