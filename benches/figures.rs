//! The figures of docs/performance.md, computed rather than sampled by divan:
//! `benches/report` runs this binary once per section and pastes its Markdown.
//!
//! `cargo bench --bench figures -- SECTION`, where SECTION is one of
//! `walk` (random walk and PCT per standard cell), `first-failure`,
//! `exhaustive`, `family`, `parallel`, `symmetry` (three users, with and
//! without symmetry reduction), or `explore-one POLICY PAGES USERS CYCLES`
//! (one exhaustive search, for measuring its peak memory from outside), or
//! `scenario-text PAGES USERS CYCLES` (a scaled scenario as a `.ff` file for the CLI).
//! Timings are medians of several samples on one thread unless a figure says otherwise.

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use freezefuzz::engine::campaign::{CampaignConfig, Shard, campaign};
use freezefuzz::engine::explore::{ExploreLimits, bytes_per_state, explore};
use freezefuzz::engine::program::Program;
use freezefuzz::engine::run::run;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::engine::seeds::RunSeeds;
use freezefuzz::oracle::OracleSet;

use support::{STEPS_MAX, Scale, family, median_time, median_u64, scaled_program, standard_cells, walk};

const PCT: SchedulerKind = SchedulerKind::Pct { depth: 3 };
/// Runs per timing sample of one cell.
const WALK_RUNS: u64 = 50_000;
const WALK_SAMPLES: usize = 5;
/// Campaign seeds for runs-to-first-failure, and the most runs tried per seed.
const FIRST_FAILURE_SEEDS: u64 = 50;
const FIRST_FAILURE_CAP: u64 = 100_000;
/// Policies the scaled family is measured with.
const FAMILY_POLICIES: [&str; 2] = ["mainline", "block-on-mapped"];

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let oracles = OracleSet::standard();
    match args.first().map(String::as_str) {
        Some("walk") => walk_section(&oracles),
        Some("first-failure") => first_failure_section(&oracles),
        Some("exhaustive") => exhaustive_section(&oracles),
        Some("family") => family_section(&oracles),
        Some("parallel") => parallel_section(&oracles),
        Some("symmetry") => symmetry_section(&oracles),
        Some("scenario-text") => {
            let number = |i: usize| args[i].parse::<usize>().expect("a number");
            print!(
                "{}",
                support::scenario_text(Scale {
                    pages: number(1),
                    users: number(2),
                    cycles: number(3),
                })
            );
        }
        Some("explore-one") => {
            let number = |i: usize| args[i].parse::<usize>().expect("a number");
            let scale = Scale {
                pages: number(2),
                users: number(3),
                cycles: number(4),
            };
            let program = scaled_program(&args[1], scale);
            let start = Instant::now();
            let found = explore(&program, &oracles, &ExploreLimits::default());
            let elapsed = start.elapsed();
            println!(
                "{} {}: {} states, {} transitions, complete {}, outcomes {}, {:.3} s",
                args[1],
                scale.name(),
                found.states,
                found.transitions,
                found.complete(),
                found.outcomes,
                elapsed.as_secs_f64()
            );
        }
        _ => {
            eprintln!(
                "usage: figures walk|first-failure|exhaustive|family|parallel|explore-one POLICY P U C|scenario-text P U C"
            );
            std::process::exit(2);
        }
    }
}

/// Per-core rates of `runs` runs: steps per run, steps per CPU second, runs per
/// CPU second, and steps per wall second (medians of `samples`).
fn throughput(
    program: &Program,
    oracles: &OracleSet,
    kind: SchedulerKind,
    runs: u64,
    samples: usize,
) -> [f64; 4] {
    let steps = walk(program, oracles, kind, 1, runs) as f64;
    let time = median_time(samples, || {
        std::hint::black_box(walk(program, oracles, kind, 1, runs));
    });
    let core = time.per_core();
    [
        steps / runs as f64,
        steps / core,
        runs as f64 / core,
        steps / time.wall.as_secs_f64(),
    ]
}

fn walk_section(oracles: &OracleSet) {
    println!(
        "| cell | steps/run | random Msteps/s | random kruns/s | random Msteps/s (wall) | pct:3 Msteps/s | pct:3 kruns/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut random_rates = Vec::new();
    let mut pct_rates = Vec::new();
    for program in standard_cells() {
        let [per_run, steps, runs, wall] =
            throughput(&program, oracles, SchedulerKind::Random, WALK_RUNS, WALK_SAMPLES);
        let [_, pct_steps, pct_runs, _] = throughput(&program, oracles, PCT, WALK_RUNS, WALK_SAMPLES);
        random_rates.push(steps);
        pct_rates.push(pct_steps);
        println!(
            "| {} × {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} |",
            program.policy,
            program.scenario,
            per_run,
            steps / 1e6,
            runs / 1e3,
            wall / 1e6,
            pct_steps / 1e6,
            pct_runs / 1e3
        );
    }
    let summary = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[0] / 1e6, v[v.len() / 2] / 1e6, v[v.len() - 1] / 1e6)
    };
    let (lo, mid, hi) = summary(random_rates);
    let (plo, pmid, phi) = summary(pct_rates);
    println!();
    println!(
        "SUMMARY random Msteps/s per core (per CPU second) over the 56 cells: min {lo:.1}, median {mid:.1}, max {hi:.1}"
    );
    println!(
        "SUMMARY pct:3 Msteps/s per core (per CPU second) over the 56 cells: min {plo:.1}, median {pmid:.1}, max {phi:.1}"
    );
}

