//! The schedule string: a compact, printable name for a run's choices,
//! optionally carrying the statement each step is expected to run.
//!
//! ```text
//! schedule := step (SPACE step)*            (any run of spaces/tabs/newlines separates)
//! step     := THREAD ["*" COUNT] [labels]   THREAD moves COUNT times (default 1)
//!           | THREAD "!" [labels]           THREAD moves once and the fault possible there fires
//! labels   := "[" LABEL ("|" LABEL)* "]"    one label per move: COUNT labels (1 after `!`)
//! THREAD   := [a-z_][a-z0-9_-]*             a thread name of the scenario
//! COUNT    := 1 ..= 1000000
//! LABEL    := any characters but `[ ] |`, tabs and newlines; outer spaces are trimmed
//! ```
//! Example: `freezer*2 user flusher!` or, labelled,
//! `freezer*2[lock umount write|set_level write] user[await frozen] flusher![submit]`.
//! A label is the statement text the trace shows (see [`label`]); replay
//! checks each one ([`fit`]) so that a schedule made stale by a policy edit
//! fails at the exact step where it stops fitting. Parsed with nom; never
//! panics on any input.

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{digit1, multispace0, multispace1};
use nom::combinator::{all_consuming, map, opt, recognize};
use nom::multi::{separated_list0, separated_list1};
use nom::sequence::{delimited, pair, preceded};
use nom::{IResult, Parser};

use crate::engine::exec::{self, Choice};
use crate::engine::program::{Op, Program};
use crate::model::State;

/// The largest repeat count of one step.
pub const COUNT_MAX: u64 = 1_000_000;
/// The most moves a whole schedule may make (the largest step budget):
/// checked while parsing, before a schedule is expanded move by move
/// (about 32 bytes a move), so a short text cannot ask for gigabytes.
pub const MOVES_MAX: u64 = 10_000_000;

/// One parsed step, by thread name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedStep {
    pub thread: String,
    pub count: u32,
    pub fire: bool,
    /// The expected statement of each of the `count` moves; empty when the
    /// step carries no labels.
    pub labels: Vec<String>,
    /// Byte offset in the schedule string, for errors.
    pub offset: usize,
}

/// One resolved move: the choice, and the statement it is expected to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledStep {
    pub choice: Choice,
    pub label: Option<String>,
}

/// A malformed or unfitting schedule string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("schedule column {column}: expected {expected}, found {found}")]
    Syntax {
        column: usize,
        expected: String,
        found: String,
    },
    #[error(
        "schedule column {column}: no thread named `{name}` in scenario `{scenario}` (threads: {threads})"
    )]
    UnknownThread {
        column: usize,
        name: String,
        scenario: String,
        threads: String,
    },
    #[error("schedule column {column}: count {count} is out of range 1..={max}")]
    Count { column: usize, count: String, max: u64 },
    #[error("schedule column {column}: the schedule makes more than {max} moves (MOVES_MAX)")]
    TooLong { column: usize, max: u64 },
    #[error("schedule column {column}: `{step}` moves {moves} time(s) but carries {labels} label(s)")]
    LabelCount {
        column: usize,
        step: String,
        moves: u32,
        labels: usize,
    },
}

fn name(input: &str) -> IResult<&str, &str> {
    recognize(pair(
        take_while1(|c: char| c.is_ascii_lowercase() || c == '_'),
        take_while(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'),
    ))
    .parse(input)
}

fn is_label_char(c: char) -> bool {
    !matches!(c, '[' | ']' | '|' | '\n' | '\r' | '\t')
}

/// One label: at least one non-space character among the allowed ones.
fn label_text(input: &str) -> IResult<&str, &str> {
    let (rest, text) = take_while1(is_label_char).parse(input)?;
    if text.trim().is_empty() {
        return Err(nom::Err::Error(nom::error::Error::new(
            input,
            nom::error::ErrorKind::TakeWhile1,
        )));
    }
    Ok((rest, text))
}

fn labels(input: &str) -> IResult<&str, Vec<&str>> {
    delimited(tag("["), separated_list1(tag("|"), label_text), tag("]")).parse(input)
}

enum Suffix<'a> {
    Count(&'a str),
    Fire,
}

type Step<'a> = (&'a str, Option<Suffix<'a>>, Option<Vec<&'a str>>);

