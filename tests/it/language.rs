//! The policy language end to end: shipped files check clean, broken files
//! give the expected diagnostics (snapshots), the lowered IR of every shipped
//! policy and scenario (snapshots), bad input never panics (fixed cases and a
//! mutation property test), and the reference documents every error code.

use std::io;
use std::path::{Path, PathBuf};

use freezefuzz::dsl::{self, Code, Diagnostic};
use freezefuzz::report::{diagnostics, ir_text};
use proptest::prelude::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Reads files relative to the crate root (paths stay short in diagnostics).
fn read_from_root(path: &Path) -> io::Result<Vec<u8>> {
    std::fs::read(root().join(path))
}

fn shipped_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("policies"))
        .expect("policies/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ff"))
        .map(|p| p.strip_prefix(root()).expect("under root").to_path_buf())
        .collect();
    files.sort();
    files
}

/// Snapshots of this module are named `language__…` (the binary's name is left out).
fn snapshots() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    settings
}

fn render(list: &[Diagnostic]) -> String {
    diagnostics::render_all_plain(list)
}

/// Loads bytes as one file named `path`; no other file exists.
fn load_bytes(path: &str, bytes: &[u8]) -> dsl::Loaded {
    let name = PathBuf::from(path);
    let mut read = |p: &Path| {
        if p == name {
            Ok(bytes.to_vec())
        } else {
            Err(io::Error::from(io::ErrorKind::NotFound))
        }
    };
    dsl::load_all(std::slice::from_ref(&name), &mut read)
}

#[test]
fn every_shipped_file_checks_clean_together() {
    let files = shipped_files();
    assert!(files.len() >= 8, "{files:?}");
    let loaded = dsl::load_all(&files, &mut read_from_root);
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded.diagnostics));
    let names: Vec<&str> = loaded
        .workspace
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "block-on-mapped",
            "mainline",
            "no-block",
            "sigbus",
            "skip-frozen",
            "sync-before-block",
            "wait-in-mkwrite"
        ]
    );
    let scenarios: Vec<&str> = loaded
        .workspace
        .scenarios
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        scenarios,
        [
            "case1-after-freeze",
            "case2-after-freeze",
            "case3-after-freeze",
            "case4-after-freeze",
            "case1-racing",
            "case2-racing",
            "case3-racing",
            "case4-racing"
        ]
    );
}

#[test]
fn every_shipped_file_checks_clean_alone_loading_its_parents() {
    for file in shipped_files() {
        let ws = dsl::load(std::slice::from_ref(&file), &mut read_from_root)
            .unwrap_or_else(|e| panic!("{}: {}", file.display(), render(&e.diagnostics)));
        assert_eq!(ws.files.last().map(|f| f.path.as_str()), Some(dsl::DEFAULTS_PATH));
    }
    // mainline extends wait-in-mkwrite, which is found beside it and is a policy too.
    let ws = dsl::load(&[PathBuf::from("policies/mainline.ff")], &mut read_from_root).expect("loads");
    let names: Vec<&str> = ws.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["mainline", "wait-in-mkwrite"]);
}

#[test]
fn valid_files_check_clean() {
    let ws = dsl::load(
        &[PathBuf::from("tests/data/valid/everything.ff")],
        &mut read_from_root,
    )
    .unwrap_or_else(|e| panic!("{}", render(&e.diagnostics)));
    let p = ws.policy("everything").expect("everything");
    assert_eq!(p.faults.len(), 2);
    snapshots().bind(|| {
        insta::assert_snapshot!("language__valid_everything_policy", ir_text::policy_text(&ws, p));
        insta::assert_snapshot!(
            "language__valid_everything_scenario",
            ir_text::scenario_text(&ws, &ws.scenarios[0])
        );
    });
}

#[test]
fn broken_files_give_their_diagnostics() {
    snapshots().bind(|| {
        insta::glob!("../data/broken", "*.ff", |path| {
            let relative = path.strip_prefix(root()).expect("under root").to_path_buf();
            let loaded = dsl::load_all(std::slice::from_ref(&relative), &mut read_from_root);
            assert!(
                !loaded.diagnostics.is_empty(),
                "{} should have errors",
                relative.display()
            );
            // The file is named for the error it shows.
            let stem = relative.file_stem().and_then(|s| s.to_str()).expect("name");
            let codes: Vec<&str> = loaded.diagnostics.iter().map(|d| d.code.name()).collect();
            if !stem.starts_with("syntax")
                && stem != "many-errors"
                && codes.iter().any(|c| c.starts_with("ff::"))
            {
                let expected = format!("ff::{stem}");
                let listed = Code::ALL.iter().any(|c| c.name() == expected);
                assert!(!listed || codes.contains(&expected.as_str()), "{stem}: {codes:?}");
            }
            insta::assert_snapshot!("language__broken", render(&loaded.diagnostics));
        })
    });
}

