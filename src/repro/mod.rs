//! Reproducers: a scenario (and optionally one schedule of it) as a C
//! program that performs it on a real filesystem.
//!
//! Pure text generation: [`generate`] takes the checked scenario and returns
//! the files' contents; the CLI writes them. The probe's runtime is fixed C
//! (`probe.c`, included below); only a table of pages, thread programs and
//! the order of user-visible actions is generated. What each page state,
//! action and observable means on a real kernel is documented in
//! `docs/conformance.md`.

pub mod conform;

use std::fmt::Write as _;

use crate::engine::program::{self, Program};
use crate::engine::run::TraceStep;
use crate::ir::{self, ActionKind, Buffers, Pte, ThreadKind};

/// The probe's fixed runtime; the generated tables replace the marker line.
const PROBE_RUNTIME: &str = include_str!("probe.c");
/// The driver script: makes a scratch filesystem on a loop-mounted image.
pub const RUN_SH: &str = include_str!("run.sh");
const MARKER: &str = "/*@@SCENARIO@@*/";

/// Default runs of a racing scenario (users not waiting for the freeze).
pub const RACING_RUNS_DEFAULT: u32 = 20;

/// Threads and pages the probe's runtime supports (`FF_MAX_THREADS`,
/// `FF_MAX_PAGES`, `FF_MAX_STEPS` in probe.c).
pub const THREADS_MAX: usize = 16;
pub const PAGES_MAX: usize = 16;
pub const ACTIONS_MAX: usize = 64;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    /// The policy the reproducer was made for (recorded, not used by the probe).
    pub policy: String,
    /// Runs of a racing scenario when `--runs` is not given to the probe.
    pub racing_runs: u32,
    /// The order of user-visible actions to keep, from a schedule.
    pub order: Vec<OrderedAction>,
    /// Where the order came from, for the README (`schedule …`, `seed …`).
    pub source: Option<String>,
}

/// One action of one probe thread, in a schedule's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderedAction {
    /// Index into the scenario's program threads (the flusher left out).
    pub thread: usize,
    /// Index into that thread's actions.
    pub action: usize,
}

/// The files of a reproducer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repro {
    pub probe_c: String,
    pub run_sh: String,
    pub readme: String,
}

/// A scenario the probe cannot perform on a real kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unrealisable {
    pub scenario: String,
    pub what: String,
}

impl std::fmt::Display for Unrealisable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "scenario `{}` has no real set-up: {}",
            self.scenario, self.what
        )
    }
}

impl std::error::Error for Unrealisable {}

/// The one fault the probe injects.
const IO_ERROR: &str = "io-error";

/// Whether the scenario turns on `io-error` (the probe then makes the
/// pages' blocks fail writes while FIFREEZE runs: device-mapper's `error`
/// target, docs/conformance.md). A policy's faults do not count: the probe
/// performs the scenario.
pub fn injects_io_error(scenario: &ir::Scenario) -> bool {
    scenario
        .faults
        .iter()
        .rfind(|f| f.name == IO_ERROR)
        .is_some_and(|f| f.max > 0)
}

/// What a page's initial state needs from the filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    /// `buffers = delayed`: a delalloc filesystem (not ext4 `nodelalloc`).
    Delalloc,
}

