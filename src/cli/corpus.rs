//! `corpus check` and the corpus file IO: listing, reading, and atomic
//! saving of new witnesses (temp file + rename, deduplicated).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use freezefuzz::corpus::{self, Entry, Verdict};
use freezefuzz::engine::program;
use freezefuzz::oracle::OracleSet;

use super::args::FileArgs;
use super::load::load;
use super::witness::Found;
use super::{EXIT_FAILED, EXIT_USAGE, usage_error};

/// `freezefuzz corpus …`.
#[derive(clap::Subcommand, Debug)]
pub(super) enum CorpusAction {
    /// Replay every corpus entry; exit 1 (with a diff) if an outcome changed.
    Check {
        /// The corpus directory.
        #[arg(
            long = "corpus-dir",
            alias = "dir",
            value_name = "DIR",
            default_value = "corpus"
        )]
        dir: PathBuf,
        #[command(flatten)]
        files: FileArgs,
    },
}

/// Writes `text` to `path` through a temporary file in the same directory
/// and a rename, so that an interrupted write never leaves a torn file.
pub(super) fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// The `*.toml` files of a corpus directory, sorted by name.
pub(super) fn list(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads and parses one corpus file; the error names the file and, for
/// TOML errors, the line and column.
pub(super) fn read(path: &Path) -> Result<Entry, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    corpus::parse(&text).map_err(|e| match e {
        corpus::CorpusError::Toml { .. } => format!("{}:{e}", path.display()),
        other => format!("{}: {other}", path.display()),
    })
}

/// `--save`: adds each witness not yet in the corpus (same policy,
/// scenario and schedule, labels aside).
pub(super) fn save(dir: &Path, found: &[Found<'_>], oracles: &OracleSet) -> Result<(), ExitCode> {
    std::fs::create_dir_all(dir).map_err(|e| usage_error(format!("cannot create {}: {e}", dir.display())))?;
    let paths = list(dir).map_err(|e| usage_error(format!("cannot read {}: {e}", dir.display())))?;
    let mut known: Vec<(String, String, String)> = Vec::new();
    for path in &paths {
        let entry = read(path).map_err(usage_error)?;
        let plain = corpus::plain_schedule(&entry.schedule).unwrap_or_default();
        known.push((entry.policy, entry.scenario, plain));
    }
    let (mut added, mut skipped) = (0, 0);
    for f in found {
        let (result, _) = match freezefuzz::engine::run::replay(f.program, oracles, &f.choices, 1_000_000) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let entry = corpus::entry_for(f.program, &f.choices, result.outcomes, f.note.clone());
        let key = (
            entry.policy.clone(),
            entry.scenario.clone(),
            corpus::plain_schedule(&entry.schedule).unwrap_or_default(),
        );
        if known.contains(&key) {
            skipped += 1;
            continue;
        }
        let stem = corpus::file_stem(&entry.policy, &entry.scenario, f.outcome);
        let mut path = dir.join(format!("{stem}.toml"));
        let mut n = 2;
        while path.exists() {
            path = dir.join(format!("{stem}-{n}.toml"));
            n += 1;
        }
        write_atomically(&path, &corpus::to_toml(&entry))
            .map_err(|e| usage_error(format!("cannot write {}: {e}", path.display())))?;
        known.push(key);
        added += 1;
    }
    eprintln!(
        "corpus {}: {added} witness(es) added, {skipped} already there",
        dir.display()
    );
    Ok(())
}

/// `freezefuzz corpus check`: replays every entry. Exit 1 when an outcome
/// changed or a schedule went stale, 2 when a file cannot be read.
/// `freezefuzz corpus …`.
pub(super) fn run(action: CorpusAction) -> ExitCode {
    match action {
        CorpusAction::Check { dir, files } => check_command(&dir, &files),
    }
}

pub(super) fn check_command(dir: &Path, files: &FileArgs) -> ExitCode {
    let paths = match list(dir) {
        Ok(p) => p,
        Err(e) => return usage_error(format!("cannot read corpus directory {}: {e}", dir.display())),
    };
    let workspace = match load(files) {
        Ok(ws) => ws,
        Err(code) => return code,
    };
    let (mut same, mut changed, mut broken) = (0, 0, 0);
    for path in &paths {
        let entry = match read(path) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("error: {e}");
                broken += 1;
                continue;
            }
        };
        let (Some(policy), Some(scenario)) = (
            workspace.policy(&entry.policy),
            workspace.scenarios.iter().find(|s| s.name == entry.scenario),
        ) else {
            eprintln!(
                "error: {}: policy `{}` or scenario `{}` is not loaded",
                path.display(),
                entry.policy,
                entry.scenario
            );
            broken += 1;
            continue;
        };
        let oracles = match OracleSet::with_optional(&entry.oracles) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: {}: `oracles`: {e}", path.display());
                broken += 1;
                continue;
            }
        };
        let program = match program::compile(policy, scenario) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                broken += 1;
                continue;
            }
        };
        match corpus::check(&program, &oracles, &entry) {
            Ok(Verdict::Same) => same += 1,
            Ok(Verdict::Changed { expected, got }) => {
                changed += 1;
                println!(
                    "CHANGED {} ({} × {})\n{}",
                    path.display(),
                    entry.policy,
                    entry.scenario,
                    corpus::diff(expected, got)
                );
            }
            Ok(Verdict::Stale(error)) => {
                changed += 1;
                println!(
                    "STALE {} ({} × {}): {error}\n  (replay it with --continue-random SEED to see where the edited policy goes instead)",
                    path.display(),
                    entry.policy,
                    entry.scenario
                );
            }
            Err(e) => {
                eprintln!("error: {}: {e}", path.display());
                broken += 1;
            }
        }
    }
    println!(
        "corpus {}: {} entries, {same} unchanged, {changed} changed, {broken} unreadable",
        dir.display(),
        paths.len()
    );
    if broken > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if changed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
