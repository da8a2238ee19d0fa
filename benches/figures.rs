//! The figures of docs/performance.md, computed rather than sampled by divan:
//! `benches/report` runs this binary once per section and pastes its Markdown.
//!
//! `cargo bench --bench figures -- SECTION`, where SECTION is one of
//! `walk` (random walk and PCT per standard cell), `first-failure`,
//! `exhaustive`, `family`, `parallel`, or `explore-one POLICY PAGES USERS CYCLES`
//! (one exhaustive search, for measuring its peak memory from outside).
//! Timings are medians of several samples on one thread unless a figure says otherwise.

#[path = "support/mod.rs"]
mod support;

use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use freezefuzz::engine::campaign::{CampaignConfig, Shard, campaign};
use freezefuzz::engine::explore::{BYTES_PER_STATE, ExploreLimits, explore};
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
            eprintln!("usage: figures walk|first-failure|exhaustive|family|parallel|explore-one P N U C");
            std::process::exit(2);
        }
    }
}

/// Steps per second and runs per second of `runs` runs, median of `samples`.
fn throughput(
    program: &Program,
    oracles: &OracleSet,
    kind: SchedulerKind,
    runs: u64,
    samples: usize,
) -> (f64, f64, f64) {
    let steps = walk(program, oracles, kind, 1, runs);
    let time = median_time(samples, || {
        std::hint::black_box(walk(program, oracles, kind, 1, runs));
    });
    let secs = time.as_secs_f64();
    (
        steps as f64 / runs as f64,
        steps as f64 / secs,
        runs as f64 / secs,
    )
}

fn walk_section(oracles: &OracleSet) {
    println!("| cell | steps/run | random Msteps/s | random kruns/s | pct:3 Msteps/s | pct:3 kruns/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut random_rates = Vec::new();
    let mut pct_rates = Vec::new();
    for program in standard_cells() {
        let (per_run, steps, runs) =
            throughput(&program, oracles, SchedulerKind::Random, WALK_RUNS, WALK_SAMPLES);
        let (_, pct_steps, pct_runs) = throughput(&program, oracles, PCT, WALK_RUNS, WALK_SAMPLES);
        random_rates.push(steps);
        pct_rates.push(pct_steps);
        println!(
            "| {} × {} | {:.1} | {:.1} | {:.0} | {:.1} | {:.0} |",
            program.policy,
            program.scenario,
            per_run,
            steps / 1e6,
            runs / 1e3,
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
    println!("SUMMARY random Msteps/s per core over the 56 cells: min {lo:.1}, median {mid:.1}, max {hi:.1}");
    println!(
        "SUMMARY pct:3 Msteps/s per core over the 56 cells: min {plo:.1}, median {pmid:.1}, max {phi:.1}"
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
    println!("| cell | states | transitions | median time (µs) | states/s |");
    println!("|---|---:|---:|---:|---:|");
    let programs = standard_cells();
    let mut total = Duration::ZERO;
    let mut states_total = 0;
    for program in &programs {
        let found = explore(program, oracles, &ExploreLimits::default());
        assert!(found.complete(), "standard cells explore completely");
        let time = median_time(7, || {
            std::hint::black_box(explore(program, oracles, &ExploreLimits::default()));
        });
        total += time;
        states_total += found.states;
        println!(
            "| {} × {} | {} | {} | {:.0} | {:.2e} |",
            program.policy,
            program.scenario,
            found.states,
            found.transitions,
            time.as_secs_f64() * 1e6,
            found.states as f64 / time.as_secs_f64()
        );
    }
    let whole = median_time(7, || {
        for program in &programs {
            std::hint::black_box(explore(program, oracles, &ExploreLimits::default()));
        }
    });
    println!();
    println!(
        "SUMMARY exhaustive standard matrix, one thread, engine only: {} cells, {} states, median {:.1} ms ({:.2e} states/s); sum of per-cell medians {:.1} ms; BYTES_PER_STATE {}",
        programs.len(),
        states_total,
        whole.as_secs_f64() * 1e3,
        states_total as f64 / whole.as_secs_f64(),
        total.as_secs_f64() * 1e3,
        BYTES_PER_STATE
    );
}

fn family_section(oracles: &OracleSet) {
    println!(
        "| policy | scenario (pages-users-cycles) | threads | states | transitions | explore time (s) | states/s | est. table MiB | outcomes | random Msteps/s | pct:3 Msteps/s | steps/run |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|");
    for policy in FAMILY_POLICIES {
        for scale in family() {
            let program = scaled_program(policy, scale);
            let start = Instant::now();
            let found = explore(&program, oracles, &ExploreLimits::default());
            let mut time = start.elapsed();
            if time < Duration::from_millis(200) {
                time = median_time(5, || {
                    std::hint::black_box(explore(&program, oracles, &ExploreLimits::default()));
                });
            }
            let complete = if found.complete() { "" } else { " (incomplete)" };
            let runs = 20_000;
            let (per_run, steps, _) = throughput(&program, oracles, SchedulerKind::Random, runs, 3);
            let (_, pct_steps, _) = throughput(&program, oracles, PCT, runs, 3);
            println!(
                "| {policy} | {} | {} | {}{complete} | {} | {:.3} | {:.2e} | {:.1} | {} | {:.1} | {:.1} | {:.1} |",
                scale.name(),
                program.threads.len(),
                found.states,
                found.transitions,
                time.as_secs_f64(),
                found.states as f64 / time.as_secs_f64(),
                (found.states * BYTES_PER_STATE + found.transitions * 4) as f64 / (1 << 20) as f64,
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
    let mut results = Vec::new();
    let mut times = Vec::new();
    for jobs in [1, 2] {
        let mut last = Vec::new();
        let time = median_time(5, || {
            last = campaign(&programs, oracles, &config, jobs, &stop, &|_| {})
        });
        let steps: u64 = last.iter().map(|c| c.steps_total).sum();
        println!(
            "| campaign() standard matrix, {runs} runs/cell ({} runs, {} steps), --jobs {jobs} | {:.3} s | {:.1} Msteps/s | {:.0} kruns/s |",
            runs * programs.len() as u64,
            steps,
            time.as_secs_f64(),
            steps as f64 / time.as_secs_f64() / 1e6,
            (runs * programs.len() as u64) as f64 / time.as_secs_f64() / 1e3
        );
        results.push(last);
        times.push(time.as_secs_f64());
    }
    println!();
    println!(
        "SUMMARY speed-up 2 threads / 1 thread: {:.2}×; results identical: {}",
        times[0] / times[1],
        results[0] == results[1]
    );
}
