//! The swarm report (`freezefuzz swarm`): per member what it covered and
//! found, a summary, and the best witness of each outcome with the command
//! that replays it; rendered as text or JSON (`freezefuzz-swarm/1`, in
//! docs/json.md), read back and merged across `--shard K/N` runs.
//!
//! A swarm is not exhaustive, and the report never says otherwise: the text
//! ends with a line saying that an outcome no member found may still be
//! reachable, and the JSON's `exhaustive` field is always false.
//!
//! Everything the summary says is computed from the members
//! ([`summarize`]), from integers only, so a merge of shards (which reads
//! the members back from JSON) gives the document the unsplit run gives.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::campaign::Shard;
use crate::engine::program::Program;
use crate::engine::schedule;
use crate::engine::swarm::{Swarm, SwarmConfig, shard_members};
use crate::oracle::Outcome;

use super::matrix::{ReplayCommand, shell_quote, shell_quote_always};

pub const SCHEMA: &str = "freezefuzz-swarm/1";

/// A swarm run (or a merge of shards of one).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmReport {
    pub schema: String,
    /// Always false: a swarm finds outcomes, it never proves one unreachable.
    pub exhaustive: bool,
    pub policy: String,
    pub scenario: String,
    pub config: SwarmInfo,
    /// `K/N`: the shards this document covers (`0/1`: every member; a merge
    /// of only some shards names them, as `0+2/4`).
    pub shard: String,
    /// Interrupted, or a merge of only some shards: members are missing.
    pub partial: bool,
    /// The reductions used (symmetry), one line each.
    pub reductions: Vec<String>,
    /// The members run, in index order.
    pub members: Vec<MemberReport>,
    pub summary: Summary,
}

/// The parameters that, with the policy files, determine every number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SwarmInfo {
    pub seed: u64,
    /// Members of the whole swarm (every shard's).
    pub members: u32,
    /// Most states one member stores (`--member-states`).
    pub member_states: u64,
    /// Bits of each member's bit array (`--max-memory` MiB × 2^23).
    pub bits: u64,
    pub hashes: u32,
    /// Members draw their depth bound from `ceil(max_depth / 2)..=max_depth`.
    pub max_depth: u32,
    pub steps_max: u32,
    pub symmetry: bool,
    pub shrink: bool,
    pub oracles: Vec<String>,
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<String>,
}

impl SwarmInfo {
    fn replay(&self) -> ReplayCommand {
        ReplayCommand {
            files: self.files.clone(),
            faults: self.faults.clone(),
            oracles: self.oracles.clone(),
            steps_max: Some(self.steps_max),
        }
    }
}

/// One member: what it searched and what it found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberReport {
    pub index: u32,
    /// Its seed (hex): hash seeds, depth bound and successor order.
    pub seed: String,
    pub depth_bound: u32,
    /// States it stored (not distinct across members).
    pub states: u64,
    pub transitions: u64,
    /// Bits set in its array; `fill` is `bits_set / bits`.
    pub bits_set: u64,
    pub fill: f64,
    /// States at its depth bound that could still move, not expanded.
    pub depth_cuts: u64,
    pub deepest: u32,
    /// The limit that stopped it (`None`: it ran out of states to expand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<String>,
    /// Interrupted: it did not finish.
    pub partial: bool,
    /// Outcome → its witness: the shortest path its search met (shrunk unless `--no-shrink`).
    pub witnesses: BTreeMap<String, MemberWitnessReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberWitnessReport {
    pub steps: u32,
    /// Its length as the search found it, before shrinking.
    pub found_steps: u32,
    /// Every outcome of its run.
    pub outcomes: String,
    pub schedule: String,
}

/// What the members did together; computed by [`summarize`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub members_run: u32,
    /// Summed over members (they overlap: not a count of distinct states).
    pub states: u64,
    pub transitions: u64,
    pub states_least: u64,
    pub states_most: u64,
    /// Members stopped by `--member-states`.
    pub members_at_state_limit: u32,
    /// States not expanded because of a member's depth bound, and members
    /// that cut any.
    pub depth_cuts: u64,
    pub members_cut: u32,
    /// The fullest array's fill ratio, and the least hash factor (bits per
    /// state stored, SPIN's figure: above 100 the arrays were roomy).
    pub fill_most: f64,
    pub hash_factor_least: f64,
    /// An upper estimate of the states wrongly taken as visited: each
    /// member's states × its final fill ratio ^ hashes, summed.
    pub omissions_estimate: f64,
    /// Every outcome some member found.
    pub outcomes: Vec<String>,
    /// Per bad outcome, the shortest witness (ties: the lowest member).
    pub witnesses: BTreeMap<String, WitnessSummary>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WitnessSummary {
    pub member: u32,
    pub seed: String,
    pub steps: u32,
    pub found_steps: u32,
    pub outcomes: String,
    pub schedule: String,
    /// The exact command that replays it.
    pub replay: String,
}

