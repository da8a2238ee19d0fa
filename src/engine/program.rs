//! Compiling a checked policy and scenario into a [`Program`]: one flat
//! instruction list per thread, with every jump resolved, so that the step
//! loop is a table lookup and a match.
//!
//! Hooks are inlined at each use: `sync` is unrolled over the scenario's
//! pages, `writeback` and `page_mkwrite` are instantiated per page, and `skip`
//! becomes an edge to the end of the body it returns from. A `Jump` is never a
//! step: jump chains are threaded away after emission.

use std::fmt;

use crate::fault::{
    self, BUILTIN, EnvBody, Fault, FaultKind, FaultRegistry, Placement, Plugins, ProgramView, Site,
};
use crate::ir::{self, Body, Cond, Hook, Level, Loc, LockMode, StmtKind, ThreadKind, WriterLevel};
use crate::model::{FAULT_KINDS_MAX, State, record};

/// One operation of the model; see [`crate::engine::exec`] for its guard and effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    LockUmount(LockMode),
    /// The first `lock umount` of a `freeze` or `thaw` hook: takes the lock
    /// and, in the same step, checks the kernel's nesting rule (the level
    /// must be `require`: `unfrozen` for a freeze, `complete` for a thaw).
    /// If it is not, the lock is not kept and the hook ends at `alt`
    /// (EBUSY / EINVAL).
    LockUmountChecked {
        mode: LockMode,
        require: Level,
    },
    /// The same check for a `freeze` or `thaw` hook that takes no lock: a
    /// step of its own at the start of the hook.
    LevelCheck(Level),
    /// The gate of an environment fault's pseudo-thread: taking it is the
    /// fault firing. Open while the fault's budget lasts and it can fire.
    Gate(FaultKind),
    /// On failure (or an injected trylock failure) continue at `alt`.
    TryLockUmount(LockMode),
    UnlockUmount,
    WaitUnfrozen(Level),
    SbStart(WriterLevel),
    SbEnd(WriterLevel),
    SetLevel(Level),
    WaitWriters(WriterLevel),
    LockPage(u8),
    UnlockPage(u8),
    MarkDirty(u8),
    Allocate(u8),
    Reserve(u8),
    /// `clean`; with `writeback` (inside a `writeback` body) it also starts
    /// the write-out: PG_writeback is set for this thread (`set_page_writeback`).
    Clean {
        page: u8,
        writeback: bool,
    },
    /// An I/O error continues at `alt`: with `has_else` the `else` body,
    /// without it the page is redirtied (and `alt` is `next`, except in a
    /// `sync else`, whose failed submits continue in the sync's error copy).
    Submit {
        page: u8,
        has_else: bool,
    },
    /// The step of a `sync else` after its last page when a submit of the
    /// sync failed: the sync reports the error (`sync_filesystem` returns
    /// -EIO) and the `else` body follows. In a `freeze` hook it records
    /// [`record::FREEZE_FAILED`](crate::model::record::FREEZE_FAILED).
    SyncFailed {
        freeze: bool,
    },
    /// `sync`'s and `msync`'s per-page step: waits until the page is not
    /// under writeback, then tests it: dirty → `next`, clean → `alt`.
    TestDirty(u8),
    /// An `if`: true → `next`, false → `alt`. Indexes [`Program::conds`].
    Branch {
        cond: u16,
        page: u8,
    },
    /// `fail sigbus`: `next` is the end of the store.
    FailSigbus(u8),
    /// The start of a user store: a writable pte stores and continues at
    /// `alt`; otherwise a write fault (reading the page in if not cached)
    /// continues at `next`, the start of `page_mkwrite`.
    StoreEntry {
        page: u8,
        value: u8,
    },
    /// The completion of a write fault.
    FaultComplete {
        page: u8,
        value: u8,
    },
    Munmap(u8),
    AwaitFrozen,
    /// The flusher daemon asleep, waiting for a dirty page and no `s_umount` writer.
    FlusherSleep,
    /// The thread has finished.
    Done,
    /// Control flow only; never executed (threaded away).
    Jump,
}

/// One instruction: an operation, its successors, and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instr {
    pub op: Op,
    pub next: u16,
    pub alt: u16,
    /// Index into [`Program::origins`].
    pub origin: u16,
    /// The `writeback` bodies this step leaves, per successor.
    pub leaves: Leaves,
}

/// The pages whose `writeback` body a step leaves when it continues at
/// `next` and when it continues at `alt`, as bit masks of pages. Leaving a
/// `writeback` body is an effect of the step that leaves it: the thread's
/// write-out of that page completes (`end_page_writeback`), in the same
/// step. The compiler sets these on every edge out of a body after jumps are
/// threaded, so no way out (the end of the body, `skip`, a failed submit's
/// `else`, a failed trylock's `else`) can miss it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Leaves {
    pub next: u8,
    pub alt: u8,
}

impl Instr {
    /// The pages whose `writeback` body the step leaves when it continues at `pc`.
    #[inline(always)]
    pub fn leaves_to(&self, pc: u16) -> u8 {
        if pc == self.next {
            self.leaves.next
        } else {
            self.leaves.alt
        }
    }
}

/// What a step corresponds to in the user's files, for traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The statement or action as written (`lock umount write`, `store a 2`).
    pub text: String,
    /// Where it is written; `None` for built-in steps (flusher sleep, fault completion).
    pub loc: Option<Loc>,
    /// Where it runs: `freeze`, `writeback a`, `page_mkwrite a`, `store a 2`.
    pub context: String,
    /// For a statement of an inlined named body: the hook's call of the body.
    pub via: Option<Loc>,
}

/// One thread's compiled code.
#[derive(Clone, Debug)]
pub struct ThreadCode {
    pub name: String,
    pub flusher: bool,
    /// For an environment fault's pseudo-thread: its fault.
    pub env: Option<FaultKind>,
    /// Where the thread starts (the first real instruction).
    pub entry: u16,
    pub code: Vec<Instr>,
    /// Per instruction: 1 + the page whose write fault the thread is inside
    /// (after the store's first step, up to its completion), else 0. The
    /// fault holds a reference on that page, so reclaim cannot drop it.
    pub faulting: Vec<u8>,
    /// Per instruction: the pages whose `writeback` body it is in, as a bit
    /// mask (the body's steps after `sync`'s or `msync`'s test).
    pub writeback: Vec<u8>,
}

/// A fault's setting in one program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultSetting {
    pub enabled: bool,
    /// Fires when a uniform `u64` is below this (probability × 2⁶⁴, saturated).
    pub threshold: u64,
    pub max: u8,
}

