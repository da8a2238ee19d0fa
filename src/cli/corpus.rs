//! `corpus check` and the corpus file IO: listing, reading, and atomic
//! saving of new witnesses (temp file + rename, deduplicated).

use std::fmt::Write as _;
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
    let temp = write_temp(path, text)?;
    let result = std::fs::rename(&temp, path);
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Writes `text` to a new file `path`, failing with `AlreadyExists` rather
/// than replacing one: a temporary file, then a hard link (which never
/// overwrites), so that the file appears whole or not at all.
fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    let temp = write_temp(path, text)?;
    let result = match std::fs::hard_link(&temp, path) {
        // A file system without hard links: under the corpus lock no other
        // save can create `path` between the check and the rename.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists && !path.exists() => {
            std::fs::rename(&temp, path)
        }
        other => other,
    };
    let _ = std::fs::remove_file(&temp);
    result
}

/// The marker in the names of temporary files (`.NAME.tmp-PID`).
const TEMP_MARKER: &str = ".tmp-";

/// Writes `text`, synced, to a temporary file beside `path`; returns its path.
fn write_temp(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}{TEMP_MARKER}{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    })();
    match result {
        Ok(()) => Ok(temp),
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// An exclusive lock on a corpus directory (`DIR/.freezefuzz.lock`), held
/// while a save reads the entries, decides what is new and writes it, so
/// that two saves into one corpus neither lose nor duplicate witnesses.
/// Released when dropped (or when the process dies).
struct CorpusLock {
    _file: std::fs::File,
}

impl CorpusLock {
    fn take(dir: &Path) -> std::io::Result<CorpusLock> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(".freezefuzz.lock"))?;
        #[cfg(unix)]
        {
            use std::os::fd::AsRawFd as _;
            // SAFETY: flock on a descriptor we own; it blocks until the
            // other save releases its lock.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(CorpusLock { _file: file })
    }
}

/// Removes the temporary files of saves that were killed before their
/// rename. Called under the lock, when no other save is writing.
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.contains(TEMP_MARKER) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => note!(
                    "corpus {}: removed {name}, left by an interrupted save",
                    dir.display()
                ),
                Err(e) => note!("warning: cannot remove {}: {e}", entry.path().display()),
            }
        }
    }
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
    let text = super::read::read_text(path, super::read::CORPUS_ENTRY_BYTES_MAX)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    corpus::parse(&text).map_err(|e| match e {
        corpus::CorpusError::Toml { .. } => format!("{}:{e}", path.display()),
        other => format!("{}: {other}", path.display()),
    })
}

