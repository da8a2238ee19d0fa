//! The outcome matrix as a document: built from campaign or exploration
//! results, rendered as a terminal table, Markdown or JSON, and read back
//! from JSON (to merge shards or compare with an expectation).
//!
//! The JSON schema (`freezefuzz-matrix/1`) is documented in `docs/json.md`
//! and is stable: fields may be added, never renamed or removed.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::campaign::{CellResult, Witness};
use crate::engine::explore::Exploration;
use crate::engine::program::Program;
use crate::engine::schedule;
use crate::oracle::Outcome;

pub const SCHEMA: &str = "freezefuzz-matrix/1";

/// A whole matrix: how it was made and its cells, in row-major order
/// (policies in the order given, scenarios in the order given).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatrixReport {
    pub schema: String,
    /// `random` or `exhaustive`.
    pub mode: String,
    pub campaign: CampaignInfo,
    pub partial: bool,
    pub policies: Vec<String>,
    pub scenarios: Vec<String>,
    pub cells: Vec<CellReport>,
}

/// The parameters that, with the policy files, determine every number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CampaignInfo {
    /// Random mode: the campaign seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Random mode: runs per cell (of the whole campaign, not of one shard).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u64>,
    /// Random mode: `random` or `pct:D`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler: Option<String>,
    pub steps_max: u32,
    /// Random mode: `K/N`, the shards this document covers (`0/1` = all;
    /// a merge of every shard says `0/1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Exhaustive mode: the state limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_max: Option<u64>,
    /// Optional oracles turned on.
    pub oracles: Vec<String>,
    /// The files the policies and scenarios were read from (as given).
    pub files: Vec<String>,
    /// The `--faults` spec that added the `POLICY+faults` rows, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<String>,
    /// Random mode: witnesses reported as found (`--no-shrink`), not shrunk.
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_shrink: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// One cell: a policy × a scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellReport {
    pub policy: String,
    pub scenario: String,
    /// Random mode: runs per outcome. Exhaustive mode: the length of a
    /// shortest schedule reaching the outcome.
    pub outcomes: OutcomeMap,
    /// Random mode: runs made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u64>,
    /// Random mode: total steps over all runs, and the longest run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_total: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_longest: Option<u32>,
    /// Exhaustive mode: distinct states, transitions, deepest level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transitions: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// Exhaustive mode: the reductions used, one line each (then `states`
    /// and `transitions` count the reduced graph; see docs/exploration.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reductions: Vec<String>,
    /// Exhaustive mode with hash compaction: the bound on the probability
    /// that a state was omitted (n(n-1)/2^65); absent for exact searches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub omission_probability: Option<f64>,
    /// Exhaustive mode: the limit that stopped the search (then `outcomes`
    /// is a lower bound and `safe` proves nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Random mode: the outcomes an exhaustive search says are reachable,
    /// when that search was cheap enough to finish (see `--coverage-states`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reachable: Option<Vec<String>>,
    /// The first (random) or shortest (exhaustive) witness of each bad outcome.
    pub witnesses: BTreeMap<String, WitnessReport>,
    pub partial: bool,
}

impl CellReport {
    /// Reachable outcomes the campaign did not see (empty when unknown).
    pub fn missed(&self) -> Vec<&str> {
        let seen = self.outcomes.names();
        self.reachable
            .iter()
            .flatten()
            .map(String::as_str)
            .filter(|r| !seen.contains(r))
            .collect()
    }
}

/// A replayable run reaching an outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WitnessReport {
    /// Random mode: the run's index in the campaign and its seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<String>,
    pub steps: u32,
    /// Every outcome of that run, comma-separated.
    #[serde(default)]
    pub outcomes: String,
    pub schedule: String,
    /// The exact command that replays it.
    pub replay: String,
}

/// Outcome name → number, serialized in report order (safe, frozen-write,
/// deadlock, lost-write, user-error, dirty-at-freeze, step-limit).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutcomeMap(pub Vec<(Outcome, u64)>);

impl OutcomeMap {
    pub fn get(&self, outcome: Outcome) -> Option<u64> {
        self.0.iter().find(|(o, _)| *o == outcome).map(|(_, n)| *n)
    }