#[test]
fn broken_files_cover_at_least_twenty_kinds_of_error() {
    let mut codes = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(root().join("tests/data/broken")).expect("dir") {
        let path = entry
            .expect("entry")
            .path()
            .strip_prefix(root())
            .expect("root")
            .to_path_buf();
        for d in dsl::load_all(&[path], &mut read_from_root).diagnostics {
            codes.insert(d.code);
        }
    }
    assert!(codes.len() >= 40, "{} codes: {codes:?}", codes.len());
}

#[test]
fn lowered_ir_of_shipped_policies_and_scenarios() {
    let ws = dsl::load(&shipped_files(), &mut read_from_root).expect("shipped files load");
    snapshots().bind(|| {
        for policy in &ws.policies {
            insta::assert_snapshot!(
                format!("language__ir_policy_{}", policy.name),
                ir_text::policy_text(&ws, policy)
            );
        }
        let all: Vec<String> = ws
            .scenarios
            .iter()
            .map(|s| ir_text::scenario_text(&ws, s))
            .collect();
        insta::assert_snapshot!("language__ir_scenarios_standard", all.join("\n"));
    });
}

// ----- Bad input: each gives a clean error, never a panic ------------------------------

fn only_error(loaded: &dsl::Loaded) -> &Diagnostic {
    assert!(!loaded.diagnostics.is_empty(), "expected an error");
    let d = &loaded.diagnostics[0];
    let _ = render(&loaded.diagnostics);
    d
}

#[test]
fn empty_file_is_valid_and_empty() {
    let loaded = load_bytes("empty.ff", b"");
    assert!(loaded.diagnostics.is_empty());
    assert!(loaded.workspace.policies.is_empty() && loaded.workspace.scenarios.is_empty());
}

#[test]
fn binary_data_is_rejected() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    let loaded = load_bytes("binary.ff", &bytes);
    assert_eq!(only_error(&loaded).code, Code::InvalidUtf8);
    let loaded = load_bytes("nul.ff", b"\0\0\x01policy");
    assert_eq!(only_error(&loaded).code, Code::Syntax);
}

#[test]
fn invalid_utf8_reports_its_byte_position() {
    let loaded = load_bytes("latin1.ff", b"policy p {\n    // caf\xe9\n}\n");
    let d = only_error(&loaded);
    assert_eq!(d.code, Code::InvalidUtf8);
    assert!(d.message.contains("offset 21"), "{}", d.message);
    assert_eq!((d.line, d.column), (2, 11));
}

#[test]
fn fifty_megabytes_is_over_the_limit() {
    let bytes = vec![b' '; 50 << 20];
    let loaded = load_bytes("big.ff", &bytes);
    let d = only_error(&loaded);
    assert_eq!(d.code, Code::FileTooLarge);
    assert!(d.message.contains("FILE_BYTES_MAX"), "{}", d.message);
}