/// Checks that every page's initial attributes have a real set-up (see
/// docs/conformance.md), and returns what the set-up needs.
pub fn realisable(scenario: &ir::Scenario) -> Result<Needs, Unrealisable> {
    let err = |what: String| Unrealisable {
        scenario: scenario.name.clone(),
        what,
    };
    if let Some(fault) = scenario.faults.iter().find(|f| f.name != IO_ERROR) {
        return Err(err(format!(
            "it injects fault `{}`; the probe injects only `{IO_ERROR}` (write errors on the pages' blocks during FIFREEZE)",
            fault.name
        )));
    }
    if injects_io_error(scenario)
        && let Some(p) = scenario.pages.iter().find(|p| p.buffers != Buffers::Mapped)
    {
        return Err(err(format!(
            "page `{}`: `{IO_ERROR}` needs every page's block allocated before the freeze (`buffers = mapped`), so that the errors can be aimed at it",
            p.name
        )));
    }
    if scenario.pages.len() > PAGES_MAX {
        return Err(err(format!(
            "{} pages (the probe supports {PAGES_MAX})",
            scenario.pages.len()
        )));
    }
    let programs = scenario
        .threads
        .iter()
        .filter(|t| matches!(t.kind, ThreadKind::Program(_)))
        .count();
    if programs > THREADS_MAX {
        return Err(err(format!(
            "{programs} threads (the probe supports {THREADS_MAX})"
        )));
    }
    let mut needs = Needs::Nothing;
    for p in &scenario.pages {
        let page = |what: &str| err(format!("page `{}`: {what}", p.name));
        if p.buffers == Buffers::Unmapped && (p.dirty || p.pte == Pte::Writable) {
            return Err(page(
                "a dirty page with `buffers = unmapped`: a real write reserves (`delayed`) or allocates (`mapped`) its block",
            ));
        }
        if p.buffers == Buffers::Delayed {
            if !p.cached || !p.dirty {
                return Err(page("`buffers = delayed` on a page that is not cached and dirty"));
            }
            needs = Needs::Delalloc;
        }
        if p.buffers == Buffers::Unmapped && p.mem != p.disk {
            return Err(page(
                "memory and disk differ on a page without a block (a hole reads as zeros)",
            ));
        }
        if !p.dirty && p.mem != p.disk {
            return Err(page("memory and disk differ on a clean page"));
        }
    }
    for t in &scenario.threads {
        if let ThreadKind::Program(actions) = &t.kind
            && actions.len() > ACTIONS_MAX
        {
            return Err(err(format!(
                "thread `{}` has {} actions (the probe supports {ACTIONS_MAX})",
                t.name,
                actions.len()
            )));
        }
    }
    Ok(needs)
}

/// Whether a scenario is racing: some thread that stores, unmaps or syncs
/// does not begin with `await frozen` (so its timing against the freeze is
/// not controlled, and the probe repeats it with random start offsets).
pub fn is_racing(scenario: &ir::Scenario) -> bool {
    scenario.threads.iter().any(|t| match &t.kind {
        ThreadKind::Program(actions) => {
            is_user(actions) && !matches!(actions.first().map(|a| a.kind), Some(ActionKind::AwaitFrozen))
        }
        ThreadKind::Flusher => false,
    })
}

fn is_user(actions: &[ir::Action]) -> bool {
    !actions
        .iter()
        .any(|a| matches!(a.kind, ActionKind::Freeze | ActionKind::Thaw))
}

/// The scenario's program threads, as the probe numbers them (the flusher
/// is the kernel's own and left out): (model thread index, spec).
pub fn probe_threads(scenario: &ir::Scenario) -> Vec<(usize, &ir::ThreadSpec, &[ir::Action])> {
    scenario
        .threads
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match &t.kind {
            ThreadKind::Program(actions) => Some((i, t, actions.as_slice())),
            ThreadKind::Flusher => None,
        })
        .collect()
}

/// The order in which a replayed run begins the scenario's actions: for
/// each step, the action its instruction belongs to (actions are compiled
/// in order, so action k of a thread starts where the code of its first k
/// actions ends).
pub fn action_order(
    policy: &ir::Policy,
    scenario: &ir::Scenario,
    program: &Program,
    trace: &[TraceStep],
) -> Result<Vec<OrderedAction>, program::CompileError> {
    let threads = probe_threads(scenario);
    // starts[probe thread][k] = first pc of action k.
    let mut starts: Vec<Vec<u16>> = Vec::new();
    for (model_index, _, actions) in &threads {
        let mut pcs = Vec::new();
        for k in 0..actions.len() {
            let mut prefix = scenario.clone();
            prefix.threads[*model_index].kind = ThreadKind::Program(actions[..k].to_vec());
            let compiled = program::compile(policy, &prefix)?;
            // The prefix's code ends with its `done`; action k starts there.
            pcs.push((compiled.threads[*model_index].code.len() - 1) as u16);
        }
        starts.push(pcs);
    }
    let mut begun: Vec<usize> = vec![0; threads.len()];
    let mut order = Vec::new();
    for step in trace {
        let model_thread = step.choice.thread as usize;
        let Some(probe_thread) = threads.iter().position(|(i, _, _)| *i == model_thread) else {
            continue;
        };
        if program.threads[model_thread].env.is_some() {
            continue;
        }
        let pcs = &starts[probe_thread];
        let action = pcs.iter().rposition(|&start| start <= step.pc).unwrap_or(0);
        while begun[probe_thread] <= action {
            order.push(OrderedAction {
                thread: probe_thread,
                action: begun[probe_thread],
            });
            begun[probe_thread] += 1;
        }
    }
    Ok(order)
}