/// Runs until the first run whose outcomes include a finding; `None` past the cap.
fn runs_to_first_failure(
    program: &Program,
    oracles: &OracleSet,
    kind: SchedulerKind,
    seed: u64,
) -> Option<u64> {
    let mut seeds = RunSeeds::new(seed, &program.policy, &program.scenario, 0);
    let mut scheduler = kind.build();
    for index in 0..FIRST_FAILURE_CAP {
        let result = run(
            program,
            oracles,
            scheduler.as_mut(),
            seeds.next_seed(),
            STEPS_MAX,
            None,
        );
        if result.outcomes.iter().any(|o| o.is_bad()) {
            return Some(index + 1);
        }
    }
    None
}

fn first_failure_section(oracles: &OracleSet) {
    println!(
        "| bad cell | exhaustive outcomes | random: median runs | random: seeds that failed | pct:3: median runs | pct:3: seeds that failed |"
    );
    println!("|---|---|---:|---:|---:|---:|");
    for program in standard_cells() {
        let exact = explore(&program, oracles, &ExploreLimits::default());
        if !exact.outcomes.iter().any(|o| o.is_bad()) {
            continue;
        }
        let mut cells = Vec::new();
        for kind in [SchedulerKind::Random, PCT] {
            let found: Vec<Option<u64>> = (1..=FIRST_FAILURE_SEEDS)
                .map(|seed| runs_to_first_failure(&program, oracles, kind, seed))
                .collect();
            let failed = found.iter().filter(|f| f.is_some()).count();
            // Seeds that never failed count as the cap (the median is then a lower bound).
            let median = median_u64(found.iter().map(|f| f.unwrap_or(FIRST_FAILURE_CAP + 1)).collect());
            let shown = if median > FIRST_FAILURE_CAP {
                format!("> {FIRST_FAILURE_CAP}")
            } else {
                median.to_string()
            };
            cells.push(format!("{shown} | {failed}/{FIRST_FAILURE_SEEDS}"));
        }
        println!(
            "| {} × {} | {} | {} | {} |",
            program.policy, program.scenario, exact.outcomes, cells[0], cells[1]
        );
    }
}

fn exhaustive_section(oracles: &OracleSet) {
    println!("| cell | states | transitions | median CPU time (µs) | states/s |");
    println!("|---|---:|---:|---:|---:|");
    let programs = standard_cells();
    let mut total = 0.0;
    let mut states_total = 0;
    for program in &programs {
        let found = explore(program, oracles, &ExploreLimits::default());
        assert!(found.complete(), "standard cells explore completely");
        let time = median_time(7, || {
            std::hint::black_box(explore(program, oracles, &ExploreLimits::default()));
        });
        total += time.per_core();
        states_total += found.states;
        println!(
            "| {} × {} | {} | {} | {:.0} | {:.2e} |",
            program.policy,
            program.scenario,
            found.states,
            found.transitions,
            time.per_core() * 1e6,
            found.states as f64 / time.per_core()
        );
    }
    let whole = median_time(7, || {
        for program in &programs {
            std::hint::black_box(explore(program, oracles, &ExploreLimits::default()));
        }
    });
    println!();
    println!(
        "SUMMARY exhaustive standard matrix, one thread, engine only: {} cells, {} states, median {:.1} ms CPU, {:.1} ms wall ({:.2e} states/s); sum of per-cell medians {:.1} ms; BYTES_PER_STATE {}",
        programs.len(),
        states_total,
        whole.per_core() * 1e3,
        whole.wall.as_secs_f64() * 1e3,
        states_total as f64 / whole.per_core(),
        total * 1e3,
        programs.iter().map(bytes_per_state).max().unwrap_or(0)
    );
}

