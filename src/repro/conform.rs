//! The conformance matrix: what a real kernel did (the probes' JSON lines)
//! against what the model says (its exhaustive verdict and where each user
//! can be blocked while the filesystem is frozen). Pure: the CLI runs the
//! VM and hands the lines in.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::exec;
use crate::engine::explore::{self, ExploreLimits};
use crate::engine::program::Program;
use crate::model::{State, record};
use crate::oracle::{OracleSet, Outcome, Outcomes};

/// Most states the blocked-where search visits per cell.
pub const BLOCKED_STATES_MAX: usize = 2_000_000;

/// What the model says about one scenario under one policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelCell {
    pub scenario: String,
    /// Every reachable outcome (names), from the exhaustive search.
    pub outcomes: BTreeSet<String>,
    pub complete: bool,
    /// Per user thread: the statement classes it can be blocked at while the
    /// frozen window is open.
    pub blocked: BTreeMap<String, BTreeSet<String>>,
    /// Per user thread: whether it can finish while the window is open.
    pub can_finish_frozen: BTreeMap<String, bool>,
    /// The nesting rule and the freeze's result: over the runs that end,
    /// see [`Nesting`].
    pub refusals: BTreeSet<Nesting>,
    /// Whether the scenario injects faults (the probe forces them, so a
    /// `safe` run need not be seen).
    pub faults: bool,
}

/// What the freezes and thaws of one run returned: (some FIFREEZE refused
/// with EBUSY, some FIFREEZE failed with EIO — its sync failed, some FITHAW
/// refused with EINVAL).
pub type Nesting = (bool, bool, bool);

/// The class of a model statement, as compared with kernel stacks.
pub fn statement_class(text: &str) -> String {
    let t = text.trim();
    for head in [
        "sb_start pagefault",
        "sb_start fs",
        "sb_start write",
        "wait_unfrozen",
        "lock_page",
        "lock umount",
        "wait_writers",
        "await frozen",
    ] {
        if t.starts_with(head) {
            return head.to_string();
        }
    }
    if t.contains("test dirty") || t.starts_with("sync") {
        return "wait writeback".to_string();
    }
    t.to_string()
}

/// The class of a kernel stack (`/proc/PID/stack`), by the table in
/// docs/conformance.md; `None` for an empty stack (the thread was not in the
/// kernel).
pub fn stack_class(stack: &str) -> Option<String> {
    let frames: Vec<&str> = stack
        .lines()
        .filter_map(|l| l.split("] ").nth(1))
        .map(|f| f.split('+').next().unwrap_or(f))
        .collect();
    if frames.is_empty() {
        return None;
    }
    let has = |names: &[&str]| frames.iter().any(|f| names.iter().any(|n| f.contains(n)));
    let class = if has(&["percpu_rwsem_wait", "percpu_down_read"]) {
        if has(&["journal_start", "start_transaction", "xfs_trans_alloc"]) {
            "sb_start fs"
        } else if has(&["page_mkwrite", "filemap_fault"]) {
            "sb_start pagefault"
        } else {
            "sb_start write"
        }
    } else if has(&["folio_wait_writeback", "wait_on_page_writeback"]) {
        "wait writeback"
    } else if has(&["__folio_lock", "__lock_page", "folio_wait_bit"]) {
        "lock_page"
    } else if has(&["freeze_super", "thaw_super"]) {
        "lock umount"
    } else if has(&[
        "lock_mm_and_find_vma",
        "mmap_read_lock",
        "rwsem_down_read_slowpath",
    ]) && has(&["do_user_addr_fault", "madvise", "msync"])
    {
        "mmap_lock (not modelled)"
    } else {
        return Some(format!("other: {}", frames[0]));
    };
    Some(class.to_string())
}

