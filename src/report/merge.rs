//! Merging the JSON reports of a sharded campaign (`matrix --shard K/N`)
//! into the report the unsplit campaign gives.
//!
//! Every shard must come from the same campaign: mode, seed, runs,
//! scheduler, step budget, oracles, `--no-shrink`, the `-f` files, the
//! `--faults` spec, the policies and the scenarios. Cells are paired by
//! (policy, scenario) name, never by position, and each report must hold
//! exactly its policies × scenarios. Counts are added with overflow checks.
//! The result does not depend on the order of the shards. A set of shards
//! that is not the whole split still merges, but the report is marked
//! partial and its `shard` names the shards it holds (`0+2/4`).

use crate::engine::campaign::{CellResult, Shard};
use crate::engine::program::Program;
use crate::oracle::OUTCOMES_MAX;

use super::matrix::{CellReport, MatrixReport, ReplayCommand, cell_from_campaign, cell_to_campaign};

/// Merges shard reports of one campaign, each named by where it came from
/// (for the errors), into the report an unsplit run gives.
pub fn merge(reports: &[(String, MatrixReport)]) -> Result<MatrixReport, String> {
    let (first_path, first) = reports.first().ok_or("nothing to merge")?;
    if first.mode != "random" {
        return Err(format!("{first_path}: only random-mode matrices are sharded"));
    }
    let mut shards_seen = Vec::new();
    let mut count = None;
    for (path, r) in reports {
        let differences = differences(first, r);
        if !differences.is_empty() {
            return Err(format!(
                "{path} is from a different campaign than {first_path}: {} differ",
                differences.join(", ")
            ));
        }
        let shard = r.campaign.shard.as_deref().unwrap_or("0/1");
        let parsed: Shard = shard.parse().map_err(|e| format!("{path}: {e}"))?;
        if *count.get_or_insert(parsed.count) != parsed.count {
            return Err(format!("{path}: shard {shard} is of a different split"));
        }
        if shards_seen.contains(&parsed.index) {
            return Err(format!("{path}: shard {shard} given twice"));
        }
        shards_seen.push(parsed.index);
    }
    let count = count.unwrap_or(1);
    // The cells, in the order of the policies × scenarios.
    let names: Vec<(&String, &String)> = first
        .policies
        .iter()
        .flat_map(|p| first.scenarios.iter().map(move |s| (p, s)))
        .collect();
    let mut cells: Vec<CellResult> = names.iter().map(|(p, s)| CellResult::empty(p, s)).collect();
    let mut reachable: Vec<Option<Vec<String>>> = vec![None; names.len()];
    for (path, r) in reports {
        if r.cells.len() != names.len() {
            return Err(format!(
                "{path}: {} cells, but {} policies × {} scenarios make {}",
                r.cells.len(),
                r.policies.len(),
                r.scenarios.len(),
                names.len()
            ));
        }
        let mut seen = vec![false; names.len()];
        for cell in &r.cells {
            let i = names
                .iter()
                .position(|(p, s)| **p == cell.policy && **s == cell.scenario)
                .ok_or_else(|| {
                    format!(
                        "{path}: cell {} × {} is not one of its policies × scenarios",
                        cell.policy, cell.scenario
                    )
                })?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(format!(
                    "{path}: cell {} × {} given twice",
                    cell.policy, cell.scenario
                ));
            }
            let part = cell_to_campaign(cell).map_err(|e| format!("{path}: {e}"))?;
            checked_merge(&mut cells[i], &part)
                .map_err(|e| format!("{path}: cell {} × {}: {e}", cell.policy, cell.scenario))?;
            merge_reachable(&mut reachable[i], cell).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    let complete = shards_seen.len() as u32 == count;
    let mut merged = first.clone();
    merged.cells.clear();
    merged.campaign.shard = Some(if complete {
        "0/1".to_string()
    } else {
        let mut seen = shards_seen.clone();
        seen.sort();
        format!(
            "{}/{count}",
            seen.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("+")
        )
    });
    merged.partial = !complete || reports.iter().any(|(_, r)| r.partial);
    let replay = ReplayCommand {
        files: first.campaign.files.clone(),
        faults: first.campaign.faults.clone(),
        oracles: first.campaign.oracles.clone(),
        steps_max: Some(first.campaign.steps_max),
    };
    for (cell, reachable) in cells.iter().zip(reachable) {
        let mut report_cell = cell_from_campaign(cell, &Program::empty(), &replay);
        report_cell.reachable = reachable;
        merged.cells.push(report_cell);
    }
    Ok(merged)
}

/// What differs between two reports' campaigns (empty: the same campaign).
fn differences(a: &MatrixReport, b: &MatrixReport) -> Vec<&'static str> {
    let (x, y) = (&a.campaign, &b.campaign);
    [
        (a.mode != b.mode, "mode"),
        (x.seed != y.seed, "seed"),
        (x.runs != y.runs, "runs"),
        (x.scheduler != y.scheduler, "scheduler"),
        (x.steps_max != y.steps_max, "step budget"),
        (x.oracles != y.oracles, "oracles"),
        (x.no_shrink != y.no_shrink, "--no-shrink"),
        (x.files != y.files, "-f files"),
        (x.faults != y.faults, "--faults"),
        (a.policies != b.policies, "policies"),
        (a.scenarios != b.scenarios, "scenarios"),
    ]
    .into_iter()
    .filter_map(|(differs, what)| differs.then_some(what))
    .collect()
}