/// The report of a swarm run by `config` with the given parameters.
pub fn from_swarm(swarm: &Swarm, program: &Program, config: &SwarmConfig, info: SwarmInfo) -> SwarmReport {
    let members = swarm
        .members
        .iter()
        .map(|m| {
            let mut witnesses = BTreeMap::new();
            for outcome in Outcome::every() {
                if let Some(w) = &m.witnesses[outcome as usize] {
                    witnesses.insert(
                        outcome.name().to_string(),
                        MemberWitnessReport {
                            steps: w.choices.len() as u32,
                            found_steps: w.found_steps,
                            outcomes: w.outcomes.to_string(),
                            schedule: schedule::format(program, &w.choices),
                        },
                    );
                }
            }
            MemberReport {
                index: m.index,
                seed: format!("{:#018x}", m.seed),
                depth_bound: m.depth_bound,
                states: m.states,
                transitions: m.transitions,
                bits_set: m.bits_set,
                fill: 0.0,
                depth_cuts: m.depth_cuts,
                deepest: m.deepest,
                limit: m.limit.map(|l| l.to_string()),
                partial: m.limit == Some(crate::engine::swarm::MemberLimit::Interrupted),
                witnesses,
            }
        })
        .collect();
    let reductions = if swarm.symmetry.is_empty() {
        Vec::new()
    } else {
        let classes: Vec<String> = swarm.symmetry.iter().map(|c| c.join(" ~ ")).collect();
        vec![format!(
            "symmetry: {} interchangeable ({} permutations); members hash canonical states (--no-symmetry to hash states as they are)",
            classes.join("; "),
            swarm.symmetry_order
        )]
    };
    let mut report = SwarmReport {
        schema: SCHEMA.into(),
        exhaustive: false,
        policy: swarm.policy.clone(),
        scenario: swarm.scenario.clone(),
        config: info,
        shard: format!("{}/{}", config.shard.index, config.shard.count),
        partial: swarm.interrupted,
        reductions,
        members,
        summary: Summary::default(),
    };
    summarize(&mut report);
    report
}

/// Recomputes every derived figure (each member's fill, the summary) from
/// the members' counts and witnesses.
pub fn summarize(report: &mut SwarmReport) {
    let bits = report.config.bits.max(1) as f64;
    let hashes = report.config.hashes as i32;
    let mut s = Summary {
        members_run: report.members.len() as u32,
        states_least: u64::MAX,
        hash_factor_least: f64::INFINITY,
        ..Summary::default()
    };
    let mut outcomes = crate::oracle::Outcomes::default();
    for m in &mut report.members {
        m.fill = m.bits_set as f64 / bits;
        s.states = s.states.saturating_add(m.states);
        s.transitions = s.transitions.saturating_add(m.transitions);
        s.states_least = s.states_least.min(m.states);
        s.states_most = s.states_most.max(m.states);
        s.members_at_state_limit += m.limit.as_deref().is_some_and(|l| l.starts_with("state limit")) as u32;
        s.depth_cuts = s.depth_cuts.saturating_add(m.depth_cuts);
        s.members_cut += (m.depth_cuts > 0) as u32;
        s.fill_most = s.fill_most.max(m.fill);
        if m.states > 0 {
            s.hash_factor_least = s.hash_factor_least.min(bits / m.states as f64);
        }
        s.omissions_estimate += m.states as f64 * m.fill.powi(hashes);
        for (name, w) in &m.witnesses {
            let Some(outcome) = Outcome::from_name(name) else {
                continue;
            };
            outcomes.insert(outcome);
            if !outcome.is_bad() {
                continue;
            }
            let better = s
                .witnesses
                .get(name)
                .is_none_or(|best| (w.steps, m.index) < (best.steps, best.member));
            if better {
                s.witnesses.insert(
                    name.clone(),
                    WitnessSummary {
                        member: m.index,
                        seed: m.seed.clone(),
                        steps: w.steps,
                        found_steps: w.found_steps,
                        outcomes: w.outcomes.clone(),
                        replay: report.config.replay().schedule_expecting(
                            &report.policy,
                            &report.scenario,
                            &w.schedule,
                            name,
                        ),
                        schedule: w.schedule.clone(),
                    },
                );
            }
        }
    }
    if report.members.is_empty() {
        s.states_least = 0;
        s.hash_factor_least = 0.0;
    }
    if !s.hash_factor_least.is_finite() {
        // Only members that stored nothing: no figure to give.
        s.hash_factor_least = 0.0;
    }
    s.outcomes = outcomes.iter().map(|o| o.name().to_string()).collect();
    report.summary = s;
}