#[test]
fn ten_thousand_nested_ifs_hit_the_nesting_limit() {
    let text = format!(
        "policy p {{ freeze {{ {} skip; {} }} page_mkwrite {{ lock_page }} }}",
        "if level >= fs { ".repeat(10_000),
        "} ".repeat(10_000)
    );
    let loaded = load_bytes("deep.ff", text.as_bytes());
    let d = only_error(&loaded);
    assert_eq!(d.code, Code::NestingTooDeep);
    assert!(d.message.contains("NESTING_MAX"), "{}", d.message);
    // Parentheses and `not`s too.
    let text = format!(
        "policy p {{ freeze {{ skip }} page_mkwrite {{ if {}dirty{} {{ skip }} lock_page }} }}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(
        only_error(&load_bytes("parens.ff", text.as_bytes())).code,
        Code::NestingTooDeep
    );
    let text = format!(
        "policy p {{ freeze {{ skip }} page_mkwrite {{ if {}dirty {{ skip }} lock_page }} }}",
        "not ".repeat(100_000)
    );
    let loaded = load_bytes("nots.ff", text.as_bytes());
    assert!(loaded.diagnostics.is_empty(), "{}", render(&loaded.diagnostics));
    let text = format!(
        "policy p {{ freeze {{ skip }} page_mkwrite {{ if dirty{} {{ skip }} lock_page }} }}",
        " and dirty".repeat(50_000)
    );
    assert_eq!(
        only_error(&load_bytes("long.ff", text.as_bytes())).code,
        Code::ConditionTooLong
    );
    // An `else if` chain is iterative in the grammar, and limited like nesting.
    let text = format!(
        "policy p {{ freeze {{ skip }} page_mkwrite {{ if dirty {{ skip }}{} lock_page }} }}",
        " else if dirty { skip }".repeat(10_000)
    );
    assert_eq!(
        only_error(&load_bytes("chain.ff", text.as_bytes())).code,
        Code::NestingTooDeep
    );
    // As long a chain as fits in a file: one error, no deep tree built.
    let text = format!(
        "policy p {{ freeze {{ skip }} page_mkwrite {{ if dirty {{ skip }}{} lock_page }} }}",
        " else if dirty { skip }".repeat(45_000)
    );
    assert!(text.len() < freezefuzz::ir::limits::FILE_BYTES_MAX);
    assert_eq!(
        only_error(&load_bytes("longest-chain.ff", text.as_bytes())).code,
        Code::NestingTooDeep
    );
}

#[test]
fn a_hundred_thousand_character_identifier_hits_the_limit() {
    let text = format!(
        "policy {} {{ freeze {{ skip }} page_mkwrite {{ lock_page }} }}",
        "a".repeat(100_000)
    );
    let loaded = load_bytes("long-name.ff", text.as_bytes());
    let d = only_error(&loaded);
    assert_eq!(d.code, Code::IdentifierTooLong);
    assert!(d.message.contains("IDENTIFIER_LEN_MAX"), "{}", d.message);
}

#[test]
fn unknown_keywords_everywhere_are_errors() {
    for text in [
        "frobnicate",
        "policy p { frob { skip } }",
        "policy p { freeze { frob umount } page_mkwrite { lock_page } }",
        "policy p { freeze { if frob { skip } } page_mkwrite { lock_page } }",
        "policy p { freeze { if level >= frob { skip } } page_mkwrite { lock_page } }",
        "policy p { freeze { skip } page_mkwrite { lock_page } faults { frob probability 0.1 max 1; } }",
        "scenario s { page a { frob; } thread t { store 1; } }",
        "scenario s { page a { } thread t { frob; } }",
        "scenario s { frob; }",
        "policy p extends q { freeze { skip } page_mkwrite { lock_page } }",
    ] {
        let loaded = load_bytes("kw.ff", text.as_bytes());
        let d = only_error(&loaded);
        assert!(d.line >= 1 && d.column >= 1, "{text}: {d:?}");
    }
}

#[test]
fn an_unreadable_file_is_a_clean_error_naming_it() {
    let loaded = dsl::load_all(
        &[PathBuf::from("tests/data/no-such-file.ff")],
        &mut read_from_root,
    );
    let d = only_error(&loaded);
    assert_eq!(d.code, Code::UnreadableFile);
    assert!(d.message.contains("tests/data/no-such-file.ff"));
}

#[test]
fn the_reference_documents_every_error_code() {
    let docs =
        std::fs::read_to_string(root().join("docs/policy-language.md")).expect("docs/policy-language.md");
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|c| c.name())
        .filter(|name| !docs.contains(name))
        .collect();
    assert!(missing.is_empty(), "undocumented error codes: {missing:?}");
}

