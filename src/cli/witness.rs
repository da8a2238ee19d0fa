//! What `run` and `matrix` do with the witnesses they find (`--no-shrink`, `--save`, `--html`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use freezefuzz::engine::exec::Choice;
use freezefuzz::engine::program::Program;
use freezefuzz::engine::run;
use freezefuzz::engine::schedule;
use freezefuzz::engine::shrink;
use freezefuzz::oracle::{OracleSet, Outcome};
use freezefuzz::report::html::{self, HtmlWitness};
use freezefuzz::report::matrix::{MatrixReport, ReplayCommand};
use freezefuzz::report::svg;

use super::usage_error;

/// What `run` and `matrix` do with the witnesses they find.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Witnesses")]
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
    replay: &ReplayCommand,
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
                    (Some(run), Some(seed)) => {
                        format!("run {run} of a random campaign (seed {seed} replays that run as drawn)")
                    }
                    _ => "a random campaign".to_string(),
                }
            };
            let (choices, note) = if args.no_shrink || outcome == Outcome::StepLimit {
                let note = format!("{outcome}: {origin}, {} steps", choices.len());
                (choices, note)
            } else {
                match shrink::shrink(program, oracles, &choices, outcome, steps_max) {
                    Ok(s) => {
                        let note = html::shrink_note(
                            outcome.name(),
                            &origin,
                            (s.before.steps, s.before.preemptions),
                            (s.after.steps, s.after.preemptions),
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
        super::corpus::save(
            &args.corpus_dir,
            &found,
            oracles,
            steps_max,
            replay.faults.as_deref(),
        )?;
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
                replay: replay.schedule_expecting(
                    &f.program.policy,
                    &f.program.scenario,
                    &text,
                    f.outcome.name(),
                ),
                schedule: text,
                svg: svg::render(f.program, &steps, &result),
            });
        }
        write_file(path, &html::render(report, &witnesses))?;
        note!("wrote {} ({} witnesses)", path.display(), witnesses.len());
    }
    Ok(())
}

/// Writes a whole file through a temporary file and a rename.
pub(super) fn write_file(path: &Path, text: &str) -> Result<(), ExitCode> {
    super::corpus::write_atomically(path, text)
        .map_err(|e| usage_error(format!("cannot write {}: {e}", path.display())))
}