/// [`CellResult::merge`], refusing sums that do not fit in 64 bits.
fn checked_merge(total: &mut CellResult, part: &CellResult) -> Result<(), String> {
    let overflow = |what: &str| format!("the {what} overflow 64 bits");
    total
        .runs
        .checked_add(part.runs)
        .ok_or_else(|| overflow("runs"))?;
    total
        .steps_total
        .checked_add(part.steps_total)
        .ok_or_else(|| overflow("total steps"))?;
    for i in 0..OUTCOMES_MAX {
        total.counts[i]
            .checked_add(part.counts[i])
            .ok_or_else(|| overflow("outcome counts"))?;
    }
    total.merge(part);
    Ok(())
}

/// Every shard explores the same cell for coverage; one that did not
/// (`--coverage-states 0`, or a search that did not finish) says nothing.
fn merge_reachable(into: &mut Option<Vec<String>>, cell: &CellReport) -> Result<(), String> {
    match (&*into, &cell.reachable) {
        (_, None) => Ok(()),
        (None, Some(r)) => {
            *into = Some(r.clone());
            Ok(())
        }
        (Some(a), Some(b)) if a == b => Ok(()),
        (Some(a), Some(b)) => Err(format!(
            "cell {} × {}: the shards disagree on the reachable outcomes ({} and {})",
            cell.policy,
            cell.scenario,
            a.join(", "),
            b.join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A shard of a 2-cell campaign (one policy × two scenarios).
    fn shard(index: u32, count: u32, runs: [u64; 2]) -> MatrixReport {
        let cell = |scenario: &str, runs: u64| {
            serde_json::json!({
                "policy": "p", "scenario": scenario,
                "outcomes": { "safe": runs },
                "runs": runs, "steps_total": runs, "steps_longest": 10,
                "reachable": ["safe"],
                "witnesses": {}, "partial": false
            })
        };
        serde_json::from_value(serde_json::json!({
            "schema": "freezefuzz-matrix/1", "mode": "random",
            "campaign": { "seed": 1, "runs": 4096, "scheduler": "random", "steps_max": 1000,
                          "shard": format!("{index}/{count}"), "oracles": [], "files": [] },
            "partial": false, "policies": ["p"], "scenarios": ["s1", "s2"],
            "cells": [cell("s1", runs[0]), cell("s2", runs[1])]
        }))
        .expect("a valid report")
    }

    fn named(reports: Vec<MatrixReport>) -> Vec<(String, MatrixReport)> {
        reports
            .into_iter()
            .enumerate()
            .map(|(i, r)| (format!("shard{i}.json"), r))
            .collect()
    }

    #[test]
    fn cells_are_paired_by_name_not_position() {
        let a = shard(0, 2, [1, 2]);
        let mut b = shard(1, 2, [10, 20]);
        b.cells.swap(0, 1);
        let merged = merge(&named(vec![a, b])).expect("merges");
        assert_eq!(merged.cells[0].runs, Some(11));
        assert_eq!(merged.cells[1].runs, Some(22));
        assert!(!merged.partial);
        assert_eq!(merged.campaign.shard.as_deref(), Some("0/1"));
    }

    #[test]
    fn the_result_does_not_depend_on_the_order_of_the_shards() {
        let a = shard(0, 2, [1, 2]);
        let mut b = shard(1, 2, [10, 20]);
        b.cells[0].reachable = None;
        let ab = merge(&named(vec![a.clone(), b.clone()])).expect("merges");
        let ba = merge(&named(vec![b, a])).expect("merges");
        assert_eq!(ab, ba);
        assert_eq!(ab.cells[0].reachable, Some(vec!["safe".to_string()]));
    }

    #[test]
    fn shards_of_different_campaigns_are_refused() {
        type Edit = fn(&mut MatrixReport);
        let edits: Vec<(&str, Edit)> = vec![
            ("--faults", |r| r.campaign.faults = Some("io-error:0.1:1".into())),
            ("-f files", |r| r.campaign.files = vec!["other.ff".into()]),
            ("--no-shrink", |r| r.campaign.no_shrink = true),
            ("seed", |r| r.campaign.seed = Some(2)),
            ("oracles", |r| r.campaign.oracles = vec!["dirty-at-freeze".into()]),
        ];
        for (what, edit) in edits {
            let mut b = shard(1, 2, [1, 1]);
            edit(&mut b);
            let error = merge(&named(vec![shard(0, 2, [1, 1]), b])).expect_err(what);
            assert!(error.contains(what), "{what}: {error}");
        }
    }

    #[test]
    fn missing_foreign_or_repeated_cells_are_refused() {
        let mut b = shard(1, 2, [1, 1]);
        b.cells.pop();
        assert!(merge(&named(vec![shard(0, 2, [1, 1]), b])).is_err());
        let mut b = shard(1, 2, [1, 1]);
        b.cells[1].scenario = "s3".into();
        assert!(merge(&named(vec![shard(0, 2, [1, 1]), b])).is_err());
        let mut b = shard(1, 2, [1, 1]);
        b.cells[1] = b.cells[0].clone();
        assert!(merge(&named(vec![shard(0, 2, [1, 1]), b])).is_err());
    }

    #[test]
    fn counts_that_overflow_are_refused() {
        let a = shard(0, 2, [u64::MAX / 2 + 1, 1]);
        let b = shard(1, 2, [u64::MAX / 2 + 1, 1]);
        let error = merge(&named(vec![a, b])).expect_err("overflows");
        assert!(error.contains("overflow"), "{error}");
    }

    #[test]
    fn a_partial_set_of_shards_is_marked_partial() {
        let merged = merge(&named(vec![shard(0, 4, [1, 1]), shard(2, 4, [1, 1])])).expect("merges");
        assert!(merged.partial);
        assert_eq!(merged.campaign.shard.as_deref(), Some("0+2/4"));
    }

    #[test]
    fn disagreeing_reachable_sets_are_refused() {
        let mut b = shard(1, 2, [1, 1]);
        b.cells[0].reachable = Some(vec!["safe".into(), "deadlock".into()]);
        assert!(merge(&named(vec![shard(0, 2, [1, 1]), b])).is_err());
    }
}