/// The command that runs member `index` alone (its shard of a split into
/// as many shards as members).
pub fn member_command(report: &SwarmReport, index: u32) -> String {
    let c = &report.config;
    let mut cmd = format!(
        "freezefuzz swarm {} {} --seed {} --members {} --member-states {} --max-memory {} --hashes {} --max-depth {} --max-steps {}",
        shell_quote(&report.policy),
        shell_quote(&report.scenario),
        c.seed,
        c.members,
        c.member_states,
        c.bits >> 23,
        c.hashes,
        c.max_depth,
        c.steps_max
    );
    if !c.symmetry {
        cmd.push_str(" --no-symmetry");
    }
    if !c.shrink {
        cmd.push_str(" --no-shrink");
    }
    for oracle in &c.oracles {
        let _ = write!(cmd, " --oracle {}", shell_quote(oracle));
    }
    for file in &c.files {
        let _ = write!(cmd, " -f {}", shell_quote(file));
    }
    if let Some(faults) = c.faults.as_deref().filter(|_| report.policy.ends_with("+faults")) {
        let _ = write!(cmd, " --faults {}", shell_quote_always(faults));
    }
    let _ = write!(cmd, " --shard {index}/{}", c.members);
    cmd
}

/// A ratio in a few significant digits.
fn ratio(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else if value >= 0.001 {
        format!("{value:.4}")
    } else {
        format!("{value:.2e}")
    }
}

/// The report for a terminal.
pub fn text(report: &SwarmReport) -> String {
    let c = &report.config;
    let s = &report.summary;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} × {}: swarm search (NOT exhaustive), seed {}, {} members{}",
        report.policy,
        report.scenario,
        c.seed,
        c.members,
        if report.shard == "0/1" {
            String::new()
        } else {
            format!(", shard {}", report.shard)
        }
    );
    let _ = writeln!(
        out,
        "each member: depth-first search with a bit array of {} bits ({} MiB) and {} hashes per state, at most {} states, depth bound drawn from {}..={}, step budget {}",
        c.bits,
        c.bits >> 23,
        c.hashes,
        c.member_states,
        c.max_depth.div_ceil(2),
        c.max_depth,
        c.steps_max
    );
    for line in &report.reductions {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "{:>6}  {:<18}  {:>5}  {:>10}  {:>11}  {:>9}  {:>10}  {:>7}  {:<11}  found",
        "member", "seed", "bound", "states", "transitions", "fill", "depth cuts", "deepest", "ended"
    );
    for m in &report.members {
        let found: Vec<&str> = m.witnesses.keys().map(String::as_str).collect();
        let found = sorted_outcomes(&found).join(", ");
        let ended = if m.partial {
            "interrupted"
        } else if m.limit.is_some() {
            "state limit"
        } else {
            "searched"
        };
        let _ = writeln!(
            out,
            "{:>6}  {:<18}  {:>5}  {:>10}  {:>11}  {:>9}  {:>10}  {:>7}  {:<11}  {}",
            m.index,
            m.seed,
            m.depth_bound,
            m.states,
            m.transitions,
            ratio(m.fill),
            m.depth_cuts,
            m.deepest,
            ended,
            found
        );
    }
    let _ = writeln!(
        out,
        "total: {} members run, {} states stored (summed; members overlap), {} transitions; per member {}–{} states, {} stopped by --member-states",
        s.members_run, s.states, s.transitions, s.states_least, s.states_most, s.members_at_state_limit
    );
    let _ = writeln!(
        out,
        "depth bound: {} states not expanded, in {} of {} members",
        s.depth_cuts, s.members_cut, s.members_run
    );
    let _ = writeln!(
        out,
        "bit arrays: fill at most {}, hash factor at least {:.1}; expected states omitted by hash collisions: at most about {} (states × fill^{} per member)",
        ratio(s.fill_most),
        s.hash_factor_least,
        ratio(s.omissions_estimate),
        c.hashes
    );
    if report.partial {
        let finished = report.members.iter().filter(|m| !m.partial).count();
        let _ = writeln!(
            out,
            "PARTIAL: {finished} members finished, of the {} this swarm has{}",
            c.members,
            if report.members.iter().any(|m| m.partial) {
                " (interrupted)"
            } else {
                " (a merge of only some shards)"
            }
        );
    }
    let outcomes: Vec<&str> = s.outcomes.iter().map(String::as_str).collect();
    let _ = writeln!(
        out,
        "outcomes found: {}",
        if outcomes.is_empty() {
            "none".to_string()
        } else {
            outcomes.join(", ")
        }
    );
    for (name, w) in sorted_witnesses(&s.witnesses) {
        let _ = writeln!(out, "{} × {}: {name}", report.policy, report.scenario);
        let _ = writeln!(
            out,
            "  found by member {} (seed {}) in {} steps{}",
            w.member,
            w.seed,
            w.found_steps,
            if c.shrink && w.steps != w.found_steps {
                format!(", shrunk to {}", w.steps)
            } else {
                String::new()
            }
        );
        let _ = writeln!(out, "  schedule: {} ({} steps)", w.schedule, w.steps);
        let _ = writeln!(out, "  replay:   {}", w.replay);
        let _ = writeln!(out, "  member:   {}", member_command(report, w.member));
    }
    let _ = writeln!(
        out,
        "NOT A PROOF: a swarm samples the state graph; an outcome no member found may still be reachable (`safe` above proves nothing). `freezefuzz explore` gives exact verdicts where memory allows."
    );
    out
}

