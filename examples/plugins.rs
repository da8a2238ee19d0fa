//! A custom fault and a custom oracle written against the public library
//! API, registered from Rust and run exhaustively.
//!
//! - fault `zap-pte` (pseudo-thread `kswapd`): reclaim unmaps a page from
//!   the user's mapping before it can reclaim it (`try_to_unmap` in
//!   `shrink_page_list`): the pte's dirty bit is folded into PG_dirty and
//!   the pte dropped, so the user's next store faults again.
//! - oracle `thaw-refused`: an `fsfreeze -u` was refused with EINVAL (the
//!   filesystem was not frozen — e.g. an emergency thaw got there first). It
//!   reports `user-error`: the administrator saw an error.
//!
//! Run: `cargo run --example plugins`. The test suite runs [`demo`] too.

use std::sync::Arc;

use freezefuzz::engine::explore::{self, ExploreLimits};
use freezefuzz::engine::program;
use freezefuzz::fault::{EnvBody, Fault, FaultContext, FaultRegistry, Placement, ProgramView};
use freezefuzz::ir::{self, Pte};
use freezefuzz::model::{State, record};
use freezefuzz::oracle::{Oracle, OracleSet, Outcome, RunEnd};

/// Reclaim unmapping a mapped, unlocked page (`try_to_unmap_one`).
pub struct ZapPte;

impl ZapPte {
    /// The lowest-numbered page with a pte that no thread holds (locked or
    /// inside a fault on it): a pure function of the program and state.
    fn victim(program: &dyn ProgramView, state: &State) -> Option<usize> {
        (0..program.page_count()).find(|&page| {
            let p = &state.pages[page];
            p.pte() != Pte::None && p.locked_by().is_none() && !program.in_fault(state, page)
        })
    }
}

impl Fault for ZapPte {
    fn name(&self) -> &'static str {
        "zap-pte"
    }

    fn kernel(&self) -> &'static str {
        "shrink_page_list → try_to_unmap → try_to_unmap_one"
    }

    fn placement(&self) -> Placement {
        Placement::Environment {
            thread: "kswapd",
            body: EnvBody::Step,
        }
    }

    fn can_fire(&self, context: &FaultContext<'_>) -> bool {
        ZapPte::victim(context.program, context.state).is_some()
    }

    fn fire(&self, program: &dyn ProgramView, state: &mut State) {
        if let Some(page) = ZapPte::victim(program, state) {
            // zap_pte_range's effect: fold the dirty bit, drop the pte.
            state.munmap(page);
        }
    }
}

/// Some `fsfreeze -u` was refused with EINVAL: an outcome of its own,
/// `thaw-refused`, registered by name.
pub struct ThawRefused {
    outcome: Outcome,
}

impl Default for ThawRefused {
    fn default() -> ThawRefused {
        ThawRefused::new()
    }
}

impl ThawRefused {
    pub fn new() -> ThawRefused {
        ThawRefused {
            outcome: Outcome::custom("thaw-refused").expect("a valid name, not taken by a built-in outcome"),
        }
    }
}

impl Oracle for ThawRefused {
    fn outcome(&self) -> Outcome {
        self.outcome
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.state.has_record(record::THAW_REFUSED)
    }
}

fn spec(name: &str, probability: f64, max: u32) -> ir::FaultSpec {
    ir::FaultSpec {
        name: name.into(),
        probability,
        max,
        loc: ir::Loc {
            file: ir::FileId(0),
            line: 0,
            column: 0,
        },
    }
}

/// One line per run: policy × scenario, faults, reachable outcomes, states.
pub fn demo() -> Vec<String> {
    let files = [
        "policies/standard.ff",
        "policies/no-block.ff",
        "policies/wait-in-mkwrite.ff",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let paths: Vec<_> = files.iter().map(|f| root.join(f)).collect();
    let workspace = freezefuzz::dsl::load(&paths, &mut |p| std::fs::read(p)).expect("shipped files load");

    let mut registry = FaultRegistry::builtin();
    registry.register(Arc::new(ZapPte)).expect("registers");
    let mut oracles = OracleSet::standard();
    oracles.add(Box::new(ThawRefused::new()));

    let mut lines = Vec::new();
    for policy in ["no-block", "wait-in-mkwrite"] {
        let policy = workspace.policy(policy).expect("policy");
        for (scenario, faults) in [
            ("case4-racing", vec![]),
            ("case4-racing", vec![spec("zap-pte", 0.1, 1)]),
            ("case3-after-freeze", vec![]),
            ("case3-after-freeze", vec![spec("emergency-thaw", 0.1, 1)]),
        ] {
            let mut scenario = workspace.scenario(scenario).expect("scenario").clone();
            let names: Vec<String> = faults.iter().map(|f| f.name.clone()).collect();
            scenario.faults = faults;
            let program = program::compile_with(policy, &scenario, &registry).expect("compiles");
            let result = explore::explore(&program, &oracles, &ExploreLimits::default());
            lines.push(format!(
                "{} × {} [{}]: {} ({} states, threads: {})",
                program.policy,
                program.scenario,
                names.join(","),
                result.outcomes,
                result.states,
                program
                    .threads
                    .iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ));
        }
    }
    // Once registered, the plug-in's name is usable in a `faults` block of a
    // policy or scenario file (loaded with `dsl::load_with`).
    let inline = root.join("zapped.ff");
    let text = "scenario zapped {
        page a { cached; buffers = mapped; pte = writable; dirty; }
        thread user { store a 2; munmap a; }
        thread freezer { freeze; thaw; }
        flusher;
        faults { zap-pte probability 0.1 max 1; }
    }";
    let mut read = |p: &std::path::Path| {
        if p == inline {
            Ok(text.as_bytes().to_vec())
        } else {
            std::fs::read(p)
        }
    };
    let paths = [root.join("policies/no-block.ff"), inline.clone()];
    let workspace =
        freezefuzz::dsl::load_with(&paths, &mut read, &registry).expect("the plug-in's name checks");
    let program = program::compile_with(
        workspace.policy("no-block").expect("policy"),
        workspace.scenario("zapped").expect("scenario"),
        &registry,
    )
    .expect("compiles");
    let result = explore::explore(&program, &oracles, &ExploreLimits::default());
    lines.push(format!(
        "{} × {} [from the file's faults block]: {} ({} states, threads: {})",
        program.policy,
        program.scenario,
        result.outcomes,
        result.states,
        program
            .threads
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    ));
    // Without the registry, the same file is an error naming the fault.
    let unknown = freezefuzz::dsl::load(&paths, &mut read).expect_err("zap-pte is not a shipped fault");
    lines.push(
        unknown
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .replace(&root.display().to_string(), "."),
    );
    lines
}

#[allow(dead_code)]
fn main() {
    for line in demo() {
        println!("{line}");
    }
}