    /// The set of outcome names, for comparing cells.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(o, _)| o.name()).collect()
    }
}

impl Serialize for OutcomeMap {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (outcome, n) in &self.0 {
            map.serialize_entry(outcome.name(), n)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for OutcomeMap {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, u64>::deserialize(deserializer)?;
        let mut entries = Vec::new();
        for (name, n) in raw {
            let outcome = Outcome::from_name(&name)
                .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome `{name}`")))?;
            entries.push((outcome, n));
        }
        entries.sort_by_key(|(o, _)| *o);
        Ok(OutcomeMap(entries))
    }
}

/// How to spell the replay command: everything besides the cell and the
/// schedule that the run depends on, so that the printed command, run
/// verbatim in a shell, reproduces the run.
#[derive(Clone, Debug, Default)]
pub struct ReplayCommand {
    /// `-f FILE` arguments to repeat (empty when the default `policies/` was used).
    pub files: Vec<String>,
    /// The `--faults` spec that made the `POLICY+faults` rows, if any.
    pub faults: Option<String>,
    /// Optional oracles turned on (`--oracle NAME`).
    pub oracles: Vec<String>,
    /// The step budget, when not replay's default.
    pub steps_max: Option<u32>,
}

/// `replay`'s default step budget (the printed command leaves it out).
pub const REPLAY_STEPS_MAX_DEFAULT: u32 = 1000;

impl ReplayCommand {
    /// `freezefuzz replay POLICY SCENARIO --schedule '…'` with every flag the
    /// run depends on, each argument quoted for a POSIX shell.
    pub fn schedule(&self, policy: &str, scenario: &str, schedule: &str) -> String {
        let mut cmd = format!(
            "freezefuzz replay {} {} --schedule {}",
            shell_quote(policy),
            shell_quote(scenario),
            shell_quote_always(schedule)
        );
        self.push_flags(&mut cmd, policy);
        cmd
    }

    /// [`ReplayCommand::schedule`] that also checks the outcome (`--expect`).
    pub fn schedule_expecting(&self, policy: &str, scenario: &str, schedule: &str, outcome: &str) -> String {
        let mut cmd = self.schedule(policy, scenario, schedule);
        let _ = write!(cmd, " --expect {}", shell_quote(outcome));
        cmd
    }

    fn push_flags(&self, cmd: &mut String, policy: &str) {
        if let Some(steps_max) = self.steps_max.filter(|&s| s != REPLAY_STEPS_MAX_DEFAULT) {
            let _ = write!(cmd, " --max-steps {steps_max}");
        }
        for oracle in &self.oracles {
            let _ = write!(cmd, " --oracle {}", shell_quote(oracle));
        }
        for file in &self.files {
            let _ = write!(cmd, " -f {}", shell_quote(file));
        }
        if let Some(faults) = self.faults.as_deref().filter(|_| policy.ends_with("+faults")) {
            let _ = write!(cmd, " --faults {}", shell_quote_always(faults));
        }
    }
}

/// `text` as one word of a POSIX shell: bare when it holds only characters
/// no shell treats specially, single-quoted otherwise.
pub fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-+./:,=@%".contains(c));
    if plain {
        text.to_string()
    } else {
        shell_quote_always(text)
    }
}