#[test]
fn check_command_prints_one_line_per_file() {
    let out = assert_cmd::Command::cargo_bin("freezefuzz")
        .expect("binary")
        .current_dir(root())
        .args([
            "check",
            "policies/no-block.ff",
            "policies/standard.ff",
            "tests/data/broken/unknown-level.ff",
        ])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout,
        "ok  policies/no-block.ff (1 policy)\nok  policies/standard.ff (8 scenarios)\nerror  tests/data/broken/unknown-level.ff: 1 error\n"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown level `frozen`"));
    let out = assert_cmd::Command::cargo_bin("freezefuzz")
        .expect("binary")
        .current_dir(root())
        .args(["check", "policies/sigbus.ff"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "ok  policies/sigbus.ff (1 policy)\nok  policies/no-block.ff (1 policy)\n"
    );
}

// ----- Mutation property test -------------------------------------------------------------

#[derive(Clone, Debug)]
enum Mutation {
    DeleteByte(usize),
    InsertByte(usize, u8),
    SwapBytes(usize, usize),
    DeleteToken(usize),
    InsertToken(usize, usize),
    SwapTokens(usize, usize),
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    ";",
    "=",
    "==",
    ">=",
    "<",
    "if",
    "else",
    "and",
    "or",
    "not",
    "policy",
    "scenario",
    "extends",
    "body",
    "faults",
    "page",
    "thread",
    "flusher",
    "freeze",
    "thaw",
    "page_mkwrite",
    "writeback",
    "lock",
    "trylock",
    "unlock",
    "umount",
    "read",
    "write",
    "skip",
    "sync",
    "submit",
    "fail",
    "sigbus",
    "lock_page",
    "unlock_page",
    "sb_start",
    "sb_end",
    "level",
    "fs",
    "buffers",
    "mapped",
    "store",
    "munmap",
    "msync",
    "await",
    "frozen",
    "0",
    "255",
    "256",
    "0.5",
    "//",
    "\u{e9}",
    "probability",
    "max",
    "io-error",
    "no-block",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteByte),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::InsertByte(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::SwapBytes(i, j)),
        any::<usize>().prop_map(Mutation::DeleteToken),
        (any::<usize>(), any::<usize>()).prop_map(|(i, t)| Mutation::InsertToken(i, t)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::SwapTokens(i, j)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    // Tokens: maximal runs of non-whitespace.
    let tokens = || -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for (i, b) in bytes.iter().enumerate() {
            match (b.is_ascii_whitespace(), start) {
                (false, None) => start = Some(i),
                (true, Some(s)) => {
                    out.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            out.push((s, bytes.len()));
        }
        out
    };
    let n = bytes.len();
    match *m {
        Mutation::DeleteByte(i) => {
            bytes.remove(i % n);
        }
        Mutation::InsertByte(i, b) => bytes.insert(i % (n + 1), b),
        Mutation::SwapBytes(i, j) => bytes.swap(i % n, j % n),
        Mutation::DeleteToken(i) => {
            let t = tokens();
            if !t.is_empty() {
                let (s, e) = t[i % t.len()];
                bytes.drain(s..e);
            }
        }
        Mutation::InsertToken(i, tok) => {
            let t = tokens();
            let at = if t.is_empty() { 0 } else { t[i % t.len()].0 };
            let word = format!("{} ", TOKENS[tok % TOKENS.len()]);
            bytes.splice(at..at, word.into_bytes());
        }
        Mutation::SwapTokens(i, j) => {
            let t = tokens();
            if t.len() >= 2 {
                let (a, b) = (t[i % t.len()], t[j % t.len()]);
                let (first, second) = if a.0 < b.0 { (a, b) } else { (b, a) };
                if first != second {
                    let x = bytes[first.0..first.1].to_vec();
                    let y = bytes[second.0..second.1].to_vec();
                    bytes.splice(second.0..second.1, x);
                    bytes.splice(first.0..first.1, y);
                }
            }
        }
    }
}

fn seed_files() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = shipped_files()
        .into_iter()
        .map(|p| (p.display().to_string(), read_from_root(&p).expect("read")))
        .collect();
    files.push((
        "tests/data/valid/everything.ff".into(),
        read_from_root(Path::new("tests/data/valid/everything.ff")).expect("read"),
    ));
    files
}

fn cases() -> u32 {
    if std::env::var_os("FREEZEFUZZ_LONG_TESTS").is_some() {
        200_000
    } else {
        10_000
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_files_never_panic(file in any::<prop::sample::Index>(), mutations in prop::collection::vec(mutation(), 1..4)) {
        let seeds = seed_files_cached();
        let (path, original) = &seeds[file.index(seeds.len())];
        let mut bytes = original.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        let loaded = load_bytes(path, &bytes);
        let lines = bytes.split(|&b| b == b'\n').count() as u32;
        for d in &loaded.diagnostics {
            if d.code != Code::UnreadableFile && d.code != Code::MissingParent {
                prop_assert!(d.line >= 1 && d.line <= lines, "{d:?} ({lines} lines)");
                prop_assert!(d.column >= 1, "{d:?}");
            }
        }
        if let Some(first) = loaded.diagnostics.first() {
            prop_assert!(!diagnostics::render(first, false).is_empty());
        }
    }
}

fn seed_files_cached() -> &'static [(String, Vec<u8>)] {
    static SEEDS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(seed_files)
}