/// Computes the model's side of one cell: the exhaustive outcome set, and a
/// search of every reachable state for where users are blocked while frozen.
pub fn model_cell(
    program: &Program,
    oracles: &OracleSet,
    limits: &ExploreLimits,
    users: &[usize],
) -> ModelCell {
    let exploration = explore::explore(program, oracles, limits);
    let mut outcomes: BTreeSet<String> = exploration
        .outcomes
        .iter()
        .map(|o| o.name().to_string())
        .collect();
    // The kernel has no step budget: an endless model run is not an outcome
    // a probe can observe.
    outcomes.remove(Outcome::StepLimit.name());
    let mut blocked: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut can_finish: BTreeMap<String, bool> = BTreeMap::new();
    for &u in users {
        blocked.insert(program.threads[u].name.clone(), BTreeSet::new());
        can_finish.insert(program.threads[u].name.clone(), false);
    }
    let mut seen: HashSet<State> = HashSet::new();
    let mut queue: VecDeque<State> = VecDeque::new();
    seen.insert(program.initial);
    queue.push_back(program.initial);
    let mut complete = exploration.complete();
    let mut refusals = BTreeSet::new();
    while let Some(state) = queue.pop_front() {
        if exec::enabled_mask(program, &state) == 0 {
            refusals.insert((
                state.records & record::FREEZE_REFUSED != 0,
                state.records & record::FREEZE_FAILED != 0,
                state.records & record::THAW_REFUSED != 0,
            ));
        }
        let open = state.records & record::WINDOW_OPEN != 0;
        if open {
            for &u in users {
                if !exec::finished(program, &state, u) && !exec::enabled(program, &state, u) {
                    let instr = program.instr(u, state.pc[u]);
                    let text = &program.origins[instr.origin as usize].text;
                    blocked
                        .get_mut(&program.threads[u].name)
                        .expect("inserted above")
                        .insert(statement_class(text));
                }
            }
        }
        for t in 0..program.threads.len() {
            if !exec::enabled(program, &state, t) {
                continue;
            }
            let fires: &[bool] = if exec::fault_point(program, &state, t).is_some() {
                &[false, true]
            } else {
                &[false]
            };
            for &fire in fires {
                let mut next = state;
                exec::step(program, &mut next, t, fire);
                if users.contains(&t)
                    && exec::finished(program, &next, t)
                    && next.records & record::WINDOW_OPEN != 0
                {
                    can_finish.insert(program.threads[t].name.clone(), true);
                }
                if seen.len() >= BLOCKED_STATES_MAX {
                    complete = false;
                    continue;
                }
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
    }
    ModelCell {
        scenario: program.scenario.clone(),
        outcomes,
        complete,
        blocked,
        can_finish_frozen: can_finish,
        refusals,
        faults: program.any_fault_enabled(),
    }
}

/// One probe run, as the probe writes it (`freezefuzz-probe/1`).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ProbeRun {
    pub scenario: String,
    pub fs: String,
    pub seed: u64,
    pub run: u32,
    pub setup_error: Option<String>,
    pub frozen_write: bool,
    pub changed_blocks: Vec<u64>,
    pub lost_write: bool,
    pub user_error: bool,
    pub deadlock: bool,
    pub ioctls: Vec<Ioctl>,
    pub threads: Vec<ProbeThread>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct Ioctl {
    pub op: String,
    pub rc: i32,
    pub errno: i32,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct ProbeThread {
    pub name: String,
    pub user: bool,
    pub finished: bool,
    pub finished_frozen: bool,
    pub error: Option<String>,
    pub stack_frozen: String,
    pub stack_hung: String,
}

/// `EIO`, `EBUSY` and `EINVAL` on Linux.
const EIO: i32 = 5;
const EBUSY: i32 = 16;
const EINVAL: i32 = 22;

impl ProbeRun {
    /// Whether some `FIFREEZE` failed with EBUSY, some with EIO, and some
    /// `FITHAW` with EINVAL; any other failure is an error naming it.
    pub fn refusals(&self) -> Result<Nesting, String> {
        let mut pair = (false, false, false);
        for io in self.ioctls.iter().filter(|io| io.rc != 0) {
            match (io.op.as_str(), io.errno) {
                ("freeze", EBUSY) => pair.0 = true,
                ("freeze", EIO) => pair.1 = true,
                ("thaw", EINVAL) => pair.2 = true,
                (op, errno) => return Err(format!("{op} failed with errno {errno}")),
            }
        }
        Ok(pair)
    }

    /// The outcomes this run shows, named as the model names them.
    pub fn outcomes(&self) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        if self.frozen_write {
            set.insert(Outcome::FrozenWrite.name().to_string());
        }
        if self.lost_write {
            set.insert(Outcome::LostWrite.name().to_string());
        }
        if self.user_error {
            set.insert(Outcome::UserError.name().to_string());
        }
        if self.deadlock {
            set.insert(Outcome::Deadlock.name().to_string());
        }
        if set.is_empty() {
            set.insert(Outcome::Safe.name().to_string());
        }
        set
    }
}

/// Everything one VM run reported.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    pub kernel: String,
    pub runs: Vec<ProbeRun>,
    /// (scenario, fs) → the probe's exit code.
    pub exits: BTreeMap<(String, String), i32>,
}

/// Parses the VM's results file: one JSON object per line (runs, probe
/// exits, the kernel line, the end marker). Unknown lines are errors.
pub fn parse_results(text: &str) -> Result<Observed, String> {
    let mut observed = Observed::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        if line.is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("results line {}: {e}", n + 1))?;
        if let Some(kernel) = value.get("kernel").and_then(|k| k.as_str()) {
            observed.kernel = kernel.to_string();
        } else if let Some(code) = value.get("probe_exit").and_then(|c| c.as_i64()) {
            let key = |k: &str| {
                value
                    .get(k)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string()
            };
            observed.exits.insert((key("scenario"), key("fs")), code as i32);
        } else if value.get("schema").and_then(|s| s.as_str()) == Some("freezefuzz-probe/1") {
            let run: ProbeRun =
                serde_json::from_value(value).map_err(|e| format!("results line {}: {e}", n + 1))?;
            observed.runs.push(run);
        } else if let Some(fs) = value.get("fs_error").and_then(|f| f.as_str()) {
            let code = value.get("exit").and_then(|c| c.as_i64()).unwrap_or(-1);
            observed
                .exits
                .insert(("*".to_string(), fs.to_string()), code as i32);
        } else if value.get("done").is_some() {
        } else {
            return Err(format!("results line {}: unexpected `{line}`", n + 1));
        }
    }
    Ok(observed)
}

