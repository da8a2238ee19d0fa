//! Argument parsing and the subcommands. Flags are collected by clap and
//! validated here, before any work starts (absurd values are usage errors,
//! exit 2).
//!
//! Exit codes: 0 success; 1 a check failed (`check` found errors, `--expect`
//! differs, `corpus check` changed, a replay did not reach its expected
//! outcome); 2 bad input or usage; 130 interrupted (what was found so far is
//! printed, marked partial).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand, ValueEnum};

use freezefuzz::engine::campaign::{self, CampaignConfig, Shard};
use freezefuzz::engine::explore::{self, ExploreLimits};
use freezefuzz::engine::program::{self, Program};
use freezefuzz::engine::run;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::ir::Workspace;
use freezefuzz::oracle::OracleSet;
use freezefuzz::report::matrix::{self as report, CampaignInfo, MatrixReport, ReplayCommand};
use freezefuzz::report::trace;

pub mod check;
pub mod corpus;
pub mod shrink;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "freezefuzz",
    version,
    about = "Find bugs in how a filesystem freezes while programs write through mmap",
    after_help = "Exit codes: 0 ok; 1 a check failed (check errors, --expect differs, a replay missed its outcome); 2 bad input or usage; 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check policy and scenario files; one line per file.
    Check {
        /// Files to check (policies and scenarios), checked together.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// A seeded campaign for one policy and one scenario.
    Run {
        policy: String,
        scenario: String,
        #[command(flatten)]
        campaign: CampaignArgs,
        #[command(flatten)]
        witness: shrink::WitnessArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// The outcome matrix: policies × scenarios (default: every loaded policy × every loaded scenario).
    Matrix {
        /// Only these policies (repeatable), in this order.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Only these scenarios (repeatable), in this order.
        #[arg(long = "scenario")]
        scenarios: Vec<String>,
        /// Explore every interleaving instead of sampling: exact outcome sets,
        /// shortest schedules and state counts.
        #[arg(long)]
        exhaustive: bool,
        /// Exit 1 if any cell's set of outcomes differs from this saved JSON matrix.
        #[arg(long, value_name = "FILE")]
        expect: Option<PathBuf>,
        #[command(flatten)]
        campaign: CampaignArgs,
        #[command(flatten)]
        witness: shrink::WitnessArgs,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Explore one cell exhaustively.
    Explore {
        policy: String,
        scenario: String,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Replay one run step by step: from a schedule string or a run seed.
    Replay {
        #[arg(required_unless_present = "corpus")]
        policy: Option<String>,
        #[arg(required_unless_present = "corpus")]
        scenario: Option<String>,
        /// The schedule string (e.g. `freezer*6 user*3 flusher*4`).
        #[arg(long, conflicts_with = "seed", required_unless_present_any = ["seed", "corpus"])]
        schedule: Option<String>,
        /// Replay a corpus entry (its policy, scenario, schedule, oracles and
        /// step budget); exit 1 unless the run has exactly its outcomes.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["schedule", "seed", "policy", "scenario", "expect"])]
        corpus: Option<PathBuf>,
        /// A run seed printed by `run` or `matrix` (decimal or 0x-hex).
        #[arg(long, value_parser = parse_u64)]
        seed: Option<u64>,
        /// The scheduler the seed was drawn with.
        #[arg(long, default_value = "random", value_parser = parse_scheduler)]
        scheduler: SchedulerKind,
        /// Step budget.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        steps_max: u32,
        /// Optional oracles to turn on (repeatable): dirty-at-freeze.
        #[arg(long = "oracle")]
        oracles: Vec<String>,
        /// Exit 1 unless the run reaches this outcome.
        #[arg(long)]
        expect: Option<String>,
        #[command(flatten)]
        extra: shrink::ReplayArgs,
        #[command(flatten)]
        files: FileArgs,
    },
    /// Shrink a failing schedule while its outcome holds: fewer steps, preemptions and faults.
    Shrink {
        policy: String,
        scenario: String,
        /// The schedule string to shrink (labels allowed).
        #[arg(long)]
        schedule: String,
        /// The outcome that must hold (e.g. frozen-write, deadlock).
        #[arg(long)]
        outcome: String,
        /// Step budget.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
        steps_max: u32,
        /// Optional oracles to turn on (repeatable): dirty-at-freeze.
        #[arg(long = "oracle")]
        oracles: Vec<String>,
        /// Write the shrunk run as a swim-lane SVG picture to FILE.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        #[command(flatten)]
        files: FileArgs,
    },
    /// The corpus of witnesses in corpus/: check that each still replays to its outcomes.
    Corpus {
        #[command(subcommand)]
        action: shrink::CorpusAction,
    },
    /// Merge the JSON outputs of `matrix --shard K/N` into one matrix.
    Merge {
        /// The shard files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Json)]
        format: Format,
    },
}

#[derive(Args, Debug, Clone)]
struct FileArgs {
    /// Policy and scenario files to load (repeatable; default: every *.ff in policies/).
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    files: Vec<PathBuf>,
    /// Faults to add to every policy as an extra row `POLICY+faults`, beside
    /// the policy as written: `NAME:PROBABILITY:MAX[,…]`, e.g.
    /// `io-error:0.1:1,evict:0.05:1` (see docs/faults.md).
    #[arg(long, value_name = "SPEC", global = true)]
    faults: Option<String>,
}

#[derive(Args, Debug)]
struct CommonArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Optional oracles to turn on (repeatable): dirty-at-freeze.
    #[arg(long = "oracle")]
    oracles: Vec<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    #[command(flatten)]
    files: FileArgs,
}

#[derive(Args, Debug)]
struct CampaignArgs {
    /// Runs per cell.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000_000))]
    runs: u64,
    /// Campaign seed (decimal or 0x-hex).
    #[arg(long, default_value = "1", value_parser = parse_u64)]
    seed: u64,
    /// `random` (uniform random walk) or `pct:D` (PCT with bug depth D, 1..=16; `pct` = `pct:3`).
    #[arg(long, default_value = "random", value_parser = parse_scheduler)]
    scheduler: SchedulerKind,
    /// Step budget of each run; a longer run ends as step-limit.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    steps_max: u32,
    /// Run only shard K of N (0-based), for spreading a campaign over machines; merge the JSON with `merge`.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<Shard>,
    /// Also explore each cell exhaustively, up to this many states, and report
    /// which reachable outcomes the campaign missed (0 turns it off).
    #[arg(long, default_value_t = 200_000, value_parser = clap::value_parser!(u64).range(0..=100_000_000))]
    coverage_states: u64,
}

#[derive(Args, Debug)]
struct LimitArgs {
    /// Exhaustive: most distinct states per cell.
    #[arg(long, default_value_t = 200_000_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000_000))]
    max_states: u64,
    /// Exhaustive: deepest schedule explored.
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=100_000_000))]
    max_depth: u32,
    /// Exhaustive: memory guard per cell, in MiB.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    max_memory: u64,
    /// Exhaustive: partial-order reduction. The same sets of reachable
    /// outcomes from fewer states, but the schedules reported are shortest in
    /// the reduced graph only (see docs/exploration.md).
    #[arg(long)]
    por: bool,
    /// Exhaustive: no symmetry reduction. States and transitions are then
    /// counted in the full graph (by default, threads that run the same
    /// program up to the values they store are interchangeable and counted
    /// once; see docs/exploration.md).
    #[arg(long)]
    no_symmetry: bool,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Table,
    Markdown,
    Json,
}

