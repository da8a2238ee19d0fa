//! `swarm`: many seeded, bounded bitstate searches of one cell too large to
//! explore exhaustively (docs/exploration.md, "Swarm mode").
//!
//! A subcommand of its own rather than a mode of `explore`: its result is of
//! another kind (outcomes found, never a verdict of safety), its flags are
//! its own (members, bit arrays, hashes, shards) and its JSON is another
//! document (`freezefuzz-swarm/1`), which `merge` also reads.

use std::process::ExitCode;

use freezefuzz::engine::campaign::Shard;
use freezefuzz::engine::swarm::{self, DEPTH_MAX, HASHES_MAX, SwarmConfig};
use freezefuzz::report::swarm::{self as report, SwarmInfo};

use super::args::{FileArgs, Format, parse_shard, parse_u64};
use super::load::{load_cell, replay_files};
use super::{emit, usage_error};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Each member is a depth-first search with a bit array (bitstate hashing):
it covers part of the state graph and may skip states (hash collisions,
its depth bound, its state limit). What it finds replays; what no member
finds may still be reachable: the output never claims safety.

Examples:
  freezefuzz swarm no-block case3-racing --members 8
  freezefuzz swarm mainline big -f big.ff --members 64 --member-states 10000000 --max-memory 256
  freezefuzz swarm mainline big -f big.ff --members 64 --shard 3/16 --format json > s3.json
  freezefuzz merge s*.json --format table"
)]
pub(super) struct SwarmArgs {
    /// The policy.
    policy: String,
    /// The scenario.
    scenario: String,
    #[command(flatten)]
    swarm: SwarmFlags,
    /// Output format: `table` (text for a terminal), `markdown` (that text in a code block) or JSON (docs/json.md, `freezefuzz-swarm/1`).
    #[arg(long, value_enum, default_value_t = Format::Table, help_heading = "Output")]
    format: Format,
    /// Optional oracles to turn on (repeatable): dirty-at-freeze.
    #[arg(long = "oracle", value_name = "NAME", help_heading = "Output")]
    oracles: Vec<String>,
    /// Members run at once (default: all cores). Results do not depend on it;
    /// each running member holds its own bit array.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u32).range(1..=1024), help_heading = "Output")]
    jobs: Option<u32>,
    #[command(flatten)]
    files: FileArgs,
}

#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Swarm")]
pub(super) struct SwarmFlags {
    /// Members of the swarm (of every shard together).
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    members: u32,
    /// Swarm seed (decimal or 0x-hex): each member's seed derives from it.
    #[arg(long, default_value = "1", value_parser = parse_u64)]
    seed: u64,
    /// Most states one member stores before it stops.
    #[arg(long, value_name = "STATES", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    member_states: u64,
    /// Each member's bit array, in MiB (2^23 bits per MiB); --jobs members hold one each at once.
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    max_memory: u64,
    /// Bits set per state (hash functions).
    #[arg(long, value_name = "K", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=HASHES_MAX as i64))]
    hashes: u32,
    /// The deepest depth bound: each member draws its own from MAX/2..=MAX.
    #[arg(long, value_name = "STEPS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=DEPTH_MAX as i64))]
    max_depth: u32,
    /// Step budget of a run; a longer run is a step-limit.
    #[arg(long = "max-steps", value_name = "STEPS", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=DEPTH_MAX as i64))]
    steps_max: u32,
    /// Hash states as they are, not their canonical representatives under the scenario's symmetry.
    #[arg(long)]
    no_symmetry: bool,
    /// Report each witness as found, not shrunk.
    #[arg(long)]
    no_shrink: bool,
    /// Run only members K, K+N, K+2N, … (0-based), for spreading a swarm over machines; merge the JSON with `merge`.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<Shard>,
}

/// The machine's memory in bytes, if known.
fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let pages = unsafe { libc::sysconf(libc::_SC_PHYS_PAGES) };
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    (pages > 0 && size > 0).then(|| pages as u64 * size as u64)
}

/// `freezefuzz swarm POLICY SCENARIO`.
pub(super) fn run(args: SwarmArgs) -> ExitCode {
    let flags = &args.swarm;
    let shard = flags.shard.unwrap_or(Shard::WHOLE);
    if shard.index >= flags.members {
        return usage_error(format!(
            "--shard {}/{} has no members: a swarm of {} members has members 0 to {}",
            shard.index,
            shard.count,
            flags.members,
            flags.members - 1
        ));
    }
    let jobs = super::args::jobs_or_all(args.jobs);
    let members_here = swarm::shard_members(flags.members, shard).count() as u64;
    let at_once = members_here.min(jobs as u64);
    let array = flags.max_memory << 20;
    // Memory is checked before it is taken: each running member holds its
    // array and a search stack of at most its depth bound.
    let stack = flags.max_depth.min(flags.steps_max) as u64 * swarm::STACK_BYTES_PER_LEVEL;
    if let Some(total) = physical_memory()
        && at_once.saturating_mul(array + stack) > total
    {
        return usage_error(format!(
            "{at_once} members at once (--jobs {jobs}), each with a {} MiB bit array (--max-memory) and a stack of up to {} MiB (--max-depth), need more than this machine's {} MiB; lower --max-memory or --jobs",
            flags.max_memory,
            stack >> 20,
            total >> 20
        ));
    }
    let (_, oracles, program) = match load_cell(&args.files, &args.oracles, &args.policy, &args.scenario) {
        Ok(cell) => cell,
        Err(code) => return code,
    };
    let config = SwarmConfig {
        seed: flags.seed,
        members: flags.members,
        states_max: flags.member_states,
        bits: array * 8,
        hashes: flags.hashes,
        depth_max: flags.max_depth,
        steps_max: flags.steps_max,
        symmetry: !flags.no_symmetry,
        shrink: !flags.no_shrink,
        shard,
        jobs,
    };
    let replay = replay_files(&args.files);
    let info = SwarmInfo {
        seed: config.seed,
        members: config.members,
        member_states: config.states_max,
        bits: config.bits,
        hashes: config.hashes,
        max_depth: config.depth_max,
        steps_max: config.steps_max,
        symmetry: config.symmetry,
        shrink: config.shrink,
        oracles: oracles.optional_names().iter().map(|s| s.to_string()).collect(),
        files: replay.files,
        faults: replay.faults,
    };
    let stop = super::progress::interrupt_flag();
    let result = swarm::swarm(&program, &oracles, &config, &stop);
    let report = report::from_swarm(&result, &program, &config, info);
    let code = emit(&render(&report, args.format));
    if code == ExitCode::SUCCESS && result.interrupted {
        note!("interrupted: the results above are partial");
        return ExitCode::from(super::EXIT_INTERRUPTED);
    }
    code
}

/// A swarm report in the format asked for (Markdown: the text in a block).
pub(super) fn render(report: &report::SwarmReport, format: Format) -> String {
    match format {
        Format::Json => report::json(report),
        Format::Table => report::text(report),
        Format::Markdown => format!("```text\n{}```\n", report::text(report)),
    }
}
