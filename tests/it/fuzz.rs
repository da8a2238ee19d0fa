//! Fuzz targets (issue #10) run as property tests: the policy loader (with
//! diagnostic rendering), the schedule parser, the corpus reader and merge's
//! input take arbitrary bytes and mutations of real inputs, and must answer
//! with a value or a clean error — never a panic, whatever the input. 256
//! cases per target by default; 20 000 under FREEZEFUZZ_LONG_TESTS=1.

use proptest::prelude::*;

use freezefuzz::report::matrix::MatrixReport;

use crate::support;

fn config() -> ProptestConfig {
    let long = std::env::var_os("FREEZEFUZZ_LONG_TESTS").is_some();
    ProptestConfig {
        cases: if long { 20_000 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One edit of a byte string: insert, delete or overwrite at a position
/// (taken modulo the length), or duplicate a slice.
#[derive(Clone, Debug)]
enum Edit {
    Insert(usize, u8),
    Delete(usize),
    Overwrite(usize, u8),
    Duplicate(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to the grammars more often than others.
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"{}[]|*!;:=\"'\n 0123456789.-+e#/".to_vec()),
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), byte).prop_map(|(i, b)| Edit::Overwrite(i, b)),
        (any::<usize>(), 1usize..64).prop_map(|(i, n)| Edit::Duplicate(i, n)),
    ]
}

fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for edit in edits {
        let at = |i: usize| if bytes.is_empty() { 0 } else { i % bytes.len() };
        match *edit {
            Edit::Insert(i, b) => {
                let i = at(i);
                bytes.insert(i, b);
            }
            Edit::Delete(i) if !bytes.is_empty() => {
                let i = at(i);
                bytes.remove(i);
            }
            Edit::Overwrite(i, b) if !bytes.is_empty() => {
                let i = at(i);
                bytes[i] = b;
            }
            Edit::Duplicate(i, n) if !bytes.is_empty() => {
                let i = at(i);
                let end = (i + n).min(bytes.len());
                let slice = bytes[i..end].to_vec();
                bytes.splice(i..i, slice);
            }
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Arbitrary text, or a mutation of one of `seeds`.
fn input(seeds: Vec<String>) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        (prop::sample::select(seeds), prop::collection::vec(edit(), 1..16))
            .prop_map(|(seed, edits)| mutate(&seed, &edits)),
    ]
}

fn policy_seeds() -> Vec<String> {
    support::shipped_files()
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("shipped file"))
        .collect()
}

fn corpus_seeds() -> Vec<String> {
    let mut seeds: Vec<String> = std::fs::read_dir(support::root().join("corpus"))
        .expect("corpus/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| std::fs::read_to_string(p).expect("reads"))
        .collect();
    seeds.sort();
    seeds
}

fn report_seed() -> String {
    std::fs::read_to_string(support::root().join("tests/it/snapshots/it__cli__standard_matrix_json.snap"))
        .map(|s| {
            s.split_once("\n---\n")
                .map_or(s.clone(), |(_, body)| body.to_string())
        })
        .expect("the standard matrix snapshot")
}

/// The cell schedules are resolved against, compiled once.
fn cell() -> &'static freezefuzz::engine::program::Program {
    static CELL: std::sync::OnceLock<freezefuzz::engine::program::Program> = std::sync::OnceLock::new();
    CELL.get_or_init(|| support::shipped_cell("no-block", "case3-racing"))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_policy_loader_never_panics(text in input(policy_seeds())) {
        if let Err(errors) = freezefuzz::dsl::load_str("fuzz.ff", &text) {
            prop_assert!(!errors.diagnostics.is_empty());
            prop_assert!(errors.diagnostics.len() <= freezefuzz::ir::limits::DIAGNOSTICS_MAX + 1);
            let rendered = freezefuzz::report::diagnostics::render_all_plain(&errors.diagnostics);
            prop_assert!(!rendered.is_empty());
        }
    }

    #[test]
    fn the_schedule_parser_never_panics(text in input(vec![
        "freezer*5 user*4 flusher!".to_string(),
        "freezer*3[lock umount write|set_level write|sync: test dirty a] user*2[store a 2|munmap a]".to_string(),
    ])) {
        let program = cell();
        let _ = freezefuzz::engine::schedule::parse(&text);
        if let Ok(steps) = freezefuzz::engine::schedule::resolve_labelled(program, &text) {
            let _ = freezefuzz::engine::schedule::fit(program, &steps);
        }
    }

    #[test]
    fn the_corpus_reader_never_panics(text in input(corpus_seeds())) {
        if let Ok(entry) = freezefuzz::corpus::parse(&text) {
            // What parses serializes and parses back to itself.
            let again = freezefuzz::corpus::parse(&freezefuzz::corpus::to_toml(&entry));
            prop_assert_eq!(again, Ok(entry));
        }
    }

    #[test]
    fn merge_input_never_panics(text in input(vec![report_seed()])) {
        if let Ok(report) = serde_json::from_str::<MatrixReport>(&text) {
            let _ = freezefuzz::report::merge::merge(&[("a.json".into(), report.clone())]);
            let mut other = report.clone();
            other.campaign.shard = Some("1/2".into());
            let _ = freezefuzz::report::merge::merge(&[("a.json".into(), report), ("b.json".into(), other)]);
        }
    }
}