fn parse_u64(text: &str) -> Result<u64, String> {
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

fn parse_scheduler(text: &str) -> Result<SchedulerKind, String> {
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

fn parse_shard(text: &str) -> Result<Shard, String> {
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files } => check::run(&files),
        Command::Run {
            policy,
            scenario,
            campaign,
            witness,
            common,
        } => matrix_command(
            vec![policy],
            vec![scenario],
            false,
            None,
            &campaign,
            None,
            &common,
            &witness,
        ),
        Command::Matrix {
            policies,
            scenarios,
            exhaustive,
            expect,
            campaign,
            witness,
            limits,
            common,
        } => matrix_command(
            policies,
            scenarios,
            exhaustive,
            expect,
            &campaign,
            Some(&limits),
            &common,
            &witness,
        ),
        Command::Explore {
            policy,
            scenario,
            limits,
            common,
        } => explore_command(&policy, &scenario, &limits, &common),
        Command::Replay {
            policy,
            scenario,
            schedule,
            corpus: Some(path),
            scheduler,
            extra,
            files,
            ..
        } => {
            debug_assert!(policy.is_none() && scenario.is_none() && schedule.is_none());
            let entry = match self::corpus::read(&path) {
                Ok(entry) => entry,
                Err(e) => return usage_error(e),
            };
            let expected = match freezefuzz::corpus::expected_outcomes(&entry) {
                Ok(set) => set,
                Err(e) => return usage_error(format!("{}: {e}", path.display())),
            };
            replay_command(
                &entry.policy,
                &entry.scenario,
                Some(entry.schedule.clone()),
                None,
                scheduler,
                entry.steps_max,
                &entry.oracles,
                Expect::Exactly(expected),
                &extra,
                &files,
            )
        }
        Command::Replay {
            policy,
            scenario,
            schedule,
            seed,
            scheduler,
            steps_max,
            oracles,
            expect,
            extra,
            files,
            ..
        } => {
            let expect = match expect
                .as_deref()
                .map(|e| freezefuzz::oracle::Outcome::from_name(e).ok_or(e))
            {
                None => Expect::Nothing,
                Some(Ok(o)) => Expect::Contains(o),
                Some(Err(e)) => return usage_error(format!("unknown outcome `{e}` for --expect")),
            };
            replay_command(
                policy.as_deref().unwrap_or_default(),
                scenario.as_deref().unwrap_or_default(),
                schedule,
                seed,
                scheduler,
                steps_max,
                &oracles,
                expect,
                &extra,
                &files,
            )
        }
        Command::Shrink {
            policy,
            scenario,
            schedule,
            outcome,
            steps_max,
            oracles,
            svg,
            files,
        } => shrink::shrink_command(
            &policy,
            &scenario,
            &schedule,
            &outcome,
            steps_max,
            &oracles,
            svg.as_deref(),
            &files,
        ),
        Command::Corpus {
            action: shrink::CorpusAction::Check { dir, files },
        } => corpus::check_command(&dir, &files),
        Command::Merge { files, format } => merge_command(&files, format),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// Loads the workspace and resolves the requested policies and scenarios.
/// Broken input files are bad input (exit 2) for every subcommand but `check`.
fn load(files: &FileArgs) -> Result<Workspace, ExitCode> {
    let mut workspace = check::load_workspace(&files.files).map_err(|_| ExitCode::from(EXIT_USAGE))?;
    if let Some(spec) = &files.faults {
        let specs =
            freezefuzz::fault::parse_specs(spec).map_err(|e| usage_error(format!("--faults: {e}")))?;
        let policies = std::mem::take(&mut workspace.policies);
        for policy in policies {
            let faulty = freezefuzz::fault::with_faults(&policy, &specs);
            workspace.policies.push(policy);
            workspace.policies.push(faulty);
        }
    }
    Ok(workspace)
}

fn pick<'a, T>(
    what: &str,
    wanted: &[String],
    all: &'a [T],
    name: impl Fn(&T) -> &str,
) -> Result<Vec<&'a T>, ExitCode> {
    if wanted.is_empty() {
        if all.is_empty() {
            return Err(usage_error(format!(
                "no {what} loaded; give files with -f FILE or run from the project directory"
            )));
        }
        return Ok(all.iter().collect());
    }
    wanted
        .iter()
        .map(|w| {
            all.iter().find(|item| name(item) == w).ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(&name).collect();
                usage_error(format!("unknown {what} `{w}`; loaded: {}", known.join(", ")))
            })
        })
        .collect()
}

