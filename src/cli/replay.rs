//! `replay`: one run step by step, from a schedule, a run seed or a corpus entry; and the schedule fitting that `shrink` shares.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use freezefuzz::engine::exec::Choice;
use freezefuzz::engine::program::Program;
use freezefuzz::engine::run::{self, RunResult, TraceStep};
use freezefuzz::engine::schedule;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::engine::shrink;
use freezefuzz::report::{svg, trace};

use super::args::{FileArgs, parse_scheduler, parse_u64};
use super::load::load_cell;
use super::witness::write_file;
use super::{EXIT_FAILED, usage_error};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  freezefuzz replay no-block case3-after-freeze --schedule 'freezer*5 user*5 freezer flusher*6'
  freezefuzz replay no-block case3-racing --seed 0x95b27facfbc0592d --svg /tmp/witness.svg
  freezefuzz replay --corpus corpus/no-block--case3-racing--frozen-write.toml")]
pub(super) struct ReplayArgs {
    /// The policy (not with --corpus).
    #[arg(required_unless_present = "corpus")]
    policy: Option<String>,
    /// The scenario (not with --corpus).
    #[arg(required_unless_present = "corpus")]
    scenario: Option<String>,
    /// The schedule string (e.g. `freezer*6 user*3 flusher*4`).
    #[arg(long, conflicts_with = "seed", required_unless_present_any = ["seed", "corpus"])]
    schedule: Option<String>,
    /// Replay a corpus entry (its policy, scenario, schedule, oracles and
    /// step budget); exit 1 unless the run has exactly its outcomes.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["schedule", "seed", "policy", "scenario", "expect", "steps_max", "oracles", "scheduler"])]
    corpus: Option<PathBuf>,
    /// A run seed printed by `run` or `matrix` (decimal or 0x-hex).
    #[arg(long, value_parser = parse_u64)]
    seed: Option<u64>,
    /// The scheduler the seed was drawn with.
    #[arg(long, default_value = "random", value_parser = parse_scheduler)]
    scheduler: SchedulerKind,
    /// Step budget.
    #[arg(long = "max-steps", alias = "steps-max", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    steps_max: u32,
    /// Optional oracles to turn on (repeatable): dirty-at-freeze.
    #[arg(long = "oracle")]
    oracles: Vec<String>,
    /// Exit 1 unless the run reaches this outcome.
    #[arg(long)]
    expect: Option<String>,
    #[command(flatten)]
    extra: ReplayExtraArgs,
    #[command(flatten)]
    files: FileArgs,
}

/// `freezefuzz replay`: a schedule, a run seed, or a corpus entry.
pub(super) fn run(args: ReplayArgs) -> ExitCode {
    if let Some(path) = &args.corpus {
        debug_assert!(args.policy.is_none() && args.scenario.is_none() && args.schedule.is_none());
        let entry = match super::corpus::read(path) {
            Ok(entry) => entry,
            Err(e) => return usage_error(e),
        };
        let expected = match freezefuzz::corpus::expected_outcomes(&entry) {
            Ok(set) => set,
            Err(e) => return usage_error(format!("{}: {e}", path.display())),
        };
        let files = match super::corpus::files_for_entry(&entry, &args.files) {
            Ok(files) => files,
            Err(e) => return usage_error(format!("{}: {e}", path.display())),
        };
        return replay_command(
            &entry.policy,
            &entry.scenario,
            Some(entry.schedule.clone()),
            None,
            args.scheduler,
            entry.steps_max,
            &entry.oracles,
            Expect::Exactly(expected),
            &args.extra,
            &files,
        );
    }
    let expect = match args
        .expect
        .as_deref()
        .map(|e| freezefuzz::oracle::Outcome::from_name(e).ok_or(e))
    {
        None => Expect::Nothing,
        Some(Ok(o)) => Expect::Contains(o),
        Some(Err(e)) => return usage_error(format!("unknown outcome `{e}` for --expect")),
    };
    replay_command(
        args.policy.as_deref().unwrap_or_default(),
        args.scenario.as_deref().unwrap_or_default(),
        args.schedule,
        args.seed,
        args.scheduler,
        args.steps_max,
        &args.oracles,
        expect,
        &args.extra,
        &args.files,
    )
}

/// The moves of a schedule (or seed) checked against the program, and
/// completed with a seeded random tail when asked: what `replay` runs.
pub(super) struct Fitted {
    pub choices: Vec<Choice>,
    /// Set when the schedule stopped fitting (and a random tail was asked for).
    pub stale: Option<schedule::FitError>,
    /// The schedule ended early and was continued.
    pub continued_from: Option<usize>,
}

/// Resolves and checks a schedule string; with `continue_random`, a stale
/// or unfinished schedule is finished by a seeded random tail instead of
/// failing.
pub(super) fn fit_schedule(
    program: &Program,
    text: &str,
    continue_random: Option<u64>,
    scheduler: SchedulerKind,
    steps_max: u32,
) -> Result<Fitted, String> {
    let steps = schedule::resolve_labelled(program, text).map_err(|e| e.to_string())?;
    let fit = schedule::fit(program, &steps);
    let Some(seed) = continue_random else {
        return match fit.error {
            Some(error) => Err(format!(
                "the schedule does not fit {} × {}: {error}\n  (the first {} moves fit; `--continue-random SEED` finishes the run from there with a seeded random tail)",
                program.policy,
                program.scenario,
                fit.fitting.len()
            )),
            None => Ok(Fitted {
                choices: fit.fitting,
                stale: None,
                continued_from: None,
            }),
        };
    };
    let from = fit.fitting.len();
    let mut sched = scheduler.build();
    let choices = shrink::complete_random(program, &fit.fitting, sched.as_mut(), seed, steps_max);
    Ok(Fitted {
        continued_from: (choices.len() > from).then_some(from),
        stale: fit.error,
        choices,
    })
}

