//! Merging the JSON reports of a sharded campaign (`matrix --shard K/N`)
//! into the report the unsplit campaign gives.

use crate::engine::campaign::{CellResult, Shard};
use crate::engine::program::Program;

use super::matrix::{MatrixReport, ReplayCommand, cell_from_campaign, cell_to_campaign};

/// Merges shard reports of one campaign, each named by where it came from
/// (for the errors), into the report an unsplit run gives.
pub fn merge(reports: &[(String, MatrixReport)]) -> Result<MatrixReport, String> {
    let (first_path, first) = reports.first().ok_or("nothing to merge")?;
    if first.mode != "random" {
        return Err(format!("{}: only random-mode matrices are sharded", first_path));
    }
    let mut shards_seen = Vec::new();
    let mut count = None;
    for (path, r) in reports {
        let same = r.mode == first.mode
            && r.campaign.seed == first.campaign.seed
            && r.campaign.runs == first.campaign.runs
            && r.campaign.scheduler == first.campaign.scheduler
            && r.campaign.steps_max == first.campaign.steps_max
            && r.campaign.oracles == first.campaign.oracles
            && r.policies == first.policies
            && r.scenarios == first.scenarios;
        if !same {
            return Err(format!(
                "{} is from a different campaign than {} (seed, runs, scheduler, step budget, oracles, policies and scenarios must match)",
                path, first_path
            ));
        }
        let shard = r.campaign.shard.as_deref().unwrap_or("0/1");
        let parsed: Shard = shard.parse().map_err(|e| format!("{}: {e}", path))?;
        if *count.get_or_insert(parsed.count) != parsed.count {
            return Err(format!("{}: shard {shard} is of a different split", path));
        }
        if shards_seen.contains(&parsed.index) {
            return Err(format!("{}: shard {shard} given twice", path));
        }
        shards_seen.push(parsed.index);
    }
    let count = count.unwrap_or(1);
    let mut merged = first.clone();
    merged.cells.clear();
    let mut cells: Vec<CellResult> = Vec::new();
    for (path, r) in reports {
        for (i, cell) in r.cells.iter().enumerate() {
            let part = cell_to_campaign(cell).map_err(|e| format!("{}: {e}", path))?;
            if cells.len() <= i {
                cells.push(part);
            } else {
                cells[i].merge(&part);
            }
        }
    }
    let complete = shards_seen.len() as u32 == count;
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
    merged.partial = reports.iter().any(|(_, r)| r.partial);
    let replay = ReplayCommand {
        files: first.campaign.files.clone(),
        faults: first.campaign.faults.clone(),
    };
    for (cell, old) in cells.iter().zip(&first.cells) {
        let mut report_cell = cell_from_campaign(cell, &dummy_program(), &replay);
        report_cell.policy = old.policy.clone();
        report_cell.scenario = old.scenario.clone();
        // Reachability is per cell, not per shard: every shard computed the same.
        report_cell.reachable = old.reachable.clone();
        merged.cells.push(report_cell);
    }
    Ok(merged)
}

/// `cell_from_campaign` does not read its program; merging has none.
fn dummy_program() -> Program {
    Program::empty()
}
