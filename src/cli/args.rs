//! The flags shared by several subcommands, and their value parsers.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use freezefuzz::engine::campaign::Shard;
use freezefuzz::engine::scheduler::SchedulerKind;

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Input")]
pub(super) struct FileArgs {
    /// Policy and scenario files to load on top of the shipped ones (repeatable).
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    pub(super) files: Vec<PathBuf>,
    /// Leave the shipped policies and scenarios out (a file can still `extends` a shipped policy).
    #[arg(long, global = true)]
    pub(super) no_shipped: bool,
    /// Faults to add to every policy as an extra row `POLICY+faults`, beside
    /// the policy as written: `NAME:PROBABILITY:MAX[,…]`, e.g.
    /// `io-error:0.1:1,evict:0.05:1` (see docs/faults.md).
    #[arg(long, value_name = "SPEC", global = true)]
    pub(super) faults: Option<String>,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Output")]
pub(super) struct CommonArgs {
    /// Output format: a terminal table, Markdown for a pull request, or JSON (docs/json.md).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(super) format: Format,
    /// Optional oracles to turn on (repeatable): dirty-at-freeze.
    #[arg(long = "oracle", value_name = "NAME")]
    pub(super) oracles: Vec<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(super) jobs: Option<u32>,
    #[command(flatten)]
    pub(super) files: FileArgs,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Campaign")]
pub(super) struct CampaignArgs {
    /// Runs per cell.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    pub(super) runs: u64,
    /// Campaign seed (decimal or 0x-hex).
    #[arg(long, default_value = "1", value_parser = parse_u64)]
    pub(super) seed: u64,
    /// `random` (uniform random walk) or `pct:D` (PCT with bug depth D, 1..=16; `pct` = `pct:3`).
    #[arg(long, default_value = "random", value_parser = parse_scheduler)]
    pub(super) scheduler: SchedulerKind,
    /// Step budget of each run; a longer run ends as step-limit.
    #[arg(long = "max-steps", alias = "steps-max", value_name = "STEPS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub(super) steps_max: u32,
    /// Run only shard K of N (0-based), for spreading a campaign over machines; merge the JSON with `merge`.
    #[arg(long, value_parser = parse_shard)]
    pub(super) shard: Option<Shard>,
    /// Also explore each cell exhaustively, up to this many states, and report
    /// which reachable outcomes the campaign missed (0 turns it off).
    #[arg(long, value_name = "STATES", default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    pub(super) coverage_states: u64,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Exhaustive limits")]
pub(super) struct LimitArgs {
    /// Exhaustive: most distinct states per cell.
    #[arg(long, value_name = "STATES", default_value_t = 200_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    pub(super) max_states: u64,
    /// Exhaustive: deepest schedule explored.
    #[arg(long, value_name = "STEPS", default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    pub(super) max_depth: u32,
    /// Memory guard per cell of an exhaustive search (also the coverage search of a random matrix), in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub(super) max_memory: u64,
    /// Exhaustive: partial-order reduction. The same sets of reachable
    /// outcomes from fewer states, but the schedules reported are shortest in
    /// the reduced graph only (see docs/exploration.md).
    #[arg(long)]
    pub(super) por: bool,
    /// Exhaustive: no symmetry reduction. States and transitions are then
    /// counted in the full graph (by default, threads that run the same
    /// program up to the values they store are interchangeable and counted
    /// once; see docs/exploration.md).
    #[arg(long)]
    pub(super) no_symmetry: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Format {
    Table,
    Markdown,
    Json,
}

pub(super) fn parse_u64(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse::<u64>(),
    };
    parsed.map_err(|_| {
        format!(
            "expected a number from 0 to {} (decimal or 0x-hex), found `{text}`",
            u64::MAX
        )
    })
}

pub(super) fn parse_scheduler(text: &str) -> Result<SchedulerKind, String> {
    match text {
        "random" => Ok(SchedulerKind::Random),
        "pct" => Ok(SchedulerKind::Pct { depth: 3 }),
        _ => {
            let depth = text
                .strip_prefix("pct:")
                .and_then(|d| d.parse::<u32>().ok())
                .filter(|d| (1..=freezefuzz::engine::scheduler::PCT_DEPTH_MAX).contains(d));
            match depth {
                Some(depth) => Ok(SchedulerKind::Pct { depth }),
                None => Err(format!(
                    "expected `random`, `pct` or `pct:D` with D from 1 to 16, found `{text}`"
                )),
            }
        }
    }
}

pub(super) fn parse_shard(text: &str) -> Result<Shard, String> {
    text.parse()
}

pub(super) fn jobs(common: &CommonArgs) -> usize {
    jobs_or_all(common.jobs)
}

/// `--jobs`, or every core.
pub(super) fn jobs_or_all(jobs: Option<u32>) -> usize {
    jobs.map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}