fn step(input: &str) -> IResult<&str, Step<'_>> {
    let (rest, (thread, suffix)) = pair(
        name,
        opt(alt((
            map(preceded(tag("*"), digit1), Suffix::Count),
            map(tag("!"), |_| Suffix::Fire),
        ))),
    )
    .parse(input)?;
    let (rest, labels) = opt(labels).parse(rest)?;
    Ok((rest, (thread, suffix, labels)))
}

/// Parses a schedule string into named steps.
///
/// ```
/// let steps = freezefuzz::engine::schedule::parse("freezer*5 user flusher!").unwrap();
/// assert_eq!((steps[0].thread.as_str(), steps[0].count), ("freezer", 5));
/// assert!(steps[2].fire);
/// let error = freezefuzz::engine::schedule::parse("user*0").unwrap_err();
/// assert_eq!(error.to_string(), "schedule column 6: count 0 is out of range 1..=1000000");
/// ```
pub fn parse(text: &str) -> Result<Vec<NamedStep>, ScheduleError> {
    let parsed = all_consuming(delimited(
        multispace0,
        separated_list0(multispace1, recognize(step)),
        multispace0,
    ))
    .parse(text);
    let tokens = match parsed {
        Ok((_, tokens)) => tokens,
        Err(_) => return Err(syntax_error(text)),
    };
    let mut steps = Vec::with_capacity(tokens.len());
    let mut moves: u64 = 0;
    for token in tokens {
        let offset = token.as_ptr() as usize - text.as_ptr() as usize;
        let (_, (thread, suffix, labels)) = step(token).map_err(|_| syntax_error(text))?;
        let (count, fire) = match suffix {
            None => (1, false),
            Some(Suffix::Fire) => (1, true),
            Some(Suffix::Count(digits)) => match digits.parse::<u64>() {
                Ok(n) if (1..=COUNT_MAX).contains(&n) => (n as u32, false),
                _ => {
                    return Err(ScheduleError::Count {
                        column: column_of(text, offset + thread.len() + 1),
                        count: digits.to_string(),
                        max: COUNT_MAX,
                    });
                }
            },
        };
        moves += count as u64;
        if moves > MOVES_MAX {
            return Err(ScheduleError::TooLong {
                column: column_of(text, offset),
                max: MOVES_MAX,
            });
        }
        let labels: Vec<String> = labels
            .unwrap_or_default()
            .into_iter()
            .map(normalize_label)
            .collect();
        if !labels.is_empty() && labels.len() != count as usize {
            let bracket = token.find('[').unwrap_or(0);
            return Err(ScheduleError::LabelCount {
                column: column_of(text, offset + bracket),
                step: token[..bracket].to_string(),
                moves: count,
                labels: labels.len(),
            });
        }
        steps.push(NamedStep {
            thread: thread.to_string(),
            count,
            fire,
            labels,
            offset,
        });
    }
    Ok(steps)
}

/// Trims a label and collapses its inner runs of spaces, so that labels
/// compare by their words.
fn normalize_label(text: &str) -> String {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Locates the first place the grammar fails, for a precise message.
fn syntax_error(text: &str) -> ScheduleError {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        let offset = text.len() - trimmed.len();
        if trimmed.is_empty() {
            // Cannot happen for a failed parse; report the end.
            return error_at(text, offset, "a thread name");
        }
        let head = pair(
            name,
            opt(alt((
                map(preceded(tag("*"), digit1), Suffix::Count),
                map(tag("!"), |_| Suffix::Fire),
            ))),
        )
        .parse(trimmed);
        match head {
            Ok((after, _)) => {
                let after = if after.starts_with('[') {
                    match label_error(text, after) {
                        Ok(after) => after,
                        Err(e) => return e,
                    }
                } else {
                    after
                };
                match after.chars().next() {
                    None => return error_at(text, text.len(), "a thread name"),
                    Some(c) if c.is_whitespace() => rest = after,
                    Some(_) => {
                        let at = text.len() - after.len();
                        return error_at(
                            text,
                            at,
                            "a space, `*COUNT`, `!` or `[labels]` after the thread name",
                        );
                    }
                }
            }
            Err(_) => {
                if trimmed.starts_with('*') || trimmed.starts_with('!') || trimmed.starts_with('[') {
                    return error_at(text, offset, "a thread name before `*`, `!` or `[`");
                }
                return error_at(
                    text,
                    offset,
                    "a thread name (lowercase letters, digits, `_`, `-`)",
                );
            }
        }
    }
}

