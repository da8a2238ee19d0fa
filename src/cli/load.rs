//! Loading the policy and scenario files and compiling the cells asked for.

use std::process::ExitCode;

use freezefuzz::engine::program::{self, Program};
use freezefuzz::ir::Workspace;
use freezefuzz::oracle::OracleSet;
use freezefuzz::report::matrix::ReplayCommand;

use super::args::FileArgs;
use super::{EXIT_USAGE, check, usage_error};

/// Loads the workspace and resolves the requested policies and scenarios.
/// Broken input files are bad input (exit 2) for every subcommand but `check`.
pub(super) fn load(files: &FileArgs) -> Result<Workspace, ExitCode> {
    let mut workspace =
        check::load_workspace(&files.files, files.no_shipped).map_err(|_| ExitCode::from(EXIT_USAGE))?;
    if files.no_shipped {
        // Shipped parents loaded for an `extends` are not rows of their own.
        let ws = &workspace;
        let keep: Vec<bool> = ws
            .policies
            .iter()
            .map(|p| !ws.file_path(p.loc.file).starts_with(freezefuzz::shipped::PREFIX))
            .collect();
        let mut keep = keep.into_iter();
        workspace.policies.retain(|_| keep.next().unwrap_or(true));
    }
    if let Some(spec) = &files.faults {
        let specs =
            freezefuzz::fault::parse_specs(spec).map_err(|e| usage_error(format!("--faults: {e}")))?;
        let policies = std::mem::take(&mut workspace.policies);
        for policy in policies {
            let faulty = freezefuzz::fault::with_faults(&policy, &specs);
            workspace.policies.push(policy);
            workspace.policies.push(faulty);
        }
    }
    Ok(workspace)
}

pub(super) fn pick<'a, T>(
    what: &str,
    wanted: &[String],
    all: &'a [T],
    name: impl Fn(&T) -> &str,
) -> Result<Vec<&'a T>, ExitCode> {
    if wanted.is_empty() {
        if all.is_empty() {
            return Err(usage_error(format!(
                "no {what} loaded; give files with -f FILE or run from the project directory"
            )));
        }
        return Ok(all.iter().collect());
    }
    wanted
        .iter()
        .map(|w| {
            all.iter().find(|item| name(item) == w).ok_or_else(|| {
                let known: Vec<&str> = all.iter().map(&name).collect();
                usage_error(format!("unknown {what} `{w}`; loaded: {}", known.join(", ")))
            })
        })
        .collect()
}

/// Loads the files and compiles one cell, with the oracles asked for: what
/// `explore`, `replay` and `shrink` start from.
pub(super) fn load_cell(
    files: &FileArgs,
    oracles: &[String],
    policy: &str,
    scenario: &str,
) -> Result<(Workspace, OracleSet, Program), ExitCode> {
    let workspace = load(files)?;
    let oracles = OracleSet::with_optional(oracles).map_err(usage_error)?;
    let (_, _, mut programs) = compile_cells(&workspace, &[policy.to_string()], &[scenario.to_string()])?;
    let program = programs.pop().expect("one policy × one scenario is one cell");
    Ok((workspace, oracles, program))
}

/// Policy names, scenario names, and the compiled cells in row-major order.
pub(super) type Cells = (Vec<String>, Vec<String>, Vec<Program>);

pub(super) fn compile_cells(
    workspace: &Workspace,
    policies: &[String],
    scenarios: &[String],
) -> Result<Cells, ExitCode> {
    let policies = pick("policy", policies, &workspace.policies, |p| &p.name)?;
    let scenarios = pick("scenario", scenarios, &workspace.scenarios, |s| &s.name)?;
    let mut programs = Vec::new();
    for policy in &policies {
        for scenario in &scenarios {
            programs.push(
                program::compile(policy, scenario)
                    .map_err(|e| usage_error(located_compile_error(workspace, policy, scenario, &e)))?,
            );
        }
    }
    Ok((
        policies.iter().map(|p| p.name.clone()).collect(),
        scenarios.iter().map(|s| s.name.clone()).collect(),
        programs,
    ))
}

pub(super) fn replay_files(files: &FileArgs) -> ReplayCommand {
    ReplayCommand {
        files: files.files.iter().map(|f| f.display().to_string()).collect(),
        faults: files.faults.clone(),
        ..ReplayCommand::default()
    }
}

/// A compile error with the place it comes from: the scenario's definition
/// for errors of the scenario, the policy's otherwise (`file:line:col: …`).
pub(super) fn located_compile_error(
    workspace: &Workspace,
    policy: &freezefuzz::ir::Policy,
    scenario: &freezefuzz::ir::Scenario,
    error: &program::CompileError,
) -> String {
    use program::CompileError as E;
    let loc = match error {
        E::ThreadNameTaken { .. } | E::ScenarioTooLarge { .. } => scenario.loc,
        _ => policy.loc,
    };
    format!(
        "{}:{}:{}: {error}",
        workspace.file_path(loc.file),
        loc.line,
        loc.column
    )
}
