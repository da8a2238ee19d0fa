//! `freezefuzz check FILE…`, and loading of the workspace for the other
//! subcommands: the only place that reads policy files from disk and prints
//! their diagnostics.

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

/// The folder of shipped policies, loaded when no file is given.
#[allow(dead_code, reason = "used by the subcommands that run policies")]
const POLICIES_DIR: &str = "policies";

fn read_file(path: &Path) -> std::io::Result<Vec<u8>> {
    std::fs::read(path)
}

fn print_diagnostics(list: &[Diagnostic]) {
    let colour = std::io::stderr().is_terminal();
    for d in list {
        eprintln!("{}", diagnostics::render(d, colour));
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
        eprintln!("freezefuzz check: give at least one policy or scenario file");
        return ExitCode::from(2);
    }
    let loaded = load_searching(files);
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
    for path in &shown {
        let errors = loaded.diagnostics.iter().filter(|d| &d.path == path).count();
        if errors > 0 {
            failed = true;
            println!("error  {path}: {}", plural(errors, "error", "errors"));
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
        println!("ok  {path} ({})", what.join(", "));
    }
    print_diagnostics(&loaded.diagnostics);
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Loads the workspace for the other subcommands: `files`, or every `*.ff` in
/// `policies/` (sorted by name) when none is given. On error, prints the
/// diagnostics to stderr and returns the exit code to use.
#[allow(dead_code, reason = "used by the subcommands that run policies")]
pub fn load_workspace(files: &[PathBuf]) -> Result<Workspace, ExitCode> {
    let files = if files.is_empty() {
        let entries = match std::fs::read_dir(POLICIES_DIR) {
            Ok(entries) => entries,
            Err(error) => {
                eprintln!("freezefuzz: no files given and cannot read {POLICIES_DIR}/: {error}");
                return Err(ExitCode::from(2));
            }
        };
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "ff"))
            .collect();
        found.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
        if found.is_empty() {
            eprintln!("freezefuzz: no files given and no *.ff files in {POLICIES_DIR}/");
            return Err(ExitCode::from(2));
        }
        found
    } else {
        files.to_vec()
    };
    let loaded = load_searching(&files);
    if loaded.diagnostics.is_empty() {
        Ok(loaded.workspace)
    } else {
        print_diagnostics(&loaded.diagnostics);
        Err(ExitCode::from(1))
    }
}

/// Loads `files`; a parent that is neither loaded nor beside its child is
/// looked for in `policies/` (so a policy anywhere can extend a shipped one).
fn load_searching(files: &[PathBuf]) -> dsl::Loaded {
    let shipped = PathBuf::from(POLICIES_DIR);
    let parent_dirs: Vec<PathBuf> = shipped.is_dir().then_some(shipped).into_iter().collect();
    dsl::load_all_searching(
        files,
        &mut read_file,
        &freezefuzz::fault::FaultRegistry::builtin(),
        &parent_dirs,
    )
}
