//! `shrink`: a failing schedule made smaller while its outcome holds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use freezefuzz::engine::run;
use freezefuzz::engine::schedule;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::engine::shrink;
use freezefuzz::oracle::Outcome;

use super::args::FileArgs;
use super::load::load_cell;
use super::replay::{fit_schedule, write_svg};
use super::{EXIT_USAGE, emit, usage_error};

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:
  freezefuzz shrink no-block case3-after-freeze --schedule 'freezer*6 user*5 flusher*9' --outcome frozen-write")]
pub(super) struct ShrinkArgs {
    /// The policy.
    policy: String,
    /// The scenario.
    scenario: String,
    /// The schedule string to shrink (labels allowed).
    #[arg(long)]
    schedule: String,
    /// The outcome that must hold (e.g. frozen-write, deadlock).
    #[arg(long)]
    outcome: String,
    /// Step budget.
    #[arg(long = "max-steps", alias = "steps-max", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    steps_max: u32,
    /// Optional oracles to turn on (repeatable): dirty-at-freeze.
    #[arg(long = "oracle")]
    oracles: Vec<String>,
    /// Write the shrunk run as a swim-lane SVG picture to FILE.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    #[command(flatten)]
    files: FileArgs,
}

/// `freezefuzz shrink POLICY SCENARIO --schedule S --outcome O`.
pub(super) fn run(args: ShrinkArgs) -> ExitCode {
    shrink_command(
        &args.policy,
        &args.scenario,
        &args.schedule,
        &args.outcome,
        args.steps_max,
        &args.oracles,
        args.svg.as_deref(),
        &args.files,
    )
}

/// `freezefuzz shrink`.
#[allow(clippy::too_many_arguments)]
pub(super) fn shrink_command(
    policy: &str,
    scenario: &str,
    schedule_text: &str,
    outcome: &str,
    steps_max: u32,
    oracles: &[String],
    svg_path: Option<&Path>,
    files: &FileArgs,
) -> ExitCode {
    let Some(outcome) = Outcome::from_name(outcome) else {
        let names: Vec<&str> = Outcome::every().map(|o| o.name()).collect();
        return usage_error(format!(
            "unknown outcome `{outcome}` for --outcome; expected one of {}",
            names.join(", ")
        ));
    };
    let (_, oracles, program) = match load_cell(files, oracles, policy, scenario) {
        Ok(cell) => cell,
        Err(code) => return code,
    };
    let program = &program;
    let fitted = match fit_schedule(program, schedule_text, None, SchedulerKind::Random, steps_max) {
        Ok(f) => f,
        Err(e) => return usage_error(e),
    };
    let shrunk = match shrink::shrink(program, &oracles, &fitted.choices, outcome, steps_max) {
        Ok(s) => s,
        Err(e) => return usage_error(format!("cannot shrink: {e}")),
    };
    let plain = schedule::format(program, &shrunk.choices);
    let mut text = String::new();
    text.push_str(&format!("{policy} × {scenario}: {outcome}\n"));
    text.push_str(&format!("before: {}\n", shrunk.before));
    text.push_str(&format!("after:  {}\n", shrunk.after));
    if shrunk.limited {
        text.push_str(&format!(
            "stopped after {} candidates (the limit); the result may not be a local minimum\n",
            shrunk.candidates
        ));
    } else {
        text.push_str(&format!("local minimum after {} candidates\n", shrunk.candidates));
    }
    text.push_str(&format!("outcomes: {}\n", shrunk.outcomes));
    text.push_str(&format!("schedule: {plain}\n"));
    text.push_str(&format!(
        "labelled: {}\n",
        schedule::format_labelled(program, &shrunk.choices)
    ));
    let mut replay = super::load::replay_files(files);
    replay.oracles = oracles.optional_names().iter().map(|s| s.to_string()).collect();
    replay.steps_max = Some(steps_max);
    text.push_str(&format!(
        "replay:   {}\n",
        replay.schedule_expecting(policy, scenario, &plain, outcome.name())
    ));
    let code = emit(&text);
    if code != ExitCode::SUCCESS {
        return code;
    }
    if let Some(path) = svg_path {
        let Ok((result, steps)) = run::replay(program, &oracles, &shrunk.choices, steps_max) else {
            return ExitCode::from(EXIT_USAGE);
        };
        if let Err(code) = write_svg(path, program, &steps, &result) {
            return code;
        }
    }
    ExitCode::SUCCESS
}