/// The verdict of one cell (scenario × filesystem).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Cell {
    pub scenario: String,
    pub fs: String,
    /// `agree`, `DISAGREE`, `not-run` (with the reason).
    pub verdict: String,
    pub runs: usize,
    pub observed: BTreeMap<String, usize>,
    pub model: BTreeSet<String>,
    /// Runs in which some user was seen blocked in the kernel while frozen.
    pub blocked_runs: usize,
    /// Per user thread: kernel stack classes seen while frozen.
    pub blocked: BTreeMap<String, BTreeSet<String>>,
    pub model_blocked: BTreeMap<String, BTreeSet<String>>,
    /// The nesting rule: (freeze refused with EBUSY, thaw refused with
    /// EINVAL) as seen in the runs, and as the model's runs end.
    pub refusals: BTreeSet<Nesting>,
    pub model_refusals: BTreeSet<Nesting>,
    /// Every disagreement, with the kernel's evidence.
    pub findings: Vec<String>,
    /// Bad outcomes the model reaches that no run showed (expected for a
    /// correct kernel only if the model is too pessimistic).
    pub unobserved: Vec<String>,
}

/// Compares one cell.
pub fn compare(model: &ModelCell, fs: &str, observed: &Observed, reason_not_run: Option<&str>) -> Cell {
    let mut cell = Cell {
        scenario: model.scenario.clone(),
        fs: fs.to_string(),
        verdict: String::new(),
        runs: 0,
        blocked_runs: 0,
        observed: BTreeMap::new(),
        model: model.outcomes.clone(),
        blocked: BTreeMap::new(),
        model_blocked: model.blocked.clone(),
        refusals: BTreeSet::new(),
        model_refusals: model.refusals.clone(),
        findings: Vec::new(),
        unobserved: Vec::new(),
    };
    if let Some(reason) = reason_not_run {
        cell.verdict = format!("not-run: {reason}");
        return cell;
    }
    let runs: Vec<&ProbeRun> = observed
        .runs
        .iter()
        .filter(|r| r.scenario == model.scenario && r.fs == fs)
        .collect();
    cell.runs = runs.len();
    let exit = observed
        .exits
        .get(&(model.scenario.clone(), fs.to_string()))
        .or_else(|| observed.exits.get(&("*".to_string(), fs.to_string())))
        .copied();
    for run in &runs {
        if let Some(e) = &run.setup_error {
            cell.findings.push(format!("run {}: set-up failed: {e}", run.run));
            continue;
        }
        for o in run.outcomes() {
            *cell.observed.entry(o.clone()).or_default() += 1;
            if !model.outcomes.contains(&o) {
                cell.findings.push(format!(
                    "run {} (seed {}): {o}, which the model never reaches{}",
                    run.run,
                    run.seed,
                    evidence(run)
                ));
            }
        }
        match run.refusals() {
            Err(e) => cell
                .findings
                .push(format!("run {}: {e}, outside the nesting rule", run.run)),
            Ok(pair) => {
                cell.refusals.insert(pair);
                if !model.refusals.contains(&pair) {
                    let ioctls: Vec<String> = run
                        .ioctls
                        .iter()
                        .map(|io| format!("{} rc {} errno {}", io.op, io.rc, io.errno))
                        .collect();
                    cell.findings.push(format!(
                        "run {}: freeze refused (EBUSY) {}, freeze failed (EIO) {}, thaw refused (EINVAL) {}, which no run of the model ends with ({:?}); ioctls: {}",
                        run.run,
                        pair.0,
                        pair.1,
                        pair.2,
                        model.refusals,
                        ioctls.join(", ")
                    ));
                }
            }
        }
        if run
            .threads
            .iter()
            .any(|t| t.user && stack_class(&t.stack_frozen).is_some())
        {
            cell.blocked_runs += 1;
        }
        for t in run.threads.iter().filter(|t| t.user) {
            if let Some(class) = stack_class(&t.stack_frozen) {
                let allowed = model.blocked.get(&t.name).is_some_and(|s| s.contains(&class));
                cell.blocked
                    .entry(t.name.clone())
                    .or_default()
                    .insert(class.clone());
                if !allowed {
                    cell.findings.push(format!(
                        "run {}: `{}` blocked at {class} while frozen, where the model never blocks it; kernel stack:\n{}",
                        run.run,
                        t.name,
                        t.stack_frozen.trim_end()
                    ));
                }
            }
            if t.finished_frozen && !model.can_finish_frozen.get(&t.name).copied().unwrap_or(false) {
                cell.findings.push(format!(
                    "run {}: `{}` finished while frozen; the model never lets it",
                    run.run, t.name
                ));
            }
        }
    }
    if exit.is_some_and(|c| c != 0) {
        cell.findings.push(format!(
            "the probe exited with {} (see the serial log)",
            exit.unwrap_or_default()
        ));
    }
    if runs.is_empty() {
        cell.findings.push("no run reported".to_string());
    } else if !cell.observed.contains_key(Outcome::Safe.name()) && !model.faults {
        cell.findings.push("no run was safe".to_string());
    }
    for o in &model.outcomes {
        if o != Outcome::Safe.name() && !cell.observed.contains_key(o) {
            cell.unobserved.push(o.clone());
        }
    }
    cell.verdict = if cell.findings.is_empty() {
        "agree".to_string()
    } else {
        "DISAGREE".to_string()
    };
    cell
}

