//! Campaigns: many seeded runs of one or more cells, spread over worker
//! threads and merged in run order, so that results are identical for any
//! number of workers and any split into shards.
//!
//! The runs of a cell are cut into fixed chunks of [`CHUNK_RUNS`]; a chunk is
//! the unit of work, of sharding (`--shard K/N` takes chunks `c` with
//! `c % N == K`) and of cancellation. A cell's first witness of an outcome is
//! the one with the lowest run index, whoever found it.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::engine::exec::Choice;
use crate::engine::program::Program;
use crate::engine::run::run;
use crate::engine::schedule;
use crate::engine::scheduler::SchedulerKind;
use crate::engine::seeds::RunSeeds;
use crate::oracle::{OUTCOMES_MAX, OracleSet, Outcome, Outcomes};

/// Runs per chunk: the unit of parallel work and of sharding.
pub const CHUNK_RUNS: u64 = 1024;

/// One slice of a campaign: shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    fn owns(self, chunk: u64) -> bool {
        chunk % self.count as u64 == self.index as u64
    }
}

/// `K/N`, as given to `--shard` and written in reports.
impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let err = || format!("expected K/N with 0 <= K < N <= 65536 (e.g. 0/4), found `{text}`");
        let (k, n) = text.split_once('/').ok_or_else(err)?;
        let (k, n) = (
            k.parse::<u32>().map_err(|_| err())?,
            n.parse::<u32>().map_err(|_| err())?,
        );
        if n == 0 || k >= n || n > 65536 {
            return Err(err());
        }
        Ok(Shard { index: k, count: n })
    }
}

/// What a campaign does.
#[derive(Clone, Debug)]
pub struct CampaignConfig {
    pub seed: u64,
    /// Runs per cell.
    pub runs: u64,
    pub scheduler: SchedulerKind,
    /// Step budget of each run.
    pub steps_max: u32,
    pub shard: Shard,
}

/// The first run (lowest index) that reached an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub run_index: u64,
    pub seed: u64,
    pub steps: u32,
    /// Every outcome of that run.
    pub outcomes: Outcomes,
    pub schedule: String,
}

/// What a campaign found in one cell (policy × scenario).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CellResult {
    pub policy: String,
    pub scenario: String,
    /// Runs actually made (all of the shard's runs unless `partial`).
    pub runs: u64,
    /// Runs per outcome, indexed by [`Outcome`].
    pub counts: [u64; OUTCOMES_MAX],
    /// The first witness of each outcome, indexed by [`Outcome`].
    pub witnesses: [Option<Witness>; OUTCOMES_MAX],
    pub steps_total: u64,
    pub steps_longest: u32,
    /// Stopped early (Ctrl-C): not every run of the shard was made.
    pub partial: bool,
}

impl CellResult {
    pub fn empty(policy: &str, scenario: &str) -> CellResult {
        CellResult {
            policy: policy.to_string(),
            scenario: scenario.to_string(),
            runs: 0,
            counts: [0; OUTCOMES_MAX],
            witnesses: Default::default(),
            steps_total: 0,
            steps_longest: 0,
            partial: false,
        }
    }

    /// The set of outcomes seen.
    pub fn outcomes(&self) -> Outcomes {
        let mut set = Outcomes::default();
        for outcome in Outcome::every() {
            if self.counts[outcome as usize] > 0 {
                set.insert(outcome);
            }
        }
        set
    }

    /// Adds another part of the same cell (a later chunk or another shard).
    pub fn merge(&mut self, other: &CellResult) {
        debug_assert_eq!((&self.policy, &self.scenario), (&other.policy, &other.scenario));
        self.runs += other.runs;
        for i in 0..OUTCOMES_MAX {
            self.counts[i] += other.counts[i];
            let replace = match (&self.witnesses[i], &other.witnesses[i]) {
                (None, Some(_)) => true,
                (Some(mine), Some(theirs)) => theirs.run_index < mine.run_index,
                _ => false,
            };
            if replace {
                self.witnesses[i] = other.witnesses[i].clone();
            }
        }
        self.steps_total += other.steps_total;
        self.steps_longest = self.steps_longest.max(other.steps_longest);
        self.partial |= other.partial;
    }
}

