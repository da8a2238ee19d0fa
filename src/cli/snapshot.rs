//! `freezefuzz snapshot DIR`: each policy's exhaustive verdicts as an insta
//! snapshot in DIR, for reviewing a policy change in the repository that
//! holds the policies. A change writes `NAME.snap.new` beside the snapshot
//! (accept it with `cargo insta review --workspace-root .` or with
//! `--accept`), prints the changed lines and exits 1.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use freezefuzz::oracle::OracleSet;
use freezefuzz::report::snapshot;

use super::args::{FileArgs, LimitArgs, jobs_or_all};
use super::load::{compile_cells, load};
use super::matrix::exhaustive_report;
use super::{EXIT_FAILED, usage_error};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  freezefuzz snapshot snapshots -f mine.ff --policy mine --accept   # the first time
  freezefuzz snapshot snapshots -f mine.ff --policy mine            # after a change: exit 1 and a diff
  cargo insta review --workspace-root .                             # accept or reject the .snap.new files")]
pub(super) struct SnapshotArgs {
    /// Directory of the snapshots (created if missing): one `freezefuzz__POLICY.snap` per policy.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Write the new snapshots over the old ones instead of beside them (no cargo-insta needed).
    #[arg(long)]
    accept: bool,
    /// Only these policies (repeatable; default: every loaded policy).
    #[arg(long = "policy", value_name = "POLICY")]
    policies: Vec<String>,
    /// Only these scenarios (repeatable; default: every loaded scenario).
    #[arg(long = "scenario", value_name = "SCENARIO")]
    scenarios: Vec<String>,
    /// Optional oracles to turn on (repeatable): dirty-at-freeze.
    #[arg(long = "oracle", value_name = "NAME")]
    oracles: Vec<String>,
    /// Step budget of each run; a longer run ends as step-limit.
    #[arg(long, alias = "steps-max", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    max_steps: u32,
    /// Worker threads (default: all cores). The snapshots do not depend on it.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    files: FileArgs,
}

/// The `freezefuzz__POLICY.snap` files in `dir` whose policy is not in
/// `policies`, sorted.
fn obsolete(dir: &Path, policies: &[String]) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            name.strip_prefix("freezefuzz__")
                .and_then(|rest| rest.strip_suffix(".snap"))
                .is_some_and(|policy| !policies.iter().any(|p| p == policy))
        })
        .collect();
    found.sort();
    found
}

/// The snapshot file of a policy in `dir`.
fn snap_path(dir: &Path, policy: &str) -> PathBuf {
    dir.join(format!("freezefuzz__{policy}.snap"))
}

pub(super) fn run(args: SnapshotArgs) -> ExitCode {
    let workspace = match load(&args.files) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let oracles = match OracleSet::with_optional(&args.oracles) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let (policies, scenarios, programs) = match compile_cells(&workspace, &args.policies, &args.scenarios) {
        Ok(cells) => cells,
        Err(code) => return code,
    };
    let report = exhaustive_report(
        (policies.clone(), scenarios, &programs),
        &oracles,
        &args.limits,
        args.max_steps,
        &args.files,
        jobs_or_all(args.jobs),
        &std::sync::atomic::AtomicBool::new(false),
    );
    if let Err(e) = std::fs::create_dir_all(&args.dir) {
        return usage_error(format!("cannot create {}: {e}", args.dir.display()));
    }
    if let Err(e) = cargo_insta_manifest(&args.dir) {
        return usage_error(format!("cannot write in {}: {e}", args.dir.display()));
    }
    let mut changed = 0;
    let mut written = 0;
    for policy in &policies {
        let body = snapshot::policy_body(&report, policy);
        let source = workspace
            .policy(policy)
            .map(|p| workspace.file_path(p.loc.file).to_string())
            .unwrap_or_default();
        let expression = regenerate_command(&args, policy);
        let text = snapshot::file(
            &source,
            "exhaustive verdicts of one policy: `@N` is the length of a shortest schedule, `!` marks a bad outcome",
            &expression,
            &body,
        );
        let path = snap_path(&args.dir, policy);
        let pending = PathBuf::from(format!("{}.new", path.display()));
        let old = std::fs::read_to_string(&path).ok();
        let old_body = old.as_deref().and_then(snapshot::body);
        if old_body == Some(body.as_str()) {
            // Unchanged: a stale pending snapshot would only confuse a review.
            let _ = std::fs::remove_file(&pending);
            continue;
        }
        let target = if args.accept { &path } else { &pending };
        if let Err(e) = std::fs::write(target, &text) {
            return usage_error(format!("cannot write {}: {e}", target.display()));
        }
        if args.accept {
            let _ = std::fs::remove_file(&pending);
            written += 1;
            println!("wrote {}", path.display());
            continue;
        }
        changed += 1;
        match old_body {
            None => println!("new snapshot {} (not accepted yet)", pending.display()),
            Some(old_body) => {
                println!("{}: {policy} changed", path.display());
                for line in snapshot::changes(old_body, &body).lines() {
                    println!("  {line}");
                }
            }
        }
    }
    // Snapshots of policies no longer loaded (only when all are snapshotted).
    if args.policies.is_empty() {
        for path in obsolete(&args.dir, &policies) {
            if args.accept {
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_file(format!("{}.new", path.display()));
                println!("removed {} (its policy is no longer loaded)", path.display());
            } else {
                changed += 1;
                println!(
                    "obsolete {}: its policy is no longer loaded (--accept removes it)",
                    path.display()
                );
            }
        }
    }
    if changed > 0 {
        eprintln!(
            "{changed} snapshot(s) differ; review them with `cargo insta review --workspace-root {}`, \
             or accept them all with `{} --accept`",
            args.dir.display(),
            regenerate_command(&args, "").trim_end_matches(" --policy ")
        );
        return ExitCode::from(EXIT_FAILED);
    }
    if written == 0 {
        eprintln!("{} snapshot(s) unchanged", policies.len());
    }
    ExitCode::SUCCESS
}

/// cargo-insta finds pending snapshots through `cargo metadata`, so it needs
/// a package manifest: a repository of policies has none. This one (written
/// once, never overwritten) names no source file that must exist.
const MANIFEST: &str = "# Written by `freezefuzz snapshot` so that `cargo insta review --workspace-root DIR`
# finds the snapshots here (cargo-insta reads the package list with `cargo metadata`).
# Nothing is built from it.
[package]
name = \"freezefuzz-snapshots\"
version = \"0.0.0\"
edition = \"2021\"
publish = false

[lib]
path = \"none.rs\"

[workspace]
";

fn cargo_insta_manifest(dir: &Path) -> std::io::Result<()> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        std::fs::write(&manifest, MANIFEST)?;
        std::fs::write(dir.join(".gitignore"), "Cargo.lock\ntarget/\n")?;
    }
    Ok(())
}

/// The command that makes this policy's snapshot (its `expression:`).
fn regenerate_command(args: &SnapshotArgs, policy: &str) -> String {
    let mut cmd = format!("freezefuzz snapshot {}", args.dir.display());
    for f in &args.files.files {
        cmd.push_str(&format!(" -f {}", f.display()));
    }
    if args.files.no_shipped {
        cmd.push_str(" --no-shipped");
    }
    for o in &args.oracles {
        cmd.push_str(&format!(" --oracle {o}"));
    }
    cmd.push_str(&format!(" --policy {policy}"));
    cmd
}