/// A policy and a scenario compiled together: what the engine runs.
#[derive(Clone, Debug)]
pub struct Program {
    pub policy: String,
    pub scenario: String,
    pub threads: Vec<ThreadCode>,
    pub pages: Vec<String>,
    pub initial: State,
    pub conds: Vec<Cond>,
    pub origins: Vec<Origin>,
    pub faults: [FaultSetting; FAULT_KINDS_MAX],
    /// The plug-in faults compiled in (slots `Plugin0`, …).
    pub plugins: Plugins,
    /// The environment faults' pseudo-threads, as a bit mask of thread indices.
    pub env_mask: u32,
}

impl Program {
    /// A program with no threads (for reports that need one but read nothing).
    pub fn empty() -> Program {
        Program {
            policy: String::new(),
            scenario: String::new(),
            threads: Vec::new(),
            pages: Vec::new(),
            initial: State::new(&[]),
            conds: Vec::new(),
            origins: Vec::new(),
            faults: Default::default(),
            plugins: Plugins::default(),
            env_mask: 0,
        }
    }

    /// The name of the fault in slot `kind` (plug-ins included).
    pub fn fault_name(&self, kind: FaultKind) -> &'static str {
        self.fault(kind).map(|f| f.name()).unwrap_or("unknown")
    }

    /// The fault of slot `kind`: a shipped one, or a plug-in this program
    /// was compiled with.
    pub fn fault(&self, kind: FaultKind) -> Option<&dyn Fault> {
        match kind.plugin_index() {
            None => BUILTIN.get(kind as usize).copied(),
            Some(i) => self.plugins.0.get(i).map(|p| p.as_ref()),
        }
    }

    /// Whether some thread is inside a write fault on `page` in `state`
    /// (holding a reference on it, as `filemap_fault` leaves one).
    pub fn in_fault(&self, state: &State, page: usize) -> bool {
        self.threads
            .iter()
            .enumerate()
            .any(|(t, code)| code.faulting.get(state.pc[t] as usize) == Some(&(page as u8 + 1)))
    }

    /// Checks the model's invariants ([`State::assert_invariants`]) and the
    /// ones that need the program: a thread whose write-out of a page is in
    /// flight (PG_writeback) is inside a `writeback` body of that page — it
    /// ended when the thread left. Panics (a bug in freezefuzz) if one fails.
    pub fn assert_invariants(&self, state: &State) {
        state.assert_invariants(self.threads.len(), self.pages.len());
        for (page, p) in state.pages.iter().enumerate().take(self.pages.len()) {
            for (thread, code) in self.threads.iter().enumerate() {
                if p.writeback_by() & (1 << thread) != 0 {
                    assert!(
                        code.writeback[state.pc[thread] as usize] & (1 << page) != 0,
                        "page {} under writeback by thread {} outside its writeback body",
                        self.pages[page],
                        code.name
                    );
                }
            }
        }
    }

    pub fn thread_index(&self, name: &str) -> Option<usize> {
        self.threads.iter().position(|t| t.name == name)
    }

    pub fn instr(&self, thread: usize, pc: u16) -> &Instr {
        &self.threads[thread].code[pc as usize]
    }

    /// Total number of instructions: a rough bound on a run's useful length.
    pub fn code_len(&self) -> usize {
        self.threads.iter().map(|t| t.code.len()).sum()
    }

    /// The `record` bits this program's runs may set (for the packed
    /// encoding): every program's, and a failed freeze where a `freeze`
    /// hook has a `sync else`.
    pub fn records_mask(&self) -> u8 {
        let freeze_can_fail = self
            .threads
            .iter()
            .any(|t| t.code.iter().any(|i| i.op == Op::SyncFailed { freeze: true }));
        crate::model::RECORDS_ALL | if freeze_can_fail { record::FREEZE_FAILED } else { 0 }
    }

    pub fn any_fault_enabled(&self) -> bool {
        self.faults.iter().any(|f| f.enabled)
    }
}

/// Why a policy and a scenario cannot be compiled together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error(
        "thread `{thread}` compiles to more than {max} instructions (policy `{policy}`, scenario `{scenario}`); use fewer pages or smaller hooks"
    )]
    TooLarge {
        policy: String,
        scenario: String,
        thread: String,
        max: usize,
    },
    #[error("policy `{policy}`: `sync` runs `writeback`, which runs `sync` again (nested {depth} deep)")]
    SyncRecursion { policy: String, depth: usize },
    #[error(
        "scenario `{scenario}` has a thread named `{thread}`, the name of fault `{fault}`'s environment thread; rename the thread"
    )]
    ThreadNameTaken {
        scenario: String,
        thread: String,
        fault: String,
    },
    #[error("policy `{policy}` or scenario `{scenario}` names fault `{fault}`, which is not registered")]
    UnknownFault {
        policy: String,
        scenario: String,
        fault: String,
    },
    #[error("scenario `{scenario}` has {count} {what}; at most {max} are supported")]
    ScenarioTooLarge {
        scenario: String,
        what: &'static str,
        count: usize,
        max: usize,
    },
}

const CODE_LEN_MAX: usize = u16::MAX as usize - 1;
const SYNC_NESTING_MAX: usize = 3;

/// Compiles `policy` × `scenario` with the shipped faults.
pub fn compile(policy: &ir::Policy, scenario: &ir::Scenario) -> Result<Program, CompileError> {
    compile_with(policy, scenario, &FaultRegistry::builtin())
}