/// `text` single-quoted for a POSIX shell (a `'` becomes `'\''`).
pub fn shell_quote_always(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

/// A cell of a random campaign.
pub fn cell_from_campaign(result: &CellResult, program: &Program, replay: &ReplayCommand) -> CellReport {
    let _ = program;
    let outcomes = OutcomeMap(
        Outcome::every()
            .filter(|o| result.counts[*o as usize] > 0)
            .map(|o| (o, result.counts[o as usize]))
            .collect(),
    );
    let mut witnesses = BTreeMap::new();
    for outcome in Outcome::every().filter(|o| o.is_bad()) {
        if let Some(w) = &result.witnesses[outcome as usize] {
            witnesses.insert(
                outcome.name().to_string(),
                witness_report(w, &result.policy, &result.scenario, replay),
            );
        }
    }
    CellReport {
        policy: result.policy.clone(),
        scenario: result.scenario.clone(),
        outcomes,
        runs: Some(result.runs),
        steps_total: Some(result.steps_total),
        steps_longest: Some(result.steps_longest),
        states: None,
        transitions: None,
        depth: None,
        reductions: Vec::new(),
        omission_probability: None,
        limit: None,
        reachable: None,
        witnesses,
        partial: result.partial,
    }
}

fn witness_report(w: &Witness, policy: &str, scenario: &str, replay: &ReplayCommand) -> WitnessReport {
    WitnessReport {
        run: Some(w.run_index),
        seed: Some(format!("{:#018x}", w.seed)),
        steps: w.steps,
        outcomes: w.outcomes.to_string(),
        schedule: w.schedule.clone(),
        replay: replay.schedule(policy, scenario, &w.schedule),
    }
}

/// Back from a report to a mergeable result (for `merge`).
pub fn cell_to_campaign(cell: &CellReport) -> Result<CellResult, String> {
    let mut result = CellResult::empty(&cell.policy, &cell.scenario);
    result.runs = cell.runs.ok_or("a random-mode cell must have `runs`")?;
    for (outcome, n) in &cell.outcomes.0 {
        result.counts[*outcome as usize] = *n;
    }
    result.steps_total = cell.steps_total.unwrap_or(0);
    result.steps_longest = cell.steps_longest.unwrap_or(0);
    result.partial = cell.partial;
    for (name, w) in &cell.witnesses {
        let outcome =
            Outcome::from_name(name).ok_or_else(|| format!("unknown outcome `{name}` in witnesses"))?;
        let seed = w
            .seed
            .as_deref()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| {
                format!(
                    "witness `{name}` of {}/{} has no valid seed",
                    cell.policy, cell.scenario
                )
            })?;
        result.witnesses[outcome as usize] = Some(Witness {
            run_index: w
                .run
                .ok_or_else(|| format!("witness `{name}` has no run index"))?,
            seed,
            steps: w.steps,
            outcomes: parse_outcomes(&w.outcomes)?,
            schedule: w.schedule.clone(),
        });
    }
    Ok(result)
}

fn parse_outcomes(text: &str) -> Result<crate::oracle::Outcomes, String> {
    let mut set = crate::oracle::Outcomes::default();
    for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        set.insert(Outcome::from_name(name).ok_or_else(|| format!("unknown outcome `{name}`"))?);
    }
    Ok(set)
}

/// A cell of an exhaustive exploration.
pub fn cell_from_exploration(result: &Exploration, program: &Program, replay: &ReplayCommand) -> CellReport {
    let outcomes = OutcomeMap(
        Outcome::every()
            .filter_map(|o| result.shortest[o as usize].as_ref().map(|s| (o, s.depth as u64)))
            .collect(),
    );
    let mut witnesses = BTreeMap::new();
    for outcome in Outcome::every().filter(|o| o.is_bad()) {
        if let Some(shortest) = &result.shortest[outcome as usize] {
            let text = schedule::format(program, &shortest.choices);
            witnesses.insert(
                outcome.name().to_string(),
                WitnessReport {
                    run: None,
                    seed: None,
                    steps: shortest.choices.len() as u32,
                    outcomes: String::new(),
                    replay: replay.schedule(&result.policy, &result.scenario, &text),
                    schedule: text,
                },
            );
        }
    }
    CellReport {
        policy: result.policy.clone(),
        scenario: result.scenario.clone(),
        outcomes,
        runs: None,
        steps_total: None,
        steps_longest: None,
        states: Some(result.states),
        transitions: Some(result.transitions),
        depth: Some(result.depth),
        reductions: result.reductions.describe(),
        omission_probability: result
            .reductions
            .hash_compaction
            .as_ref()
            .map(|c| c.omission_probability()),
        limit: result.limit.map(|l| l.to_string()),
        reachable: None,
        witnesses,
        partial: result.limit == Some(crate::engine::explore::LimitHit::Interrupted),
    }
}

