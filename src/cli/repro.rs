//! `repro`: a scenario (and optionally one schedule of it) as a C program
//! that performs it on a real filesystem (see docs/conformance.md).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use freezefuzz::engine::run;
use freezefuzz::engine::scheduler::SchedulerKind;
use freezefuzz::oracle::OracleSet;
use freezefuzz::repro::{self, Options};

use super::args::{FileArgs, parse_u64};
use super::load::load_cell;
use super::replay::fit_schedule;
use super::usage_error;

#[derive(clap::Args, Debug)]
pub(super) struct ReproArgs {
    /// The policy the reproducer is made for (with `--schedule` or `--seed`, the run's policy).
    #[arg(required_unless_present = "corpus")]
    policy: Option<String>,
    /// The scenario to perform on a real filesystem.
    #[arg(required_unless_present = "corpus")]
    scenario: Option<String>,
    /// Keep the order of the user-visible actions of this schedule.
    #[arg(long, conflicts_with_all = ["seed", "corpus"])]
    schedule: Option<String>,
    /// Keep the order of the user-visible actions of this run seed's run.
    #[arg(long, value_parser = parse_u64, conflicts_with = "corpus")]
    seed: Option<u64>,
    /// Keep the order of the user-visible actions of a corpus witness (its
    /// policy, scenario and schedule).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["policy", "scenario"])]
    corpus: Option<PathBuf>,
    /// The folder to write probe.c, run.sh and README.md into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Runs of a racing scenario when the probe is not told `--runs`.
    #[arg(long, default_value_t = repro::RACING_RUNS_DEFAULT, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    runs: u32,
    #[command(flatten)]
    files: FileArgs,
}

/// `freezefuzz repro POLICY SCENARIO [--schedule S | --seed X | --corpus FILE] --out DIR`.
pub(super) fn run(args: ReproArgs) -> ExitCode {
    let (policy, scenario, schedule, steps_max) = match &args.corpus {
        Some(path) => match super::corpus::read(path) {
            Ok(entry) => (
                entry.policy,
                entry.scenario,
                Some(entry.schedule),
                entry.steps_max,
            ),
            Err(e) => return usage_error(e),
        },
        None => (
            args.policy.clone().unwrap_or_default(),
            args.scenario.clone().unwrap_or_default(),
            args.schedule.clone(),
            1000,
        ),
    };
    let (workspace, oracles, program) = match load_cell(&args.files, &[], &policy, &scenario) {
        Ok(cell) => cell,
        Err(code) => return code,
    };
    let policy_ir = workspace.policy(&policy).expect("load_cell found it");
    let scenario_ir = workspace.scenario(&scenario).expect("load_cell found it");
    // The probe injects write errors (`io-error`, set by the scenario) and
    // no other fault.
    let other_faults = program
        .faults
        .iter()
        .enumerate()
        .any(|(kind, f)| f.enabled && kind != freezefuzz::fault::FaultKind::IoError as usize);
    if other_faults || (program.any_fault_enabled() && !repro::injects_io_error(scenario_ir)) {
        return usage_error(format!(
            "`{policy}` × `{scenario}` injects faults the probe cannot: it injects only `io-error`, set in the scenario"
        ));
    }
    let (choices, source) = match (schedule, args.seed) {
        (Some(text), _) => match fit_schedule(&program, &text, None, SchedulerKind::Random, steps_max) {
            Ok(fitted) => (Some(fitted.choices), Some(format!("the schedule `{text}`"))),
            Err(e) => return usage_error(e),
        },
        (None, Some(seed)) => {
            let mut record = Vec::new();
            let mut sched = SchedulerKind::Random.build();
            run::run(
                &program,
                &OracleSet::standard(),
                sched.as_mut(),
                seed,
                steps_max,
                Some(&mut record),
            );
            (Some(record), Some(format!("run seed {seed:#x}")))
        }
        (None, None) => (None, None),
    };
    let order = match choices {
        None => Vec::new(),
        Some(choices) => {
            let trace = match run::replay(&program, &oracles, &choices, steps_max) {
                Ok((_, trace)) => trace,
                Err(e) => {
                    return usage_error(format!("the schedule does not fit {policy} × {scenario}: {e}"));
                }
            };
            match repro::action_order(policy_ir, scenario_ir, &program, &trace) {
                Ok(order) => order,
                Err(e) => return usage_error(e),
            }
        }
    };
    let options = Options {
        policy: policy.clone(),
        racing_runs: args.runs,
        order,
        source,
    };
    let files = match repro::generate(scenario_ir, &options) {
        Ok(files) => files,
        Err(e) => return usage_error(e),
    };
    if let Err(e) = write_repro(&args.out, &files) {
        return usage_error(format!("cannot write {}: {e}", args.out.display()));
    }
    eprintln!(
        "wrote {0}/probe.c, {0}/run.sh and {0}/README.md; run: sudo {0}/run.sh ext4",
        args.out.display()
    );
    ExitCode::SUCCESS
}

/// Writes the three files, run.sh executable.
pub(super) fn write_repro(dir: &Path, files: &repro::Repro) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("probe.c"), &files.probe_c)?;
    std::fs::write(dir.join("README.md"), &files.readme)?;
    let script = dir.join("run.sh");
    std::fs::write(&script, &files.run_sh)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}