/// Compiles `policy` × `scenario`; the `faults` blocks may name the shipped
/// faults and the plug-ins of `registry`. Each environment fault turned on
/// adds its pseudo-thread after the scenario's threads, in registry order.
pub fn compile_with(
    policy: &ir::Policy,
    scenario: &ir::Scenario,
    registry: &FaultRegistry,
) -> Result<Program, CompileError> {
    if scenario.pages.len() > crate::model::PAGES_MAX {
        return Err(CompileError::ScenarioTooLarge {
            scenario: scenario.name.clone(),
            what: "pages",
            count: scenario.pages.len(),
            max: crate::model::PAGES_MAX,
        });
    }
    if scenario.threads.len() > crate::model::THREADS_MAX {
        return Err(CompileError::ScenarioTooLarge {
            scenario: scenario.name.clone(),
            what: "threads",
            count: scenario.threads.len(),
            max: crate::model::THREADS_MAX,
        });
    }
    let mut compiler = Compiler {
        policy,
        scenario,
        conds: Vec::new(),
        origins: Vec::new(),
        nesting: nesting_applies(scenario, policy),
        writeback_depth: 0,
        hook: None,
        bodies: 0,
    };
    let mut threads = Vec::new();
    for spec in &scenario.threads {
        let code = compiler.thread(spec)?;
        threads.push(code);
    }
    let plugins = registry.plugins();
    let mut faults = [FaultSetting::default(); FAULT_KINDS_MAX];
    // A scenario's setting for a fault overrides the policy's.
    for spec in policy.faults.iter().chain(&scenario.faults) {
        let Some(kind) = registry.kind(&spec.name) else {
            return Err(CompileError::UnknownFault {
                policy: policy.name.clone(),
                scenario: scenario.name.clone(),
                fault: spec.name.clone(),
            });
        };
        faults[kind as usize] = FaultSetting {
            // Probability only weighs the draws of random and PCT runs (0:
            // never drawn); exhaustive search ignores it, so a fault with
            // probability 0 is still a branch there.
            enabled: spec.max > 0,
            threshold: fault::probability_threshold(spec.probability),
            max: spec.max.min(u8::MAX as u32) as u8,
        };
    }
    let mut env_mask = 0u32;
    let shell = Program {
        plugins: plugins.clone(),
        ..Program::empty()
    };
    for (slot, setting) in faults.iter().enumerate() {
        let Some(kind) = FaultKind::from_index(slot) else {
            continue;
        };
        let Some(plugin) = shell.fault(kind) else {
            continue;
        };
        let Placement::Environment { thread: name, body } = plugin.placement() else {
            continue;
        };
        if !setting.enabled {
            continue;
        }
        if threads.iter().any(|t: &ThreadCode| t.name == name) {
            return Err(CompileError::ThreadNameTaken {
                scenario: scenario.name.clone(),
                thread: name.to_string(),
                fault: plugin.name().to_string(),
            });
        }
        if threads.len() >= crate::model::THREADS_MAX {
            return Err(CompileError::ScenarioTooLarge {
                scenario: scenario.name.clone(),
                what: "threads with the environment faults' threads",
                count: threads.len() + 1,
                max: crate::model::THREADS_MAX,
            });
        }
        env_mask |= 1 << threads.len();
        threads.push(compiler.env_thread(kind, name, plugin.name(), body)?);
    }
    let mut initial = State::new(&scenario.pages);
    for (i, thread) in threads.iter().enumerate() {
        initial.pc[i] = thread.entry;
    }
    Ok(Program {
        policy: policy.name.clone(),
        scenario: scenario.name.clone(),
        threads,
        pages: scenario.pages.iter().map(|p| p.name.clone()).collect(),
        initial,
        conds: compiler.conds,
        origins: compiler.origins,
        faults,
        plugins,
        env_mask,
    })
}

struct Compiler<'a> {
    policy: &'a ir::Policy,
    scenario: &'a ir::Scenario,
    conds: Vec<Cond>,
    origins: Vec<Origin>,
    /// Whether freezes and thaws follow the kernel's nesting rule (EBUSY /
    /// EINVAL): only when more than one thread can freeze or thaw, see
    /// [`nesting_applies`].
    nesting: bool,
    /// How many `writeback` bodies are being emitted around the current
    /// statement: `clean` starts a write-out only inside one.
    writeback_depth: usize,
    /// The hook being emitted (the outermost: `sync` may not appear in
    /// `writeback`): a `sync else` in `freeze` records a failed freeze.
    hook: Option<Hook>,
    /// Ids for `writeback` bodies ([`Emitter::writebacks`]).
    bodies: usize,
}

/// The kernel's nesting rule (a freeze of a filesystem that is not unfrozen
/// fails with EBUSY, a thaw of one that is not fully frozen with EINVAL) only
/// matters when freezes and thaws can come from more than one thread: two
/// freezer threads, or the `emergency-thaw` / `second-freezer` faults. With a
/// single freezer the hooks run exactly as written (docs/semantics.md), so that a
/// policy whose freeze ends at another level than `complete` still thaws.
fn nesting_applies(scenario: &ir::Scenario, policy: &ir::Policy) -> bool {
    let freezers = scenario
        .threads
        .iter()
        .filter(|t| match &t.kind {
            ThreadKind::Program(actions) => actions
                .iter()
                .any(|a| matches!(a.kind, ir::ActionKind::Freeze | ir::ActionKind::Thaw)),
            ThreadKind::Flusher => false,
        })
        .count();
    // The scenario's setting of a fault overrides the policy's: the last one wins.
    let enabled = |name: &str| {
        policy
            .faults
            .iter()
            .chain(&scenario.faults)
            .rfind(|f| f.name == name)
            .is_some_and(|f| f.max > 0 && f.probability > 0.0)
    };
    // A freeze that can fail (a `sync else`, with I/O errors on) leaves the
    // filesystem unfrozen, and the freezer's own thaw is then refused with
    // EINVAL, as FITHAW is (exhaustive search branches on a fault whatever
    // its probability, so only `max` counts here).
    let io_errors = policy
        .faults
        .iter()
        .chain(&scenario.faults)
        .rfind(|f| f.name == FaultKind::IoError.name())
        .is_some_and(|f| f.max > 0);
    let freeze_can_fail = io_errors && has_sync_else(&policy.hooks.freeze);
    freezers > 1
        || freeze_can_fail
        || enabled(FaultKind::EmergencyThaw.name())
        || enabled(FaultKind::SecondFreezer.name())
}

/// Whether `body` has a `sync else` (at any depth).
fn has_sync_else(body: &Body) -> bool {
    body.iter().any(|stmt| match &stmt.kind {
        StmtKind::Sync { otherwise } => otherwise.is_some(),
        StmtKind::TryLockUmount { otherwise, .. } => has_sync_else(otherwise),
        StmtKind::Submit { otherwise } => otherwise.as_ref().is_some_and(has_sync_else),
        StmtKind::If { then, otherwise, .. } => has_sync_else(then) || has_sync_else(otherwise),
        _ => false,
    })
}

/// Emission state for one thread.
struct Emitter {
    code: Vec<Instr>,
    /// Instruction ranges inside a write fault, with the page.
    faults: Vec<(usize, usize, u8)>,
    /// Instruction ranges of `writeback` bodies, with the page and the
    /// body's id: the two copies of one page's body in a `sync else` (see
    /// [`Compiler::sync_else`]) share an id, so moving from one copy into the
    /// other does not leave the body.
    writebacks: Vec<(usize, usize, u8, usize)>,
}

impl Emitter {
    fn new() -> Emitter {
        Emitter {
            code: Vec::new(),
            faults: Vec::new(),
            writebacks: Vec::new(),
        }
    }