/// One cell as text: `safe 1741 · frozen-write 259` (random) or
/// `safe@12 · frozen-write@17` (exhaustive: shortest schedule lengths).
pub fn cell_text(report: &MatrixReport, cell: &CellReport) -> String {
    let exhaustive = report.mode == "exhaustive";
    let mut parts: Vec<String> = cell
        .outcomes
        .0
        .iter()
        .map(|(o, n)| {
            if exhaustive {
                format!("{}@{n}", o.name())
            } else {
                format!("{} {n}", o.name())
            }
        })
        .collect();
    if parts.is_empty() {
        parts.push("no runs".into());
    }
    let mut text = parts.join(" · ");
    if cell.limit.is_some() {
        text.push_str(" (incomplete)");
    }
    if cell.partial {
        text.push_str(" (partial)");
    }
    text
}

/// The campaign in one line: mode, seed, runs, scheduler, budget, oracles.
pub fn header_line(report: &MatrixReport) -> String {
    let c = &report.campaign;
    let mut line = match report.mode.as_str() {
        "exhaustive" => format!(
            "exhaustive · step budget {} · state limit {}",
            c.steps_max,
            c.states_max.unwrap_or(0)
        ),
        _ => format!(
            "{} · seed {} · {} runs per cell · step budget {}",
            c.scheduler.as_deref().unwrap_or("random"),
            c.seed.unwrap_or(0),
            c.runs.unwrap_or(0),
            c.steps_max
        ),
    };
    if let Some(shard) = c.shard.as_deref().filter(|s| *s != "0/1") {
        let _ = write!(line, " · shard {shard}");
    }
    if !c.oracles.is_empty() {
        let _ = write!(line, " · oracles +{}", c.oracles.join(" +"));
    }
    if report.partial {
        line.push_str(" · PARTIAL (stopped early)");
    }
    line
}

/// One cell in Markdown: each bad outcome marked ❌ and bold, a cell with
/// none marked ✅ (so that a bad cell stands out without reading it).
fn markdown_cell(report: &MatrixReport, cell: &CellReport) -> String {
    let exhaustive = report.mode == "exhaustive";
    let mut parts: Vec<String> = cell
        .outcomes
        .0
        .iter()
        .map(|(o, n)| {
            let text = if exhaustive {
                format!("{}@{n}", o.name())
            } else {
                format!("{} {n}", o.name())
            };
            if o.is_bad() {
                format!("❌ **{text}**")
            } else {
                text
            }
        })
        .collect();
    if parts.is_empty() {
        parts.push("no runs".into());
    }
    let bad = cell.outcomes.0.iter().any(|(o, _)| o.is_bad());
    let mut text = parts.join(" · ");
    if !bad {
        text = format!("✅ {text}");
    }
    if cell.limit.is_some() {
        text.push_str(" ⚠️ (incomplete)");
    }
    if cell.partial {
        text.push_str(" ⚠️ (partial)");
    }
    text
}

/// What `@N` and the marks mean, under a table.
pub fn legend(report: &MatrixReport) -> &'static str {
    if report.mode == "exhaustive" {
        "`@N`: a shortest schedule reaching the outcome has N steps (its replay command is listed below)."
    } else {
        "Numbers: runs that ended with the outcome."
    }
}

/// A Markdown table for a pull-request comment, one row per policy: the
/// campaign line in view, bad outcomes marked, and the replay commands of
/// the witnesses folded in a `<details>` block.
pub fn markdown(report: &MatrixReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "**freezefuzz** · {}\n", header_line(report));
    let _ = writeln!(out, "| policy | {} |", report.scenarios.join(" | "));
    let _ = writeln!(out, "|---|{}", "---|".repeat(report.scenarios.len()));
    for policy in &report.policies {
        let cells: Vec<String> = report
            .scenarios
            .iter()
            .map(|scenario| {
                report
                    .cells
                    .iter()
                    .find(|c| &c.policy == policy && &c.scenario == scenario)
                    .map(|c| markdown_cell(report, c))
                    .unwrap_or_else(|| "—".into())
            })
            .collect();
        let _ = writeln!(out, "| {policy} | {} |", cells.join(" | "));
    }
    let _ = writeln!(out, "\n{}", legend(report));
    let replays: Vec<(&CellReport, &String, &WitnessReport)> = report
        .cells
        .iter()
        .flat_map(|c| c.witnesses.iter().map(move |(name, w)| (c, name, w)))
        .collect();
    if !replays.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Replay commands ({} bad outcomes)</summary>\n",
            replays.len()
        );
        let _ = writeln!(out, "```sh");
        for (cell, name, w) in replays {
            let _ = writeln!(
                out,
                "# {} × {}: {name} ({} steps)",
                cell.policy, cell.scenario, w.steps
            );
            let _ = writeln!(out, "{}", w.replay);
        }
        let _ = writeln!(out, "```\n\n</details>");
    }
    out
}