/// Says on stderr how a replay was fitted.
pub(super) fn explain_fit(fitted: &Fitted, seed: Option<u64>) {
    if let Some(error) = &fitted.stale {
        note!("note: the schedule stopped fitting: {error}");
    }
    if let (Some(from), Some(seed)) = (fitted.continued_from, seed) {
        note!(
            "note: moves {}..={} are a seeded random tail (--continue-random {seed})",
            from + 1,
            fitted.choices.len()
        );
    }
}

/// Writes the swim-lane picture of a replay.
pub(super) fn write_svg(
    path: &Path,
    program: &Program,
    steps: &[TraceStep],
    result: &RunResult,
) -> Result<(), ExitCode> {
    write_file(path, &svg::render(program, steps, result))
}

/// `replay`'s options for stale schedules and pictures.
#[derive(Args, Debug, Clone)]
pub(super) struct ReplayExtraArgs {
    /// When the schedule stops fitting (or ends while threads can still
    /// move), finish the run from there with a random tail drawn from this
    /// seed instead of failing.
    #[arg(long, value_name = "SEED", value_parser = parse_u64)]
    pub continue_random: Option<u64>,
    /// Write the run as a swim-lane SVG picture to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// What a replay must reach to exit 0.
pub(super) enum Expect {
    Nothing,
    /// `--expect OUTCOME`: the run has this outcome (among others).
    Contains(freezefuzz::oracle::Outcome),
    /// `--corpus FILE`: the run has exactly the entry's outcomes.
    Exactly(freezefuzz::oracle::Outcomes),
}

#[allow(clippy::too_many_arguments)]
pub(super) fn replay_command(
    policy: &str,
    scenario: &str,
    schedule_text: Option<String>,
    seed: Option<u64>,
    scheduler: SchedulerKind,
    steps_max: u32,
    oracles: &[String],
    expect: Expect,
    extra: &ReplayExtraArgs,
    files: &FileArgs,
) -> ExitCode {
    let (workspace, oracles, program) = match load_cell(files, oracles, policy, scenario) {
        Ok(cell) => cell,
        Err(code) => return code,
    };
    let program = &program;
    let choices = match (schedule_text, seed) {
        (Some(text), _) => match fit_schedule(program, &text, extra.continue_random, scheduler, steps_max) {
            Ok(fitted) => {
                explain_fit(&fitted, extra.continue_random);
                fitted.choices
            }
            Err(e) => return usage_error(e),
        },
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
    // A first pass checks that every move fits, before any output.
    let result = match run::replay_each(program, &oracles, &choices, steps_max, &mut |_| {}) {
        Ok(r) => r,
        Err(e) => return usage_error(format!("the schedule does not fit {policy} × {scenario}: {e}")),
    };
    if extra.svg.is_some() && choices.len() > SVG_STEPS_MAX {
        return usage_error(format!(
            "--svg draws runs of at most {SVG_STEPS_MAX} steps; this one has {}",
            choices.len()
        ));
    }
    // The trace is streamed step by step: a run of millions of steps is
    // never held in memory, as text or as states.
    let mut sink = Sink::new();
    sink.put(&trace::header(program, &choices));
    let mut svg_steps = Vec::new();
    let mut index = 0;
    let _ = run::replay_each(program, &oracles, &choices, steps_max, &mut |step| {
        sink.put(&trace::step_text(&workspace, program, index, step));
        index += 1;
        if extra.svg.is_some() {
            svg_steps.push(step.clone());
        }
    });
    sink.put(&trace::ending(program, &result));
    let code = sink.finish();
    if code != ExitCode::SUCCESS {
        return code;
    }
    if let Some(path) = &extra.svg
        && let Err(code) = write_svg(path, program, &svg_steps, &result)
    {
        return code;
    }
    match expect {
        Expect::Contains(outcome) if !result.outcomes.contains(outcome) => {
            note!("expected {outcome}, got: {}", result.outcomes);
            ExitCode::from(EXIT_FAILED)
        }
        Expect::Exactly(outcomes) if result.outcomes != outcomes => {
            note!(
                "the corpus entry expects {{{outcomes}}}, got: {{{}}}",
                result.outcomes
            );
            ExitCode::from(EXIT_FAILED)
        }
        _ => ExitCode::SUCCESS,
    }
}

/// The most steps `--svg` draws (a picture of more is unreadable, and each
/// step is kept in memory to draw it).
const SVG_STEPS_MAX: usize = 100_000;

/// Buffered stdout that remembers its first error instead of failing each write.
struct Sink {
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    error: Option<std::io::Error>,
}

impl Sink {
    fn new() -> Sink {
        Sink {
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            error: None,
        }
    }

    fn put(&mut self, text: &str) {
        use std::io::Write as _;
        if self.error.is_none()
            && let Err(e) = self.out.write_all(text.as_bytes())
        {
            self.error = Some(e);
        }
    }

    fn finish(mut self) -> ExitCode {
        use std::io::Write as _;
        let result = match self.error.take() {
            Some(e) => Err(e),
            None => self.out.flush(),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => usage_error(format!("cannot write the output: {e}")),
        }
    }
}