    fn faulting(&self) -> Vec<u8> {
        let mut marks = vec![0u8; self.code.len()];
        for &(from, to, page) in &self.faults {
            for mark in &mut marks[from..to.min(self.code.len())] {
                *mark = page + 1;
            }
        }
        marks
    }

    /// Per instruction, the pages whose `writeback` body contains it.
    fn writeback_marks(&self) -> Vec<u8> {
        let mut marks = vec![0u8; self.code.len()];
        for &(from, to, page, _) in &self.writebacks {
            for mark in &mut marks[from..to.min(self.code.len())] {
                *mark |= 1 << page;
            }
        }
        marks
    }

    /// Sets every instruction's [`Leaves`]: an edge leaves the body of each
    /// `writeback` range that contains its source and not its target. Runs
    /// after jumps are threaded, so a `skip` (a jump to the body's end)
    /// counts on the real step that takes it.
    fn mark_leaves(&mut self) {
        let len = self.code.len();
        for i in 0..len {
            let leaving = |target: u16| -> u8 {
                let target = target as usize;
                let inside = |id: usize| {
                    self.writebacks
                        .iter()
                        .any(|&(from, to, _, other)| other == id && (from..to).contains(&target))
                };
                self.writebacks
                    .iter()
                    .filter(|&&(from, to, _, id)| (from..to).contains(&i) && !inside(id))
                    .fold(0u8, |mask, &(_, _, page, _)| mask | 1 << page)
            };
            let leaves = Leaves {
                next: leaving(self.code[i].next),
                alt: leaving(self.code[i].alt),
            };
            self.code[i].leaves = leaves;
        }
    }
}

/// Where `skip` and `fail sigbus` go inside the body being emitted: lists of
/// instructions to patch once the target is known.
#[derive(Default)]
struct Exits {
    skips: Vec<usize>,
    fails: Vec<usize>,
}

impl Emitter {
    fn emit(&mut self, op: Op, origin: u16) -> usize {
        let index = self.code.len();
        let next = (index + 1).min(u16::MAX as usize) as u16;
        self.code.push(Instr {
            op,
            next,
            alt: next,
            origin,
            leaves: Leaves::default(),
        });
        index
    }

    fn here(&self) -> u16 {
        self.code.len().min(u16::MAX as usize) as u16
    }

    /// Follow `Jump`s from `pc` to the first real instruction.
    fn resolve(&self, mut pc: u16) -> u16 {
        for _ in 0..=self.code.len() {
            match self.code.get(pc as usize) {
                Some(instr) if instr.op == Op::Jump => pc = instr.next,
                _ => return pc,
            }
        }
        unreachable!("a cycle of jumps: every loop passes through FlusherSleep")
    }

    fn thread_jumps(&mut self) {
        for i in 0..self.code.len() {
            let next = self.resolve(self.code[i].next);
            let alt = self.resolve(self.code[i].alt);
            self.code[i].next = next;
            self.code[i].alt = alt;
        }
    }
}

