//! Shared helpers for the integration tests.

use std::path::PathBuf;

use freezefuzz::engine::program::{self, Program};
use freezefuzz::ir::Workspace;

/// The crate root (tests run with it as the working directory too).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every shipped file under `policies/`, sorted.
pub fn shipped_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("policies"))
        .expect("policies/ exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ff"))
        .collect();
    files.sort();
    files
}

/// The shipped policies and standard scenarios, loaded.
pub fn shipped() -> Workspace {
    let files = shipped_files();
    freezefuzz::dsl::load(&files, &mut |p| std::fs::read(p))
        .unwrap_or_else(|e| panic!("shipped files load: {e}"))
}

/// Every shipped policy × every standard scenario, compiled.
pub fn shipped_programs(workspace: &Workspace) -> Vec<Program> {
    let mut programs = Vec::new();
    for policy in &workspace.policies {
        for scenario in &workspace.scenarios {
            programs.push(program::compile(policy, scenario).expect("shipped cells compile"));
        }
    }
    programs
}

/// Loads one policy text (with any parents in the same text) plus the standard scenarios.
pub fn with_standard(policy_text: &str) -> Workspace {
    let standard = std::fs::read_to_string(root().join("policies/standard.ff")).expect("standard.ff");
    let text = format!("{policy_text}\n{standard}");
    freezefuzz::dsl::load_str("test.ff", &text).unwrap_or_else(|e| panic!("test policy loads: {e}"))
}

/// One shipped cell, compiled.
pub fn shipped_cell(policy: &str, scenario: &str) -> Program {
    let workspace = shipped();
    let policy = workspace
        .policy(policy)
        .unwrap_or_else(|| panic!("no policy {policy}"));
    let scenario = workspace
        .scenario(scenario)
        .unwrap_or_else(|| panic!("no scenario {scenario}"));
    program::compile(policy, scenario).expect("shipped cells compile")
}

/// A verdict written by hand in a test (one that cannot be a snapshot: an
/// inline scenario, a claim about one cell). On a mismatch it names the
/// cell, both outcome sets, and where to change the expectation.
#[track_caller]
pub fn expect_verdict(
    cell: &str,
    actual: freezefuzz::oracle::Outcomes,
    expected: &[freezefuzz::oracle::Outcome],
) {
    let mut want = freezefuzz::oracle::Outcomes::default();
    for o in expected {
        want.insert(*o);
    }
    if actual != want {
        let caller = std::panic::Location::caller();
        panic!(
            "{cell}: expected {{{want}}}, got {{{actual}}}.\n\
             This expectation is written at {}:{}; if the change is intended, edit it there \
             (the shipped cells' verdicts are snapshots: `cargo insta test --review`).",
            caller.file(),
            caller.line()
        );
    }
}
