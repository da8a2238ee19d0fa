//! divan benchmarks of the engine: random walk and PCT throughput per standard
//! cell and per scaled scenario, exhaustive search, and campaigns on 1 and 2
//! worker threads. Throughput counters are model steps (random walk, PCT,
//! campaigns) and states (exhaustive).
//!
//! `cargo bench --bench engine` runs them all; `cargo bench --bench engine -- random_walk`
//! filters. The figures of docs/performance.md come from `benches/report`.

#[path = "support/mod.rs"]
mod support;

use std::sync::LazyLock;
use std::sync::atomic::AtomicBool;

use divan::Bencher;
use divan::counter::ItemsCount;
use freezefuzz::engine::campaign::{CHUNK_RUNS, CampaignConfig, Shard, campaign};
use freezefuzz::engine::explore::{ExploreLimits, explore};
use freezefuzz::engine::program::Program;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::oracle::OracleSet;

use support::{STEPS_MAX, Scale, family, scaled_program, standard_cells, walk};

fn main() {
    divan::main();
}

const PCT: SchedulerKind = SchedulerKind::Pct { depth: 3 };

/// Every standard cell, `policy/scenario`, in matrix order.
const CELLS: [&str; 56] = [
    "block-on-mapped/case1-after-freeze",
    "block-on-mapped/case2-after-freeze",
    "block-on-mapped/case3-after-freeze",
    "block-on-mapped/case4-after-freeze",
    "block-on-mapped/case1-racing",
    "block-on-mapped/case2-racing",
    "block-on-mapped/case3-racing",
    "block-on-mapped/case4-racing",
    "mainline/case1-after-freeze",
    "mainline/case2-after-freeze",
    "mainline/case3-after-freeze",
    "mainline/case4-after-freeze",
    "mainline/case1-racing",
    "mainline/case2-racing",
    "mainline/case3-racing",
    "mainline/case4-racing",
    "no-block/case1-after-freeze",
    "no-block/case2-after-freeze",
    "no-block/case3-after-freeze",
    "no-block/case4-after-freeze",
    "no-block/case1-racing",
    "no-block/case2-racing",
    "no-block/case3-racing",
    "no-block/case4-racing",
    "sigbus/case1-after-freeze",
    "sigbus/case2-after-freeze",
    "sigbus/case3-after-freeze",
    "sigbus/case4-after-freeze",
    "sigbus/case1-racing",
    "sigbus/case2-racing",
    "sigbus/case3-racing",
    "sigbus/case4-racing",
    "skip-frozen/case1-after-freeze",
    "skip-frozen/case2-after-freeze",
    "skip-frozen/case3-after-freeze",
    "skip-frozen/case4-after-freeze",
    "skip-frozen/case1-racing",
    "skip-frozen/case2-racing",
    "skip-frozen/case3-racing",
    "skip-frozen/case4-racing",
    "sync-before-block/case1-after-freeze",
    "sync-before-block/case2-after-freeze",
    "sync-before-block/case3-after-freeze",
    "sync-before-block/case4-after-freeze",
    "sync-before-block/case1-racing",
    "sync-before-block/case2-racing",
    "sync-before-block/case3-racing",
    "sync-before-block/case4-racing",
    "wait-in-mkwrite/case1-after-freeze",
    "wait-in-mkwrite/case2-after-freeze",
    "wait-in-mkwrite/case3-after-freeze",
    "wait-in-mkwrite/case4-after-freeze",
    "wait-in-mkwrite/case1-racing",
    "wait-in-mkwrite/case2-racing",
    "wait-in-mkwrite/case3-racing",
    "wait-in-mkwrite/case4-racing",
];

/// The scaled family, `pPAGES-uUSERS-cCYCLES` (policy `mainline`).
const SCALES: [&str; 12] = [
    "p1-u1-c1", "p1-u1-c2", "p1-u2-c1", "p1-u2-c2", "p2-u1-c1", "p2-u1-c2", "p2-u2-c1", "p2-u2-c2",
    "p3-u1-c1", "p3-u1-c2", "p3-u2-c1", "p3-u2-c2",
];

/// The scales small enough to explore many times in a benchmark (under a second each).
const SCALES_EXPLORED: [&str; 10] = [
    "p1-u1-c1", "p1-u1-c2", "p1-u2-c1", "p1-u2-c2", "p2-u1-c1", "p2-u1-c2", "p2-u2-c1", "p2-u2-c2",
    "p3-u1-c1", "p3-u1-c2",
];

static ORACLES: LazyLock<OracleSet> = LazyLock::new(OracleSet::standard);
static STANDARD: LazyLock<Vec<Program>> = LazyLock::new(standard_cells);
static SCALED: LazyLock<Vec<(String, Program)>> = LazyLock::new(|| {
    family()
        .into_iter()
        .map(|scale: Scale| (scale.name(), scaled_program("mainline", scale)))
        .collect()
});