impl Compiler<'_> {
    /// The origin of a policy statement: its line, and its call site when
    /// it comes from a named body.
    fn stmt_origin(&mut self, text: String, stmt: &ir::Stmt, context: &str) -> u16 {
        let index = self.origin(text, Some(stmt.loc), context);
        if let Some(origin) = self.origins.get_mut(index as usize) {
            origin.via = stmt.via;
        }
        index
    }

    fn origin(&mut self, text: String, loc: Option<Loc>, context: &str) -> u16 {
        self.origins.push(Origin {
            text,
            loc,
            context: context.to_string(),
            via: None,
        });
        (self.origins.len() - 1).min(u16::MAX as usize) as u16
    }

    fn page_name(&self, page: usize) -> &str {
        &self.scenario.pages[page].name
    }

    fn thread(&mut self, spec: &ir::ThreadSpec) -> Result<ThreadCode, CompileError> {
        self.thread_code(spec).map_err(|e| match e {
            CompileError::TooLarge {
                policy,
                scenario,
                max,
                ..
            } => CompileError::TooLarge {
                policy,
                scenario,
                thread: spec.name.clone(),
                max,
            },
            other => other,
        })
    }

    fn thread_code(&mut self, spec: &ir::ThreadSpec) -> Result<ThreadCode, CompileError> {
        let mut out = Emitter::new();
        let flusher = matches!(spec.kind, ThreadKind::Flusher);
        match &spec.kind {
            ThreadKind::Flusher => {
                let origin = self.origin(
                    "flusher wakes: a page is dirty and s_umount is not held for writing".into(),
                    None,
                    "flusher",
                );
                out.emit(Op::FlusherSleep, origin);
                self.hook(&mut out, Hook::Flusher, None, "flusher", 0)?;
                let jump = out.emit(Op::Jump, origin);
                out.code[jump].next = 0;
            }
            ThreadKind::Program(actions) => {
                for action in actions {
                    self.action(&mut out, action)?;
                }
                let origin = self.origin("done".into(), None, "");
                let done = out.emit(Op::Done, origin);
                out.code[done].next = done as u16;
                out.code[done].alt = done as u16;
            }
        }
        if out.code.len() > CODE_LEN_MAX {
            return Err(CompileError::TooLarge {
                policy: self.policy.name.clone(),
                scenario: self.scenario.name.clone(),
                thread: spec.name.clone(),
                max: CODE_LEN_MAX,
            });
        }
        out.thread_jumps();
        out.mark_leaves();
        // The entry point may itself be a jump (a body that starts with `skip`).
        let entry = out.resolve(0);
        Ok(ThreadCode {
            name: spec.name.clone(),
            flusher,
            env: None,
            entry,
            faulting: out.faulting(),
            writeback: out.writeback_marks(),
            code: out.code,
        })
    }

    fn action(&mut self, out: &mut Emitter, action: &ir::Action) -> Result<(), CompileError> {
        use ir::ActionKind::*;
        let loc = Some(action.loc);
        match action.kind {
            Store { page, value } => {
                let context = format!("store {} {}", self.page_name(page), value);
                let origin = self.origin(context.clone(), loc, &context);
                let entry = out.emit(
                    Op::StoreEntry {
                        page: page as u8,
                        value,
                    },
                    origin,
                );
                let mut exits = Exits::default();
                let body_context = format!("page_mkwrite {}", self.page_name(page));
                self.body(
                    out,
                    &self.policy.hooks.page_mkwrite,
                    Some(page),
                    &body_context,
                    &mut exits,
                    0,
                )?;
                let complete_at = out.here();
                for skip in exits.skips {
                    out.code[skip].next = complete_at;
                }
                let origin = self.origin(format!("fault completes: {context}"), loc, &context);
                out.emit(
                    Op::FaultComplete {
                        page: page as u8,
                        value,
                    },
                    origin,
                );
                let after = out.here();
                out.faults.push((entry + 1, after as usize, page as u8));
                out.code[entry].alt = after;
                for fail in exits.fails {
                    out.code[fail].next = after;
                }
            }
            Munmap { page } => {
                let text = format!("munmap {}", self.page_name(page));
                let origin = self.origin(text.clone(), loc, &text);
                out.emit(Op::Munmap(page as u8), origin);
            }
            Msync { page } => {
                let text = format!("msync {}", self.page_name(page));
                let origin = self.origin(format!("{text}: test dirty"), loc, &text);
                self.writeback_if_dirty(out, page, origin, 0)?;
            }
            AwaitFrozen => {
                let origin = self.origin("await frozen".into(), loc, "await frozen");
                out.emit(Op::AwaitFrozen, origin);
            }
            Freeze => self.checked_hook(out, Hook::Freeze, "freeze")?,
            Thaw => self.checked_hook(out, Hook::Thaw, "thaw")?,
        }
        Ok(())
    }

    /// An environment fault's pseudo-thread: its gate, then its body, then
    /// back to the gate.
    fn env_thread(
        &mut self,
        kind: FaultKind,
        name: &str,
        fault_name: &str,
        body: EnvBody,
    ) -> Result<ThreadCode, CompileError> {
        let mut out = Emitter::new();
        let origin = self.origin(format!("fault {fault_name} fires"), None, name);
        out.emit(Op::Gate(kind), origin);
        match body {
            EnvBody::Step => {}
            EnvBody::Thaw => self.checked_hook(&mut out, Hook::Thaw, &format!("{name}: thaw"))?,
            EnvBody::FreezeThaw => {
                self.checked_hook(&mut out, Hook::Freeze, &format!("{name}: freeze"))?;
                self.checked_hook(&mut out, Hook::Thaw, &format!("{name}: thaw"))?;
            }
        }
        let jump = out.emit(Op::Jump, origin);
        out.code[jump].next = 0;
        out.thread_jumps();
        out.mark_leaves();
        Ok(ThreadCode {
            name: name.to_string(),
            flusher: false,
            env: Some(kind),
            entry: 0,
            faulting: out.faulting(),
            writeback: out.writeback_marks(),
            code: out.code,
        })
    }

    /// Emits a `freeze` or `thaw` hook with the kernel's nesting rule: a
    /// freeze of a filesystem that is not unfrozen fails with EBUSY
    /// (`freeze_super`), a thaw of one that is not fully frozen with EINVAL
    /// (`thaw_super`). The check is made under the hook's first top-level
    /// `lock umount`, in the same step (the kernel checks under `s_umount`);
    /// a hook without one gets a check step of its own at its start. When
    /// the check passes this is exactly the plain hook: the same steps and
    /// the same states.
    fn checked_hook(&mut self, out: &mut Emitter, hook: Hook, context: &str) -> Result<(), CompileError> {
        let outer = self.hook;
        self.hook = outer.or(Some(hook));
        let emitted = self.checked_hook_body(out, hook, context);
        self.hook = outer;
        emitted
    }

    fn checked_hook_body(
        &mut self,
        out: &mut Emitter,
        hook: Hook,
        context: &str,
    ) -> Result<(), CompileError> {
        if !self.nesting {
            return self.hook(out, hook, None, context, 0);
        }
        let require = match hook {
            Hook::Thaw => Level::Complete,
            _ => Level::Unfrozen,
        };
        let body = self.policy.hooks.get(hook);
        let first_lock = body
            .iter()
            .position(|s| matches!(s.kind, StmtKind::LockUmount(_)));
        let mut exits = Exits::default();
        let mut refusals = Vec::new();
        if first_lock.is_none() {
            let text = match hook {
                Hook::Thaw => "thaw: EINVAL unless frozen (thaw_super)",
                _ => "freeze: EBUSY unless unfrozen (freeze_super)",
            };
            let origin = self.origin(text.into(), None, context);
            refusals.push(out.emit(Op::LevelCheck(require), origin));
        }
        for (i, stmt) in body.iter().enumerate() {
            match (&stmt.kind, Some(i) == first_lock) {
                (StmtKind::LockUmount(mode), true) => {
                    let origin = self.stmt_origin(stmt.kind.head(), stmt, context);
                    refusals.push(out.emit(Op::LockUmountChecked { mode: *mode, require }, origin));
                }
                _ => self.stmt(out, stmt, None, context, &mut exits, 0)?,
            }
        }
        let end = out.here();
        for at in exits.skips.into_iter().chain(exits.fails) {
            out.code[at].next = end;
        }
        for at in refusals {
            out.code[at].alt = end;
        }
        Ok(())
    }

    /// Emits a whole hook; `skip` returns to just after it.
    fn hook(
        &mut self,
        out: &mut Emitter,
        hook: Hook,
        page: Option<usize>,
        context: &str,
        depth: usize,
    ) -> Result<(), CompileError> {
        let outer = self.hook;
        self.hook = outer.or(Some(hook));
        let mut exits = Exits::default();
        let emitted = self.body(out, self.policy.hooks.get(hook), page, context, &mut exits, depth);
        self.hook = outer;
        emitted?;
        let end = out.here();
        for skip in exits.skips {
            out.code[skip].next = end;
        }
        // `fail sigbus` outside page_mkwrite is rejected by the checker; if
        // one got here, it ends the hook like `skip`.
        for fail in exits.fails {
            out.code[fail].next = end;
        }
        Ok(())
    }

    /// `sync`'s per-page step and `msync`: wait until the page is not under
    /// writeback, test PG_dirty, run writeback if set. The body's range is
    /// recorded: every edge out of it ends the thread's write-out of the
    /// page ([`Leaves`]).
    fn writeback_if_dirty(
        &mut self,
        out: &mut Emitter,
        page: usize,
        origin: u16,
        depth: usize,
    ) -> Result<(), CompileError> {
        let id = self.bodies;
        self.bodies += 1;
        self.writeback_body(out, page, origin, depth, id)
    }

    /// [`Self::writeback_if_dirty`] with the body's id given (a `sync else`
    /// gives both copies of a page's body one id).
    fn writeback_body(
        &mut self,
        out: &mut Emitter,
        page: usize,
        origin: u16,
        depth: usize,
        id: usize,
    ) -> Result<(), CompileError> {
        if depth > SYNC_NESTING_MAX {
            return Err(CompileError::SyncRecursion {
                policy: self.policy.name.clone(),
                depth,
            });
        }
        let test = out.emit(Op::TestDirty(page as u8), origin);
        let context = format!("writeback {}", self.page_name(page));
        let start = out.code.len();
        self.writeback_depth += 1;
        let emitted = self.hook(out, Hook::Writeback, Some(page), &context, depth + 1);
        self.writeback_depth -= 1;
        emitted?;
        let end = out.code.len();
        out.writebacks.push((start, end, page as u8, id));
        out.code[test].alt = out.here();
        Ok(())
    }

    /// `sync else S`. Whether a submit of this sync has failed is kept in
    /// the thread's position, not in the state: every page's `test dirty`
    /// and `writeback` are emitted twice, an ok copy and an error copy. The
    /// ok copies run in page order; a failed submit in one (its failure
    /// edge: the `else`, or the redirty) continues at the same place in
    /// that page's error copy, and the error copies run on in page order.
    /// After the last page the ok chain continues after the statement; the
    /// error chain takes one step, `SyncFailed` (the sync returns -EIO), and
    /// runs S. The two copies of a page's body are one body for
    /// PG_writeback (they share an id), so the write-out in flight is not
    /// ended by crossing over.
    #[allow(clippy::too_many_arguments)]
    fn sync_else(
        &mut self,
        out: &mut Emitter,
        stmt: &ir::Stmt,
        otherwise: &Body,
        page: Option<usize>,
        context: &str,
        exits: &mut Exits,
        depth: usize,
    ) -> Result<(), CompileError> {
        let pages = self.scenario.pages.len();
        if pages == 0 {
            return Ok(());
        }
        let origin = self.stmt_origin(stmt.kind.head(), stmt, context);
        // Per chain, the jumps to patch to the next page's copy.
        let (mut ok_open, mut err_open): (Vec<usize>, Vec<usize>) = (Vec::new(), Vec::new());
        for p in 0..pages {
            let test_origin =
                self.stmt_origin(format!("sync: test dirty {}", self.page_name(p)), stmt, context);
            let id = self.bodies;
            self.bodies += 1;
            let ok_start = out.code.len();
            for at in ok_open.drain(..) {
                out.code[at].next = ok_start as u16;
            }
            self.writeback_body(out, p, test_origin, depth, id)?;
            let ok_end = out.code.len();
            ok_open.push(out.emit(Op::Jump, origin));
            let err_start = out.code.len();
            for at in err_open.drain(..) {
                out.code[at].next = err_start as u16;
            }
            self.writeback_body(out, p, test_origin, depth, id)?;
            err_open.push(out.emit(Op::Jump, origin));
            let shift = err_start - ok_start;
            debug_assert_eq!(
                out.code.len() - 1 - err_start,
                ok_end - ok_start,
                "the two copies differ"
            );
            for at in ok_start..ok_end {
                if let Op::Submit { .. } = out.code[at].op {
                    let alt = out.code[at].alt as usize;
                    debug_assert!((ok_start..ok_end + 1).contains(&alt));
                    out.code[at].alt = (alt + shift) as u16;
                }
            }
        }
        let failed_at = out.here();
        for at in err_open {
            out.code[at].next = failed_at;
        }
        let failed_origin = self.stmt_origin(
            format!("{}: a write failed, sync returns EIO", stmt.kind.head()),
            stmt,
            context,
        );
        let freeze = self.hook == Some(Hook::Freeze);
        out.emit(Op::SyncFailed { freeze }, failed_origin);
        self.body(out, otherwise, page, context, exits, depth)?;
        let over = out.emit(Op::Jump, origin);
        let after = out.here();
        out.code[over].next = after;
        for at in ok_open {
            out.code[at].next = after;
        }
        Ok(())
    }

    fn body(
        &mut self,
        out: &mut Emitter,
        body: &Body,
        page: Option<usize>,
        context: &str,
        exits: &mut Exits,
        depth: usize,
    ) -> Result<(), CompileError> {
        for stmt in body {
            self.stmt(out, stmt, page, context, exits, depth)?;
        }
        Ok(())
    }

    fn stmt(
        &mut self,
        out: &mut Emitter,
        stmt: &ir::Stmt,
        page: Option<usize>,
        context: &str,
        exits: &mut Exits,
        depth: usize,
    ) -> Result<(), CompileError> {
        // Checked before each statement, not once at the end: `sync` unrolls
        // `writeback` over the pages, and a small policy could otherwise ask
        // for hundreds of millions of instructions before the check.
        if out.code.len() > CODE_LEN_MAX {
            return Err(CompileError::TooLarge {
                policy: self.policy.name.clone(),
                scenario: self.scenario.name.clone(),
                thread: String::new(),
                max: CODE_LEN_MAX,
            });
        }
        let origin = self.stmt_origin(stmt.kind.head(), stmt, context);
        // The checker guarantees page statements only run where there is a
        // page; page 0 is a harmless stand-in should one slip through.
        let p = page.unwrap_or(0) as u8;
        match &stmt.kind {
            StmtKind::LockUmount(mode) => {
                out.emit(Op::LockUmount(*mode), origin);
            }
            StmtKind::TryLockUmount { mode, otherwise } => {
                let at = out.emit(Op::TryLockUmount(*mode), origin);
                let over = out.emit(Op::Jump, origin);
                out.code[at].alt = out.here();
                self.body(out, otherwise, page, context, exits, depth)?;
                out.code[over].next = out.here();
            }
            StmtKind::UnlockUmount => {
                out.emit(Op::UnlockUmount, origin);
            }
            StmtKind::WaitUnfrozen(level) => {
                out.emit(Op::WaitUnfrozen(*level), origin);
            }
            StmtKind::SbStart(level) => {
                out.emit(Op::SbStart(*level), origin);
            }
            StmtKind::SbEnd(level) => {
                out.emit(Op::SbEnd(*level), origin);
            }
            StmtKind::SetLevel(level) => {
                out.emit(Op::SetLevel(*level), origin);
            }
            StmtKind::WaitWriters(level) => {
                out.emit(Op::WaitWriters(*level), origin);
            }
            StmtKind::LockPage => {
                out.emit(Op::LockPage(p), origin);
            }
            StmtKind::UnlockPage => {
                out.emit(Op::UnlockPage(p), origin);
            }
            StmtKind::MarkDirty => {
                out.emit(Op::MarkDirty(p), origin);
            }
            StmtKind::Allocate => {
                out.emit(Op::Allocate(p), origin);
            }
            StmtKind::Reserve => {
                out.emit(Op::Reserve(p), origin);
            }
            StmtKind::Clean => {
                out.emit(
                    Op::Clean {
                        page: p,
                        writeback: self.writeback_depth > 0,
                    },
                    origin,
                );
            }
            StmtKind::Submit { otherwise } => {
                let at = out.emit(
                    Op::Submit {
                        page: p,
                        has_else: otherwise.is_some(),
                    },
                    origin,
                );
                if let Some(otherwise) = otherwise {
                    let over = out.emit(Op::Jump, origin);
                    out.code[at].alt = out.here();
                    self.body(out, otherwise, page, context, exits, depth)?;
                    out.code[over].next = out.here();
                }
            }
            StmtKind::Sync { otherwise: None } => {
                for page in 0..self.scenario.pages.len() {
                    let origin = self.stmt_origin(
                        format!("sync: test dirty {}", self.page_name(page)),
                        stmt,
                        context,
                    );
                    self.writeback_if_dirty(out, page, origin, depth)?;
                }
            }
            StmtKind::Sync {
                otherwise: Some(otherwise),
            } => self.sync_else(out, stmt, otherwise, page, context, exits, depth)?,
            StmtKind::FailSigbus => {
                let at = out.emit(Op::FailSigbus(p), origin);
                exits.fails.push(at);
            }
            StmtKind::Skip => {
                let at = out.emit(Op::Jump, origin);
                exits.skips.push(at);
            }
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                let cond_index = self.conds.iter().position(|c| c == cond).unwrap_or_else(|| {
                    self.conds.push(cond.clone());
                    self.conds.len() - 1
                });
                let at = out.emit(
                    Op::Branch {
                        cond: cond_index as u16,
                        page: p,
                    },
                    origin,
                );
                self.body(out, then, page, context, exits, depth)?;
                let over = out.emit(Op::Jump, origin);
                out.code[at].alt = out.here();
                self.body(out, otherwise, page, context, exits, depth)?;
                out.code[over].next = out.here();
            }
        }
        Ok(())
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

