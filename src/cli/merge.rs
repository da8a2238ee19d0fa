//! `merge`: the JSON of `matrix --shard K/N` runs into one matrix.

use std::path::PathBuf;
use std::process::ExitCode;

use super::args::Format;
use super::matrix::{read_report, render};
use super::{emit, usage_error};

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