/// How to lay out the terminal table.
#[derive(Clone, Copy, Debug, Default)]
pub struct TableStyle {
    /// The width to fit in (`None`: any width). A grid wider than this is
    /// printed as a list, one line per cell.
    pub width: Option<usize>,
    /// ANSI colour: bad outcomes red, safe green.
    pub colour: bool,
}

const RED: &str = "\x1b[1;31m";
const GREEN: &str = "\x1b[32m";
const RESET: &str = "\x1b[0m";

/// Colours one `outcome@N` / `outcome N` item by its outcome.
fn paint(item: &str, colour: bool) -> String {
    if !colour {
        return item.to_string();
    }
    let name = item.split(['@', ' ']).next().unwrap_or("");
    match Outcome::from_name(name) {
        Some(o) if o.is_bad() => format!("{RED}{item}{RESET}"),
        Some(Outcome::Safe) => format!("{GREEN}{item}{RESET}"),
        _ => item.to_string(),
    }
}

/// The lines of one cell in the grid: one outcome per line, then the state
/// count (exhaustive) and any mark.
fn cell_lines(report: &MatrixReport, cell: Option<&CellReport>) -> Vec<String> {
    let Some(cell) = cell else {
        return vec!["—".into()];
    };
    let mut lines: Vec<String> = cell_text(report, cell).split(" · ").map(str::to_string).collect();
    if let Some(states) = cell.states {
        lines.push(format!("({states} states)"));
    }
    lines
}

/// A terminal table. Scenarios are columns as in the Markdown; cells wrap
/// one outcome per line. Too wide for `style.width`, it becomes a list.
pub fn table(report: &MatrixReport) -> String {
    table_styled(report, TableStyle::default())
}