/// Loads the files and compiles one cell, with the oracles asked for: what
/// `explore`, `replay` and `shrink` start from.
fn load_cell(
    files: &FileArgs,
    oracles: &[String],
    policy: &str,
    scenario: &str,
) -> Result<(Workspace, OracleSet, Program), ExitCode> {
    let workspace = load(files)?;
    let oracles = OracleSet::with_optional(oracles).map_err(usage_error)?;
    let (_, _, mut programs) = compile_cells(&workspace, &[policy.to_string()], &[scenario.to_string()])?;
    let program = programs.pop().expect("one policy × one scenario is one cell");
    Ok((workspace, oracles, program))
}

/// Policy names, scenario names, and the compiled cells in row-major order.
type Cells = (Vec<String>, Vec<String>, Vec<Program>);

fn compile_cells(
    workspace: &Workspace,
    policies: &[String],
    scenarios: &[String],
) -> Result<Cells, ExitCode> {
    let policies = pick("policy", policies, &workspace.policies, |p| &p.name)?;
    let scenarios = pick("scenario", scenarios, &workspace.scenarios, |s| &s.name)?;
    let mut programs = Vec::new();
    for policy in &policies {
        for scenario in &scenarios {
            programs.push(program::compile(policy, scenario).map_err(usage_error)?);
        }
    }
    Ok((
        policies.iter().map(|p| p.name.clone()).collect(),
        scenarios.iter().map(|s| s.name.clone()).collect(),
        programs,
    ))
}