fn cell(name: &str) -> &'static Program {
    STANDARD
        .iter()
        .find(|p| format!("{}/{}", p.policy, p.scenario) == name)
        .unwrap_or_else(|| panic!("no standard cell {name}"))
}

fn scaled(name: &str) -> &'static Program {
    &SCALED
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no scale {name}"))
        .1
}

/// One campaign chunk (CHUNK_RUNS runs) of `program`; the counter is its steps.
fn bench_walk(bencher: Bencher, program: &Program, kind: SchedulerKind) {
    let steps = walk(program, &ORACLES, kind, 1, CHUNK_RUNS);
    bencher
        .counter(ItemsCount::new(steps))
        .bench_local(|| walk(program, &ORACLES, kind, 1, CHUNK_RUNS));
}

#[divan::bench(args = CELLS, sample_count = 30)]
fn random_walk(bencher: Bencher, name: &str) {
    bench_walk(bencher, cell(name), SchedulerKind::Random);
}

#[divan::bench(args = CELLS, sample_count = 30)]
fn pct(bencher: Bencher, name: &str) {
    bench_walk(bencher, cell(name), PCT);
}

#[divan::bench(args = SCALES, sample_count = 30)]
fn random_walk_scaled(bencher: Bencher, name: &str) {
    bench_walk(bencher, scaled(name), SchedulerKind::Random);
}

#[divan::bench(args = SCALES, sample_count = 30)]
fn pct_scaled(bencher: Bencher, name: &str) {
    bench_walk(bencher, scaled(name), PCT);
}

/// One complete exhaustive search; the counter is its states.
fn bench_explore(bencher: Bencher, program: &Program) {
    let limits = ExploreLimits::default();
    let states = explore(program, &ORACLES, &limits).states;
    bencher
        .counter(ItemsCount::new(states))
        .bench_local(|| explore(program, &ORACLES, &limits));
}

#[divan::bench(args = CELLS, sample_count = 30)]
fn exhaustive(bencher: Bencher, name: &str) {
    bench_explore(bencher, cell(name));
}

#[divan::bench(args = SCALES_EXPLORED, sample_count = 5)]
fn exhaustive_scaled(bencher: Bencher, name: &str) {
    bench_explore(bencher, scaled(name));
}

/// Three interchangeable users (policy `mainline`), with and without
/// symmetry reduction: the counter is the states stored.
const SCALES_SYMMETRIC: [&str; 2] = ["p1-u3-c2", "p2-u3-c1"];

fn symmetric(name: &str) -> &'static Program {
    static PROGRAMS: LazyLock<Vec<(String, Program)>> = LazyLock::new(|| {
        [(1, 3, 2), (2, 3, 1)]
            .into_iter()
            .map(|(pages, users, cycles)| {
                let scale = Scale { pages, users, cycles };
                (scale.name(), scaled_program("mainline", scale))
            })
            .collect()
    });
    &PROGRAMS
        .iter()
        .find(|(n, _)| n == name)
        .expect("a symmetric scale")
        .1
}

#[divan::bench(args = SCALES_SYMMETRIC, sample_count = 5)]
fn exhaustive_symmetric(bencher: Bencher, name: &str) {
    bench_explore(bencher, symmetric(name));
}

#[divan::bench(args = SCALES_SYMMETRIC, sample_count = 5)]
fn exhaustive_symmetric_unreduced(bencher: Bencher, name: &str) {
    let program = symmetric(name);
    let limits = ExploreLimits {
        symmetry: false,
        ..ExploreLimits::default()
    };
    let states = explore(program, &ORACLES, &limits).states;
    bencher
        .counter(ItemsCount::new(states))
        .bench_local(|| explore(program, &ORACLES, &limits));
}

/// The whole standard matrix explored, one cell after another.
#[divan::bench(sample_count = 10)]
fn exhaustive_standard_matrix(bencher: Bencher) {
    let limits = ExploreLimits::default();
    bencher.bench_local(|| {
        for program in STANDARD.iter() {
            divan::black_box(explore(program, &ORACLES, &limits));
        }
    });
}

/// A random campaign over the standard matrix, 4 chunks per cell, on 1 and 2 worker threads.
#[divan::bench(args = [1, 2], sample_count = 10)]
fn campaign_standard_matrix(bencher: Bencher, jobs: usize) {
    let config = CampaignConfig {
        seed: 1,
        runs: 4 * CHUNK_RUNS,
        scheduler: SchedulerKind::Random,
        steps_max: STEPS_MAX,
        shard: Shard::WHOLE,
    };
    let stop = AtomicBool::new(false);
    let steps: u64 = campaign(&STANDARD, &ORACLES, &config, jobs, &stop, &|_| {})
        .iter()
        .map(|c| c.steps_total)
        .sum();
    bencher
        .counter(ItemsCount::new(steps))
        .bench_local(|| campaign(&STANDARD, &ORACLES, &config, jobs, &stop, &|_| {}));
}
