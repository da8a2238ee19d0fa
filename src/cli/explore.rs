//! `explore`: one cell, exhaustively.

use std::process::ExitCode;

use freezefuzz::engine::explore::{self, ExploreLimits};
use freezefuzz::report::matrix::{self as report, MatrixReport};

use super::args::{CommonArgs, Format, LimitArgs};
use super::emit;
use super::load::{load_cell, replay_files};
use super::matrix::{exhaustive_campaign, render};

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:
  freezefuzz explore no-block case3-after-freeze --format json")]
pub(super) struct ExploreArgs {
    /// The policy.
    policy: String,
    /// The scenario.
    scenario: String,
    #[command(flatten)]
    limits: LimitArgs,
    /// Hash compaction: store a 64-bit fingerprint per state instead of the
    /// state, for searches past memory. NOT EXACT: a state may be omitted
    /// (the probability is reported) and step-limit is decided only when a
    /// run past the budget is found (see docs/exploration.md).
    #[arg(long, help_heading = "Exploration")]
    hash_compact: bool,
    /// Print how long each phase of the search took (wall clock, on
    /// stderr): expand, dedup, look-up, merge, flush, step-limit check. Not
    /// part of the result, which stays the same.
    #[arg(long, help_heading = "Exploration")]
    timings: bool,
    #[command(flatten)]
    common: CommonArgs,
}

/// `freezefuzz explore POLICY SCENARIO`.
pub(super) fn run(args: ExploreArgs) -> ExitCode {
    explore_command(
        &args.policy,
        &args.scenario,
        &args.limits,
        args.hash_compact,
        args.timings,
        &args.common,
    )
}

pub(super) fn explore_command(
    policy: &str,
    scenario: &str,
    limits: &LimitArgs,
    hash_compact: bool,
    timings: bool,
    common: &CommonArgs,
) -> ExitCode {
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
        hash_compact,
        keep_edges: true,
        jobs: super::args::jobs(common),
    };
    let stop = super::progress::interrupt_flag();
    let started = std::time::Instant::now();
    let mut last = started;
    let mut spent = [None; explore::Phase::ALL.len()];
    let result = explore::explore_observed(program, &oracles, &explore_limits, &stop, &mut |phase| {
        let now = std::time::Instant::now();
        *spent[phase as usize].get_or_insert(std::time::Duration::ZERO) += now - last;
        last = now;
    });
    if timings {
        eprintln!("{}", describe_timings(&spent, started.elapsed()));
    }
    let interrupted = result.limit == Some(explore::LimitHit::Interrupted);
    let mut replay = replay_files(&common.files);
    replay.oracles = oracles.optional_names().iter().map(|s| s.to_string()).collect();
    replay.steps_max = Some(explore_limits.steps_max);
    let cell = report::cell_from_exploration(&result, program, &replay);
    let report = MatrixReport {
        schema: report::SCHEMA.into(),
        mode: "exhaustive".into(),
        campaign: exhaustive_campaign(&oracles, limits, explore_limits.steps_max, &common.files),
        partial: interrupted,
        policies: vec![policy.to_string()],
        scenarios: vec![scenario.to_string()],
        cells: vec![cell],
    };
    if common.format != Format::Table {
        return finish(emit(&render(&report, common.format, false)), interrupted);
    }
    let mut text = String::new();
    use std::fmt::Write as _;
    let _ = writeln!(text, "{policy} × {scenario}: exhaustive search");
    match &result.limit {
        None if result.exact() => {
            let _ = writeln!(
                text,
                "complete: {} states, {} transitions, depth {}",
                result.states, result.transitions, result.depth
            );
        }
        None => {
            let _ = writeln!(
                text,
                "complete but NOT EXACT (hash compaction): {} states, {} transitions, depth {}; a state may have been omitted, see below",
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
    finish(emit(&text), interrupted)
}

/// The `--timings` line: each phase that ran, and the total.
fn describe_timings(spent: &[Option<std::time::Duration>], total: std::time::Duration) -> String {
    let phases: Vec<String> = explore::Phase::ALL
        .iter()
        .zip(spent)
        .filter_map(|(phase, d)| d.map(|d| format!("{} {:.1} s", phase.name(), d.as_secs_f64())))
        .collect();
    format!(
        "timings (wall clock; not part of the result): {}; total {:.1} s",
        phases.join(", "),
        total.as_secs_f64()
    )
}

/// An interrupted search printed what it found; it exits 130 and says so.
fn finish(code: ExitCode, interrupted: bool) -> ExitCode {
    if code == ExitCode::SUCCESS && interrupted {
        note!("interrupted: the results above are partial");
        return ExitCode::from(super::EXIT_INTERRUPTED);
    }
    code
}
