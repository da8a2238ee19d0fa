//! `freezefuzz diff OLD NEW`: the cells whose outcomes changed between two
//! matrices, and why (see `report::diff`). Each side is a saved JSON matrix
//! (`*.json`), a directory of policy files, a git revision of one
//! (`REV:PATH`, read with `git show`, nothing written to disk), or a policy
//! name (then both are, and they are compared scenario by scenario).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use freezefuzz::dsl;
use freezefuzz::engine::program::Program;
use freezefuzz::ir::Workspace;
use freezefuzz::oracle::OracleSet;
use freezefuzz::report::diagnostics;
use freezefuzz::report::diff::{self, Side};
use freezefuzz::report::matrix::MatrixReport;

use super::args::{FileArgs, Format, LimitArgs, jobs_or_all};
use super::load::{compile_cells, load};
use super::matrix::{exhaustive_report, read_report};
use super::{EXIT_USAGE, emit, usage_error};

#[derive(clap::Args, Debug)]
#[command(after_help = "Each side is one of:
  FILE.json     a matrix saved with `matrix --format json`
  DIR           a directory of policy files (its *.ff, over the shipped set)
  REV:PATH      that directory at a git revision, e.g. `main:policies` or `HEAD~1:.`
  POLICY        a policy name (both sides then; compared scenario by scenario)

Examples:
  freezefuzz diff main:policies policies                     # what this branch changes
  freezefuzz diff mainline mine -f mine.ff                   # two policies
  freezefuzz diff base.json head.json --format markdown      # two saved matrices")]
pub(super) struct DiffArgs {
    /// The old side.
    #[arg(value_name = "OLD")]
    old: String,
    /// The new side.
    #[arg(value_name = "NEW")]
    new: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, help_heading = "Output")]
    format: Format,
    /// Exit 1 when a cell changed (as `git diff --exit-code`), e.g. to fail a CI job.
    #[arg(long, help_heading = "Output")]
    exit_code: bool,
    /// Only these policies (repeatable).
    #[arg(long = "policy", value_name = "POLICY", help_heading = "Cells")]
    policies: Vec<String>,
    /// Only these scenarios (repeatable).
    #[arg(long = "scenario", value_name = "SCENARIO", help_heading = "Cells")]
    scenarios: Vec<String>,
    /// Optional oracles to turn on (repeatable): dirty-at-freeze.
    #[arg(long = "oracle", value_name = "NAME", help_heading = "Exploration")]
    oracles: Vec<String>,
    /// Step budget of each run; a longer run ends as step-limit.
    #[arg(long, alias = "steps-max", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=10_000_000), help_heading = "Exploration")]
    max_steps: u32,
    /// Worker threads (default: all cores). The output does not depend on it.
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u32).range(1..=1024))]
    jobs: Option<u32>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    files: FileArgs,
}

enum Spec {
    Json(PathBuf),
    Files {
        label: String,
        files: Vec<(String, Vec<u8>)>,
    },
    Policy(String),
}

fn spec(text: &str) -> Result<Spec, ExitCode> {
    if text.ends_with(".json") {
        return Ok(Spec::Json(PathBuf::from(text)));
    }
    let path = Path::new(text);
    if path.is_dir() {
        let mut files = Vec::new();
        let entries = std::fs::read_dir(path).map_err(|e| usage_error(format!("cannot read {text}: {e}")))?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "ff"))
            .collect();
        paths.sort();
        for p in paths {
            let bytes =
                std::fs::read(&p).map_err(|e| usage_error(format!("cannot read {}: {e}", p.display())))?;
            files.push((p.display().to_string(), bytes));
        }
        return Ok(Spec::Files {
            label: text.to_string(),
            files,
        });
    }
    if let Some((rev, dir)) = text.split_once(':') {
        return git_files(rev, dir).map(|files| Spec::Files {
            label: text.to_string(),
            files,
        });
    }
    Ok(Spec::Policy(text.to_string()))
}

