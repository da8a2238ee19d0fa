//! The schedule string: a compact, printable name for a run's choices.
//!
//! ```text
//! schedule := step (" " step)*          (any run of spaces/tabs/newlines separates)
//! step     := THREAD ["*" COUNT]        THREAD moves COUNT times (default 1)
//!           | THREAD "!"                THREAD moves once and the fault possible there fires
//! THREAD   := [a-z_][a-z0-9_-]*         a thread name of the scenario
//! COUNT    := 1 ..= 1000000
//! ```
//! Example: `freezer*6 user*3 flusher*2 flusher! freezer*4`. Parsed with nom.

use std::fmt;

use nom::branch::alt;
use nom::bytes::complete::{tag, take_while, take_while1};
use nom::character::complete::{digit1, multispace0, multispace1};
use nom::combinator::{all_consuming, map, opt, recognize};
use nom::multi::separated_list0;
use nom::sequence::{delimited, pair, preceded};
use nom::{IResult, Parser};

use crate::engine::exec::Choice;
use crate::engine::program::Program;

/// The largest repeat count of one step.
pub const COUNT_MAX: u64 = 1_000_000;

/// One parsed step, by thread name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedStep {
    pub thread: String,
    pub count: u32,
    pub fire: bool,
    /// Byte offset in the schedule string, for errors.
    pub offset: usize,
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
}

fn name(input: &str) -> IResult<&str, &str> {
    recognize(pair(
        take_while1(|c: char| c.is_ascii_lowercase() || c == '_'),
        take_while(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-'),
    ))
    .parse(input)
}

enum Suffix<'a> {
    Count(&'a str),
    Fire,
}

fn step(input: &str) -> IResult<&str, (&str, Option<Suffix<'_>>)> {
    pair(
        name,
        opt(alt((
            map(preceded(tag("*"), digit1), Suffix::Count),
            map(tag("!"), |_| Suffix::Fire),
        ))),
    )
    .parse(input)
}

/// Parses a schedule string into named steps.
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
    for token in tokens {
        let offset = token.as_ptr() as usize - text.as_ptr() as usize;
        let (_, (thread, suffix)) = step(token).map_err(|_| syntax_error(text))?;
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
        steps.push(NamedStep {
            thread: thread.to_string(),
            count,
            fire,
            offset,
        });
    }
    Ok(steps)
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
        match step(trimmed) {
            Ok((after, _)) => {
                let next = after.chars().next();
                match next {
                    None => return error_at(text, text.len(), "a thread name"),
                    Some(c) if c.is_whitespace() => rest = after,
                    Some(_) => {
                        let at = text.len() - after.len();
                        return error_at(text, at, "a space, `*COUNT` or `!` after the thread name");
                    }
                }
            }
            Err(_) => {
                if trimmed.starts_with('*') || trimmed.starts_with('!') {
                    return error_at(text, offset, "a thread name before `*` or `!`");
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

fn error_at(text: &str, offset: usize, expected: &str) -> ScheduleError {
    let found = match text[offset..].chars().next() {
        None => "the end of the schedule".to_string(),
        Some(c) => format!("`{}`", c.escape_default()),
    };
    // A count with too many digits fails as a syntax error in digit1's caller;
    // name the offending token instead.
    ScheduleError::Syntax {
        column: column_of(text, offset),
        expected: expected.to_string(),
        found,
    }
}

fn column_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].chars().count() + 1
}

/// Resolves named steps against a program's threads.
pub fn resolve(program: &Program, text: &str) -> Result<Vec<Choice>, ScheduleError> {
    let steps = parse(text)?;
    let mut choices = Vec::new();
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
        for _ in 0..step.count {
            choices.push(Choice {
                thread: thread as u8,
                fire: step.fire,
            });
        }
    }
    Ok(choices)
}

/// Prints choices as a schedule string (runs of one thread folded as `name*n`).
pub fn format(program: &Program, choices: &[Choice]) -> String {
    Display { program, choices }.to_string()
}

struct Display<'a> {
    program: &'a Program,
    choices: &'a [Choice],
}

impl fmt::Display for Display<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut i = 0;
        let mut first = true;
        while i < self.choices.len() {
            let choice = self.choices[i];
            let name = &self.program.threads[choice.thread as usize].name;
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            if choice.fire {
                write!(f, "{name}!")?;
                i += 1;
                continue;
            }
            let mut count = 1;
            while i + count < self.choices.len() && self.choices[i + count] == choice {
                count += 1;
            }
            if count == 1 {
                write!(f, "{name}")?;
            } else {
                write!(f, "{name}*{count}")?;
            }
            i += count;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "schedule column 13: expected a space, `*COUNT` or `!` after the thread name, found `*`"
        );
        let err = parse("user *3").unwrap_err().to_string();
        assert_eq!(
            err,
            "schedule column 6: expected a thread name before `*` or `!`, found `*`"
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
