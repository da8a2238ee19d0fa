//! `freezefuzz show NAME`: a policy as it runs (after `extends`, the default
//! hooks and named bodies) or a scenario with every attribute explicit, each
//! statement with the `file:line` it came from.

use std::process::ExitCode;

use freezefuzz::report::ir_text;

use super::args::FileArgs;
use super::load::load;
use super::{emit, usage_error};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  freezefuzz show mainline
  freezefuzz show mine -f mine.ff          # a policy of yours, after its `extends`
  freezefuzz show case1-racing             # a standard scenario")]
pub(super) struct ShowArgs {
    /// The policy or scenario to show.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    files: FileArgs,
}

pub(super) fn run(args: ShowArgs) -> ExitCode {
    let workspace = match load(&args.files) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    if let Some(policy) = workspace.policy(&args.name) {
        return emit(&ir_text::policy_text(&workspace, policy));
    }
    if let Some(scenario) = workspace.scenario(&args.name) {
        return emit(&ir_text::scenario_text(&workspace, scenario));
    }
    let policies: Vec<&str> = workspace.policies.iter().map(|p| p.name.as_str()).collect();
    let scenarios: Vec<&str> = workspace.scenarios.iter().map(|s| s.name.as_str()).collect();
    usage_error(format!(
        "no policy or scenario `{}`; policies: {}; scenarios: {}",
        args.name,
        policies.join(", "),
        scenarios.join(", ")
    ))
}