fn git(args: &[&str]) -> Result<Vec<u8>, ExitCode> {
    let output = Command::new("git")
        .args(args)
        .output()
        .map_err(|e| usage_error(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        return Err(usage_error(format!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(output.stdout)
}

/// The `*.ff` files directly in `dir` at `rev`, as `REV:PATH` and contents.
fn git_files(rev: &str, dir: &str) -> Result<Vec<(String, Vec<u8>)>, ExitCode> {
    let dir = dir.trim_end_matches('/');
    let tree = if dir.is_empty() || dir == "." {
        rev.to_string()
    } else {
        format!("{rev}:{dir}")
    };
    let listing = git(&["ls-tree", "--name-only", &tree])?;
    let mut files = Vec::new();
    for name in String::from_utf8_lossy(&listing)
        .lines()
        .filter(|n| n.ends_with(".ff"))
    {
        let path = if tree == rev {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        };
        let bytes = git(&["show", &format!("{rev}:{path}")])?;
        files.push((format!("{rev}:{path}"), bytes));
    }
    Ok(files)
}

/// Loads a side's files over the shipped set; its rows are the policies its
/// files define.
fn load_files(files: &[(String, Vec<u8>)]) -> Result<Workspace, ExitCode> {
    let map: BTreeMap<PathBuf, Vec<u8>> = files.iter().map(|(p, b)| (PathBuf::from(p), b.clone())).collect();
    let paths: Vec<PathBuf> = map.keys().cloned().collect();
    let mut read = |p: &Path| {
        map.get(p)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    };
    let loaded = dsl::load_all_library(
        &paths,
        &mut read,
        &freezefuzz::fault::FaultRegistry::builtin(),
        &[],
        &dsl::Library::shipped(),
    );
    if !loaded.diagnostics.is_empty() {
        for d in &loaded.diagnostics {
            eprintln!("{}", diagnostics::render(d, false));
        }
        return Err(ExitCode::from(EXIT_USAGE));
    }
    let mut ws = loaded.workspace;
    let shipped: Vec<bool> = ws
        .policies
        .iter()
        .map(|p| ws.file_path(p.loc.file).starts_with(freezefuzz::shipped::PREFIX))
        .collect();
    let mut shipped = shipped.into_iter();
    ws.policies.retain(|_| !shipped.next().unwrap_or(false));
    Ok(ws)
}

fn side(c: &Computed) -> Side<'_> {
    Side {
        label: c.label.clone(),
        report: &c.report,
        programs: c.programs.as_deref(),
    }
}

struct Computed {
    label: String,
    report: MatrixReport,
    programs: Option<Vec<Program>>,
}

pub(super) fn run(args: DiffArgs) -> ExitCode {
    let oracles = match OracleSet::with_optional(&args.oracles) {
        Ok(o) => o,
        Err(e) => return usage_error(e),
    };
    let (old, new) = match (spec(&args.old), spec(&args.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    let jobs = jobs_or_all(args.jobs);
    let compute = |label: &str, ws: &Workspace, policies: &[String]| -> Result<Computed, ExitCode> {
        let (p, s, programs) = compile_cells(ws, policies, &args.scenarios)?;
        let report = exhaustive_report(
            (p, s, &programs),
            &oracles,
            &args.limits,
            args.max_steps,
            &args.files,
            jobs,
            &std::sync::atomic::AtomicBool::new(false),
        );
        Ok(Computed {
            label: label.to_string(),
            report,
            programs: Some(programs),
        })
    };
    let sides = match (old, new) {
        (Spec::Json(a), Spec::Json(b)) => (|| {
            let read = |p: &PathBuf| read_report(p);
            Ok((
                Computed {
                    label: a.display().to_string(),
                    report: read(&a)?,
                    programs: None,
                },
                Computed {
                    label: b.display().to_string(),
                    report: read(&b)?,
                    programs: None,
                },
            ))
        })(),
        (Spec::Policy(a), Spec::Policy(b)) => (|| {
            let ws = load(&args.files)?;
            let mut old = compute(&a, &ws, std::slice::from_ref(&a))?;
            let mut new = compute(&b, &ws, std::slice::from_ref(&b))?;
            // Matched scenario by scenario: one row, named after both.
            let row = format!("{a} → {b}");
            for cell in old.report.cells.iter_mut().chain(new.report.cells.iter_mut()) {
                cell.policy = row.clone();
            }
            Ok((old, new))
        })(),
        (Spec::Files { label: la, files: fa }, Spec::Files { label: lb, files: fb }) => (|| {
            let (wa, wb) = (load_files(&fa)?, load_files(&fb)?);
            Ok((
                compute(&la, &wa, &args.policies)?,
                compute(&lb, &wb, &args.policies)?,
            ))
        })(),
        _ => Err(usage_error(
            "both sides must be of one kind: two JSON matrices, two directories or revisions, or two policy names",
        )),
    };
    let (old, new) = match sides {
        Ok(sides) => sides,
        Err(code) => return code,
    };
    let result = diff::diff(&side(&old), &side(&new), &oracles, args.max_steps);
    let code = emit(&match args.format {
        Format::Table => diff::text(&result),
        Format::Markdown => diff::markdown(&result),
        Format::Json => diff::json(&result),
    });
    let changed = !(result.changed.is_empty() && result.only_old.is_empty() && result.only_new.is_empty());
    if code == ExitCode::SUCCESS && args.exit_code && changed {
        return ExitCode::from(super::EXIT_FAILED);
    }
    code
}
