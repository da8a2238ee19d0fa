//! `run` and `matrix`: seeded campaigns or exhaustive searches over cells, and `--expect`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use freezefuzz::engine::campaign::{self, CampaignConfig, Shard};
use freezefuzz::engine::explore::{self, ExploreLimits};
use freezefuzz::engine::program::Program;
use freezefuzz::oracle::OracleSet;
use freezefuzz::report::matrix::{self as report, CampaignInfo, MatrixReport};

use super::args::{CampaignArgs, CommonArgs, FileArgs, Format, LimitArgs, jobs};
use super::load::{compile_cells, load, replay_files};
use super::progress::{Progress, interrupt_flag};
use super::witness::{self, WitnessArgs};
use super::{EXIT_FAILED, EXIT_INTERRUPTED, emit, usage_error};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  freezefuzz run no-block case3-after-freeze
  freezefuzz run no-block case3-racing --scheduler pct:2 --runs 100000 --seed 7")]
pub(super) struct RunArgs {
    /// The policy.
    policy: String,
    /// The scenario.
    scenario: String,
    #[command(flatten)]
    campaign: CampaignArgs,
    #[command(flatten)]
    witness: WitnessArgs,
    #[command(flatten)]
    common: CommonArgs,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  freezefuzz matrix --exhaustive                         # exact outcome sets, shortest schedules
  freezefuzz matrix --runs 100000 --seed 7 -j 8          # a seeded random campaign
  freezefuzz matrix -f mine.ff --policy mine --format markdown
  freezefuzz matrix --exhaustive --expect tests/data/expected-matrix.json")]
pub(super) struct MatrixArgs {
    /// Only these policies (repeatable), in this order.
    #[arg(long = "policy", value_name = "POLICY")]
    policies: Vec<String>,
    /// Only these scenarios (repeatable), in this order.
    #[arg(long = "scenario", value_name = "SCENARIO")]
    scenarios: Vec<String>,
    /// Explore every interleaving instead of sampling: exact outcome sets,
    /// shortest schedules and state counts.
    #[arg(long, conflicts_with_all = ["runs", "seed", "scheduler", "shard", "coverage_states", "no_shrink"])]
    exhaustive: bool,
    /// Exit 1 if any cell's set of outcomes differs from this saved JSON matrix.
    #[arg(long, value_name = "FILE")]
    expect: Option<PathBuf>,
    #[command(flatten)]
    campaign: CampaignArgs,
    #[command(flatten)]
    witness: WitnessArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    common: CommonArgs,
}

/// `freezefuzz run POLICY SCENARIO`: a matrix of one cell, random mode.
pub(super) fn run_one(args: RunArgs) -> ExitCode {
    matrix_command(
        vec![args.policy],
        vec![args.scenario],
        false,
        None,
        &args.campaign,
        None,
        &args.common,
        &args.witness,
    )
}

/// `freezefuzz matrix`.
pub(super) fn run(args: MatrixArgs) -> ExitCode {
    matrix_command(
        args.policies,
        args.scenarios,
        args.exhaustive,
        args.expect,
        &args.campaign,
        Some(&args.limits),
        &args.common,
        &args.witness,
    )
}

pub(super) fn render(report: &MatrixReport, format: Format, with_findings: bool) -> String {
    match format {
        Format::Json => report::json(report),
        Format::Markdown => {
            let mut text = report::markdown(report);
            let coverage = report::coverage(report);
            if !coverage.is_empty() {
                text.push('\n');
                for line in coverage.lines() {
                    text.push_str(&format!("> {line}\n"));
                }
            }
            text
        }
        Format::Table => {
            let mut text = report::table_styled(report, super::style());
            let coverage = report::coverage(report);
            if !coverage.is_empty() {
                text.push('\n');
                text.push_str(&coverage);
            }
            if with_findings {
                let findings = report::findings(report);
                if !findings.is_empty() {
                    text.push('\n');
                    text.push_str(&findings);
                }
            }
            text
        }
    }
}

#[allow(clippy::too_many_arguments)]
pub(super) fn matrix_command(
    policies: Vec<String>,
    scenarios: Vec<String>,
    exhaustive: bool,
    expect: Option<PathBuf>,
    campaign_args: &CampaignArgs,
    limits: Option<&LimitArgs>,
    common: &CommonArgs,
    witness: &WitnessArgs,
) -> ExitCode {
    let expected = match &expect {
        Some(path) => match read_report(path) {
            Ok(report) => Some(report),
            Err(code) => return code,
        },
        None => None,
    };
    let workspace = match load(&common.files) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let oracles = match OracleSet::with_optional(&common.oracles) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    // `--policy X --faults SPEC` means X and its `X+faults` row, as the
    // matrix without `--policy` shows both.
    let policies: Vec<String> = if common.files.faults.is_some() {
        policies
            .into_iter()
            .flat_map(|p| {
                let faulty = (!p.ends_with("+faults")).then(|| format!("{p}+faults"));
                std::iter::once(p).chain(faulty)
            })
            .fold(Vec::new(), |mut all, p| {
                if !all.contains(&p) {
                    all.push(p);
                }
                all
            })
    } else {
        policies
    };
    let (policy_names, scenario_names, programs) = match compile_cells(&workspace, &policies, &scenarios) {
        Ok(cells) => cells,
        Err(code) => return code,
    };
    let mut replay = replay_files(&common.files);
    replay.oracles = oracles.optional_names().iter().map(|s| s.to_string()).collect();
    replay.steps_max = Some(campaign_args.steps_max);
    let files: Vec<String> = common
        .files
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let jobs = jobs(common);
    let stop = interrupt_flag();
    let report = if exhaustive {
        if campaign_args.shard.is_some() {
            return usage_error("--shard applies to random campaigns, not to --exhaustive");
        }
        let limits = limits.expect("matrix has limit flags");
        exhaustive_report(
            (policy_names, scenario_names, &programs),
            &oracles,
            limits,
            campaign_args.steps_max,
            &common.files,
            jobs,
            &stop,
        )
    } else {
        let shard = campaign_args.shard.unwrap_or(Shard::WHOLE);
        let config = CampaignConfig {
            seed: campaign_args.seed,
            runs: campaign_args.runs,
            scheduler: campaign_args.scheduler,
            steps_max: campaign_args.steps_max,
            shard,
        };
        let total = campaign::shard_runs(config.runs, shard) * programs.len() as u64;
        let bar = Progress::new(total);
        let mut results = campaign::campaign(&programs, &oracles, &config, jobs, &stop, &|n| bar.advance(n));
        bar.finish();
        // After an interrupt the user wants out: the witnesses stay as found.
        if !witness.no_shrink && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            freezefuzz::engine::shrink::shrink_witnesses(&programs, &oracles, &mut results, config.steps_max);
        }
        let partial = results.iter().any(|c| c.partial);
        // After an interrupt the user wants out: no coverage search, and no
        // coverage line for cells that did not run to the end.
        let reachable = if partial {
            vec![None; programs.len()]
        } else {
            // `run` has no --max-memory: it takes the default guard.
            let memory_max = limits.map_or(ExploreLimits::default().memory_max, |l| l.max_memory << 20);
            coverage(&programs, &oracles, campaign_args, jobs, &stop, memory_max)
        };
        let partial = partial || stop.load(std::sync::atomic::Ordering::Relaxed);
        let mut report = MatrixReport {
            schema: report::SCHEMA.into(),
            mode: "random".into(),
            campaign: CampaignInfo {
                seed: Some(config.seed),
                runs: Some(config.runs),
                scheduler: Some(config.scheduler.label()),
                steps_max: config.steps_max,
                shard: Some(format!("{}/{}", shard.index, shard.count)),
                states_max: None,
                oracles: oracles.optional_names().iter().map(|s| s.to_string()).collect(),
                files,
                faults: common.files.faults.clone(),
                no_shrink: witness.no_shrink,
            },
            partial,
            policies: policy_names,
            scenarios: scenario_names,
            cells: results
                .iter()
                .zip(&programs)
                .map(|(r, p)| report::cell_from_campaign(r, p, &replay))
                .collect(),
        };
        for (cell, reachable) in report.cells.iter_mut().zip(reachable) {
            cell.reachable = reachable;
        }
        report
    };
    // Save (and draw) before printing: a reader that goes away early
    // (`| head`) ends the process with SIGPIPE, and the witnesses must be
    // kept by then.
    if let Err(code) = witness::after_matrix(
        &report,
        &programs,
        &oracles,
        witness,
        campaign_args.steps_max,
        &replay,
    ) {
        return code;
    }
    let code = emit(&render(&report, common.format, true));
    if code != ExitCode::SUCCESS {
        return code;
    }
    if report.partial {
        note!("interrupted: the results above are partial");
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if let Some(expected) = expected {
        return compare_expectation(&report, &expected);
    }
    ExitCode::SUCCESS
}

/// The campaign line of an exhaustive report (`matrix --exhaustive`, `explore`).
pub(super) fn exhaustive_campaign(
    oracles: &OracleSet,
    limits: &LimitArgs,
    steps_max: u32,
    files: &FileArgs,
) -> CampaignInfo {
    CampaignInfo {
        seed: None,
        runs: None,
        scheduler: None,
        steps_max,
        shard: None,
        states_max: Some(limits.max_states),
        oracles: oracles.optional_names().iter().map(|s| s.to_string()).collect(),
        files: files.files.iter().map(|f| f.display().to_string()).collect(),
        faults: files.faults.clone(),
        no_shrink: false,
    }
}

/// Every cell explored exhaustively, as a matrix report.
pub(super) fn exhaustive_report(
    (policies, scenarios, programs): (Vec<String>, Vec<String>, &[Program]),
    oracles: &OracleSet,
    limits: &LimitArgs,
    steps_max: u32,
    files: &FileArgs,
    jobs: usize,
    stop: &AtomicBool,
) -> MatrixReport {
    let explore_limits = ExploreLimits {
        states_max: limits.max_states,
        depth_max: limits.max_depth,
        memory_max: limits.max_memory << 20,
        steps_max,
        reduce: limits.por,
        symmetry: !limits.no_symmetry,
        hash_compact: false,
        keep_edges: true,
        // The matrix explores its cells in parallel, each on one thread.
        jobs: 1,
    };
    let mut replay = replay_files(files);
    replay.oracles = oracles.optional_names().iter().map(|s| s.to_string()).collect();
    replay.steps_max = Some(steps_max);
    let results = explore_all(programs, oracles, &explore_limits, jobs, stop);
    let interrupted = results
        .iter()
        .any(|r| r.limit == Some(explore::LimitHit::Interrupted));
    MatrixReport {
        schema: report::SCHEMA.into(),
        mode: "exhaustive".into(),
        campaign: exhaustive_campaign(oracles, limits, steps_max, files),
        partial: interrupted,
        policies,
        scenarios,
        cells: results
            .iter()
            .zip(programs)
            .map(|(r, p)| report::cell_from_exploration(r, p, &replay))
            .collect(),
    }
}

/// The exact reachable outcomes of each cell, where a search within
/// `--coverage-states` finishes (`None` elsewhere).
pub(super) fn coverage(
    programs: &[Program],
    oracles: &OracleSet,
    args: &CampaignArgs,
    jobs: usize,
    stop: &AtomicBool,
    memory_max: u64,
) -> Vec<Option<Vec<String>>> {
    if args.coverage_states == 0 {
        return vec![None; programs.len()];
    }
    let limits = ExploreLimits {
        states_max: args.coverage_states,
        steps_max: args.steps_max,
        memory_max,
        ..ExploreLimits::default()
    };
    explore_all(programs, oracles, &limits, jobs, stop)
        .into_iter()
        .map(|e| {
            e.complete()
                .then(|| e.outcomes.iter().map(|o| o.name().to_string()).collect())
        })
        .collect()
}

pub(super) fn explore_all(
    programs: &[Program],
    oracles: &OracleSet,
    limits: &ExploreLimits,
    jobs: usize,
    stop: &AtomicBool,
) -> Vec<explore::Exploration> {
    use rayon::prelude::*;
    let run = || {
        programs
            .par_iter()
            .map(|p| explore::explore_until(p, oracles, limits, stop))
            .collect::<Vec<_>>()
    };
    match rayon::ThreadPoolBuilder::new().num_threads(jobs).build() {
        Ok(pool) => pool.install(run),
        Err(_) => run(),
    }
}

pub(super) fn read_report(path: &std::path::Path) -> Result<MatrixReport, ExitCode> {
    let text = super::read::read_text(path, super::read::REPORT_BYTES_MAX)
        .map_err(|e| usage_error(format!("cannot read {}: {e}", path.display())))?;
    let report: MatrixReport = serde_json::from_str(&text).map_err(|e| {
        usage_error(format!(
            "{}:{}:{}: not a freezefuzz matrix JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })?;
    if report.schema != report::SCHEMA {
        return Err(usage_error(format!(
            "{}: schema `{}` is not `{}`",
            path.display(),
            report.schema,
            report::SCHEMA
        )));
    }
    Ok(report)
}

/// `--expect`: each cell's set of outcomes must equal the saved one. A file
/// made with other oracles or in the other mode is named as such first (its
/// cells would all differ for that reason alone).
pub(super) fn compare_expectation(report: &MatrixReport, expected: &MatrixReport) -> ExitCode {
    let mut differences = Vec::new();
    let mut setup = Vec::new();
    if report.campaign.oracles != expected.campaign.oracles {
        let list = |o: &[String]| {
            if o.is_empty() {
                "the standard oracles only".to_string()
            } else {
                format!("--oracle {}", o.join(" --oracle "))
            }
        };
        setup.push(format!(
            "the expectation was made with {}, this run with {}",
            list(&expected.campaign.oracles),
            list(&report.campaign.oracles)
        ));
    }
    if report.mode != expected.mode {
        setup.push(format!(
            "the expectation is a {} matrix, this run is {}",
            expected.mode, report.mode
        ));
    }
    for cell in &report.cells {
        match expected
            .cells
            .iter()
            .find(|c| c.policy == cell.policy && c.scenario == cell.scenario)
        {
            None => differences.push(format!(
                "{} × {}: not in the expectation",
                cell.policy, cell.scenario
            )),
            Some(old) => {
                let (now, then) = (cell.outcomes.names(), old.outcomes.names());
                if now != then {
                    differences.push(format!(
                        "{} × {}: expected {{{}}}, got {{{}}}",
                        cell.policy,
                        cell.scenario,
                        then.join(", "),
                        now.join(", ")
                    ));
                }
            }
        }
    }
    for old in &expected.cells {
        if !report
            .cells
            .iter()
            .any(|c| c.policy == old.policy && c.scenario == old.scenario)
        {
            differences.push(format!(
                "{} × {}: expected but not computed",
                old.policy, old.scenario
            ));
        }
    }
    if differences.is_empty() {
        note!("every cell's outcomes match the expectation");
        ExitCode::SUCCESS
    } else {
        for s in &setup {
            note!("note: {s}; the cells below may differ for that reason alone");
        }
        note!("{} cell(s) differ from the expectation:", differences.len());
        for d in differences {
            note!("  {d}");
        }
        note!(
            "if the change is intended, regenerate the expectation with the same flags and `--format json > FILE` \
             (this repository: `cargo run --release -- matrix --exhaustive --format json > tests/data/expected-matrix.json`)"
        );
        ExitCode::from(EXIT_FAILED)
    }
}