/// `--save`: adds each witness not yet in the corpus (same policy,
/// scenario and schedule, labels aside), with the oracles, step budget and
/// fault spec it was found with. Runs under the corpus lock; an entry that
/// cannot be read is reported and does not block the save.
pub(super) fn save(
    dir: &Path,
    found: &[Found<'_>],
    oracles: &OracleSet,
    steps_max: u32,
    faults: Option<&str>,
) -> Result<(), ExitCode> {
    let cannot = |what: &str, e: std::io::Error| usage_error(format!("cannot {what} {}: {e}", dir.display()));
    std::fs::create_dir_all(dir).map_err(|e| cannot("create", e))?;
    let _lock = CorpusLock::take(dir).map_err(|e| cannot("lock", e))?;
    remove_stale_temps(dir);
    let paths = list(dir).map_err(|e| cannot("read", e))?;
    let mut known: Vec<(String, String, String)> = Vec::new();
    for path in &paths {
        match read(path) {
            Ok(entry) => {
                let plain = corpus::plain_schedule(&entry.schedule).unwrap_or_default();
                known.push((entry.policy, entry.scenario, plain));
            }
            Err(e) => note!("warning: {e}\n  (skipped: new witnesses are not compared with it)"),
        }
    }
    let optional: Vec<String> = oracles.optional_names().iter().map(|s| s.to_string()).collect();
    let (mut added, mut skipped) = (0, 0);
    for f in found {
        let (result, _) = match freezefuzz::engine::run::replay(f.program, oracles, &f.choices, steps_max) {
            Ok(r) => r,
            Err(_) => continue,
        };
        let mut entry = corpus::entry_for(f.program, &f.choices, result.outcomes, f.note.clone());
        entry.oracles = optional.clone();
        entry.steps_max = steps_max;
        entry.faults = faults
            .filter(|_| entry.policy.ends_with(FAULTS_SUFFIX))
            .map(str::to_string);
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
        let text = corpus::to_toml(&entry);
        let mut n = 1;
        let path = loop {
            let path = if n == 1 {
                dir.join(format!("{stem}.toml"))
            } else {
                dir.join(format!("{stem}-{n}.toml"))
            };
            match write_new(&path, &text) {
                Ok(()) => break path,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(usage_error(format!("cannot write {}: {e}", path.display()))),
            }
        };
        let _ = path;
        known.push(key);
        added += 1;
    }
    note!(
        "corpus {}: {added} witness(es) added, {skipped} already there",
        dir.display()
    );
    Ok(())
}

/// The suffix of the policies `--faults` adds.
const FAULTS_SUFFIX: &str = "+faults";

/// The file arguments to load an entry with: its own `faults` spec, unless
/// `--faults` gives the same one or none.
pub(super) fn files_for_entry(entry: &Entry, files: &FileArgs) -> Result<FileArgs, String> {
    match (&entry.faults, &files.faults) {
        (Some(mine), Some(given)) if mine != given => Err(format!(
            "the entry's faults `{mine}` differ from --faults `{given}`"
        )),
        (Some(mine), _) => Ok(FileArgs {
            faults: Some(mine.clone()),
            ..files.clone()
        }),
        (None, _) => Ok(files.clone()),
    }
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
    let mut out = String::new();
    for path in &paths {
        let entry = match read(path) {
            Ok(e) => e,
            Err(e) => {
                note!("error: {e}");
                broken += 1;
                continue;
            }
        };
        // An entry of a `POLICY+faults` policy carries its fault spec.
        let faulty = match (&entry.faults, entry.policy.strip_suffix(FAULTS_SUFFIX)) {
            (Some(spec), Some(base)) => match freezefuzz::fault::parse_specs(spec) {
                Ok(specs) => workspace
                    .policy(base)
                    .map(|base| freezefuzz::fault::with_faults(base, &specs)),
                Err(e) => {
                    note!("error: {}: `faults`: {e}", path.display());
                    broken += 1;
                    continue;
                }
            },
            _ => None,
        };
        let policy = if entry.faults.is_some() && entry.policy.ends_with(FAULTS_SUFFIX) {
            faulty.as_ref()
        } else {
            workspace.policy(&entry.policy)
        };
        let (Some(policy), Some(scenario)) = (
            policy,
            workspace.scenarios.iter().find(|s| s.name == entry.scenario),
        ) else {
            note!(
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
                note!("error: {}: `oracles`: {e}", path.display());
                broken += 1;
                continue;
            }
        };
        let program = match program::compile(policy, scenario) {
            Ok(p) => p,
            Err(e) => {
                let located = super::load::located_compile_error(&workspace, policy, scenario, &e);
                note!("error: {}: {located}", path.display());
                broken += 1;
                continue;
            }
        };
        match corpus::check(&program, &oracles, &entry) {
            Ok(Verdict::Same) => same += 1,
            Ok(Verdict::Changed { expected, got }) => {
                changed += 1;
                let _ = writeln!(
                    out,
                    "CHANGED {} ({} × {})\n{}",
                    path.display(),
                    entry.policy,
                    entry.scenario,
                    corpus::diff(expected, got)
                );
            }
            Ok(Verdict::Stale(error)) => {
                changed += 1;
                let _ = writeln!(
                    out,
                    "STALE {} ({} × {}): {error}\n  (replay it with --continue-random SEED to see where the edited policy goes instead)",
                    path.display(),
                    entry.policy,
                    entry.scenario
                );
            }
            Err(e) => {
                note!("error: {}: {e}", path.display());
                broken += 1;
            }
        }
    }
    let _ = writeln!(
        out,
        "corpus {}: {} entries, {same} unchanged, {changed} changed, {broken} unreadable",
        dir.display(),
        paths.len()
    );
    let written = super::emit(&out);
    if written != ExitCode::SUCCESS {
        written
    } else if broken > 0 {
        ExitCode::from(EXIT_USAGE)
    } else if changed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    }
}
