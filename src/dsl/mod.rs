//! The policy language: pest grammar → AST with spans → checked IR.
//!
//! The only entry points are [`load`], [`load_all`] and [`load_str`]; they do no
//! IO of their own, reading files through the closure they are given (the
//! CLI passes one that reads the disk, tests pass one that reads memory).
//! Pipeline: `parse.rs` (pre-scan, pest, AST), `lower.rs` (names, `extends`,
//! inlining, defaults, limits), `checks.rs` (lock checks on each hook),
//! `diag.rs` (the error type). The language is described in
//! docs/policy-language.md.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub mod ast;
pub mod checks;
pub mod diag;
pub mod lower;
pub mod parse;

pub use diag::{Code, Diagnostic};

use crate::ir::{self, FileId, limits};
use diag::Source;

/// The name of the file that holds the default hooks, in [`ir::Workspace::files`].
pub const DEFAULTS_PATH: &str = "<builtin defaults>";

/// The default `thaw`, `writeback` and `flusher` hooks, in the policy language.
pub const DEFAULTS_SOURCE: &str = include_str!("defaults.ff");

/// Reads a file's bytes (the dsl's only window on the outside world).
pub type Reader<'a> = dyn FnMut(&Path) -> io::Result<Vec<u8>> + 'a;

/// Everything a load found: the workspace (with every policy and scenario
/// that lowered cleanly) and every error, sorted by file and position.
#[derive(Debug)]
pub struct Loaded {
    pub workspace: ir::Workspace,
    pub diagnostics: Vec<Diagnostic>,
}

/// The errors of a failed load.
#[derive(Debug)]
pub struct LoadErrors {
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}: {} [{}]", d.location(), d.message, d.code.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}

/// Loads `paths` together (so that `extends` between them resolves) and
/// lowers them; fails if any file has an error.
pub fn load(paths: &[PathBuf], read: &mut Reader<'_>) -> Result<ir::Workspace, LoadErrors> {
    let loaded = load_all(paths, read);
    if loaded.diagnostics.is_empty() {
        Ok(loaded.workspace)
    } else {
        Err(LoadErrors {
            diagnostics: loaded.diagnostics,
        })
    }
}