/// What faults may read of a compiled program (`fault` depends on this
/// view, not on `Program`).
impl ProgramView for Program {
    fn page_count(&self) -> usize {
        self.pages.len()
    }

    fn in_fault(&self, state: &State, page: usize) -> bool {
        Program::in_fault(self, state, page)
    }
}

/// What oracles may read of a compiled program (`oracle` depends on this
/// view, not on `Program`).
impl crate::oracle::RunView for Program {
    fn threads_count(&self) -> usize {
        self.threads.len()
    }

    fn page_count(&self) -> usize {
        self.pages.len()
    }

    fn stuck(&self, state: &State, thread: usize) -> bool {
        crate::engine::exec::stuck(self, state, thread)
    }
}

impl Op {
    /// The failure path this operation offers a statement fault, if any.
    #[inline]
    pub fn site(&self) -> Option<Site> {
        match self {
            Op::Submit { .. } => Some(Site::Submit),
            Op::TryLockUmount(_) => Some(Site::Trylock),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    //! PG_writeback: set by `clean` inside a `writeback` body only, and
    //! cleared on every way out of the body, in the step that leaves it.

    use super::*;
    use crate::engine::exec;

    /// A policy whose writeback is `writeback`, and a scenario whose user
    /// `msync`s page `a` (dirty, pte none) and stores to it.
    fn program(writeback: &str) -> Program {
        let text = format!(
            "policy p {{
                freeze {{ lock umount write; sync; set_level complete; unlock umount; }}
                thaw {{ lock umount write; set_level unfrozen; unlock umount; }}
                page_mkwrite {{ lock_page; clean; unlock_page; }}
                writeback {{ {writeback} }}
            }}
            scenario s {{
                page a {{ cached; buffers = mapped; dirty; }}
                thread user {{ msync a; store a 2; }}
                thread freezer {{ freeze; thaw; }}
            }}"
        );
        let workspace = crate::dsl::load_str("t.ff", &text).unwrap_or_else(|e| panic!("loads: {e}"));
        compile(&workspace.policies[0], &workspace.scenarios[0]).expect("compiles")
    }