fn evidence(run: &ProbeRun) -> String {
    let mut e = String::new();
    if run.frozen_write {
        let _ = write!(e, "; image blocks changed while frozen: {:?}", run.changed_blocks);
    }
    for t in &run.threads {
        if !t.stack_hung.is_empty() && !t.finished {
            let _ = write!(
                e,
                "; `{}` still blocked after the thaw:\n{}",
                t.name,
                t.stack_hung.trim_end()
            );
        }
        if let Some(err) = &t.error {
            let _ = write!(e, "; `{}`: {err}", t.name);
        }
    }
    e
}

/// The whole matrix.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Matrix {
    pub schema: String,
    pub policy: String,
    pub kernel: String,
    pub filesystems: Vec<String>,
    pub seed: u64,
    pub racing_runs: u32,
    pub cells: Vec<Cell>,
}

impl Matrix {
    /// Every cell that ran agrees (cells the probe cannot set up are shown
    /// as `not run`, with the reason, and do not count).
    pub fn agrees(&self) -> bool {
        self.cells
            .iter()
            .all(|c| c.verdict == "agree" || c.verdict.starts_with("not-run"))
    }

    /// A plain text table: one row per scenario, one column per filesystem.
    pub fn table(&self) -> String {
        self.grid(false)
    }

    pub fn markdown(&self) -> String {
        self.grid(true)
    }

