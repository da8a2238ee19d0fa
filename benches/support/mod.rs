//! Shared by the benchmark binaries: the shipped cells, the scaled scenario
//! family, and the measuring loops. Uses only the library's public API.

#![allow(dead_code)] // Each bench binary uses a different part of this module.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use freezefuzz::engine::exec::Choice;
use freezefuzz::engine::program::{self, Program};
use freezefuzz::engine::run::run;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::engine::seeds::RunSeeds;
use freezefuzz::ir::Workspace;
use freezefuzz::oracle::OracleSet;

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every shipped `.ff` file, sorted.
pub fn shipped_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("policies"))
        .expect("policies/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ff"))
        .collect();
    files.sort();
    files
}

/// The shipped policies and the eight standard scenarios.
pub fn shipped() -> Workspace {
    freezefuzz::dsl::load(&shipped_files(), &mut |p| std::fs::read(p))
        .unwrap_or_else(|e| panic!("shipped files load: {e}"))
}

/// Every shipped policy × every standard scenario, compiled, in matrix order.
pub fn standard_cells() -> Vec<Program> {
    let workspace = shipped();
    let mut programs = Vec::new();
    for policy in &workspace.policies {
        for scenario in &workspace.scenarios {
            programs.push(program::compile(policy, scenario).expect("shipped cells compile"));
        }
    }
    programs
}

/// One point of the scaled scenario family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    pub pages: usize,
    pub users: usize,
    pub cycles: usize,
}

impl Scale {
    pub fn name(self) -> String {
        format!("p{}-u{}-c{}", self.pages, self.users, self.cycles)
    }
}

/// The family: pages 1..=3 × users 1..=2 × freeze/thaw cycles 1..=2.
pub fn family() -> Vec<Scale> {
    let mut all = Vec::new();
    for pages in 1..=3 {
        for users in 1..=2 {
            for cycles in 1..=2 {
                all.push(Scale { pages, users, cycles });
            }
        }
    }
    all
}

/// Page `j` of a scaled scenario starts as case 3, 2, 4 of the seed thread in turn
/// (mapped read-only; cached without blocks; writable and dirty).
const PAGE_INITS: [&str; 3] = [
    "cached; buffers = mapped; pte = readonly;",
    "cached;",
    "cached; buffers = mapped; pte = writable; dirty;",
];

/// The text of a scaled scenario: `pages` pages; `users` user threads, each
/// storing its own value to every page and then unmapping every page, racing
/// the freeze; a freezer doing `cycles` freeze/thaw pairs; the flusher.
pub fn scenario_text(scale: Scale) -> String {
    let page_names: Vec<String> = (0..scale.pages).map(|j| format!("p{j}")).collect();
    let mut text = format!("scenario {} {{\n", scale.name());
    for (j, name) in page_names.iter().enumerate() {
        text += &format!("    page {name} {{ {} }}\n", PAGE_INITS[j % PAGE_INITS.len()]);
    }
    for user in 0..scale.users {
        let mut actions = String::new();
        for name in &page_names {
            actions += &format!("store {name} {}; ", user + 2);
        }
        for name in &page_names {
            actions += &format!("munmap {name}; ");
        }
        text += &format!("    thread user{user} {{ {actions}}}\n");
    }
    text += &format!(
        "    thread freezer {{ {}}}\n",
        "freeze; thaw; ".repeat(scale.cycles)
    );
    text += "    flusher;\n}\n";
    text
}

/// Compiles `policy` (a shipped policy name) against the scaled scenario.
/// All shipped policy files are loaded with it so that `extends` resolves.
pub fn scaled_program(policy: &str, scale: Scale) -> Program {
    let mut text = String::new();
    for file in shipped_files() {
        if file.file_name().is_some_and(|n| n != "standard.ff") {
            text += &std::fs::read_to_string(&file).expect("shipped file reads");
            text += "\n";
        }
    }
    text += &scenario_text(scale);
    let workspace = freezefuzz::dsl::load_str("scaled.ff", &text)
        .unwrap_or_else(|e| panic!("scaled scenario {} loads: {e}", scale.name()));
    let policy = workspace
        .policies
        .iter()
        .find(|p| p.name == policy)
        .unwrap_or_else(|| panic!("no shipped policy `{policy}`"));
    program::compile(policy, &workspace.scenarios[0]).expect("scaled cell compiles")
}

/// The step budget of the CLI's campaigns (`--max-steps` default).
pub const STEPS_MAX: u32 = 1000;

/// Runs `runs` runs of one cell exactly as a campaign chunk does (same seeds,
/// choices recorded into a reused buffer); returns the steps taken.
pub fn walk(program: &Program, oracles: &OracleSet, kind: SchedulerKind, seed: u64, runs: u64) -> u64 {
    let mut seeds = RunSeeds::new(seed, &program.policy, &program.scenario, 0);
    let mut scheduler = kind.build();
    let mut record: Vec<Choice> = Vec::new();
    let mut steps = 0u64;
    for _ in 0..runs {
        let result = run(
            program,
            oracles,
            scheduler.as_mut(),
            seeds.next_seed(),
            STEPS_MAX,
            Some(&mut record),
        );
        steps += result.steps as u64;
    }
    steps
}

/// Nanoseconds this thread has spent on a CPU (`/proc/thread-self/schedstat`),
/// so that throughput per core can be told apart from a busy machine's wall time.
pub fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The medians of several timings of one piece of work.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// Wall time.
    pub wall: Duration,
    /// CPU time of the calling thread (zero where schedstat is unavailable).
    pub cpu: Duration,
}

impl Timing {
    /// The CPU time if known, else the wall time: the divisor for per-core rates.
    pub fn per_core(self) -> f64 {
        if self.cpu.is_zero() { self.wall } else { self.cpu }.as_secs_f64()
    }
}

/// Medians of `samples` wall and thread-CPU timings of `f`.
pub fn median_time(samples: usize, mut f: impl FnMut()) -> Timing {
    let mut walls = Vec::new();
    let mut cpus = Vec::new();
    for _ in 0..samples {
        let cpu = thread_cpu_ns();
        let start = Instant::now();
        f();
        walls.push(start.elapsed());
        cpus.push(Duration::from_nanos(thread_cpu_ns() - cpu));
    }
    walls.sort();
    cpus.sort();
    Timing {
        wall: walls[samples / 2],
        cpu: cpus[samples / 2],
    }
}

/// The median of a list of counts.
pub fn median_u64(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}