/// Runs one chunk of one cell; stops between two runs once `stop` is set
/// (the result is then marked partial).
fn run_chunk(
    program: &Program,
    oracles: &OracleSet,
    config: &CampaignConfig,
    chunk: u64,
    record: &mut Vec<Choice>,
    stop: &AtomicBool,
) -> CellResult {
    let mut result = CellResult::empty(&program.policy, &program.scenario);
    let first = chunk * CHUNK_RUNS;
    let last = (first + CHUNK_RUNS).min(config.runs);
    let mut seeds = RunSeeds::new(config.seed, &program.policy, &program.scenario, first);
    let mut scheduler = config.scheduler.build();
    for index in first..last {
        if stop.load(Ordering::Relaxed) {
            result.partial = true;
            break;
        }
        let seed = seeds.next_seed();
        let outcome = run(
            program,
            oracles,
            scheduler.as_mut(),
            seed,
            config.steps_max,
            Some(record),
        );
        result.runs += 1;
        result.steps_total += outcome.steps as u64;
        result.steps_longest = result.steps_longest.max(outcome.steps);
        for o in outcome.outcomes.iter() {
            result.counts[o as usize] += 1;
            if result.witnesses[o as usize].is_none() {
                result.witnesses[o as usize] = Some(Witness {
                    run_index: index,
                    seed,
                    steps: outcome.steps,
                    outcomes: outcome.outcomes,
                    schedule: schedule::format(program, record),
                });
            }
        }
    }
    result
}

/// Chunks handed to the workers at a time, per worker: after a stop, no
/// more than this many chunks' worth of work is looked at again, so a
/// campaign of 10^11 runs stops as fast as one of 10^4.
const BATCH_CHUNKS_PER_JOB: usize = 8;

/// Runs a campaign over `programs` (one per cell) on `jobs` worker threads.
/// `progress` is called with the number of runs each finished chunk made.
/// When `stop` becomes true, each worker stops after the run it is making,
/// no further chunk is started, and the cells not run to the end are marked
/// partial. The result is in `programs` order and does not depend on `jobs`.
pub fn campaign(
    programs: &[Program],
    oracles: &OracleSet,
    config: &CampaignConfig,
    jobs: usize,
    stop: &AtomicBool,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<CellResult> {
    let chunks_per_cell = config.runs.div_ceil(CHUNK_RUNS);
    let empty = || -> Vec<CellResult> {
        programs
            .iter()
            .map(|p| CellResult::empty(&p.policy, &p.scenario))
            .collect()
    };
    let shard = config.shard;
    let batch_len = jobs.max(1) * BATCH_CHUNKS_PER_JOB;
    // Merging is associative and commutative (sums, maxima, and the witness
    // with the lowest run index), so folding batch by batch gives the same
    // result whatever the split, while memory does not grow with the number
    // of runs.
    let execute = || {
        // The chunks this shard owns, cell by cell, in order.
        let mut owned = (0..programs.len()).flat_map(move |cell| {
            (shard.index as u64..chunks_per_cell)
                .step_by(shard.count as usize)
                .map(move |chunk| (cell, chunk))
        });
        let mut total = empty();
        loop {
            if stop.load(Ordering::Relaxed) {
                // Every cell with a chunk left to run is partial.
                if let Some((cell, _)) = owned.next() {
                    for later in &mut total[cell..] {
                        later.partial = true;
                    }
                }
                break;
            }
            let batch: Vec<(usize, u64)> = owned.by_ref().take(batch_len).collect();
            if batch.is_empty() {
                break;
            }
            let part = batch
                .into_par_iter()
                .fold(
                    || (empty(), Vec::new()),
                    |(mut cells, mut record), (cell, chunk)| {
                        let result = run_chunk(&programs[cell], oracles, config, chunk, &mut record, stop);
                        progress(result.runs);
                        cells[cell].merge(&result);
                        (cells, record)
                    },
                )
                .map(|(cells, _)| cells)
                .reduce(empty, |mut left, right| {
                    for (l, r) in left.iter_mut().zip(&right) {
                        l.merge(r);
                    }
                    left
                });
            for (t, p) in total.iter_mut().zip(&part) {
                t.merge(p);
            }
        }
        total
    };
    match rayon::ThreadPoolBuilder::new().num_threads(jobs.max(1)).build() {
        Ok(pool) => pool.install(execute),
        // Without a pool of our own, rayon's global pool gives the same result.
        Err(_) => execute(),
    }
}

/// The number of runs shard `shard` makes of each cell.
pub fn shard_runs(runs: u64, shard: Shard) -> u64 {
    let chunks = runs.div_ceil(CHUNK_RUNS);
    (0..chunks)
        .filter(|&c| shard.owns(c))
        .map(|c| (c * CHUNK_RUNS + CHUNK_RUNS).min(runs) - c * CHUNK_RUNS)
        .sum()
}