    fn grid(&self, markdown: bool) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}conformance of policy `{}` against Linux {} (seed {}, {} runs per racing cell)\n",
            if markdown { "### " } else { "" },
            self.policy,
            self.kernel,
            self.seed,
            self.racing_runs
        );
        let scenarios: Vec<&str> = {
            let mut v: Vec<&str> = Vec::new();
            for c in &self.cells {
                if !v.contains(&c.scenario.as_str()) {
                    v.push(&c.scenario);
                }
            }
            v
        };
        let cell_text = |c: &Cell| -> String {
            if c.verdict.starts_with("not-run") {
                return "not run".to_string();
            }
            let seen: Vec<String> = c.observed.iter().map(|(o, n)| format!("{o}×{n}")).collect();
            format!("{} ({}, {} blocked)", c.verdict, seen.join(" "), c.blocked_runs)
        };
        let mut rows: Vec<Vec<String>> = Vec::new();
        let mut header = vec!["scenario".to_string(), "model".to_string()];
        header.extend(self.filesystems.iter().cloned());
        rows.push(header);
        for s in &scenarios {
            let model = self
                .cells
                .iter()
                .find(|c| c.scenario == *s)
                .map(|c| c.model.iter().cloned().collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            let mut row = vec![s.to_string(), model];
            for fs in &self.filesystems {
                row.push(
                    self.cells
                        .iter()
                        .find(|c| c.scenario == *s && &c.fs == fs)
                        .map(cell_text)
                        .unwrap_or_default(),
                );
            }
            rows.push(row);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        for (n, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            if markdown {
                let _ = writeln!(out, "| {} |", cells.join(" | "));
                if n == 0 {
                    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
                    let _ = writeln!(out, "| {} |", rule.join(" | "));
                }
            } else {
                let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            }
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "where users block while frozen (kernel stack class; model statement class):"
        );
        for c in &self.cells {
            for (thread, classes) in &c.blocked {
                let model = c.model_blocked.get(thread).cloned().unwrap_or_default();
                let _ = writeln!(
                    out,
                    "{}{} on {}: `{}` kernel {:?}, model {:?}",
                    if markdown { "- " } else { "  " },
                    c.scenario,
                    c.fs,
                    thread,
                    classes,
                    model
                );
            }
        }
        let refusing: Vec<&Cell> = self
            .cells
            .iter()
            .filter(|c| {
                c.refusals
                    .iter()
                    .chain(&c.model_refusals)
                    .any(|&(f, e, t)| f || e || t)
            })
            .collect();
        if !refusing.is_empty() {
            let _ = writeln!(
                out,
                "\nthe nesting rule and failed freezes ((freeze refused with EBUSY, freeze failed with EIO, thaw refused with EINVAL) per run):"
            );
            for c in refusing {
                let _ = writeln!(
                    out,
                    "{}{} on {}: kernel {:?}, model {:?}",
                    if markdown { "- " } else { "  " },
                    c.scenario,
                    c.fs,
                    c.refusals,
                    c.model_refusals
                );
            }
        }
        let findings: Vec<&Cell> = self.cells.iter().filter(|c| !c.findings.is_empty()).collect();
        if !findings.is_empty() {
            let _ = writeln!(out, "\ndisagreements (with the kernel's evidence):");
            for c in findings {
                for f in &c.findings {
                    let _ = writeln!(
                        out,
                        "{}{} on {}: {f}",
                        if markdown { "- " } else { "  " },
                        c.scenario,
                        c.fs
                    );
                }
            }
        }
        let unobserved: Vec<&Cell> = self.cells.iter().filter(|c| !c.unobserved.is_empty()).collect();
        if !unobserved.is_empty() {
            let _ = writeln!(out, "\nbad outcomes the model reaches and no run showed:");
            for c in unobserved {
                let _ = writeln!(
                    out,
                    "{}{} on {}: {}",
                    if markdown { "- " } else { "  " },
                    c.scenario,
                    c.fs,
                    c.unobserved.join(", ")
                );
            }
        }
        out
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the matrix serialises") + "\n"
    }
}

/// The set of outcome names, for a model verdict given as [`Outcomes`].
pub fn outcome_names(outcomes: Outcomes) -> BTreeSet<String> {
    outcomes.iter().map(|o| o.name().to_string()).collect()
}
