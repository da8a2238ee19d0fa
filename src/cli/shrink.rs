//! `shrink`, the label-checked replay helpers, and what campaigns do with
//! their witnesses afterwards (`--no-shrink`, `--save`, `--html`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use freezefuzz::engine::exec::Choice;
use freezefuzz::engine::program::Program;
use freezefuzz::engine::run::{self, RunResult, TraceStep};
use freezefuzz::engine::schedule;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::engine::shrink;
use freezefuzz::oracle::{OracleSet, Outcome};
use freezefuzz::report::html::{self, HtmlWitness};
use freezefuzz::report::matrix::MatrixReport;
use freezefuzz::report::svg;

use super::{EXIT_USAGE, FileArgs, emit, load_cell, usage_error};

/// What `run` and `matrix` do with the witnesses they find.
#[derive(Args, Debug, Clone)]
pub(super) struct WitnessArgs {
    /// Report first witnesses as found, without shrinking them.
    #[arg(long)]
    pub no_shrink: bool,
    /// Add each bad outcome's (shrunk) witness to the corpus, skipping ones already there.
    #[arg(long)]
    pub save: bool,
    /// The corpus directory for --save.
    #[arg(long, value_name = "DIR", default_value = "corpus")]
    pub corpus_dir: PathBuf,
    /// Also write a self-contained HTML page: the matrix and each bad cell's witness as a picture.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

/// A witness ready to save or draw.
pub(super) struct Found<'a> {
    pub program: &'a Program,
    pub outcome: Outcome,
    pub choices: Vec<Choice>,
    pub note: String,
}

/// After a matrix: shrink the report's witnesses for saving and drawing
/// (random-mode witnesses are shrunk already; shrinking again is a no-op),
/// then `--save` and `--html`.
pub(super) fn after_matrix(
    report: &MatrixReport,
    programs: &[Program],
    oracles: &OracleSet,
    args: &WitnessArgs,
    steps_max: u32,
) -> Result<(), ExitCode> {
    if !args.save && args.html.is_none() {
        return Ok(());
    }
    let mut found = Vec::new();
    for (cell, program) in report.cells.iter().zip(programs) {
        for (name, w) in &cell.witnesses {
            let Some(outcome) = Outcome::from_name(name) else {
                continue;
            };
            let Ok(choices) = schedule::resolve(program, &w.schedule) else {
                continue;
            };
            let origin = if report.mode == "exhaustive" {
                "a shortest schedule of `matrix --exhaustive`".to_string()
            } else {
                match (&w.run, &w.seed) {
                    (Some(run), Some(seed)) => format!("run {run} (seed {seed}) of a random campaign"),
                    _ => "a random campaign".to_string(),
                }
            };
            let (choices, note) = if args.no_shrink || outcome == Outcome::StepLimit {
                let note = format!("{outcome}: {origin}, {} steps", choices.len());
                (choices, note)
            } else {
                match shrink::shrink(program, oracles, &choices, outcome, steps_max) {
                    Ok(s) => {
                        let note = format!(
                            "{outcome}: {origin}, shrunk from {} to {} steps ({} to {} preemptions)",
                            s.before.steps, s.after.steps, s.before.preemptions, s.after.preemptions
                        );
                        (s.choices, note)
                    }
                    Err(_) => (choices, format!("{outcome}: {origin}")),
                }
            };
            found.push(Found {
                program,
                outcome,
                choices,
                note,
            });
        }
    }
    if args.save {
        super::corpus::save(&args.corpus_dir, &found, oracles)?;
    }
    if let Some(path) = &args.html {
        let mut witnesses = Vec::new();
        for f in &found {
            let Ok((result, steps)) = run::replay(f.program, oracles, &f.choices, steps_max.max(1)) else {
                continue;
            };
            let text = schedule::format(f.program, &f.choices);
            witnesses.push(HtmlWitness {
                policy: f.program.policy.clone(),
                scenario: f.program.scenario.clone(),
                outcome: f.outcome.name().to_string(),
                note: f.note.clone(),
                replay: format!(
                    "freezefuzz replay {} {} --schedule '{text}' --expect {}",
                    f.program.policy, f.program.scenario, f.outcome
                ),
                schedule: text,
                svg: svg::render(f.program, &steps, &result),
            });
        }
        write_file(path, &html::render(report, &witnesses))?;
        eprintln!("wrote {} ({} witnesses)", path.display(), witnesses.len());
    }
    Ok(())
}

/// Writes a whole file through a temporary file and a rename.
pub(super) fn write_file(path: &Path, text: &str) -> Result<(), ExitCode> {
    super::corpus::write_atomically(path, text)
        .map_err(|e| usage_error(format!("cannot write {}: {e}", path.display())))
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
        eprintln!("note: the schedule stopped fitting: {error}");
    }
    if let (Some(from), Some(seed)) = (fitted.continued_from, seed) {
        eprintln!(
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
    text.push_str(&format!(
        "replay:   freezefuzz replay {policy} {scenario} --schedule '{plain}' --expect {outcome}\n"
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

/// `replay`'s options for stale schedules and pictures.
#[derive(Args, Debug, Clone)]
pub(super) struct ReplayArgs {
    /// When the schedule stops fitting (or ends while threads can still
    /// move), finish the run from there with a random tail drawn from this
    /// seed instead of failing.
    #[arg(long, value_name = "SEED", value_parser = super::parse_u64)]
    pub continue_random: Option<u64>,
    /// Write the run as a swim-lane SVG picture to FILE.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

/// `freezefuzz corpus …`.
#[derive(clap::Subcommand, Debug)]
pub(super) enum CorpusAction {
    /// Replay every corpus entry; exit 1 (with a diff) if an outcome changed.
    Check {
        /// The corpus directory.
        #[arg(long, value_name = "DIR", default_value = "corpus")]
        dir: PathBuf,
        #[command(flatten)]
        files: FileArgs,
    },
}
