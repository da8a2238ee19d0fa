//! `freezefuzz check FILE…`, and loading of the workspace for the other
//! subcommands: the only place that reads policy files from disk and prints
//! their diagnostics.

use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use freezefuzz::dsl::{self, Diagnostic};
use freezefuzz::ir::Workspace;
use freezefuzz::report::diagnostics;

#[derive(clap::Args, Debug)]
pub(super) struct CheckArgs {
    /// Files to check (policies and scenarios), checked together.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    super::read::read_prefix(path, super::read::POLICY_BYTES_MAX)
}

fn print_diagnostics(list: &[Diagnostic]) {
    let colour = std::io::stderr().is_terminal();
    for d in list {
        note!("{}", diagnostics::render(d, colour));
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `freezefuzz check FILE…`: loads the files together, prints one line per
/// file to stdout and the diagnostics to stderr. Exit 0 if all are ok, 1 if
/// any has an error, 2 on a usage problem.
pub fn run(files: &[PathBuf]) -> ExitCode {
    if files.is_empty() {
        note!("freezefuzz check: give at least one policy or scenario file");
        return ExitCode::from(2);
    }
    let loaded = load_searching(files, &dsl::Library::shipped_parents());
    let ws = &loaded.workspace;
    // Files given on the command line, then any parent loaded for an `extends`.
    let mut shown: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    for f in &ws.files {
        if f.path != dsl::DEFAULTS_PATH && !shown.contains(&f.path) {
            shown.push(f.path.clone());
        }
    }
    for d in &loaded.diagnostics {
        if !shown.contains(&d.path) {
            shown.push(d.path.clone());
        }
    }
    let mut failed = false;
    let mut out = String::new();
    for path in &shown {
        let errors = loaded.diagnostics.iter().filter(|d| &d.path == path).count();
        if errors > 0 {
            failed = true;
            let _ = writeln!(out, "error  {path}: {}", plural(errors, "error", "errors"));
            continue;
        }
        let file_id = ws.files.iter().position(|f| &f.path == path);
        let in_file = |loc: freezefuzz::ir::Loc| Some(loc.file.0 as usize) == file_id;
        let policies = ws.policies.iter().filter(|p| in_file(p.loc)).count();
        let scenarios = ws.scenarios.iter().filter(|s| in_file(s.loc)).count();
        let mut what = Vec::new();
        if policies > 0 || scenarios == 0 {
            what.push(plural(policies, "policy", "policies"));
        }
        if scenarios > 0 {
            what.push(plural(scenarios, "scenario", "scenarios"));
        }
        let _ = writeln!(out, "ok  {path} ({})", what.join(", "));
    }
    let written = super::emit(&out);
    print_diagnostics(&loaded.diagnostics);
    if written != ExitCode::SUCCESS {
        return written;
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Loads the workspace for the other subcommands: the shipped policies and
/// scenarios (built into the binary) and `files` on top of them, or only
/// `files` with `no_shipped`. On error, prints the diagnostics to stderr and
/// returns the exit code to use.
pub fn load_workspace(files: &[PathBuf], no_shipped: bool) -> Result<Workspace, ExitCode> {
    if no_shipped && files.is_empty() {
        note!("freezefuzz: --no-shipped leaves nothing to load; give files with -f FILE");
        return Err(ExitCode::from(2));
    }
    let library = if no_shipped {
        dsl::Library::shipped_parents()
    } else {
        dsl::Library::shipped()
    };
    let loaded = load_searching(files, &library);
    if loaded.diagnostics.is_empty() {
        Ok(loaded.workspace)
    } else {
        print_diagnostics(&loaded.diagnostics);
        Err(ExitCode::from(1))
    }
}

/// Loads `files` over `library`; a parent that is neither loaded nor beside
/// its child is looked for among the shipped files (so a policy anywhere can
/// extend a shipped one by name).
fn load_searching(files: &[PathBuf], library: &dsl::Library) -> dsl::Loaded {
    dsl::load_all_library(
        files,
        &mut read_file,
        &freezefuzz::fault::FaultRegistry::builtin(),
        &[],
        library,
    )
}