    /// Runs the user alone, `fire` at the given steps (1-based), checking the
    /// invariants after each step; returns whether page `a` was under
    /// writeback after each step.
    fn user_alone(program: &Program, fire_at: &[usize]) -> Vec<bool> {
        let mut state = program.initial;
        let mut flags = Vec::new();
        while exec::enabled(program, &state, 0) {
            // An injected I/O error, as the io-error fault fires it.
            let fire = fire_at.contains(&(flags.len() + 1));
            exec::step(program, &mut state, 0, fire);
            program.assert_invariants(&state);
            flags.push(state.pages[0].writeback());
        }
        assert!(exec::finished(program, &state, 0));
        flags
    }

    #[test]
    fn the_default_writeback_ends_the_write_out_with_its_unlock() {
        // msync test, lock_page, if dirty, clean, submit, unlock_page, then the store.
        let p = program("lock_page; if dirty { clean; submit; } unlock_page;");
        let flags = user_alone(&p, &[]);
        assert_eq!(flags[..6], [false, false, false, true, true, false]);
        assert!(
            flags[6..].iter().all(|&f| !f),
            "clean in page_mkwrite starts no write-out"
        );
    }

    #[test]
    fn skip_ends_the_write_out_on_the_step_that_takes_it() {
        // The branch itself leaves the body (its true edge is the skip).
        let p = program("lock_page; clean; if not dirty { unlock_page; skip; } submit; unlock_page;");
        let flags = user_alone(&p, &[]);
        assert_eq!(flags[..5], [false, false, true, true, false]);
        let p = program("lock_page; clean; unlock_page; if not dirty { skip; } submit;");
        let flags = user_alone(&p, &[]);
        assert_eq!(flags[..5], [false, false, true, true, false]);
    }

    #[test]
    fn a_failed_submit_ends_the_write_out_after_its_else_or_at_the_end() {
        let p = program("lock_page; clean; submit else { mark_dirty; unlock_page; skip; } unlock_page;");
        // Fires at step 4 (submit): the else's unlock_page + skip leaves.
        let flags = user_alone(&p, &[4]);
        assert_eq!(flags[..6], [false, false, true, true, true, false]);
        // Without `else` the page is redirtied; the write-out ends at unlock_page.
        let p = program("lock_page; clean; submit; unlock_page;");
        let flags = user_alone(&p, &[4]);
        assert_eq!(flags[..5], [false, false, true, true, false]);
    }