fn sorted_outcomes<'a>(names: &[&'a str]) -> Vec<&'a str> {
    let mut named: Vec<(Option<Outcome>, &str)> = names.iter().map(|n| (Outcome::from_name(n), *n)).collect();
    named.sort();
    named.into_iter().map(|(_, n)| n).collect()
}

fn sorted_witnesses(map: &BTreeMap<String, WitnessSummary>) -> Vec<(&String, &WitnessSummary)> {
    let mut entries: Vec<(&String, &WitnessSummary)> = map.iter().collect();
    entries.sort_by_key(|(name, _)| Outcome::from_name(name));
    entries
}

pub fn json(report: &SwarmReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a swarm report always serializes");
    text.push('\n');
    text
}

/// Merges the reports of shards of one swarm (each named by where it came
/// from, for the errors) into the report the unsplit swarm gives. The order
/// of the shards does not matter; a set that is not the whole split merges
/// into a report marked partial.
pub fn merge(reports: &[(String, SwarmReport)]) -> Result<SwarmReport, String> {
    let (first_path, first) = reports.first().ok_or("nothing to merge")?;
    let mut shards_seen: Vec<u32> = Vec::new();
    let mut count = None;
    let mut members: Vec<MemberReport> = Vec::new();
    for (path, r) in reports {
        if r.schema != SCHEMA {
            return Err(format!("{path}: schema `{}` is not `{SCHEMA}`", r.schema));
        }
        let differs: Vec<&str> = [
            (r.policy != first.policy, "policy"),
            (r.scenario != first.scenario, "scenario"),
            (
                r.config != first.config,
                "swarm parameters (seed, members, limits, oracles, files)",
            ),
            (r.reductions != first.reductions, "reductions"),
        ]
        .into_iter()
        .filter_map(|(d, what)| d.then_some(what))
        .collect();
        if !differs.is_empty() {
            return Err(format!(
                "{path} is from a different swarm than {first_path}: {} differ",
                differs.join(", ")
            ));
        }
        let parsed: Shard = r.shard.parse().map_err(|e| format!("{path}: {e}"))?;
        if *count.get_or_insert(parsed.count) != parsed.count {
            return Err(format!("{path}: shard {} is of a different split", r.shard));
        }
        if shards_seen.contains(&parsed.index) {
            return Err(format!("{path}: shard {} given twice", r.shard));
        }
        shards_seen.push(parsed.index);
        let expected: Vec<u32> = shard_members(r.config.members, parsed).collect();
        for m in &r.members {
            if !expected.contains(&m.index) {
                return Err(format!(
                    "{path}: member {} is not one of shard {}'s",
                    m.index, r.shard
                ));
            }
        }
        if !r.partial && r.members.len() != expected.len() {
            return Err(format!(
                "{path}: {} members, but shard {} has {}",
                r.members.len(),
                r.shard,
                expected.len()
            ));
        }
        members.extend(r.members.iter().cloned());
    }
    members.sort_by_key(|m| m.index);
    if let Some(w) = members.windows(2).find(|w| w[0].index == w[1].index) {
        return Err(format!("member {} given twice", w[0].index));
    }
    let count = count.unwrap_or(1);
    let complete = shards_seen.len() as u32 == count;
    let mut merged = first.clone();
    merged.members = members;
    merged.shard = if complete {
        "0/1".to_string()
    } else {
        shards_seen.sort();
        format!(
            "{}/{count}",
            shards_seen
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join("+")
        )
    };
    merged.partial = !complete || reports.iter().any(|(_, r)| r.partial);
    summarize(&mut merged);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shard `index` of `count` of a 4-member swarm, its members' states
    /// being 10 × index + 1.
    fn shard(index: u32, count: u32) -> SwarmReport {
        let members = shard_members(4, Shard { index, count })
            .map(|i| MemberReport {
                index: i,
                seed: format!("{i:#018x}"),
                depth_bound: 10,
                states: 10 * i as u64 + 1,
                transitions: 20,
                bits_set: 3,
                fill: 0.0,
                depth_cuts: i as u64 % 2,
                deepest: 5,
                limit: None,
                partial: false,
                witnesses: BTreeMap::from([(
                    "frozen-write".to_string(),
                    MemberWitnessReport {
                        steps: 9 - i % 2,
                        found_steps: 12,
                        outcomes: "frozen-write".into(),
                        schedule: format!("user*{}", 9 - i % 2),
                    },
                )]),
            })
            .collect();
        let mut report = SwarmReport {
            schema: SCHEMA.into(),
            exhaustive: false,
            policy: "p".into(),
            scenario: "s".into(),
            config: SwarmInfo {
                seed: 1,
                members: 4,
                member_states: 100,
                bits: 1 << 23,
                hashes: 3,
                max_depth: 10,
                steps_max: 1000,
                symmetry: true,
                shrink: true,
                oracles: vec![],
                files: vec![],
                faults: None,
            },
            shard: format!("{index}/{count}"),
            partial: false,
            reductions: vec![],
            members,
            summary: Summary::default(),
        };
        summarize(&mut report);
        report
    }

    fn named(reports: Vec<SwarmReport>) -> Vec<(String, SwarmReport)> {
        reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("s{i}.json"), r))
            .collect()
    }

    #[test]
    fn a_merge_of_every_shard_is_the_whole_swarm() {
        let merged = merge(&named(vec![shard(1, 2), shard(0, 2)])).expect("merges");
        assert_eq!(merged, shard(0, 1));
        assert_eq!(merged.summary.states, 1 + 11 + 21 + 31);
        assert_eq!(merged.summary.members_cut, 2);
        // The shortest witness, ties to the lowest member.
        assert_eq!(merged.summary.witnesses["frozen-write"].member, 1);
    }

    #[test]
    fn bad_sets_of_shards_are_refused() {
        let mut moved = shard(1, 2);
        moved.members[0].index = 2;
        assert!(
            merge(&named(vec![shard(0, 2), moved])).is_err(),
            "a member outside its shard"
        );
        let mut short = shard(1, 2);
        short.members.pop();
        assert!(
            merge(&named(vec![shard(0, 2), short])).is_err(),
            "a missing member"
        );
        assert!(
            merge(&named(vec![shard(0, 2), shard(0, 2)])).is_err(),
            "a shard twice"
        );
        assert!(
            merge(&named(vec![shard(0, 2), shard(1, 3)])).is_err(),
            "another split"
        );
        let mut other = shard(1, 2);
        other.config.hashes = 4;
        let error = merge(&named(vec![shard(0, 2), other])).expect_err("another swarm");
        assert!(error.contains("different swarm"), "{error}");
        let partial = merge(&named(vec![shard(2, 4)])).expect("merges");
        assert!(partial.partial);
        assert_eq!(partial.shard, "2/4");
    }
}