/// Loads one file from memory (no `extends` auto-loading: every parent must be
/// in the same text).
pub fn load_str(path: &str, text: &str) -> Result<ir::Workspace, LoadErrors> {
    let path_buf = PathBuf::from(path);
    let bytes = text.as_bytes().to_vec();
    let mut read = |p: &Path| {
        if p == path_buf {
            Ok(bytes.clone())
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    };
    load(std::slice::from_ref(&PathBuf::from(path)), &mut read)
}

/// Loads and lowers everything it can, collecting every error. If a policy
/// `extends` a parent that none of the files defines, `PARENT.ff` is read from
/// the directory of the child's file and appended to the files.
pub fn load_all(paths: &[PathBuf], read: &mut Reader<'_>) -> Loaded {
    load_all_with(paths, read, &crate::fault::FaultRegistry::builtin())
}

/// [`load`] for a program that registers fault plug-ins: their names are
/// accepted in `faults` blocks besides the shipped ones.
pub fn load_with(
    paths: &[PathBuf],
    read: &mut Reader<'_>,
    registry: &crate::fault::FaultRegistry,
) -> Result<ir::Workspace, LoadErrors> {
    let loaded = load_all_with(paths, read, registry);
    if loaded.diagnostics.is_empty() {
        Ok(loaded.workspace)
    } else {
        Err(LoadErrors {
            diagnostics: loaded.diagnostics,
        })
    }
}

/// [`load_all`] with the fault plug-ins of `registry`.
pub fn load_all_with(
    paths: &[PathBuf],
    read: &mut Reader<'_>,
    registry: &crate::fault::FaultRegistry,
) -> Loaded {
    load_all_searching(paths, read, registry, &[])
}

/// Files known without reading the disk (the shipped policies and scenarios,
/// [`crate::shipped`]): loaded before the files given, or only searched for
/// parents.
#[derive(Clone, Debug, Default)]
pub struct Library {
    /// Display path (e.g. `<shipped>/mainline.ff`) and text of each file.
    pub files: Vec<(String, &'static str)>,
    /// Load every file (rows before the given files'); otherwise a file is
    /// loaded only when a policy `extends` a parent named after it.
    pub load_all: bool,
}

impl Library {
    /// The shipped files, all loaded.
    pub fn shipped() -> Library {
        Library {
            files: crate::shipped::sources(),
            load_all: true,
        }
    }

    /// The shipped files, searched for parents only.
    pub fn shipped_parents() -> Library {
        Library {
            files: crate::shipped::sources(),
            load_all: false,
        }
    }

    fn file_named(&self, file_name: &str) -> Option<&(String, &'static str)> {
        self.files
            .iter()
            .find(|(path, _)| Path::new(path).file_name().is_some_and(|n| n == file_name))
    }
}

/// [`load`] on top of a [`Library`]: a policy or scenario in the given files
/// shadows the library's of the same name (so an edited copy of a shipped
/// file replaces it).
pub fn load_library(
    paths: &[PathBuf],
    read: &mut Reader<'_>,
    library: &Library,
) -> Result<ir::Workspace, LoadErrors> {
    let loaded = load_all_library(paths, read, &crate::fault::FaultRegistry::builtin(), &[], library);
    if loaded.diagnostics.is_empty() {
        Ok(loaded.workspace)
    } else {
        Err(LoadErrors {
            diagnostics: loaded.diagnostics,
        })
    }
}

/// [`load_all_with`], also looking for a missing parent `PARENT.ff` in each
/// of `parent_dirs`, in order, after the directory of the child's file.
pub fn load_all_searching(
    paths: &[PathBuf],
    read: &mut Reader<'_>,
    registry: &crate::fault::FaultRegistry,
    parent_dirs: &[PathBuf],
) -> Loaded {
    load_all_library(paths, read, registry, parent_dirs, &Library::default())
}

/// Names a file defines (policies and scenarios).
fn defined_names(tree: &ast::File) -> impl Iterator<Item = &str> {
    tree.items.iter().map(|i| match i {
        ast::Item::Policy(p) => p.name.text.as_str(),
        ast::Item::Scenario(s) => s.name.text.as_str(),
    })
}

/// The whole loader: the given files, then the library's (all of them, or
/// the parents asked for), each parent looked for beside its child, then in
/// `parent_dirs`, then in the library.
pub fn load_all_library(
    paths: &[PathBuf],
    read: &mut Reader<'_>,
    registry: &crate::fault::FaultRegistry,
    parent_dirs: &[PathBuf],
    library: &Library,
) -> Loaded {
    let fault_names = registry.names();
    let mut sources: Vec<Source> = Vec::new();
    let mut trees: Vec<(FileId, ast::File)> = Vec::new();
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    let mut loaded_paths: Vec<PathBuf> = Vec::new();
    for path in paths {
        if loaded_paths.contains(path) {
            continue;
        }
        loaded_paths.push(path.clone());
        read_one(path, read, &mut sources, &mut trees, &mut diagnostics);
    }
    if library.load_all {
        // Library files come first (their rows lead the matrix); whatever
        // the given files define shadows theirs.
        let given: Vec<String> = trees
            .iter()
            .flat_map(|(_, t)| defined_names(t).map(str::to_owned))
            .collect();
        let mut front = Vec::new();
        for (path, text) in &library.files {
            loaded_paths.push(PathBuf::from(path));
            let mut one = Vec::new();
            add_bytes(
                path,
                text.as_bytes().to_vec(),
                &mut sources,
                &mut one,
                &mut diagnostics,
            );
            for (file, mut tree) in one {
                tree.items.retain(|item| {
                    let name = match item {
                        ast::Item::Policy(p) => &p.name.text,
                        ast::Item::Scenario(s) => &s.name.text,
                    };
                    !given.contains(name)
                });
                front.push((file, tree));
            }
        }
        front.append(&mut trees);
        trees = front;
    }
    // Auto-load missing parents from the child's directory, until nothing new.
    let mut tried: Vec<String> = Vec::new();
    loop {
        let defined: Vec<&str> = trees
            .iter()
            .flat_map(|(_, t)| t.items.iter())
            .filter_map(|i| match i {
                ast::Item::Policy(p) => Some(p.name.text.as_str()),
                ast::Item::Scenario(_) => None,
            })
            .collect();
        let mut wanted: Vec<(String, PathBuf)> = Vec::new();
        for (file, tree) in &trees {
            for item in &tree.items {
                if let ast::Item::Policy(p) = item
                    && let Some(parent) = &p.extends
                    && !defined.contains(&parent.text.as_str())
                    && !tried.contains(&parent.text)
                    && !wanted.iter().any(|(w, _)| *w == parent.text)
                {
                    let dir = Path::new(&sources[file.0 as usize].path)
                        .parent()
                        .map(Path::to_path_buf)
                        .unwrap_or_default();
                    wanted.push((parent.text.clone(), dir.join(format!("{}.ff", parent.text))));
                }
            }
        }
        if wanted.is_empty() {
            break;
        }
        for (parent, beside) in wanted {
            tried.push(parent.clone());
            let file_name = format!("{parent}.ff");
            let candidates = std::iter::once(beside).chain(parent_dirs.iter().map(|d| d.join(&file_name)));
            let mut found = false;
            for path in candidates {
                if loaded_paths.contains(&path) {
                    found = true;
                    break;
                }
                if let Ok(bytes) = read(&path) {
                    loaded_paths.push(path.clone());
                    add_bytes(
                        &path.display().to_string(),
                        bytes,
                        &mut sources,
                        &mut trees,
                        &mut diagnostics,
                    );
                    found = true;
                    break;
                }
            }
            // Then the library. A parent found nowhere is reported by the
            // lowering as a missing parent.
            if !found
                && let Some((path, text)) = library.file_named(&file_name)
                && !loaded_paths.contains(&PathBuf::from(path))
            {
                loaded_paths.push(PathBuf::from(path));
                add_bytes(
                    path,
                    text.as_bytes().to_vec(),
                    &mut sources,
                    &mut trees,
                    &mut diagnostics,
                );
            }
        }
    }
    let defaults_file = FileId(sources.len() as u32);
    let defaults_source = Source::new(DEFAULTS_PATH, DEFAULTS_SOURCE);
    sources.push(defaults_source.clone());
    let (defaults_tree, defaults_errors) = parse::parse_file(&defaults_source, defaults_file);
    assert!(
        defaults_errors.is_empty(),
        "the builtin defaults must parse: {defaults_errors:?}"
    );
    let mut dropped = 0;
    let (policies, scenarios) = {
        let mut errors = lower::Errors::new(&sources);
        let result = lower::lower(&trees, &(defaults_file, defaults_tree), &mut errors, &fault_names);
        diagnostics.extend(errors.list);
        dropped += errors.dropped;
        result
    };
    sort(&mut diagnostics, paths);
    if diagnostics.len() > limits::DIAGNOSTICS_MAX {
        dropped += diagnostics.len() - limits::DIAGNOSTICS_MAX;
        diagnostics.truncate(limits::DIAGNOSTICS_MAX);
    }
    if dropped > 0 {
        let path = diagnostics.last().map_or_else(String::new, |d| d.path.clone());
        diagnostics.push(
            Diagnostic::whole_file(
                Code::TooManyErrors,
                &path,
                format!(
                    "and {dropped} more errors (only the first DIAGNOSTICS_MAX = {} are reported)",
                    limits::DIAGNOSTICS_MAX
                ),
            )
            .with_help("fix the errors above and check again"),
        );
    }
    let files = sources
        .into_iter()
        .map(|s| ir::SourceFile {
            path: s.path,
            text: (*s.text).clone(),
        })
        .collect();
    Loaded {
        workspace: ir::Workspace {
            files,
            policies,
            scenarios,
        },
        diagnostics,
    }
}

/// Sorts errors by file (in the order given, then the rest by name) and
/// position within the file.
fn sort(diagnostics: &mut [Diagnostic], paths: &[PathBuf]) {
    let rank = |d: &Diagnostic| {
        paths
            .iter()
            .position(|p| p.display().to_string() == d.path)
            .unwrap_or(paths.len())
    };
    diagnostics
        .sort_by(|a, b| (rank(a), &a.path, a.offset, a.code).cmp(&(rank(b), &b.path, b.offset, b.code)));
}

fn read_one(
    path: &Path,
    read: &mut Reader<'_>,
    sources: &mut Vec<Source>,
    trees: &mut Vec<(FileId, ast::File)>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let shown = path.display().to_string();
    match read(path) {
        Ok(bytes) => add_bytes(&shown, bytes, sources, trees, diagnostics),
        Err(error) => diagnostics.push(
            Diagnostic::whole_file(
                Code::UnreadableFile,
                &shown,
                format!("cannot read {shown}: {error}"),
            )
            .with_help("check the path and its permissions"),
        ),
    }
}

/// Checks size and encoding, then parses; adds the file to `sources`.
fn add_bytes(
    path: &str,
    bytes: Vec<u8>,
    sources: &mut Vec<Source>,
    trees: &mut Vec<(FileId, ast::File)>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if bytes.len() > limits::FILE_BYTES_MAX {
        diagnostics.push(
            Diagnostic::whole_file(
                Code::FileTooLarge,
                path,
                // The reader may stop at the limit plus one byte: say "more than".
                format!(
                    "{path} is more than FILE_BYTES_MAX = {} bytes long",
                    limits::FILE_BYTES_MAX
                ),
            )
            .with_help(
                "policy and scenario files are small; split this one or check that it is the right file",
            ),
        );
        return;
    }
    let file = FileId(sources.len() as u32);
    let text = match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(error) => {
            let position = error.utf8_error().valid_up_to();
            let lossy = String::from_utf8_lossy(error.as_bytes()).into_owned();
            let source = Source::new(path, lossy);
            diagnostics.push(
                Diagnostic::at(
                    Code::InvalidUtf8,
                    &source,
                    Some(file),
                    position,
                    1,
                    format!("{path} is not valid UTF-8 (invalid byte at offset {position})"),
                )
                .with_label("invalid byte")
                .with_help("policy files are UTF-8 text; is this a binary file?"),
            );
            sources.push(source);
            return;
        }
    };
    let source = Source::new(path, text);
    let (tree, errors) = parse::parse_file(&source, file);
    diagnostics.extend(errors);
    sources.push(source);
    trees.push((file, tree));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_lower() {
        let ws = load_str("p.ff", "policy p { freeze { skip } page_mkwrite { lock_page } }").expect("loads");
        assert_eq!(ws.files.last().map(|f| f.path.as_str()), Some(DEFAULTS_PATH));
        let p = &ws.policies[0];
        assert_eq!(p.hooks.thaw.len(), 3);
        assert_eq!(ws.file_path(p.hooks.writeback[0].loc.file), DEFAULTS_PATH);
    }

    #[test]
    fn late_binding_of_named_bodies() {
        let text = "policy a { body j { wait_unfrozen fs } freeze { j } page_mkwrite { j; lock_page } }\n\
                    policy b extends a { body j { wait_unfrozen pagefault } }";
        let ws = load_str("p.ff", text).expect("loads");
        let b = ws.policy("b").expect("b");
        assert_eq!(
            b.hooks.freeze[0].kind,
            ir::StmtKind::WaitUnfrozen(ir::Level::Pagefault)
        );
    }
}