    #[test]
    fn every_edge_out_of_a_writeback_body_ends_it_and_no_other_does() {
        let p = program(
            "lock_page; if dirty { clean; trylock umount read else { unlock_page; skip; } submit; unlock umount; } unlock_page;",
        );
        let code = &p.threads[0];
        for (i, instr) in code.code.iter().enumerate() {
            if instr.op == Op::Jump {
                continue;
            }
            for (target, leaves) in [(instr.next, instr.leaves.next), (instr.alt, instr.leaves.alt)] {
                let inside = code.writeback[i] & 1 != 0;
                let stays = code.writeback[target as usize] & 1 != 0;
                assert_eq!(
                    leaves != 0,
                    inside && !stays,
                    "instruction {i} {:?} → {target}",
                    instr.op
                );
            }
        }
        // Two ways out: the else's unlock_page (then skip) and the final
        // unlock_page. The test's clean edge does not count (the body was
        // never entered), nor the branch's false edge (to the final unlock).
        let leaving: Vec<Op> = code
            .code
            .iter()
            .filter(|i| i.op != Op::Jump && (i.leaves.next | i.leaves.alt) != 0)
            .map(|i| i.op)
            .collect();
        assert_eq!(leaving, [Op::UnlockPage(0), Op::UnlockPage(0)]);
    }

    /// A freeze with `sync else` (freeze_super's undo) over pages `a` and
    /// `b`, both dirty; io-error on, so the nesting rule applies.
    fn sync_else_program() -> Program {
        let text = "policy p {
                freeze {
                    lock umount write;
                    set_level pagefault;
                    sync else { set_level unfrozen; unlock umount; skip; }
                    set_level complete;
                    unlock umount;
                }
                thaw { lock umount write; set_level unfrozen; unlock umount; }
                page_mkwrite { lock_page; mark_dirty; }
                writeback { lock_page; if dirty { clean; submit else { unlock_page; skip; } } unlock_page; }
                faults { io-error probability 1 max 1; }
            }
            scenario s {
                page a { cached; buffers = mapped; dirty; mem = 2; }
                page b { cached; buffers = mapped; dirty; mem = 3; }
                thread freezer { freeze; thaw; }
            }";
        let workspace = crate::dsl::load_str("t.ff", text).unwrap_or_else(|e| panic!("loads: {e}"));
        compile(&workspace.policies[0], &workspace.scenarios[0]).expect("compiles")
    }

    /// Runs thread 0 alone, firing a fault at each step where one can fire
    /// and `fire` says so; returns the final state.
    fn alone(program: &Program, fire: bool) -> State {
        let mut state = program.initial;
        while exec::enabled(program, &state, 0) {
            let fires = fire && exec::fault_point(program, &state, 0).is_some();
            exec::step(program, &mut state, 0, fires);
            program.assert_invariants(&state);
        }
        assert!(exec::finished(program, &state, 0));
        state
    }

    #[test]
    fn sync_else_runs_after_the_last_page_when_a_submit_failed() {
        let p = sync_else_program();
        // The first submit (page a) fails; the sync goes on and writes b,
        // then reports the error: the freeze is undone and the thaw refused.
        let state = alone(&p, true);
        assert_eq!(state.faults_fired[FaultKind::IoError as usize], 1);
        assert_eq!(
            (state.pages[0].disk, state.pages[0].dirty()),
            (1, false),
            "a is lost"
        );
        assert_eq!(state.pages[1].disk, 3, "b is written although a failed");
        assert_eq!(state.level(), Level::Unfrozen);
        assert!(state.has_record(record::FREEZE_FAILED));
        assert!(state.has_record(record::THAW_REFUSED), "FITHAW → EINVAL");
        assert!(
            !state.has_record(record::WINDOW_EVER),
            "the freeze never completed"
        );
        // Without a failure the freeze completes and the thaw thaws.
        let state = alone(&p, false);
        assert_eq!((state.pages[0].disk, state.pages[1].disk), (2, 3));
        assert!(state.has_record(record::WINDOW_EVER));
        assert!(!state.has_record(record::FREEZE_FAILED) && !state.has_record(record::THAW_REFUSED));
        assert_eq!(p.records_mask() & record::FREEZE_FAILED, record::FREEZE_FAILED);
    }

    #[test]
    fn a_failed_submit_crosses_into_the_error_copy_without_ending_the_write_out() {
        let p = sync_else_program();
        let code = &p.threads[0].code;
        let failed = code
            .iter()
            .position(|i| matches!(i.op, Op::SyncFailed { freeze: true }))
            .expect("the error chain ends in SyncFailed");
        for (at, instr) in code.iter().enumerate() {
            if let Op::Submit { has_else: true, .. } = instr.op {
                // The failure edge stays in the page's body (its twin copy):
                // the else's unlock_page ends the write-out, not the submit.
                assert_eq!(instr.leaves.alt, 0, "submit at {at}");
                assert_ne!(instr.alt, instr.next);
                // Every failure edge leads to SyncFailed, never past it.
                assert!(reaches(code, instr.alt as usize, failed), "submit at {at}");
            }
        }
        // No `sync else` in a program without faults changes nothing else:
        // a plain `sync` compiles to one copy per page.
        let plain = program("lock_page; if dirty { clean; submit; } unlock_page;");
        assert!(
            plain.threads[1]
                .code
                .iter()
                .all(|i| !matches!(i.op, Op::SyncFailed { .. }))
        );
        assert_eq!(plain.records_mask(), crate::model::RECORDS_ALL);
    }

    /// Whether `to` is reachable from `from` in `code`.
    fn reaches(code: &[Instr], from: usize, to: usize) -> bool {
        let mut seen = vec![false; code.len()];
        let mut stack = vec![from];
        while let Some(at) = stack.pop() {
            if at == to {
                return true;
            }
            if std::mem::replace(&mut seen[at], true) || code[at].op == Op::Done {
                continue;
            }
            stack.extend([code[at].next as usize, code[at].alt as usize]);
        }
        false
    }

    #[test]
    fn sync_waits_for_a_write_out_in_flight() {
        let p = program("lock_page; if dirty { clean; submit; } unlock_page;");
        let (user, freezer) = (0, 1);
        let mut state = p.initial;
        exec::step(&p, &mut state, freezer, false); // lock umount write
        for _ in 0..4 {
            exec::step(&p, &mut state, user, false); // msync: dirty, lock_page, if dirty, clean
        }
        assert!(state.pages[0].writeback() && !state.pages[0].dirty());
        // The freeze's sync waits at its per-page step although the page is clean.
        assert!(matches!(p.instr(freezer, state.pc[freezer]).op, Op::TestDirty(0)));
        assert!(!exec::enabled(&p, &state, freezer));
        exec::step(&p, &mut state, user, false); // submit: still in flight
        assert!(!exec::enabled(&p, &state, freezer));
        exec::step(&p, &mut state, user, false); // unlock_page: the write-out ends
        assert!(exec::enabled(&p, &state, freezer));
        p.assert_invariants(&state);
    }
}