fn c_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}

fn action_text(scenario: &ir::Scenario, kind: ActionKind) -> String {
    let page = |p: ir::PageId| scenario.pages[p].name.as_str();
    match kind {
        ActionKind::Store { page: p, value } => format!("store {} {value}", page(p)),
        ActionKind::Munmap { page: p } => format!("munmap {}", page(p)),
        ActionKind::Msync { page: p } => format!("msync {}", page(p)),
        ActionKind::AwaitFrozen => "await frozen".into(),
        ActionKind::Freeze => "freeze".into(),
        ActionKind::Thaw => "thaw".into(),
    }
}

/// The generated table that the runtime is compiled with.
pub fn scenario_table(scenario: &ir::Scenario, options: &Options) -> Result<String, Unrealisable> {
    let needs = realisable(scenario)?;
    let threads = probe_threads(scenario);
    let racing = is_racing(scenario);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "/* scenario `{}`, generated by freezefuzz repro */",
        scenario.name
    );
    let _ = writeln!(t, "#define FF_SCENARIO {}", c_string(&scenario.name));
    let _ = writeln!(t, "#define FF_POLICY {}", c_string(&options.policy));
    let _ = writeln!(
        t,
        "enum {{ FF_NPAGES = {}, FF_NTHREADS = {}, FF_RACING = {}, FF_RACING_RUNS = {}, FF_NORDER = {}, FF_NEEDS_DELALLOC = {}, FF_IO_ERROR = {} }};",
        scenario.pages.len(),
        threads.len(),
        u8::from(racing),
        options.racing_runs,
        options.order.len(),
        u8::from(needs == Needs::Delalloc),
        u8::from(injects_io_error(scenario))
    );
    let why = match needs {
        Needs::Delalloc => {
            "a page starts with `buffers = delayed`, which needs a delalloc filesystem (not ext4 nodelalloc)"
        }
        Needs::Nothing => "",
    };
    let _ = writeln!(t, "#define FF_NEEDS_DELALLOC_WHY {}", c_string(why));
    let _ = writeln!(t, "/* name, cached, buffers, pte, pte_dirty, dirty, mem, disk */");
    let _ = writeln!(t, "static const struct ff_page_init ff_pages[] = {{");
    for p in &scenario.pages {
        let buffers = match p.buffers {
            Buffers::Unmapped => "FF_UNMAPPED",
            Buffers::Delayed => "FF_DELAYED",
            Buffers::Mapped => "FF_MAPPED",
        };
        let pte = match p.pte {
            Pte::None => "FF_PTE_NONE",
            Pte::Readonly => "FF_PTE_READONLY",
            Pte::Writable => "FF_PTE_WRITABLE",
        };
        let _ = writeln!(
            t,
            "    {{{}, {}, {buffers}, {pte}, {}, {}, {}, {}}},",
            c_string(&p.name),
            u8::from(p.cached),
            u8::from(p.pte_dirty),
            u8::from(p.dirty),
            p.mem,
            p.disk
        );
    }
    let _ = writeln!(t, "}};");
    for (k, (_, spec, actions)) in threads.iter().enumerate() {
        let _ = writeln!(
            t,
            "static const struct ff_action ff_prog_{k}[] = {{ /* {} */",
            spec.name
        );
        for a in actions.iter() {
            let (op, page, value) = match a.kind {
                ActionKind::Store { page, value } => ("FF_STORE", page, value),
                ActionKind::Munmap { page } => ("FF_MUNMAP", page, 0),
                ActionKind::Msync { page } => ("FF_MSYNC", page, 0),
                ActionKind::AwaitFrozen => ("FF_AWAIT_FROZEN", 0, 0),
                ActionKind::Freeze => ("FF_FREEZE", 0, 0),
                ActionKind::Thaw => ("FF_THAW", 0, 0),
            };
            let _ = writeln!(
                t,
                "    {{{op}, {page}, {value}, {}}},",
                c_string(&action_text(scenario, a.kind))
            );
        }
        let _ = writeln!(t, "    {{FF_END, 0, 0, 0}},\n}};");
    }
    let _ = writeln!(t, "static const struct ff_thread_spec ff_threads[] = {{");
    for (k, (_, spec, actions)) in threads.iter().enumerate() {
        let _ = writeln!(
            t,
            "    {{{}, ff_prog_{k}, {}}},",
            c_string(&spec.name),
            u8::from(is_user(actions))
        );
    }
    let _ = writeln!(t, "}};");
    let _ = writeln!(
        t,
        "/* the order of user-visible actions to keep: (thread, action) */"
    );
    let _ = write!(t, "static const struct ff_step ff_order[] = {{");
    if options.order.is_empty() {
        let _ = write!(t, " {{-1, -1}}");
    }
    for (i, o) in options.order.iter().enumerate() {
        if i % 8 == 0 {
            t.push_str("\n   ");
        }
        let _ = write!(t, " {{{}, {}}},", o.thread, o.action);
    }
    let _ = writeln!(t, "\n}};");
    Ok(t)
}