/// [`table`] fitted to a width, in colour or not.
pub fn table_styled(report: &MatrixReport, style: TableStyle) -> String {
    let find = |policy: &str, scenario: &str| {
        report
            .cells
            .iter()
            .find(|c| c.policy == policy && c.scenario == scenario)
    };
    let mut header = vec!["policy".to_string()];
    header.extend(report.scenarios.iter().cloned());
    let table_rows: Vec<Vec<Vec<String>>> = std::iter::once(header.iter().map(|h| vec![h.clone()]).collect())
        .chain(report.policies.iter().map(|policy| {
            std::iter::once(vec![policy.clone()])
                .chain(
                    report
                        .scenarios
                        .iter()
                        .map(|s| cell_lines(report, find(policy, s))),
                )
                .collect()
        }))
        .collect();
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table_rows
                .iter()
                .flat_map(|row| row[c].iter().map(|l| l.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let total = widths.iter().sum::<usize>() + 3 * columns.saturating_sub(1);
    let mut out = String::new();
    let _ = writeln!(out, "{}", header_line(report));
    if style.width.is_some_and(|w| total > w) {
        list(&mut out, report, style.colour);
    } else {
        let rule: String = widths
            .iter()
            .map(|w| "─".repeat(*w))
            .collect::<Vec<_>>()
            .join("─┼─");
        for (r, row) in table_rows.iter().enumerate() {
            let height = row.iter().map(Vec::len).max().unwrap_or(1);
            for line in 0..height {
                let cells: Vec<String> = (0..columns)
                    .map(|c| {
                        let text = row[c].get(line).map(String::as_str).unwrap_or("");
                        let pad = " ".repeat(widths[c] - text.chars().count());
                        let text = if r > 0 && c > 0 {
                            paint(text, style.colour)
                        } else {
                            text.to_string()
                        };
                        format!("{text}{pad}")
                    })
                    .collect();
                let _ = writeln!(out, "{}", cells.join(" │ ").trim_end());
            }
            if r + 1 < table_rows.len() {
                let _ = writeln!(out, "{rule}");
            }
        }
    }
    if report.mode == "exhaustive" {
        let _ = writeln!(
            out,
            "@N: a shortest schedule reaching the outcome has N steps; states: distinct states explored"
        );
    }
    out
}

/// The narrow layout: a block per policy, a line per cell.
fn list(out: &mut String, report: &MatrixReport, colour: bool) {
    let width = report.scenarios.iter().map(String::len).max().unwrap_or(0);
    for policy in &report.policies {
        let _ = writeln!(out, "{policy}");
        for cell in report.cells.iter().filter(|c| &c.policy == policy) {
            let items: Vec<String> = cell_text(report, cell)
                .split(" · ")
                .map(|item| paint(item, colour))
                .collect();
            let states = cell.states.map(|n| format!("  ({n} states)")).unwrap_or_default();
            let _ = writeln!(out, "  {:<width$}  {}{states}", cell.scenario, items.join(" "));
        }
    }
}

/// Pretty JSON with a trailing newline.
pub fn json(report: &MatrixReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a matrix report always serializes");
    text.push('\n');
    text
}

/// For random campaigns whose cells were also explored: how many reachable
/// outcomes each cell found, e.g. `found 2 of 3 reachable outcomes (missed: deadlock)`.
pub fn coverage(report: &MatrixReport) -> String {
    let mut out = String::new();
    if report.partial {
        // An interrupted campaign found less than it could have; comparing
        // it with the reachable outcomes would only mislead.
        return out;
    }
    let known: Vec<&CellReport> = report.cells.iter().filter(|c| c.reachable.is_some()).collect();
    if known.is_empty() {
        return out;
    }
    let incomplete: Vec<&&CellReport> = known.iter().filter(|c| !c.missed().is_empty()).collect();
    if incomplete.is_empty() {
        if known.len() == 1 {
            let _ = writeln!(
                out,
                "coverage: the campaign found every reachable outcome of the cell"
            );
        } else {
            let _ = writeln!(
                out,
                "coverage: every one of the {} explored cells found all of its reachable outcomes",
                known.len()
            );
        }
    }
    for cell in incomplete {
        let reachable = cell.reachable.as_ref().map_or(0, Vec::len);
        let missed = cell.missed();
        let _ = writeln!(
            out,
            "coverage: {} × {} found {} of {reachable} reachable outcomes (missed: {})",
            cell.policy,
            cell.scenario,
            reachable - missed.len(),
            missed.join(", ")
        );
    }
    let unknown = report.cells.len() - known.len();
    if unknown > 0 {
        let _ = writeln!(
            out,
            "coverage: {unknown} cells too large to explore within the coverage state limit"
        );
    }
    out
}

/// Every bad outcome's first witness, one block per cell, for the terminal:
/// seed, schedule and the replay command.
pub fn findings(report: &MatrixReport) -> String {
    let mut out = String::new();
    for cell in &report.cells {
        for (name, w) in &cell.witnesses {
            let _ = writeln!(out, "{} × {}: {name}", cell.policy, cell.scenario);
            if let (Some(run), Some(seed)) = (w.run, &w.seed) {
                // The seed replays the run as drawn; the schedule below is
                // that run shrunk (unless --no-shrink), usually shorter.
                let _ = writeln!(
                    out,
                    "  found by run {run}; `replay --seed {seed}` replays that run as drawn"
                );
                let _ = writeln!(
                    out,
                    "  schedule: {} ({} steps: that run shrunk, unless --no-shrink)",
                    w.schedule, w.steps
                );
            } else if cell.reductions.iter().any(|line| {
                crate::engine::explore::WITNESS_NOT_PROVEN_SHORTEST
                    .iter()
                    .any(|prefix| line.starts_with(prefix))
            }) {
                // Partial-order reduction searches a subgraph; hash
                // compaction may have omitted a state on a shorter path.
                let _ = writeln!(
                    out,
                    "  schedule: {} (shortest found, {} steps; not proven shortest under the reduction above)",
                    w.schedule, w.steps
                );
            } else {
                let _ = writeln!(out, "  schedule: {} (shortest, {} steps)", w.schedule, w.steps);
            }
            let _ = writeln!(out, "  replay:   {}", w.replay);
        }
    }
    out
}
