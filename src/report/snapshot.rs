//! A policy's exhaustive verdicts as an insta snapshot (`.snap`), for
//! reviewing a policy change in any repository with `cargo insta review` (or
//! `freezefuzz snapshot --accept`), and in this crate's own suite.
//!
//! The file is insta's format: a YAML header between `---` lines (`source:`,
//! `description:`, `expression:`), then the body. The body is one line per
//! cell and one per bad outcome's shortest schedule: nothing that depends on
//! the machine, the number of workers or the time, so a change in the body
//! is a change in what the policy does.

use std::fmt::Write as _;

use super::matrix::{CellReport, MatrixReport};

/// The body of one policy's snapshot: each cell's outcomes with the length
/// of a shortest schedule reaching it (`safe@28`), then each bad outcome's
/// shortest schedule.
pub fn policy_body(report: &MatrixReport, policy: &str) -> String {
    let cells: Vec<&CellReport> = report.cells.iter().filter(|c| c.policy == policy).collect();
    let width = cells.iter().map(|c| c.scenario.len()).max().unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "policy {policy}");
    let _ = writeln!(
        out,
        "# @N: a shortest schedule reaching the outcome has N steps; bad outcomes are marked !"
    );
    for cell in &cells {
        let outcomes: Vec<String> = cell
            .outcomes
            .0
            .iter()
            .map(|(o, n)| format!("{}{}@{n}", if o.is_bad() { "!" } else { "" }, o.name()))
            .collect();
        let mut line = format!("{:<width$}  {}", cell.scenario, outcomes.join(" "));
        if let Some(limit) = &cell.limit {
            let _ = write!(line, "  (incomplete: {limit})");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    for cell in &cells {
        for (outcome, witness) in &cell.witnesses {
            let _ = writeln!(out, "{} {outcome}: {}", cell.scenario, witness.schedule);
        }
    }
    out
}

/// A YAML scalar as insta writes it: plain when it can be, else
/// double-quoted (JSON's string syntax, a subset of YAML's), so that a file
/// accepted by `cargo insta` is byte for byte the one we write.
fn quoted(text: &str) -> String {
    let needs_quotes = text.is_empty()
        || text.starts_with(' ')
        || text.ends_with(' ')
        || text.starts_with(['&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@', '.'])
        || text.starts_with("0x")
        || text.contains(|c: char| {
            matches!(
                c,
                ':' | '{' | '}' | '[' | ']' | ',' | '#' | '`' | '"' | '\'' | '\\'
            ) || c.is_control()
        })
        || [
            "yes", "Yes", "YES", "no", "No", "NO", "True", "TRUE", "true", "False", "FALSE", "false", "on",
            "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
        ]
        .contains(&text)
        || text.parse::<f64>().is_ok();
    if needs_quotes {
        serde_json::to_string(text).expect("a string always serializes")
    } else {
        text.to_string()
    }
}

/// The whole `.snap` file: insta's header, then the body.
pub fn file(source: &str, description: &str, expression: &str, body: &str) -> String {
    let mut out = String::new();
    out.push_str("---\n");
    let _ = writeln!(out, "source: {}", quoted(source));
    let _ = writeln!(out, "description: {}", quoted(description));
    let _ = writeln!(out, "expression: {}", quoted(expression));
    out.push_str("---\n");
    out.push_str(body);
    if !body.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// The body of a `.snap` file (everything after the header), or `None` if
/// the text has no insta header.
pub fn body(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("---\n")?;
    let end = rest.find("\n---\n")?;
    Some(&rest[end + 5..])
}

/// A line diff of two bodies, only the lines that changed, `-` for the old
/// and `+` for the new, in body order (a longest common subsequence; the
/// bodies are a few dozen lines).
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j] = length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            let _ = writeln!(out, "- {}", a[i]);
            i += 1;
        } else {
            let _ = writeln!(out, "+ {}", b[j]);
            j += 1;
        }
    }
    out
}

/// The key of a body line: the scenario of a cell line, `scenario outcome`
/// of a schedule line, the line itself otherwise.
fn key_of(line: &str) -> (&str, &str) {
    if let Some((key, rest)) = line.split_once(": ")
        && !line.starts_with('#')
    {
        return (key, rest);
    }
    match line.split_once("  ") {
        Some((key, rest)) if !line.starts_with('#') => (key, rest.trim_start()),
        _ => (line, ""),
    }
}

/// The outcome names of a cell line's value (`safe@28 !frozen-write@22`).
fn outcome_names(value: &str) -> Vec<&str> {
    value
        .split_whitespace()
        .filter_map(|w| w.split_once('@').map(|(name, _)| name.trim_start_matches('!')))
        .collect()
}

/// The changed lines of two bodies, one per cell or schedule:
/// `case1-racing  safe@23 !frozen-write@21  →  safe@24  (removed: frozen-write)`.
pub fn changes(old: &str, new: &str) -> String {
    let old_lines: Vec<(&str, &str)> = old.lines().map(key_of).collect();
    let new_lines: Vec<(&str, &str)> = new.lines().map(key_of).collect();
    let width = old_lines
        .iter()
        .chain(&new_lines)
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let mut show = |key: &str, before: Option<&str>, after: Option<&str>| {
        let text = match (before, after) {
            (Some(b), Some(a)) => format!("{b}  →  {a}"),
            (Some(b), None) => format!("{b}  →  (gone)"),
            (None, Some(a)) => format!("(new)  →  {a}"),
            (None, None) => return,
        };
        let mut line = format!("{key:<width$}  {text}");
        let (was, now) = (
            outcome_names(before.unwrap_or("")),
            outcome_names(after.unwrap_or("")),
        );
        let added: Vec<&str> = now.iter().copied().filter(|o| !was.contains(o)).collect();
        let removed: Vec<&str> = was.iter().copied().filter(|o| !now.contains(o)).collect();
        if !key.contains(' ') && (!added.is_empty() || !removed.is_empty()) {
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("added: {}", added.join(", ")));
            }
            if !removed.is_empty() {
                parts.push(format!("removed: {}", removed.join(", ")));
            }
            let _ = write!(line, "  ({})", parts.join("; "));
        }
        let _ = writeln!(out, "{line}");
    };
    for (key, value) in &new_lines {
        let before = old_lines.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        if before != Some(*value) {
            show(key, before, Some(value));
        }
    }
    for (key, value) in &old_lines {
        if !new_lines.iter().any(|(k, _)| k == key) {
            show(key, Some(value), None);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_what_follows_the_header() {
        let text = file("mine.ff", "regenerate", "freezefuzz snapshot", "line one\n");
        assert_eq!(body(&text), Some("line one\n"));
        assert_eq!(body("no header"), None);
    }

    #[test]
    fn changes_name_each_changed_cell_and_its_outcomes() {
        let old = "policy p\ncase1  safe@28 !frozen-write@22\ncase2  safe@3\ncase1 frozen-write: user*2\n";
        let new = "policy p\ncase1  safe@29\ncase2  safe@3\n";
        assert_eq!(
            changes(old, new),
            "case1               safe@28 !frozen-write@22  →  safe@29  (removed: frozen-write)\n\
             case1 frozen-write  user*2  →  (gone)\n"
        );
    }

    #[test]
    fn a_line_diff_shows_only_changed_lines() {
        let diff = line_diff("a\nb\nc\n", "a\nB\nc\nd\n");
        assert_eq!(diff, "- b\n+ B\n+ d\n");
    }
}