fn replay_files(files: &FileArgs) -> ReplayCommand {
    ReplayCommand {
        files: files.files.iter().map(|f| f.display().to_string()).collect(),
        faults: files.faults.clone(),
    }
}

fn jobs(common: &CommonArgs) -> usize {
    common
        .jobs
        .map(|j| j as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
}

/// A stop flag set by Ctrl-C.
fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // If a handler is already installed (it cannot be here), Ctrl-C just kills.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    stop
}

fn emit(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => usage_error(format!("cannot write the output: {e}")),
    }
}

fn render(report: &MatrixReport, format: Format, with_findings: bool) -> String {
    match format {
        Format::Json => report::json(report),
        Format::Markdown => {
            let mut text = report::markdown(report);
            let coverage = report::coverage(report);
            if !coverage.is_empty() {
                text.push('\n');
                for line in coverage.lines() {
                    text.push_str(&format!("> {line}\n"));
                }
            }
            text
        }
        Format::Table => {
            let mut text = report::table(report);
            let coverage = report::coverage(report);
            if !coverage.is_empty() {
                text.push('\n');
                text.push_str(&coverage);
            }
            if with_findings {
                let findings = report::findings(report);
                if !findings.is_empty() {
                    text.push('\n');
                    text.push_str(&findings);
                }
            }
            text
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn matrix_command(
    policies: Vec<String>,
    scenarios: Vec<String>,
    exhaustive: bool,
    expect: Option<PathBuf>,
    campaign_args: &CampaignArgs,
    limits: Option<&LimitArgs>,
    common: &CommonArgs,
    witness: &shrink::WitnessArgs,
) -> ExitCode {
    let expected = match &expect {
        Some(path) => match read_report(path) {
            Ok(report) => Some(report),
            Err(code) => return code,
        },
        None => None,
    };
    let workspace = match load(&common.files) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let oracles = match OracleSet::with_optional(&common.oracles) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let (policy_names, scenario_names, programs) = match compile_cells(&workspace, &policies, &scenarios) {
        Ok(cells) => cells,
        Err(code) => return code,
    };
    let replay = replay_files(&common.files);
    let files: Vec<String> = common
        .files
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let jobs = jobs(common);
    let stop = interrupt_flag();
    let report = if exhaustive {
        if campaign_args.shard.is_some() {
            return usage_error("--shard applies to random campaigns, not to --exhaustive");
        }
        let limits = limits.expect("matrix has limit flags");
        let explore_limits = ExploreLimits {
            states_max: limits.max_states,
            depth_max: limits.max_depth,
            memory_max: limits.max_memory << 20,
            steps_max: campaign_args.steps_max,
            reduce: limits.por,
            symmetry: !limits.no_symmetry,
            // The matrix explores its cells in parallel, each on one thread.
            jobs: 1,
        };
        let results = explore_all(&programs, &oracles, &explore_limits, jobs);
        MatrixReport {
            schema: report::SCHEMA.into(),
            mode: "exhaustive".into(),
            campaign: CampaignInfo {
                seed: None,
                runs: None,
                scheduler: None,
                steps_max: campaign_args.steps_max,
                shard: None,
                states_max: Some(limits.max_states),
                oracles: oracles.optional_names().iter().map(|s| s.to_string()).collect(),
                files,
                faults: common.files.faults.clone(),
            },
            partial: false,
            policies: policy_names,
            scenarios: scenario_names,
            cells: results
                .iter()
                .zip(&programs)
                .map(|(r, p)| report::cell_from_exploration(r, p, &replay))
                .collect(),
        }
    } else {
        let shard = campaign_args.shard.unwrap_or(Shard::WHOLE);
        let config = CampaignConfig {
            seed: campaign_args.seed,
            runs: campaign_args.runs,
            scheduler: campaign_args.scheduler,
            steps_max: campaign_args.steps_max,
            shard,
        };
        let total = campaign::shard_runs(config.runs, shard) * programs.len() as u64;
        let bar = Progress::new(total);
        let mut results = campaign::campaign(&programs, &oracles, &config, jobs, &stop, &|n| bar.advance(n));
        bar.finish();
        if !witness.no_shrink {
            freezefuzz::engine::shrink::shrink_witnesses(&programs, &oracles, &mut results, config.steps_max);
        }
        let partial = results.iter().any(|c| c.partial);
        let reachable = coverage(&programs, &oracles, campaign_args, jobs);
        let mut report = MatrixReport {
            schema: report::SCHEMA.into(),
            mode: "random".into(),
            campaign: CampaignInfo {
                seed: Some(config.seed),
                runs: Some(config.runs),
                scheduler: Some(config.scheduler.label()),
                steps_max: config.steps_max,
                shard: Some(format!("{}/{}", shard.index, shard.count)),
                states_max: None,
                oracles: oracles.optional_names().iter().map(|s| s.to_string()).collect(),
                files,
                faults: common.files.faults.clone(),
            },
            partial,
            policies: policy_names,
            scenarios: scenario_names,
            cells: results
                .iter()
                .zip(&programs)
                .map(|(r, p)| report::cell_from_campaign(r, p, &replay))
                .collect(),
        };
        for (cell, reachable) in report.cells.iter_mut().zip(reachable) {
            cell.reachable = reachable;
        }
        report
    };
    let code = emit(&render(&report, common.format, true));
    if code != ExitCode::SUCCESS {
        return code;
    }
    if let Err(code) = shrink::after_matrix(&report, &programs, &oracles, witness, campaign_args.steps_max) {
        return code;
    }
    if report.partial {
        eprintln!("interrupted: the results above are partial");
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if let Some(expected) = expected {
        return compare_expectation(&report, &expected);
    }
    ExitCode::SUCCESS
}

/// The exact reachable outcomes of each cell, where a search within
/// `--coverage-states` finishes (`None` elsewhere).
fn coverage(
    programs: &[Program],
    oracles: &OracleSet,
    args: &CampaignArgs,
    jobs: usize,
) -> Vec<Option<Vec<String>>> {
    if args.coverage_states == 0 {
        return vec![None; programs.len()];
    }
    let limits = ExploreLimits {
        states_max: args.coverage_states,
        steps_max: args.steps_max,
        ..ExploreLimits::default()
    };
    explore_all(programs, oracles, &limits, jobs)
        .into_iter()
        .map(|e| {
            e.complete()
                .then(|| e.outcomes.iter().map(|o| o.name().to_string()).collect())
        })
        .collect()
}

fn explore_all(
    programs: &[Program],
    oracles: &OracleSet,
    limits: &ExploreLimits,
    jobs: usize,
) -> Vec<explore::Exploration> {
    use rayon::prelude::*;
    let run = || {
        programs
            .par_iter()
            .map(|p| explore::explore(p, oracles, limits))
            .collect::<Vec<_>>()
    };
    match rayon::ThreadPoolBuilder::new().num_threads(jobs).build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    }
}

fn read_report(path: &PathBuf) -> Result<MatrixReport, ExitCode> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage_error(format!("cannot read {}: {e}", path.display())))?;
    let report: MatrixReport = serde_json::from_str(&text).map_err(|e| {
        usage_error(format!(
            "{}:{}:{}: not a freezefuzz matrix JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if report.schema != report::SCHEMA {
        return Err(usage_error(format!(
            "{}: schema `{}` is not `{}`",
            path.display(),
            report.schema,
            report::SCHEMA
        )));
    }
    Ok(report)
}

/// `--expect`: each cell's set of outcomes must equal the saved one.
fn compare_expectation(report: &MatrixReport, expected: &MatrixReport) -> ExitCode {
    let mut differences = Vec::new();
    for cell in &report.cells {
        match expected
            .cells
            .iter()
            .find(|c| c.policy == cell.policy && c.scenario == cell.scenario)
        {
            None => differences.push(format!(
                "{} × {}: not in the expectation",
                cell.policy, cell.scenario
            )),
            Some(old) => {
                let (now, then) = (cell.outcomes.names(), old.outcomes.names());
                if now != then {
                    differences.push(format!(
                        "{} × {}: expected {{{}}}, got {{{}}}",
                        cell.policy,
                        cell.scenario,
                        then.join(", "),
                        now.join(", ")
                    ));
                }
            }
        }
    }
    for old in &expected.cells {
        if !report
            .cells
            .iter()
            .any(|c| c.policy == old.policy && c.scenario == old.scenario)
        {
            differences.push(format!(
                "{} × {}: expected but not computed",
                old.policy, old.scenario
            ));
        }
    }
    if differences.is_empty() {
        eprintln!("every cell's outcomes match the expectation");
        ExitCode::SUCCESS
    } else {
        eprintln!("{} cell(s) differ from the expectation:", differences.len());
        for d in differences {
            eprintln!("  {d}");
        }
        ExitCode::from(EXIT_FAILED)
    }
}

fn explore_command(policy: &str, scenario: &str, limits: &LimitArgs, common: &CommonArgs) -> ExitCode {
    let (_, oracles, program) = match load_cell(&common.files, &common.oracles, policy, scenario) {
        Ok(cell) => cell,
        Err(code) => return code,
    };
    let program = &program;
    let explore_limits = ExploreLimits {
        states_max: limits.max_states,
        depth_max: limits.max_depth,
        memory_max: limits.max_memory << 20,
        steps_max: ExploreLimits::default().steps_max.min(1000),
        reduce: limits.por,
        symmetry: !limits.no_symmetry,
        jobs: jobs(common),
    };
    let result = explore::explore(program, &oracles, &explore_limits);
    let replay = replay_files(&common.files);
    let cell = report::cell_from_exploration(&result, program, &replay);
    let report = MatrixReport {
        schema: report::SCHEMA.into(),
        mode: "exhaustive".into(),
        campaign: CampaignInfo {
            seed: None,
            runs: None,
            scheduler: None,
            steps_max: explore_limits.steps_max,
            shard: None,
            states_max: Some(limits.max_states),
            oracles: oracles.optional_names().iter().map(|s| s.to_string()).collect(),
            files: common
                .files
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect(),
            faults: common.files.faults.clone(),
        },
        partial: false,
        policies: vec![policy.to_string()],
        scenarios: vec![scenario.to_string()],
        cells: vec![cell],
    };
    if common.format != Format::Table {
        return emit(&render(&report, common.format, false));
    }
    let mut text = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(text, "{policy} × {scenario}: exhaustive search");
    match &result.limit {
        None => {
            let _ = writeln!(
                text,
                "complete: {} states, {} transitions, depth {}",
                result.states, result.transitions, result.depth
            );
        }
        Some(limit) => {
            let _ = writeln!(
                text,
                "INCOMPLETE: stopped by the {limit} after {} states; the outcomes below are a lower bound and `safe` proves nothing",
                result.states
            );
        }
    }
    for line in result.reductions.describe() {
        let _ = writeln!(text, "{line}");
    }
    let _ = writeln!(text, "reachable outcomes: {}", result.outcomes);
    text.push_str(&report::findings(&report));
    emit(&text)
}

#[allow(clippy::too_many_arguments)]
/// What a replay must reach to exit 0.
enum Expect {
    Nothing,
    /// `--expect OUTCOME`: the run has this outcome (among others).
    Contains(freezefuzz::oracle::Outcome),
    /// `--corpus FILE`: the run has exactly the entry's outcomes.
    Exactly(freezefuzz::oracle::Outcomes),
}

#[allow(clippy::too_many_arguments)]
fn replay_command(
    policy: &str,
    scenario: &str,
    schedule_text: Option<String>,
    seed: Option<u64>,
    scheduler: SchedulerKind,
    steps_max: u32,
    oracles: &[String],
    expect: Expect,
    extra: &shrink::ReplayArgs,
    files: &FileArgs,
) -> ExitCode {
    let (workspace, oracles, program) = match load_cell(files, oracles, policy, scenario) {
        Ok(cell) => cell,
        Err(code) => return code,
    };
    let program = &program;
    let choices = match (schedule_text, seed) {
        (Some(text), _) => {
            match shrink::fit_schedule(program, &text, extra.continue_random, scheduler, steps_max) {
                Ok(fitted) => {
                    shrink::explain_fit(&fitted, extra.continue_random);
                    fitted.choices
                }
                Err(e) => return usage_error(e),
            }
        }
        (None, Some(seed)) => {
            let mut record = Vec::new();
            let mut sched = scheduler.build();
            run::run(
                program,
                &oracles,
                sched.as_mut(),
                seed,
                steps_max,
                Some(&mut record),
            );
            record
        }
        (None, None) => return usage_error("give --schedule or --seed"),
    };
    let (result, steps) = match run::replay(program, &oracles, &choices, steps_max) {
        Ok(r) => r,
        Err(e) => return usage_error(format!("the schedule does not fit {policy} × {scenario}: {e}")),
    };
    let code = emit(&trace::render(&workspace, program, &steps, &result));
    if code != ExitCode::SUCCESS {
        return code;
    }
    if let Some(path) = &extra.svg
        && let Err(code) = shrink::write_svg(path, program, &steps, &result)
    {
        return code;
    }
    match expect {
        Expect::Contains(outcome) if !result.outcomes.contains(outcome) => {
            eprintln!("expected {outcome}, got: {}", result.outcomes);
            ExitCode::from(EXIT_FAILED)
        }
        Expect::Exactly(outcomes) if result.outcomes != outcomes => {
            eprintln!(
                "the corpus entry expects {{{outcomes}}}, got: {{{}}}",
                result.outcomes
            );
            ExitCode::from(EXIT_FAILED)
        }
        _ => ExitCode::SUCCESS,
    }
}

fn merge_command(paths: &[PathBuf], format: Format) -> ExitCode {
    let mut reports = Vec::new();
    for path in paths {
        match read_report(path) {
            Ok(r) => reports.push((path, r)),
            Err(code) => return code,
        }
    }
    match merge_reports(&reports) {
        Ok(report) => emit(&render(&report, format, false)),
        Err(e) => usage_error(e),
    }
}

/// Merges shard reports of one campaign into the report an unsplit run gives.
fn merge_reports(reports: &[(&PathBuf, MatrixReport)]) -> Result<MatrixReport, String> {
    let (first_path, first) = reports.first().ok_or("nothing to merge")?;
    if first.mode != "random" {
        return Err(format!(
            "{}: only random-mode matrices are sharded",
            first_path.display()
        ));
    }
    let mut shards_seen = Vec::new();
    let mut count = None;
    for (path, r) in reports {
        let same = r.mode == first.mode
            && r.campaign.seed == first.campaign.seed
            && r.campaign.runs == first.campaign.runs
            && r.campaign.scheduler == first.campaign.scheduler
            && r.campaign.steps_max == first.campaign.steps_max
            && r.campaign.oracles == first.campaign.oracles
            && r.policies == first.policies
            && r.scenarios == first.scenarios;
        if !same {
            return Err(format!(
                "{} is from a different campaign than {} (seed, runs, scheduler, step budget, oracles, policies and scenarios must match)",
                path.display(),
                first_path.display()
            ));
        }
        let shard = r.campaign.shard.as_deref().unwrap_or("0/1");
        let parsed = parse_shard(shard).map_err(|e| format!("{}: {e}", path.display()))?;
        if *count.get_or_insert(parsed.count) != parsed.count {
            return Err(format!(
                "{}: shard {shard} is of a different split",
                path.display()
            ));
        }
        if shards_seen.contains(&parsed.index) {
            return Err(format!("{}: shard {shard} given twice", path.display()));
        }
        shards_seen.push(parsed.index);
    }
    let count = count.unwrap_or(1);
    let mut merged = first.clone();
    merged.cells.clear();
    let mut cells: Vec<freezefuzz::engine::campaign::CellResult> = Vec::new();
    for (path, r) in reports {
        for (i, cell) in r.cells.iter().enumerate() {
            let part = report::cell_to_campaign(cell).map_err(|e| format!("{}: {e}", path.display()))?;
            if cells.len() <= i {
                cells.push(part);
            } else {
                cells[i].merge(&part);
            }
        }
    }
    let complete = shards_seen.len() as u32 == count;
    merged.campaign.shard = Some(if complete {
        "0/1".to_string()
    } else {
        let mut seen = shards_seen.clone();
        seen.sort();
        format!(
            "{}/{count}",
            seen.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("+")
        )
    });
    merged.partial = reports.iter().any(|(_, r)| r.partial);
    let replay = ReplayCommand {
        files: first.campaign.files.clone(),
        faults: first.campaign.faults.clone(),
    };
    for (cell, old) in cells.iter().zip(&first.cells) {
        let mut report_cell = report::cell_from_campaign(cell, &dummy_program(), &replay);
        report_cell.policy = old.policy.clone();
        report_cell.scenario = old.scenario.clone();
        // Reachability is per cell, not per shard: every shard computed the same.
        report_cell.reachable = old.reachable.clone();
        merged.cells.push(report_cell);
    }
    Ok(merged)
}

/// `cell_from_campaign` does not read its program; merging has none.
fn dummy_program() -> Program {
    Program::empty()
}

/// A progress bar on stderr, shown only on a terminal and only once a
/// campaign has run for more than a second.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
    start: Instant,
}

impl Progress {
    fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::hidden(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {per_sec}  eta {eta}")
            {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            done: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    fn advance(&self, runs: u64) {
        self.done.fetch_add(runs, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.start.elapsed() > Duration::from_secs(1) {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.inc(runs);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