/// Walks a `[label|label]` group starting at `input` (which begins with `[`),
/// returning what follows it or the error at the first bad character.
fn label_error<'a>(text: &'a str, input: &'a str) -> Result<&'a str, ScheduleError> {
    let mut rest = &input[1..];
    loop {
        match label_text(rest) {
            Ok((after, _)) => rest = after,
            Err(_) => {
                return Err(error_at(
                    text,
                    text.len() - rest.len(),
                    "a statement label (any text but `[`, `]`, `|`, tabs and newlines)",
                ));
            }
        }
        match rest.chars().next() {
            Some('|') => rest = &rest[1..],
            Some(']') => return Ok(&rest[1..]),
            _ => {
                return Err(error_at(
                    text,
                    text.len() - rest.len(),
                    "`|` or `]` after a statement label",
                ));
            }
        }
    }
}

fn error_at(text: &str, offset: usize, expected: &str) -> ScheduleError {
    let found = match text[offset..].chars().next() {
        None => "the end of the schedule".to_string(),
        Some(c) => format!("`{}`", c.escape_default()),
    };
    ScheduleError::Syntax {
        column: column_of(text, offset),
        expected: expected.to_string(),
        found,
    }
}

fn column_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].chars().count() + 1
}

/// Resolves named steps against a program's threads (labels are dropped;
/// see [`resolve_labelled`] to keep them).
pub fn resolve(program: &Program, text: &str) -> Result<Vec<Choice>, ScheduleError> {
    Ok(resolve_labelled(program, text)?
        .into_iter()
        .map(|s| s.choice)
        .collect())
}

