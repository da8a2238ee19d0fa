//! `merge`: the JSON of `matrix --shard K/N` runs into one matrix, or of
//! `swarm --shard K/N` runs into one swarm (told apart by their schema).

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::Format;
use super::matrix::{read_report, render};
use super::{emit, usage_error};
use freezefuzz::report::swarm::SwarmReport;

#[derive(clap::Args, Debug)]
pub(super) struct MergeArgs {
    /// The shard files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Output format of the merged matrix.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// `freezefuzz merge FILE…`.
pub(super) fn run(args: MergeArgs) -> ExitCode {
    merge_command(&args.files, args.format)
}

pub(super) fn merge_command(paths: &[PathBuf], format: Format) -> ExitCode {
    match paths.first().map(|p| swarm_report(p)) {
        Some(Ok(Some(_))) => return merge_swarms(paths, format),
        Some(Err(code)) => return code,
        _ => {}
    }
    let mut reports = Vec::new();
    for path in paths {
        match read_report(path) {
            Ok(r) => reports.push((path, r)),
            Err(code) => return code,
        }
    }
    let named: Vec<(String, _)> = reports
        .into_iter()
        .map(|(path, r)| (path.display().to_string(), r))
        .collect();
    match freezefuzz::report::merge::merge(&named) {
        Ok(report) => {
            let code = emit(&render(&report, format, false));
            if let Some(shard) = report.campaign.shard.as_deref().filter(|s| *s != "0/1") {
                note!(
                    "WARNING: only shards {shard} were merged, not the whole campaign: the matrix is PARTIAL (its counts cover only those shards)"
                );
            }
            code
        }
        Err(e) => usage_error(e),
    }
}

/// The swarm report in `path`, or `None` when it is another document.
fn swarm_report(path: &std::path::Path) -> Result<Option<SwarmReport>, ExitCode> {
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: Option<String>,
    }
    let text = super::read::read_text(path, super::read::REPORT_BYTES_MAX)
        .map_err(|e| usage_error(format!("cannot read {}: {e}", path.display())))?;
    let located = |e: serde_json::Error, what: &str| {
        usage_error(format!(
            "{}:{}:{}: not a freezefuzz {what} JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    };
    // Anything else is read as a matrix, which says what is wrong with it.
    let swarm = serde_json::from_str::<Schema>(&text)
        .is_ok_and(|s| s.schema.as_deref() == Some(freezefuzz::report::swarm::SCHEMA));
    if !swarm {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| located(e, "swarm"))
}

fn merge_swarms(paths: &[PathBuf], format: Format) -> ExitCode {
    let mut reports = Vec::new();
    for path in paths {
        match swarm_report(path) {
            Ok(Some(r)) => reports.push((path.display().to_string(), r)),
            Ok(None) => {
                return usage_error(format!(
                    "{}: not a swarm report, but {} is: merge the shards of one swarm",
                    path.display(),
                    paths[0].display()
                ));
            }
            Err(code) => return code,
        }
    }
    match freezefuzz::report::swarm::merge(&reports) {
        Ok(report) => {
            let code = emit(&super::swarm::render(&report, format));
            if report.shard != "0/1" {
                note!(
                    "WARNING: only shards {} were merged, not the whole swarm: the result is PARTIAL",
                    report.shard
                );
            }
            code
        }
        Err(e) => usage_error(e),
    }
}