/// The whole reproducer for one scenario.
pub fn generate(scenario: &ir::Scenario, options: &Options) -> Result<Repro, Unrealisable> {
    let table = scenario_table(scenario, options)?;
    debug_assert!(PROBE_RUNTIME.contains(MARKER));
    let probe_c = PROBE_RUNTIME.replacen(MARKER, &table, 1);
    Ok(Repro {
        probe_c,
        run_sh: RUN_SH.to_string(),
        readme: readme(scenario, options),
    })
}

fn readme(scenario: &ir::Scenario, options: &Options) -> String {
    let racing = is_racing(scenario);
    let mut r = String::new();
    let _ = writeln!(r, "# freezefuzz reproducer: `{}`\n", scenario.name);
    let _ = writeln!(
        r,
        "Generated by `freezefuzz repro` for policy `{}`{}. It performs the scenario on a real\n\
         filesystem: every page set up in its initial state, every user a thread storing\n\
         through a `MAP_SHARED` mapping, the freezer's `freeze` / `thaw` as `FIFREEZE` /\n\
         `FITHAW` ioctls.\n",
        options.policy,
        options
            .source
            .as_deref()
            .map(|s| format!(", keeping the order of the user-visible actions of {s}"))
            .unwrap_or_default()
    );
    r.push_str(
        "```sh\n\
         cc -O2 -static -pthread -o probe probe.c   # run.sh does this if needed\n\
         sudo ./run.sh ext4              # or ext4-nodelalloc, xfs, btrfs\n\
         sudo ./run.sh xfs --runs 100 --seed 7 --out runs.jsonl\n\
         ```\n\n",
    );
    r.push_str(
        "`run.sh` makes a scratch filesystem on a loop-mounted image file in a fresh\n\
         temporary directory, marks it with `.freezefuzz-scratch`, runs the probe on it, and\n\
         removes it. The probe refuses any filesystem that is not loop-mounted from the\n\
         image it is given and marked; a watchdog process thaws the filesystem when the\n\
         probe exits, is killed or makes no progress for 30 s, and signal handlers thaw it\n\
         too. Needs root and the filesystem's mkfs.\n\n",
    );
    if injects_io_error(scenario) {
        r.push_str(
            "The scenario injects `io-error`: `run.sh` makes the scratch filesystem on a\n\
             device-mapper device over a loop device instead (needs `dmsetup`), and the probe\n\
             makes the pages' blocks fail writes (dm's `error` target) from just before each\n\
             `FIFREEZE` until it returns. Not on btrfs (copy on write).\n\n",
        );
    }
    if racing {
        let _ = writeln!(
            r,
            "The scenario is racing (a user does not wait for the freeze), so the probe runs it\n\
             {} times by default with seeded random start offsets; the seed is printed and the\n\
             same seed gives the same offsets (not the same kernel interleaving).\n",
            options.racing_runs
        );
    }
    if !options.order.is_empty() {
        r.push_str(
            "The order of the actions is kept as far as the kernel allows: a thread waits at\n\
             most 1 s for its turn (a store the model let through may block here until a thaw\n\
             that comes later in the order); each run's `order_broken` names the first step of\n\
             the order not kept, or is -1.\n\n",
        );
    }
    r.push_str(
        "Each run is one JSON line: `frozen_write` (a block of the image changed between\n\
         `FIFREEZE` returning and `FITHAW` starting, with the blocks), `lost_write` (after the\n\
         thaw and `syncfs`, a page's block read with `O_DIRECT` differs from the page cache),\n\
         `user_error` (SIGBUS or an error returned), `deadlock` (a thread unfinished 3 s after\n\
         the last thaw, with its kernel stack), the `FIFREEZE` / `FITHAW` results, and each\n\
         user's kernel stack while frozen. See docs/conformance.md in freezefuzz.\n",
    );
    r
}