/// Resolves named steps against a program's threads, one entry per move,
/// keeping each move's expected statement label.
pub fn resolve_labelled(program: &Program, text: &str) -> Result<Vec<ScheduledStep>, ScheduleError> {
    let steps = parse(text)?;
    let mut out = Vec::new();
    for step in steps {
        let Some(thread) = program.thread_index(&step.thread) else {
            return Err(ScheduleError::UnknownThread {
                column: column_of(text, step.offset),
                name: step.thread,
                scenario: program.scenario.clone(),
                threads: program
                    .threads
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        };
        for i in 0..step.count as usize {
            out.push(ScheduledStep {
                choice: Choice {
                    thread: thread as u8,
                    fire: step.fire,
                },
                label: step.labels.get(i).cloned(),
            });
        }
    }
    Ok(out)
}

/// Prints choices as a schedule string (runs of one thread folded as `name*n`).
pub fn format(program: &Program, choices: &[Choice]) -> String {
    let names: Vec<&str> = program.threads.iter().map(|t| t.name.as_str()).collect();
    let steps: Vec<ScheduledStep> = choices
        .iter()
        .map(|&choice| ScheduledStep { choice, label: None })
        .collect();
    format_steps(&names, &steps)
}

/// Prints choices with the label of every move (the statement each runs),
/// replaying them on `program` to learn the labels. Moves that do not fit
/// (a thread that cannot move there) are printed without a label.
pub fn format_labelled(program: &Program, choices: &[Choice]) -> String {
    let names: Vec<&str> = program.threads.iter().map(|t| t.name.as_str()).collect();
    format_steps(&names, &labelled(program, choices))
}

/// Each choice with the label of the statement it runs, found by replaying.
pub fn labelled(program: &Program, choices: &[Choice]) -> Vec<ScheduledStep> {
    let mut state = program.initial;
    let mut fits = true;
    choices
        .iter()
        .map(|&choice| {
            let thread = choice.thread as usize;
            fits = fits
                && thread < program.threads.len()
                && exec::enabled(program, &state, thread)
                && (!choice.fire || exec::fault_point(program, &state, thread).is_some());
            let label = fits.then(|| label(program, &state, thread));
            if fits {
                exec::step(program, &mut state, thread, choice.fire);
            }
            ScheduledStep { choice, label }
        })
        .collect()
}

/// Prints steps by thread name. Consecutive equal choices fold into
/// `name*n`; labels, when every move of a run has one, follow in brackets.
/// A run folds only while all its moves are labelled or all are not.
pub fn format_steps(names: &[&str], steps: &[ScheduledStep]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < steps.len() {
        let first = &steps[i];
        let name = names.get(first.choice.thread as usize).copied().unwrap_or("?");
        let mut count = 1;
        if !first.choice.fire {
            while i + count < steps.len()
                && steps[i + count].choice == first.choice
                && steps[i + count].label.is_some() == first.label.is_some()
            {
                count += 1;
            }
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(name);
        if first.choice.fire {
            out.push('!');
        } else if count > 1 {
            out.push_str(&std::format!("*{count}"));
        }
        if first.label.is_some() {
            out.push('[');
            for (k, s) in steps[i..i + count].iter().enumerate() {
                if k > 0 {
                    out.push('|');
                }
                out.push_str(s.label.as_deref().unwrap_or(""));
            }
            out.push(']');
        }
        i += count;
    }
    out
}

/// The label of the statement `thread` runs next in `state`: the statement
/// text of the trace, made safe for the schedule syntax (`[ ] |` become
/// `( ) /`, spaces collapsed). Built-in steps get short names: `wake` (the
/// flusher wakes), `fault completes`.
pub fn label(program: &Program, state: &State, thread: usize) -> String {
    let instr = program.instr(thread, state.pc[thread]);
    match instr.op {
        Op::FlusherSleep => "wake".into(),
        Op::FaultComplete { .. } => "fault completes".into(),
        _ => {
            let text: String = program.origins[instr.origin as usize]
                .text
                .chars()
                .map(|c| match c {
                    '[' => '(',
                    ']' => ')',
                    '|' => '/',
                    '\n' | '\r' | '\t' => ' ',
                    c => c,
                })
                .collect();
            normalize_label(&text)
        }
    }
}

/// Why a schedule stops fitting a program, at which (1-based) step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    #[error("step {step}: thread `{thread}` cannot move here ({why})")]
    Blocked {
        step: usize,
        thread: String,
        why: String,
    },
    #[error("step {step}: `{thread}!` asks for a fault, but none can fire at `{statement}`")]
    NoFault {
        step: usize,
        thread: String,
        statement: String,
    },
    #[error(
        "step {step}: the schedule expects `{thread}[{expected}]`, but `{thread}` is at `{actual}` ({context})"
    )]
    Label {
        step: usize,
        thread: String,
        expected: String,
        actual: String,
        context: String,
    },
}

impl FitError {
    /// The 1-based step that does not fit.
    pub fn step(&self) -> usize {
        match self {
            FitError::Blocked { step, .. }
            | FitError::NoFault { step, .. }
            | FitError::Label { step, .. } => *step,
        }
    }
}

/// How far a schedule fits a program: the moves that fit (a prefix), and
/// why the next one does not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fit {
    pub fitting: Vec<Choice>,
    pub error: Option<FitError>,
}

/// Whether `choice`, the `step`-th move (1-based), can be taken in `state`:
/// the thread exists and can move, the statement it runs has the expected
/// label (when one is given), and a requested fault can fire there.
pub fn check_move(
    program: &Program,
    state: &State,
    step: usize,
    choice: Choice,
    expected: Option<&str>,
) -> Option<FitError> {
    let thread = choice.thread as usize;
    let name = program
        .threads
        .get(thread)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| std::format!("#{thread}"));
    if thread >= program.threads.len() {
        Some(FitError::Blocked {
            step,
            thread: name,
            why: "no such thread".into(),
        })
    } else if !exec::enabled(program, state, thread) {
        let why = if exec::finished(program, state, thread) {
            "it has finished".to_string()
        } else {
            std::format!("it is blocked at `{}`", label(program, state, thread))
        };
        Some(FitError::Blocked {
            step,
            thread: name,
            why,
        })
    } else if let Some(expected) = expected.filter(|l| *l != label(program, state, thread)) {
        let origin = &program.origins[program.instr(thread, state.pc[thread]).origin as usize];
        Some(FitError::Label {
            step,
            thread: name,
            expected: expected.to_string(),
            actual: label(program, state, thread),
            context: if origin.context.is_empty() {
                "end of program".into()
            } else {
                origin.context.clone()
            },
        })
    } else if choice.fire && exec::fault_point(program, state, thread).is_none() {
        Some(FitError::NoFault {
            step,
            thread: name,
            statement: label(program, state, thread),
        })
    } else {
        None
    }
}