fn family_section(oracles: &OracleSet) {
    println!(
        "| policy | scenario (pages-users-cycles) | threads | states | transitions | explore CPU time (s) | states/s | est. table MiB | outcomes | random Msteps/s | pct:3 Msteps/s | steps/run |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    for policy in FAMILY_POLICIES {
        for scale in family() {
            let program = scaled_program(policy, scale);
            let mut found = None;
            // Large searches are timed once, small ones several times.
            let once = median_time(1, || {
                found = Some(explore(&program, oracles, &ExploreLimits::default()))
            });
            let time = if once.wall < Duration::from_millis(200) {
                median_time(5, || {
                    std::hint::black_box(explore(&program, oracles, &ExploreLimits::default()));
                })
            } else {
                once
            };
            let found = found.expect("explored");
            let complete = if found.complete() { "" } else { " (incomplete)" };
            let runs = 20_000;
            let [per_run, steps, _, _] = throughput(&program, oracles, SchedulerKind::Random, runs, 3);
            let [_, pct_steps, _, _] = throughput(&program, oracles, PCT, runs, 3);
            println!(
                "| {policy} | {} | {} | {}{complete} | {} | {:.3} | {:.2e} | {:.1} | {} | {:.1} | {:.1} | {:.1} |",
                scale.name(),
                program.threads.len(),
                found.states,
                found.transitions,
                time.per_core(),
                found.states as f64 / time.per_core(),
                (found.states * bytes_per_state(&program) + found.transitions * 4) as f64 / (1 << 20) as f64,
                found.outcomes,
                steps / 1e6,
                pct_steps / 1e6,
                per_run
            );
        }
    }
}

fn parallel_section(oracles: &OracleSet) {
    let programs = standard_cells();
    let runs = 40_000;
    let config = CampaignConfig {
        seed: 1,
        runs,
        scheduler: SchedulerKind::Random,
        steps_max: STEPS_MAX,
        shard: Shard::WHOLE,
    };
    let stop = AtomicBool::new(false);
    // Samples alternate between 1 and 2 threads so that a burst of load from
    // elsewhere on the machine hits both alike.
    let mut walls: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut results: [Vec<_>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..7 {
        for jobs in [1, 2] {
            let start = Instant::now();
            results[jobs - 1] = campaign(&programs, oracles, &config, jobs, &stop, &|_| {});
            walls[jobs - 1].push(start.elapsed().as_secs_f64());
        }
    }
    let steps: u64 = results[0].iter().map(|c| c.steps_total).sum();
    let runs_total = runs * programs.len() as u64;
    println!(
        "| campaign() over the standard matrix, random, {runs} runs per cell | median wall | best wall | Msteps/s (median) | kruns/s (median) |"
    );
    println!("|---|---:|---:|---:|---:|");
    let mut medians = [0.0; 2];
    let mut bests = [0.0; 2];
    for jobs in [1, 2] {
        let times = &mut walls[jobs - 1];
        times.sort_by(f64::total_cmp);
        medians[jobs - 1] = times[times.len() / 2];
        bests[jobs - 1] = times[0];
        println!(
            "| {jobs} worker thread(s): {runs_total} runs, {steps} steps | {:.3} s | {:.3} s | {:.1} | {:.0} |",
            medians[jobs - 1],
            bests[jobs - 1],
            steps as f64 / medians[jobs - 1] / 1e6,
            runs_total as f64 / medians[jobs - 1] / 1e3
        );
    }
    println!();
    println!(
        "SUMMARY speed-up 2 threads / 1 thread: {:.2}× (medians), {:.2}× (best of 7); results identical: {}",
        medians[0] / medians[1],
        bests[0] / bests[1],
        results[0] == results[1]
    );
}

/// Scaled scenarios with up to three users, explored with and without
/// symmetry reduction: the states saved, and that the verdicts agree.
fn symmetry_section(oracles: &OracleSet) {
    println!(
        "| policy | scenario | states (full) | states (symmetry) | ratio | transitions (full) | transitions (symmetry) | CPU s (full) | CPU s (symmetry) | same outcomes and shortest depths |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let full_limits = ExploreLimits {
        symmetry: false,
        ..ExploreLimits::default()
    };
    for policy in FAMILY_POLICIES {
        for (pages, users, cycles) in [(1, 3, 2), (2, 2, 2), (2, 3, 1), (2, 3, 2), (3, 2, 2)] {
            let program = scaled_program(policy, Scale { pages, users, cycles });
            let (mut full, mut reduced) = (None, None);
            let full_time = median_time(1, || full = Some(explore(&program, oracles, &full_limits)));
            let reduced_time = median_time(1, || {
                reduced = Some(explore(&program, oracles, &ExploreLimits::default()))
            });
            let (full, reduced) = (full.expect("explored"), reduced.expect("explored"));
            let depths = |e: &freezefuzz::engine::explore::Exploration| {
                e.shortest
                    .iter()
                    .map(|s| s.as_ref().map(|s| s.depth))
                    .collect::<Vec<_>>()
            };
            println!(
                "| {policy} | p{pages}-u{users}-c{cycles} | {} | {} | {:.2} | {} | {} | {:.2} | {:.2} | {} |",
                full.states,
                reduced.states,
                full.states as f64 / reduced.states as f64,
                full.transitions,
                reduced.transitions,
                full_time.per_core(),
                reduced_time.per_core(),
                full.outcomes == reduced.outcomes && depths(&full) == depths(&reduced)
            );
        }
    }
}
