//! The corpus: one small TOML file per witness (policy, scenario, schedule,
//! expected outcomes, a one-line note, a format version), and the check
//! that replays an entry and compares its outcomes. No IO here: the CLI
//! reads, writes (atomically) and lists the files.
//!
//! ```toml
//! format = 1
//! policy = "no-block"
//! scenario = "case3-after-freeze"
//! outcomes = ["frozen-write"]
//! note = "the flusher submits inside the frozen window"
//! schedule = "freezer*5[lock umount write|…] user*4[…] …"
//! ```
//! Optional keys: `oracles` (optional oracles to turn on, default none),
//! `faults` (the `--faults` spec of a `POLICY+faults` policy) and
//! `steps_max` (default 1000). Unknown keys are errors, so a typo cannot
//! silently weaken a check.

use serde::{Deserialize, Serialize};

use crate::engine::exec::Choice;
use crate::engine::program::Program;
use crate::engine::run;
use crate::engine::schedule::{self, FitError, ScheduleError, ScheduledStep};
use crate::oracle::{OracleSet, Outcome, Outcomes};

/// The format version this build reads and writes.
pub const FORMAT: u32 = 1;

fn default_steps_max() -> u32 {
    1000
}

/// One corpus entry, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The format version ([`FORMAT`]).
    pub format: u32,
    pub policy: String,
    pub scenario: String,
    /// Every outcome the replayed run must have, no more and no fewer.
    pub outcomes: Vec<String>,
    /// One line for people: what the witness shows.
    pub note: String,
    /// The schedule string, usually with statement labels.
    pub schedule: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oracles: Vec<String>,
    /// The `--faults` spec that made a `POLICY+faults` policy (docs/faults.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<String>,
    #[serde(default = "default_steps_max")]
    pub steps_max: u32,
}

/// Why a corpus file cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CorpusError {
    #[error("{line}:{column}: {message}")]
    Toml {
        line: usize,
        column: usize,
        message: String,
    },
    #[error("format {found} is not supported (this freezefuzz reads format {FORMAT})")]
    Format { found: u32 },
    #[error("unknown outcome `{0}` in `outcomes`")]
    Outcome(String),
    #[error("`schedule`: {0}")]
    Schedule(ScheduleError),
    #[error("`note` must be one line")]
    Note,
}

/// Parses one corpus file's text.
pub fn parse(text: &str) -> Result<Entry, CorpusError> {
    let entry: Entry = toml::from_str(text).map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => line_column(text, span.start),
            None => (1, 1),
        };
        CorpusError::Toml {
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })?;
    if entry.format != FORMAT {
        return Err(CorpusError::Format { found: entry.format });
    }
    if entry.note.contains('\n') {
        return Err(CorpusError::Note);
    }
    expected_outcomes(&entry)?;
    schedule::parse(&entry.schedule).map_err(CorpusError::Schedule)?;
    Ok(entry)
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The entry's expected outcomes as a set.
pub fn expected_outcomes(entry: &Entry) -> Result<Outcomes, CorpusError> {
    let mut set = Outcomes::default();
    for name in &entry.outcomes {
        set.insert(Outcome::from_name(name).ok_or_else(|| CorpusError::Outcome(name.clone()))?);
    }
    Ok(set)
}

/// The entry as TOML text (keys in a fixed order).
pub fn to_toml(entry: &Entry) -> String {
    toml::to_string(entry).expect("a corpus entry always serializes")
}

/// The file name an entry is saved under (before any `-2`, `-3` suffix
/// that keeps distinct witnesses of one cell apart).
pub fn file_stem(policy: &str, scenario: &str, outcome: Outcome) -> String {
    format!("{policy}--{scenario}--{}", outcome.name())
}

/// The schedule with its labels dropped, for deduplication: two entries
/// are the same witness when policy, scenario and this agree.
pub fn plain_schedule(text: &str) -> Result<String, ScheduleError> {
    let steps = schedule::parse(text)?;
    let mut names: Vec<&str> = Vec::new();
    let mut moves = Vec::new();
    for step in &steps {
        let index = match names.iter().position(|n| *n == step.thread) {
            Some(i) => i,
            None => {
                names.push(&step.thread);
                names.len() - 1
            }
        };
        for _ in 0..step.count {
            moves.push(ScheduledStep {
                choice: Choice {
                    thread: index as u8,
                    fire: step.fire,
                },
                label: None,
            });
        }
    }
    Ok(schedule::format_steps(&names, &moves))
}

/// A new entry for a witness: the labelled schedule and every outcome of
/// the run it replays to.
pub fn entry_for(program: &Program, choices: &[Choice], outcomes: Outcomes, note: String) -> Entry {
    Entry {
        format: FORMAT,
        policy: program.policy.clone(),
        scenario: program.scenario.clone(),
        outcomes: outcomes.iter().map(|o| o.name().to_string()).collect(),
        note,
        schedule: schedule::format_labelled(program, choices),
        oracles: Vec::new(),
        faults: None,
        steps_max: default_steps_max(),
    }
}

/// What replaying an entry gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The run has exactly the expected outcomes.
    Same,
    /// The schedule replays, to other outcomes.
    Changed { expected: Outcomes, got: Outcomes },
    /// The schedule no longer fits the policy (a policy edit made it stale).
    Stale(FitError),
}

/// Replays `entry` on its compiled `program`.
pub fn check(program: &Program, oracles: &OracleSet, entry: &Entry) -> Result<Verdict, CorpusError> {
    let expected = expected_outcomes(entry)?;
    let steps = schedule::resolve_labelled(program, &entry.schedule).map_err(CorpusError::Schedule)?;
    let fit = schedule::fit(program, &steps);
    if let Some(error) = fit.error {
        return Ok(Verdict::Stale(error));
    }
    let (result, _) =
        run::replay(program, oracles, &fit.fitting, entry.steps_max).expect("a schedule that fits replays");
    if result.outcomes == expected {
        Ok(Verdict::Same)
    } else {
        Ok(Verdict::Changed {
            expected,
            got: result.outcomes,
        })
    }
}

/// A two-line diff of outcome sets: `- expected: …` / `+ got: …`.
pub fn diff(expected: Outcomes, got: Outcomes) -> String {
    let show = |o: Outcomes| {
        if o.is_empty() {
            "(none: the run is unfinished)".to_string()
        } else {
            o.to_string()
        }
    };
    let mut text = format!("- expected: {}\n+ got:      {}", show(expected), show(got));
    let lost: Vec<&str> = expected
        .iter()
        .filter(|o| !got.contains(*o))
        .map(Outcome::name)
        .collect();
    let new: Vec<&str> = got
        .iter()
        .filter(|o| !expected.contains(*o))
        .map(Outcome::name)
        .collect();
    if !lost.is_empty() {
        text.push_str(&format!("\n  no longer reached: {}", lost.join(", ")));
    }
    if !new.is_empty() {
        text.push_str(&format!("\n  newly reached: {}", new.join(", ")));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_line_and_column() {
        let err = parse("format = 1\npolicy = \"x\"\nscenario = 3\n").unwrap_err();
        assert!(matches!(err, CorpusError::Toml { line: 3, .. }), "{err}");
        let err = parse(
            "format = 2\npolicy = \"x\"\nscenario = \"y\"\noutcomes = []\nnote = \"\"\nschedule = \"\"\n",
        )
        .unwrap_err();
        assert_eq!(err, CorpusError::Format { found: 2 });
    }

    #[test]
    fn plain_schedule_drops_labels() {
        assert_eq!(plain_schedule("a*2[x|y] b![submit] a").unwrap(), "a*2 b! a");
    }
}