/// Walks `steps` on `program`, checking at each move that the thread can
/// move, that a requested fault can fire, and that the statement it runs
/// has the expected label.
pub fn fit(program: &Program, steps: &[ScheduledStep]) -> Fit {
    let mut state = program.initial;
    let mut fitting = Vec::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let thread = s.choice.thread as usize;
        let error = check_move(program, &state, i + 1, s.choice, s.label.as_deref());
        if let Some(error) = error {
            return Fit {
                fitting,
                error: Some(error),
            };
        }
        exec::step(program, &mut state, thread, s.choice.fire);
        fitting.push(s.choice);
    }
    Fit { fitting, error: None }
}

impl fmt::Display for ScheduledStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{}{}",
            self.choice.thread,
            if self.choice.fire { "!" } else { "" }
        )?;
        if let Some(label) = &self.label {
            write!(f, "[{label}]")?;
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_longer_than_moves_max_is_refused_before_expansion() {
        // F04: 200 × 1 000 000 moves in 2.6 KB of text.
        let text = "user*1000000 ".repeat(200);
        let err = parse(&text).unwrap_err().to_string();
        assert_eq!(
            err,
            "schedule column 131: the schedule makes more than 10000000 moves (MOVES_MAX)"
        );
        assert!(parse(&"user*1000000 ".repeat(10)).is_ok());
    }

    #[test]
    fn parses_counts_and_faults() {
        let steps = parse("  freezer*3 user flusher!  ").unwrap();
        assert_eq!(steps.len(), 3);
        assert_eq!(
            (steps[0].thread.as_str(), steps[0].count, steps[0].fire),
            ("freezer", 3, false)
        );
        assert_eq!(
            (steps[2].thread.as_str(), steps[2].count, steps[2].fire),
            ("flusher", 1, true)
        );
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn errors_name_the_column_and_what_was_expected() {
        let err = parse("user freezer*x").unwrap_err().to_string();
        assert_eq!(
            err,
            "schedule column 13: expected a space, `*COUNT`, `!` or `[labels]` after the thread name, found `*`"
        );
        let err = parse("user *3").unwrap_err().to_string();
        assert_eq!(
            err,
            "schedule column 6: expected a thread name before `*`, `!` or `[`, found `*`"
        );
        let err = parse("user freezer*0").unwrap_err().to_string();
        assert_eq!(err, "schedule column 14: count 0 is out of range 1..=1000000");
        let err = parse("user freezer*99999999999999999999999")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("schedule column 14: count 9999"), "{err}");
        let err = parse("Ünïcode").unwrap_err().to_string();
        assert!(err.contains("column 1"), "{err}");
    }
}

#[cfg(test)]
mod label_tests {
    use super::*;

    #[test]
    fn parses_labels() {
        let steps = parse("freezer*2[lock umount write| set_level  write ] user![submit]").unwrap();
        assert_eq!(steps[0].labels, vec!["lock umount write", "set_level write"]);
        assert_eq!(steps[1].labels, vec!["submit"]);
        assert!(steps[1].fire);
    }

    #[test]
    fn label_errors_name_the_column() {
        let err = parse("user[a|b]").unwrap_err().to_string();
        assert_eq!(
            err,
            "schedule column 5: `user` moves 1 time(s) but carries 2 label(s)"
        );
        let err = parse("user*2[a|").unwrap_err().to_string();
        assert_eq!(
            err,
            "schedule column 10: expected a statement label (any text but `[`, `]`, `|`, tabs and newlines), found the end of the schedule"
        );
        let err = parse("user[a").unwrap_err().to_string();
        assert_eq!(
            err,
            "schedule column 7: expected `|` or `]` after a statement label, found the end of the schedule"
        );
        let err = parse("user[]").unwrap_err().to_string();
        assert!(err.contains("column 6"), "{err}");
        let err = parse("user[a]x").unwrap_err().to_string();
        assert!(err.contains("column 8"), "{err}");
    }
}
