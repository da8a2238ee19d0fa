//! Syntax tree → checked IR: words become statements, names are resolved,
//! `extends` is flattened, named bodies are inlined (late-bound: in the scope
//! of the policy being lowered), defaults are filled in, limits are checked,
//! and every hook goes through the lock checks of `checks.rs`. All errors are
//! collected; a policy or scenario with an error is left out of the result.
//! No IO.

use std::collections::{BTreeMap, BTreeSet};

use super::ast::{self, Span, Word};
use super::checks;
use super::diag::{Code, Diagnostic, Source};
use crate::ir::{
    self, Buffers, CmpOp, Cond, EqOp, FileId, Hook, Level, Loc, LockMode, Pte, StmtKind, WriterLevel, limits,
};

/// Most terms (comparisons and flags) in one condition: keeps the lowered
/// condition tree shallow.
pub const CONDITION_TERMS_MAX: usize = 64;

/// Every statement word, for suggestions and for spotting a missing `;`.
pub const STATEMENT_WORDS: &[&str] = &[
    "lock",
    "trylock",
    "unlock",
    "wait_unfrozen",
    "sb_start",
    "sb_end",
    "set_level",
    "wait_writers",
    "lock_page",
    "unlock_page",
    "mark_dirty",
    "allocate",
    "reserve",
    "clean",
    "submit",
    "sync",
    "fail",
    "skip",
    "if",
];

const LEVELS_HELP: &str = "levels are unfrozen, write, pagefault, fs and complete";
const WRITER_LEVELS_HELP: &str = "only write, pagefault and fs have writers";

/// A statement after stage one: words interpreted, calls not yet resolved.
#[derive(Clone, Debug)]
pub(crate) struct PreStmt {
    kind: PreKind,
    loc: Loc,
    span: Span,
}

#[derive(Clone, Debug)]
enum PreKind {
    /// A statement without nested bodies.
    Leaf(StmtKind),
    TryLock(LockMode, Vec<PreStmt>),
    Submit(Option<Vec<PreStmt>>),
    Sync(Option<Vec<PreStmt>>),
    If(Cond, Vec<PreStmt>, Vec<PreStmt>),
    Call(String),
    /// A statement that had an error (already reported): the hook it ends up
    /// in is not lock-checked, which would only report follow-on errors.
    Invalid,
}

struct PrePolicy {
    name: Word,
    extends: Option<Word>,
    hooks: Vec<(Hook, Vec<PreStmt>)>,
    bodies: Vec<(String, Vec<PreStmt>)>,
    faults: Vec<ir::FaultSpec>,
    file: FileId,
    span: Span,
}

/// The collector of errors, deduplicated (an inherited hook is lowered once
/// per policy that inherits it, but each problem is reported once).
pub(crate) struct Errors<'a> {
    sources: &'a [Source],
    pub list: Vec<Diagnostic>,
    /// Errors found past [`limits::DIAGNOSTICS_MAX`]: counted, not built.
    pub dropped: usize,
    seen: BTreeSet<(Code, FileId, usize, String)>,
}

impl<'a> Errors<'a> {
    pub fn new(sources: &'a [Source]) -> Errors<'a> {
        Errors {
            sources,
            list: Vec::new(),
            dropped: 0,
            seen: BTreeSet::new(),
        }
    }

    /// Errors found so far, built or not.
    fn count(&self) -> usize {
        self.list.len() + self.dropped
    }

    fn make(&self, code: Code, file: FileId, span: Span, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(
            code,
            &self.sources[file.0 as usize],
            Some(file),
            span.start,
            span.len().max(1),
            message,
        )
    }

    /// Adds an error unless the same one (code, place, message) is already in.
    fn push(&mut self, diag: Diagnostic) -> bool {
        let key = (
            diag.code,
            diag.file.unwrap_or(FileId(u32::MAX)),
            diag.offset,
            diag.message.clone(),
        );
        if self.seen.insert(key) {
            self.list.push(diag);
            true
        } else {
            false
        }
    }

    /// The span of the word at a statement's location (for errors found on the IR).
    fn span_at(&self, loc: Loc) -> Span {
        let source = &self.sources[loc.file.0 as usize];
        let text = &source.text;
        let start = source.lines.offset_of(text, loc.line, loc.column);
        let len = text[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(text.len() - start);
        Span {
            start,
            end: start + len.max(1),
        }
    }
}

/// A number as quoted in an error: whole up to 32 characters, clipped after.
fn shown(text: &str) -> String {
    match text.char_indices().nth(32) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

fn loc_of(sources: &[Source], file: FileId, span: Span) -> Loc {
    let source = &sources[file.0 as usize];
    let (line, column) = source.lines.line_column(&source.text, span.start);
    Loc { file, line, column }
}

/// Lowers every item of `files` (in order); `defaults` is the parsed
/// `<builtin defaults>` file. Returns the policies and scenarios that lowered
/// without error.
pub(crate) fn lower<'a>(
    files: &[(FileId, ast::File)],
    defaults: &(FileId, ast::File),
    errors: &mut Errors<'a>,
    fault_names: &'a [&'a str],
) -> (Vec<ir::Policy>, Vec<ir::Scenario>) {
    let sources = errors.sources;
    let mut stage = Stage {
        errors,
        sources,
        fault_names,
    };
    let mut policies: Vec<PrePolicy> = Vec::new();
    let mut scenarios = Vec::new();
    let mut policy_names: BTreeMap<String, usize> = BTreeMap::new();
    let mut scenario_names: BTreeMap<String, Loc> = BTreeMap::new();
    for (file, tree) in files {
        for item in &tree.items {
            match item {
                ast::Item::Policy(def) => {
                    let pre = stage.policy(*file, def);
                    if let Some(&first) = policy_names.get(&def.name.text) {
                        let first_loc =
                            loc_of(stage.sources, policies[first].file, policies[first].name.span);
                        let help = format!(
                            "the first is at {}; rename one of them",
                            stage.describe(first_loc)
                        );
                        let d = stage
                            .errors
                            .make(
                                Code::DuplicatePolicy,
                                *file,
                                def.name.span,
                                format!("policy `{}` is defined twice", def.name.text),
                            )
                            .with_label("second definition")
                            .with_help(help);
                        stage.errors.push(d);
                        continue;
                    }
                    policy_names.insert(def.name.text.clone(), policies.len());
                    policies.push(pre);
                }
                ast::Item::Scenario(def) => {
                    if let Some(first) = scenario_names.get(&def.name.text) {
                        let help = format!("the first is at {}; rename one of them", stage.describe(*first));
                        let d = stage
                            .errors
                            .make(
                                Code::DuplicateScenario,
                                *file,
                                def.name.span,
                                format!("scenario `{}` is defined twice", def.name.text),
                            )
                            .with_label("second definition")
                            .with_help(help);
                        stage.errors.push(d);
                        continue;
                    }
                    scenario_names.insert(def.name.text.clone(), loc_of(stage.sources, *file, def.name.span));
                    if let Some(scenario) = stage.scenario(*file, def) {
                        scenarios.push(scenario);
                    }
                }
            }
        }
    }
    let defaults_policy = defaults.1.items.iter().find_map(|item| match item {
        ast::Item::Policy(def) => Some(stage.policy(defaults.0, def)),
        ast::Item::Scenario(_) => None,
    });
    let default_hooks: Vec<(Hook, Vec<PreStmt>)> = defaults_policy.map(|p| p.hooks).unwrap_or_default();
    let mut out = Vec::new();
    for index in 0..policies.len() {
        if let Some(policy) = stage.flatten(index, &policies, &policy_names, &default_hooks) {
            out.push(policy);
        }
    }
    (out, scenarios)
}

struct Stage<'e, 'a> {
    errors: &'e mut Errors<'a>,
    sources: &'a [Source],
    /// The fault names a `faults` block may use: the shipped ones, then the
    /// plug-ins of the registry the caller loads with.
    fault_names: &'a [&'a str],
}

/// The smallest edit distance suggestion among `candidates`, if close.
fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut prev = row[0];
            row[0] = i + 1;
            for (j, &cb) in b.iter().enumerate() {
                let cur = row[j + 1];
                row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
                prev = cur;
            }
        }
        row[b.len()]
    }
    candidates
        .iter()
        .map(|c| (distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < word.len().max(1))
        .min()
        .map(|(_, c)| c)
}

fn did_you_mean(word: &str, candidates: &[&str], otherwise: &str) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("did you mean `{s}`? {otherwise}"),
        None => otherwise.to_owned(),
    }
}

impl Stage<'_, '_> {
    fn describe(&self, loc: Loc) -> String {
        format!(
            "{}:{}:{}",
            self.sources[loc.file.0 as usize].path, loc.line, loc.column
        )
    }

    fn loc(&self, file: FileId, span: Span) -> Loc {
        loc_of(self.sources, file, span)
    }

    fn error(
        &mut self,
        code: Code,
        file: FileId,
        span: Span,
        message: impl Into<String>,
        label: &str,
        help: Option<String>,
    ) {
        // Past the limit an error is only counted: building it (its line and
        // column, its message) would make a file of many errors quadratic.
        if self.errors.list.len() >= limits::DIAGNOSTICS_MAX {
            self.errors.dropped += 1;
            return;
        }
        let mut d = self.errors.make(code, file, span, message).with_label(label);
        if let Some(help) = help {
            d = d.with_help(help);
        }
        self.errors.push(d);
    }

    // ----- Policies, stage one: per definition -------------------------------------------

    fn policy(&mut self, file: FileId, def: &ast::PolicyDef) -> PrePolicy {
        let mut hooks: Vec<(Hook, Vec<PreStmt>)> = Vec::new();
        let mut hook_spans: BTreeMap<Hook, Span> = BTreeMap::new();
        for named in &def.hooks {
            let Some(hook) = Hook::from_name(&named.name.text) else {
                let names: Vec<&str> = Hook::ALL.iter().map(|h| h.name()).collect();
                let help = did_you_mean(
                    &named.name.text,
                    &names,
                    "hooks are freeze, thaw, page_mkwrite, writeback and flusher; a named body is written `body NAME { … }`",
                );
                self.error(
                    Code::UnknownHook,
                    file,
                    named.name.span,
                    format!("unknown hook `{}`", named.name.text),
                    "not a hook",
                    Some(help),
                );
                continue;
            };
            if let Some(first) = hook_spans.get(&hook) {
                let help = format!(
                    "the first is at {}; a policy defines each hook at most once",
                    self.describe(self.loc(file, *first))
                );
                self.error(
                    Code::DuplicateHook,
                    file,
                    named.name.span,
                    format!(
                        "hook `{}` is defined twice in policy `{}`",
                        hook.name(),
                        def.name.text
                    ),
                    "second definition",
                    Some(help),
                );
                continue;
            }
            hook_spans.insert(hook, named.name.span);
            let body = self.block(file, &named.block, 0);
            if named.block.stmts.is_empty() {
                self.error(
                    Code::EmptyBody,
                    file,
                    named.name.span,
                    format!("hook `{}` has no statements", hook.name()),
                    "empty",
                    Some("write `skip;` for a hook that does nothing".into()),
                );
            }
            hooks.push((hook, body));
        }
        let mut bodies: Vec<(String, Vec<PreStmt>)> = Vec::new();
        let mut body_spans: BTreeMap<String, Span> = BTreeMap::new();
        for named in &def.bodies {
            if let Some(first) = body_spans.get(&named.name.text) {
                let help = format!("the first is at {}", self.describe(self.loc(file, *first)));
                self.error(
                    Code::DuplicateBody,
                    file,
                    named.name.span,
                    format!(
                        "named body `{}` is defined twice in policy `{}`",
                        named.name.text, def.name.text
                    ),
                    "second definition",
                    Some(help),
                );
                continue;
            }
            if named.block.stmts.is_empty() {
                self.error(
                    Code::EmptyBody,
                    file,
                    named.name.span,
                    format!("named body `{}` has no statements", named.name.text),
                    "empty",
                    Some("write `skip;` for a body that does nothing, or remove it".into()),
                );
            }
            body_spans.insert(named.name.text.clone(), named.name.span);
            let body = self.block(file, &named.block, 0);
            bodies.push((named.name.text.clone(), body));
        }
        let faults = self.faults(file, &def.faults);
        PrePolicy {
            name: def.name.clone(),
            extends: def.extends.clone(),
            hooks,
            bodies,
            faults,
            file,
            span: def.span,
        }
    }

    fn faults(&mut self, file: FileId, faults: &[ast::Fault]) -> Vec<ir::FaultSpec> {
        let mut out: Vec<ir::FaultSpec> = Vec::new();
        for f in faults {
            let loc = self.loc(file, f.span);
            if !self.fault_names.contains(&f.name.text.as_str()) {
                let help = did_you_mean(
                    &f.name.text,
                    self.fault_names,
                    &format!("faults are {}", self.fault_names.join(", ")),
                );
                self.error(
                    Code::UnknownFault,
                    file,
                    f.name.span,
                    format!("unknown fault `{}`", f.name.text),
                    "not a fault",
                    Some(help),
                );
                continue;
            }
            if out.iter().any(|o| o.name == f.name.text) {
                self.error(
                    Code::DuplicateFault,
                    file,
                    f.name.span,
                    format!("fault `{}` is listed twice", f.name.text),
                    "second entry",
                    Some("list each fault once".into()),
                );
                continue;
            }
            let probability = ir::FaultSpec::parse_probability(&f.probability.text);
            let Some(probability) = probability else {
                self.error(
                    Code::FaultProbability,
                    file,
                    f.probability.span,
                    format!(
                        "fault probability `{}` is not a decimal between 0 and 1",
                        shown(&f.probability.text)
                    ),
                    "not in [0, 1]",
                    Some("write a decimal such as 0.05".into()),
                );
                continue;
            };
            let max = f
                .max
                .text
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=limits::FAULT_FIRINGS_MAX).contains(m));
            let Some(max) = max else {
                self.error(
                    Code::FaultMax,
                    file,
                    f.max.span,
                    format!(
                        "fault `max {}` is not a whole number from 1 to {} (limit FAULT_FIRINGS_MAX)",
                        shown(&f.max.text),
                        limits::FAULT_FIRINGS_MAX
                    ),
                    "out of range",
                    None,
                );
                continue;
            };
            out.push(ir::FaultSpec {
                name: f.name.text.clone(),
                probability,
                max,
                loc,
            });
        }
        out
    }

    fn block(&mut self, file: FileId, block: &ast::Block, depth: usize) -> Vec<PreStmt> {
        block
            .stmts
            .iter()
            .map(|s| {
                self.stmt(file, s, depth).unwrap_or_else(|| PreStmt {
                    kind: PreKind::Invalid,
                    loc: self.loc(file, s.span),
                    span: s.span,
                })
            })
            .collect()
    }

    fn nested(&mut self, file: FileId, block: &ast::Block, depth: usize, at: Span) -> Vec<PreStmt> {
        if depth + 1 > limits::NESTING_MAX {
            self.error(
                Code::NestingTooDeep,
                file,
                at,
                format!(
                    "blocks are nested more than {} deep (limit NESTING_MAX = {})",
                    limits::NESTING_MAX,
                    limits::NESTING_MAX
                ),
                "too deep",
                Some("split the logic into named bodies or flatten the `if`s".into()),
            );
            return Vec::new();
        }
        self.block(file, block, depth + 1)
    }

    fn stmt(&mut self, file: FileId, stmt: &ast::Stmt, depth: usize) -> Option<PreStmt> {
        let loc = self.loc(file, stmt.span);
        let kind = match &stmt.kind {
            ast::StmtKind::If { arms, otherwise } => {
                // `else if` chains become nested ifs; each arm is one level deeper.
                // Arms past the nesting limit are reported once and not
                // lowered, so that no tree deeper than the limit is built
                // (a deep tree would recurse on drop: 45 000 arms fit in a file).
                let keep = limits::NESTING_MAX.saturating_sub(depth).max(1);
                let (arms, otherwise) = if arms.len() > keep {
                    let span = arms[keep].0.span;
                    self.error(
                        Code::NestingTooDeep,
                        file,
                        span,
                        format!(
                            "blocks are nested more than {} deep (limit NESTING_MAX = {}): each `else if` arm is one level deeper",
                            limits::NESTING_MAX,
                            limits::NESTING_MAX
                        ),
                        "too deep",
                        Some("split the chain into separate `if`s or into named bodies".into()),
                    );
                    (&arms[..keep], &None)
                } else {
                    (&arms[..], otherwise)
                };
                let mut lowered_arms = Vec::new();
                for (i, (cond, block)) in arms.iter().enumerate() {
                    let cond = self.cond(file, cond);
                    let then = self.nested(file, block, depth + i, stmt.span);
                    lowered_arms.push((cond, then, cond_loc(self, file, arms, i)));
                }
                let mut tail = match otherwise {
                    Some(block) => self.nested(file, block, depth + arms.len().saturating_sub(1), block.span),
                    None => Vec::new(),
                };
                let mut first = None;
                for (i, (cond, then, arm_loc)) in lowered_arms.into_iter().enumerate().rev() {
                    let cond = cond?;
                    let kind = PreKind::If(cond, then, tail);
                    if i == 0 {
                        first = Some(kind);
                        break;
                    }
                    tail = vec![PreStmt {
                        kind,
                        loc: arm_loc.0,
                        span: arm_loc.1,
                    }];
                }
                first?
            }
            ast::StmtKind::Command { head, otherwise } => {
                self.command(file, head, otherwise.as_ref(), stmt.span, depth)?
            }
        };
        Some(PreStmt {
            kind,
            loc,
            span: stmt.span,
        })
    }

    fn command(
        &mut self,
        file: FileId,
        head: &[Word],
        otherwise: Option<&ast::Else>,
        span: Span,
        depth: usize,
    ) -> Option<PreKind> {
        let (first, args) = head.split_first()?;
        let name = first.text.as_str();
        let else_body = |stage: &mut Self| -> Option<Vec<PreStmt>> {
            match otherwise? {
                ast::Else::Block(block) => Some(stage.nested(file, block, depth, block.span)),
                ast::Else::Command(words, else_span) => {
                    let kind = stage.command(file, words, None, *else_span, depth + 1)?;
                    Some(vec![PreStmt {
                        kind,
                        loc: stage.loc(file, *else_span),
                        span: *else_span,
                    }])
                }
            }
        };
        let takes_else = matches!(name, "trylock" | "submit" | "sync");
        if otherwise.is_some() && !takes_else {
            self.error(
                Code::BadArguments,
                file,
                first.span,
                format!("`{name}` does not take `else`"),
                "no `else` here",
                Some(
                    "only `trylock umount MODE else S`, `submit else S` and `sync else S` have an `else`"
                        .into(),
                ),
            );
            return None;
        }
        let arity = |expected: usize| -> Option<usize> {
            if args.len() == expected {
                None
            } else {
                Some(expected)
            }
        };
        let leaf = |k: StmtKind| Some(PreKind::Leaf(k));
        let expected_args: usize = match name {
            "lock" | "trylock" => 2,
            "unlock" | "wait_unfrozen" | "sb_start" | "sb_end" | "set_level" | "wait_writers" | "fail" => 1,
            "lock_page" | "unlock_page" | "mark_dirty" | "allocate" | "reserve" | "clean" | "submit"
            | "sync" | "skip" => 0,
            _ => {
                if let Some(extra) = args.iter().find(|a| STATEMENT_WORDS.contains(&a.text.as_str())) {
                    self.missing_semicolon(file, extra);
                    return None;
                }
                if args.is_empty() {
                    return Some(PreKind::Call(name.to_owned()));
                }
                let help = did_you_mean(
                    name,
                    STATEMENT_WORDS,
                    "see the statement list in docs/policy-language.md; a named body is called by its bare name, `NAME;`",
                );
                self.error(
                    Code::UnknownStatement,
                    file,
                    first.span,
                    format!("unknown statement `{name}`"),
                    "not a statement",
                    Some(help),
                );
                return None;
            }
        };
        if let Some(expected) = arity(expected_args) {
            if args.len() > expected
                && let Some(extra) = args[expected..]
                    .iter()
                    .find(|a| STATEMENT_WORDS.contains(&a.text.as_str()))
            {
                self.missing_semicolon(file, extra);
                return None;
            }
            let usage = usage(name);
            let at = args.get(expected).map(|a| a.span).unwrap_or(Span {
                start: first.span.start,
                end: span.end.min(first.span.end.max(span.start)),
            });
            self.error(
                Code::BadArguments,
                file,
                at,
                format!("`{name}` is written `{usage}`"),
                if args.len() > expected {
                    "unexpected argument"
                } else {
                    "missing argument"
                },
                None,
            );
            return None;
        }
        match name {
            "lock" | "trylock" => {
                if args[0].text != "umount" {
                    self.error(
                        Code::BadArguments,
                        file,
                        args[0].span,
                        format!("`{name}` takes only `umount` (s_umount), not `{}`", args[0].text),
                        "not a lock",
                        Some("the page lock is `lock_page` / `unlock_page`".into()),
                    );
                    return None;
                }
                let mode = self.lock_mode(file, &args[1])?;
                if name == "lock" {
                    if otherwise.is_some() {
                        return None;
                    }
                    leaf(StmtKind::LockUmount(mode))
                } else {
                    let Some(body) = else_body(self) else {
                        self.error(
                            Code::BadArguments,
                            file,
                            first.span,
                            "`trylock` needs an `else`: `trylock umount MODE else S`",
                            "no `else`",
                            Some("for example `trylock umount read else skip;`".into()),
                        );
                        return None;
                    };
                    Some(PreKind::TryLock(mode, body))
                }
            }
            "unlock" => {
                if args[0].text != "umount" {
                    self.error(
                        Code::BadArguments,
                        file,
                        args[0].span,
                        format!("`unlock` takes only `umount`, not `{}`", args[0].text),
                        "not a lock",
                        Some("the page lock is released with `unlock_page`".into()),
                    );
                    return None;
                }
                leaf(StmtKind::UnlockUmount)
            }
            "wait_unfrozen" => leaf(StmtKind::WaitUnfrozen(self.level(file, &args[0])?)),
            "set_level" => leaf(StmtKind::SetLevel(self.level(file, &args[0])?)),
            "sb_start" => leaf(StmtKind::SbStart(self.writer_level(file, &args[0])?)),
            "sb_end" => leaf(StmtKind::SbEnd(self.writer_level(file, &args[0])?)),
            "wait_writers" => leaf(StmtKind::WaitWriters(self.writer_level(file, &args[0])?)),
            "fail" => {
                if args[0].text != "sigbus" {
                    self.error(
                        Code::BadArguments,
                        file,
                        args[0].span,
                        format!("`fail` takes only `sigbus`, not `{}`", args[0].text),
                        "not `sigbus`",
                        None,
                    );
                    return None;
                }
                leaf(StmtKind::FailSigbus)
            }
            "lock_page" => leaf(StmtKind::LockPage),
            "unlock_page" => leaf(StmtKind::UnlockPage),
            "mark_dirty" => leaf(StmtKind::MarkDirty),
            "allocate" => leaf(StmtKind::Allocate),
            "reserve" => leaf(StmtKind::Reserve),
            "clean" => leaf(StmtKind::Clean),
            "sync" => {
                if otherwise.is_some() {
                    let body = else_body(self)?;
                    Some(PreKind::Sync(Some(body)))
                } else {
                    Some(PreKind::Sync(None))
                }
            }
            "skip" => leaf(StmtKind::Skip),
            "submit" => {
                if otherwise.is_some() {
                    let body = else_body(self)?;
                    Some(PreKind::Submit(Some(body)))
                } else {
                    Some(PreKind::Submit(None))
                }
            }
            _ => None,
        }
    }

    fn missing_semicolon(&mut self, file: FileId, extra: &Word) {
        self.error(
            Code::MissingSemicolon,
            file,
            extra.span,
            format!("missing `;` before `{}`", extra.text),
            "a new statement starts here",
            Some("end each simple statement with `;`".into()),
        );
    }

    fn lock_mode(&mut self, file: FileId, word: &Word) -> Option<LockMode> {
        match word.text.as_str() {
            "read" => Some(LockMode::Read),
            "write" => Some(LockMode::Write),
            other => {
                self.error(
                    Code::UnknownLockMode,
                    file,
                    word.span,
                    format!("unknown lock mode `{other}`"),
                    "not `read` or `write`",
                    Some("s_umount is taken `read` (shared) or `write` (exclusive)".into()),
                );
                None
            }
        }
    }

    fn level(&mut self, file: FileId, word: &Word) -> Option<Level> {
        let level = Level::from_name(&word.text);
        if level.is_none() {
            let names: Vec<&str> = Level::ALL.iter().map(|l| l.name()).collect();
            let help = did_you_mean(&word.text, &names, LEVELS_HELP);
            self.error(
                Code::UnknownLevel,
                file,
                word.span,
                format!("unknown level `{}`", word.text),
                "not a level",
                Some(help),
            );
        }
        level
    }

    fn writer_level(&mut self, file: FileId, word: &Word) -> Option<WriterLevel> {
        let level = self.level(file, word)?;
        let writer = WriterLevel::from_level(level);
        if writer.is_none() {
            self.error(
                Code::NotAWriterLevel,
                file,
                word.span,
                format!("level `{level}` has no writer count"),
                "not write, pagefault or fs",
                Some(WRITER_LEVELS_HELP.into()),
            );
        }
        writer
    }

    fn cond(&mut self, file: FileId, cond: &ast::Cond) -> Option<Cond> {
        let terms = count_terms(cond);
        if terms > CONDITION_TERMS_MAX {
            self.error(
                Code::ConditionTooLong,
                file,
                cond.span,
                format!("condition has {terms} terms (limit {CONDITION_TERMS_MAX})"),
                "too long",
                Some("split it into nested `if`s or named bodies".into()),
            );
            return None;
        }
        self.cond_inner(file, cond)
    }

    fn cond_inner(&mut self, file: FileId, cond: &ast::Cond) -> Option<Cond> {
        match &cond.kind {
            ast::CondKind::Not(count, inner) => {
                let inner = self.cond_inner(file, inner)?;
                Some(if count % 2 == 1 {
                    Cond::Not(Box::new(inner))
                } else {
                    inner
                })
            }
            ast::CondKind::And(parts) | ast::CondKind::Or(parts) => {
                let is_and = matches!(cond.kind, ast::CondKind::And(_));
                // Lower every part (to report every error), then fold left.
                let lowered: Vec<Option<Cond>> = parts.iter().map(|p| self.cond_inner(file, p)).collect();
                let mut iter = lowered.into_iter();
                let mut acc = iter.next()??;
                for part in iter {
                    let part = part?;
                    acc = if is_and {
                        Cond::And(Box::new(acc), Box::new(part))
                    } else {
                        Cond::Or(Box::new(acc), Box::new(part))
                    };
                }
                Some(acc)
            }
            ast::CondKind::Flag(word) => match word.text.as_str() {
                "dirty" => Some(Cond::Dirty),
                "pte_dirty" => Some(Cond::PteDirty),
                "cached" => Some(Cond::Cached),
                "locked" => Some(Cond::Locked),
                "buffers" | "pte" | "level" => {
                    self.error(
                        Code::BadOperator,
                        file,
                        word.span,
                        format!(
                            "`{}` needs a comparison, such as `{} == {}`",
                            word.text,
                            word.text,
                            example_value(&word.text)
                        ),
                        "compare it",
                        None,
                    );
                    None
                }
                other => {
                    self.unknown_field(file, word, other);
                    None
                }
            },
            ast::CondKind::Compare { field, op, value } => {
                let cmp = match op.text.as_str() {
                    "==" => CmpOp::Eq,
                    "!=" => CmpOp::Ne,
                    "<" => CmpOp::Lt,
                    "<=" => CmpOp::Le,
                    ">" => CmpOp::Gt,
                    _ => CmpOp::Ge,
                };
                let eq = match cmp {
                    CmpOp::Eq => Some(EqOp::Eq),
                    CmpOp::Ne => Some(EqOp::Ne),
                    _ => None,
                };
                match field.text.as_str() {
                    "buffers" | "pte" => {
                        let Some(eq) = eq else {
                            self.error(
                                Code::BadOperator,
                                file,
                                op.span,
                                format!("`{}` can only be compared with `==` or `!=`", field.text),
                                "not == or !=",
                                Some("only `level` is ordered".into()),
                            );
                            return None;
                        };
                        if field.text == "buffers" {
                            let Some(b) = Buffers::from_name(&value.text) else {
                                self.error(
                                    Code::UnknownConditionValue,
                                    file,
                                    value.span,
                                    format!("unknown buffers state `{}`", value.text),
                                    "not a buffers state",
                                    Some("buffers are unmapped, delayed or mapped".into()),
                                );
                                return None;
                            };
                            Some(Cond::Buffers(eq, b))
                        } else {
                            let Some(p) = Pte::from_name(&value.text) else {
                                self.error(
                                    Code::UnknownConditionValue,
                                    file,
                                    value.span,
                                    format!("unknown pte state `{}`", value.text),
                                    "not a pte state",
                                    Some("a pte is none, readonly or writable".into()),
                                );
                                return None;
                            };
                            Some(Cond::Pte(eq, p))
                        }
                    }
                    "level" => {
                        let Some(level) = Level::from_name(&value.text) else {
                            let names: Vec<&str> = Level::ALL.iter().map(|l| l.name()).collect();
                            let help = did_you_mean(&value.text, &names, LEVELS_HELP);
                            self.error(
                                Code::UnknownLevel,
                                file,
                                value.span,
                                format!("unknown level `{}`", value.text),
                                "not a level",
                                Some(help),
                            );
                            return None;
                        };
                        Some(Cond::Level(cmp, level))
                    }
                    "dirty" | "pte_dirty" | "cached" | "locked" => {
                        self.error(
                            Code::BadOperator,
                            file,
                            op.span,
                            format!("`{}` is a flag and is not compared", field.text),
                            "no comparison here",
                            Some(format!("write `{0}` or `not {0}`", field.text)),
                        );
                        None
                    }
                    other => {
                        self.unknown_field(file, field, other);
                        None
                    }
                }
            }
        }
    }

    fn unknown_field(&mut self, file: FileId, word: &Word, other: &str) {
        let fields = [
            "buffers",
            "pte",
            "level",
            "dirty",
            "pte_dirty",
            "cached",
            "locked",
        ];
        let help = did_you_mean(
            other,
            &fields,
            "conditions compare buffers, pte or level, or test a flag: dirty, pte_dirty, cached, locked",
        );
        self.error(
            Code::UnknownConditionField,
            file,
            word.span,
            format!("unknown condition field `{other}`"),
            "not a field",
            Some(help),
        );
    }

    // ----- Policies, stage two: extends, inlining, checks --------------------------------

    fn flatten(
        &mut self,
        index: usize,
        policies: &[PrePolicy],
        names: &BTreeMap<String, usize>,
        default_hooks: &[(Hook, Vec<PreStmt>)],
    ) -> Option<ir::Policy> {
        let policy = &policies[index];
        // The chain from the policy up to its root.
        let mut chain = vec![index];
        let mut current = index;
        while let Some(parent) = &policies[current].extends {
            let Some(&parent_index) = names.get(&parent.text) else {
                let child = &policies[current];
                let help = format!(
                    "load the file that defines `{0}` too, or put `{0}.ff` beside {1}",
                    parent.text, self.sources[child.file.0 as usize].path
                );
                self.error(
                    Code::MissingParent,
                    child.file,
                    parent.span,
                    format!(
                        "policy `{}` extends `{}`, which is not defined",
                        child.name.text, parent.text
                    ),
                    "no such policy",
                    Some(help),
                );
                return None;
            };
            if chain.contains(&parent_index) {
                let mut cycle: Vec<&str> = chain
                    [chain.iter().position(|&i| i == parent_index).unwrap_or(0)..]
                    .iter()
                    .map(|&i| policies[i].name.text.as_str())
                    .collect();
                cycle.push(&policies[parent_index].name.text);
                // Report once, at the `extends` of the policy that closes the cycle.
                let start = chain.iter().position(|&i| i == parent_index).unwrap_or(0);
                let on_cycle = &chain[start..];
                // Report once per cycle: when lowering its first-defined member.
                if on_cycle.iter().min() == Some(&index) {
                    let closer = &policies[current];
                    let message = format!("`extends` cycle: {}", cycle.join(" → "));
                    self.error(
                        Code::ExtendsCycle,
                        closer.file,
                        parent.span,
                        message,
                        "closes the cycle",
                        Some("a policy cannot extend itself, directly or through its parents".into()),
                    );
                }
                return None;
            }
            if chain.len() == limits::EXTENDS_DEPTH_MAX {
                // Bounding the chain keeps flattening every policy linear in
                // the number of policies.
                self.error(
                    Code::ExtendsTooDeep,
                    policy.file,
                    policy.name.span,
                    format!(
                        "policy `{}` has more than {} policies in its `extends` chain (limit EXTENDS_DEPTH_MAX)",
                        policy.name.text,
                        limits::EXTENDS_DEPTH_MAX
                    ),
                    "chain too long",
                    Some("extend a policy nearer the root, or copy the hooks you need".into()),
                );
                return None;
            }
            chain.push(parent_index);
            current = parent_index;
        }
        // Merge from the root down: children override hooks, bodies and faults.
        let mut hooks: BTreeMap<Hook, &Vec<PreStmt>> = BTreeMap::new();
        let mut bodies: BTreeMap<&str, &Vec<PreStmt>> = BTreeMap::new();
        let mut faults: Vec<ir::FaultSpec> = Vec::new();
        for &i in chain.iter().rev() {
            for (hook, body) in &policies[i].hooks {
                hooks.insert(*hook, body);
            }
            for (name, body) in &policies[i].bodies {
                bodies.insert(name, body);
            }
            for f in &policies[i].faults {
                faults.retain(|g| g.name != f.name);
                faults.push(f.clone());
            }
        }
        let mut ok = true;
        for required in [Hook::Freeze, Hook::PageMkwrite] {
            if !hooks.contains_key(&required) {
                let via = if chain.len() > 1 {
                    " (nor any policy it extends)"
                } else {
                    ""
                };
                self.error(
                    Code::MissingRequiredHook,
                    policy.file,
                    policy.name.span,
                    format!(
                        "policy `{}`{via} has no `{}` hook",
                        policy.name.text,
                        required.name()
                    ),
                    format!("`{}` is required", required.name()).as_str(),
                    Some(format!(
                        "add `{} {{ … }}`; only thaw, writeback and flusher have defaults",
                        required.name()
                    )),
                );
                ok = false;
            }
        }
        for (hook, body) in default_hooks {
            hooks.entry(*hook).or_insert(body);
        }
        let mut lowered: BTreeMap<Hook, ir::Body> = BTreeMap::new();
        for (hook, body) in &hooks {
            let before = self.errors.count();
            let mut inliner = Inliner {
                stage: self,
                scope: &bodies,
                count: 0,
                too_long: false,
                invalid: false,
                hook: *hook,
                via: None,
            };
            let ir_body = inliner.body(body, &mut Vec::new(), 0);
            if inliner.invalid || self.errors.count() > before {
                ok = false;
                continue;
            }
            for finding in checks::check_hook(*hook, &ir_body) {
                let span = self.errors.span_at(finding.loc);
                let mut d = self
                    .errors
                    .make(finding.code, finding.loc.file, span, finding.message)
                    .with_label(finding.label);
                let inside = finding.loc.file == policy.file
                    && span.start >= policy.span.start
                    && span.start < policy.span.end;
                let help = match (finding.help, inside) {
                    (Some(h), true) => Some(h),
                    (Some(h), false) => Some(format!(
                        "{h} (found in policy `{}`, which inherits or calls this code)",
                        policy.name.text
                    )),
                    (None, false) => Some(format!(
                        "found in policy `{}`, which inherits or calls this code",
                        policy.name.text
                    )),
                    (None, true) => None,
                };
                if let Some(help) = help {
                    d = d.with_help(help);
                }
                self.errors.push(d);
                ok = false;
            }
            lowered.insert(*hook, ir_body);
        }
        if !ok {
            return None;
        }
        let mut take = |hook: Hook| lowered.remove(&hook).unwrap_or_default();
        let hooks = ir::Hooks {
            freeze: take(Hook::Freeze),
            thaw: take(Hook::Thaw),
            page_mkwrite: take(Hook::PageMkwrite),
            writeback: take(Hook::Writeback),
            flusher: take(Hook::Flusher),
        };
        Some(ir::Policy {
            name: policy.name.text.clone(),
            extends: policy.extends.as_ref().map(|w| w.text.clone()),
            hooks,
            faults,
            loc: self.loc(policy.file, policy.name.span),
        })
    }

    // ----- Scenarios -----------------------------------------------------------------

    fn scenario(&mut self, file: FileId, def: &ast::ScenarioDef) -> Option<ir::Scenario> {
        let before = self.errors.count();
        let mut pages: Vec<ir::PageInit> = Vec::new();
        for page in &def.pages {
            if let Some(first) = pages.iter().find(|p| p.name == page.name.text) {
                let help = format!("the first is at {}", self.describe(first.loc));
                self.error(
                    Code::DuplicatePage,
                    file,
                    page.name.span,
                    format!(
                        "page `{}` is defined twice in scenario `{}`",
                        page.name.text, def.name.text
                    ),
                    "second definition",
                    Some(help),
                );
                continue;
            }
            if pages.len() == limits::PAGES_MAX {
                self.error(
                    Code::TooManyPages,
                    file,
                    page.name.span,
                    format!(
                        "scenario `{}` has more than {} pages (limit PAGES_MAX)",
                        def.name.text,
                        limits::PAGES_MAX
                    ),
                    "one page too many",
                    None,
                );
                break;
            }
            if let Some(init) = self.page(file, page) {
                pages.push(init);
            }
        }
        let page_names: Vec<&str> = def.pages.iter().map(|p| p.name.text.as_str()).collect();
        let mut threads: Vec<ir::ThreadSpec> = Vec::new();
        // Past THREADS_MAX the scenario is refused below; lowering every
        // thread first (each looked up among the others) would be quadratic.
        for thread in def.threads.iter().take(limits::THREADS_MAX + 1) {
            if let Some(first) = threads.iter().find(|t| t.name == thread.name.text) {
                let help = format!("the first is at {}", self.describe(first.loc));
                self.error(
                    Code::DuplicateThread,
                    file,
                    thread.name.span,
                    format!(
                        "thread `{}` is defined twice in scenario `{}`",
                        thread.name.text, def.name.text
                    ),
                    "second definition",
                    Some(help),
                );
                continue;
            }
            if thread.actions.is_empty() {
                self.error(
                    Code::EmptyThread,
                    file,
                    thread.name.span,
                    format!("thread `{}` has no actions", thread.name.text),
                    "empty program",
                    Some("give it actions such as `store a 2;` or remove it".into()),
                );
                continue;
            }
            if thread.actions.len() > limits::ACTIONS_MAX {
                self.error(
                    Code::TooManyActions,
                    file,
                    thread.name.span,
                    format!(
                        "thread `{}` has {} actions (limit ACTIONS_MAX = {})",
                        thread.name.text,
                        thread.actions.len(),
                        limits::ACTIONS_MAX
                    ),
                    "too long",
                    None,
                );
                continue;
            }
            let actions: Vec<ir::Action> = thread
                .actions
                .iter()
                .filter_map(|a| self.action(file, a, &pages, &page_names))
                .collect();
            threads.push(ir::ThreadSpec {
                name: thread.name.text.clone(),
                kind: ir::ThreadKind::Program(actions),
                loc: self.loc(file, thread.name.span),
            });
        }
        for (i, flusher) in def.flushers.iter().enumerate() {
            if i > 0 {
                self.error(
                    Code::DuplicateFlusher,
                    file,
                    *flusher,
                    "`flusher;` appears more than once",
                    "second flusher",
                    Some("a scenario has at most one flusher daemon".into()),
                );
                continue;
            }
            if threads.iter().any(|t| t.name == "flusher") {
                self.error(
                    Code::DuplicateThread,
                    file,
                    *flusher,
                    "a thread named `flusher` already exists; the flusher daemon takes that name",
                    "second `flusher`",
                    Some("rename the thread".into()),
                );
                continue;
            }
            threads.push(ir::ThreadSpec {
                name: "flusher".into(),
                kind: ir::ThreadKind::Flusher,
                loc: self.loc(file, *flusher),
            });
        }
        if def.threads.is_empty() && def.flushers.is_empty() {
            self.error(
                Code::NoThreads,
                file,
                def.name.span,
                format!("scenario `{}` has no threads", def.name.text),
                "nothing runs",
                Some("add `thread NAME { … }`".into()),
            );
        } else if def.threads.is_empty() {
            self.error(
                Code::NoThreads,
                file,
                def.name.span,
                format!("scenario `{}` has only the flusher daemon", def.name.text),
                "nothing runs",
                Some("add `thread NAME { … }`".into()),
            );
        }
        if def.threads.len() + def.flushers.len().min(1) > limits::THREADS_MAX {
            self.error(
                Code::TooManyThreads,
                file,
                def.name.span,
                format!(
                    "scenario `{}` has more than {} threads, the flusher included (limit THREADS_MAX)",
                    def.name.text,
                    limits::THREADS_MAX
                ),
                "too many threads",
                None,
            );
        }
        let faults = self.faults(file, &def.faults);
        if self.errors.count() > before {
            return None;
        }
        Some(ir::Scenario {
            name: def.name.text.clone(),
            pages,
            threads,
            faults,
            loc: self.loc(file, def.name.span),
        })
    }

    fn page(&mut self, file: FileId, page: &ast::Page) -> Option<ir::PageInit> {
        let mut init = ir::PageInit {
            name: page.name.text.clone(),
            cached: false,
            buffers: Buffers::Unmapped,
            pte: Pte::None,
            pte_dirty: false,
            dirty: false,
            mem: 1,
            disk: 1,
            loc: self.loc(file, page.name.span),
        };
        let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
        let mut ok = true;
        for attr in &page.attributes {
            let name = attr.name.text.as_str();
            if seen.contains_key(name) {
                self.error(
                    Code::DuplicateAttribute,
                    file,
                    attr.name.span,
                    format!("attribute `{name}` is given twice for page `{}`", page.name.text),
                    "second time",
                    None,
                );
                ok = false;
                continue;
            }
            seen.insert(name, attr.span);
            let flag = matches!(name, "cached" | "dirty" | "pte_dirty");
            let valued = matches!(name, "buffers" | "pte" | "mem" | "disk");
            if !flag && !valued {
                let help = did_you_mean(
                    name,
                    &["cached", "dirty", "pte_dirty", "buffers", "pte", "mem", "disk"],
                    "page attributes are cached, dirty, pte_dirty, buffers = …, pte = …, mem = N and disk = N",
                );
                self.error(
                    Code::UnknownAttribute,
                    file,
                    attr.name.span,
                    format!("unknown page attribute `{name}`"),
                    "not an attribute",
                    Some(help),
                );
                ok = false;
                continue;
            }
            match (&attr.value, flag) {
                (Some(value), true) => {
                    self.error(
                        Code::BadAttributeValue,
                        file,
                        value.span,
                        format!("`{name}` is a flag and takes no value"),
                        "remove `= …`",
                        Some(format!("write `{name};` to set it; leave it out to clear it")),
                    );
                    ok = false;
                    continue;
                }
                (None, false) => {
                    self.error(
                        Code::BadAttributeValue,
                        file,
                        attr.name.span,
                        format!("`{name}` needs a value: `{name} = {}`", example_value(name)),
                        "missing `= …`",
                        None,
                    );
                    ok = false;
                    continue;
                }
                _ => {}
            }
            match name {
                "cached" => init.cached = true,
                "dirty" => init.dirty = true,
                "pte_dirty" => init.pte_dirty = true,
                _ => {
                    let value = attr.value.as_ref().expect("checked above");
                    let parsed = match name {
                        "buffers" => Buffers::from_name(&value.text).map(|b| init.buffers = b),
                        "pte" => Pte::from_name(&value.text).map(|p| init.pte = p),
                        "mem" => value
                            .text
                            .parse::<u8>()
                            .ok()
                            .filter(|_| value.is_number)
                            .map(|v| init.mem = v),
                        _ => value
                            .text
                            .parse::<u8>()
                            .ok()
                            .filter(|_| value.is_number)
                            .map(|v| init.disk = v),
                    };
                    if parsed.is_none() {
                        let expected = match name {
                            "buffers" => "unmapped, delayed or mapped",
                            "pte" => "none, readonly or writable",
                            _ => "a whole number from 0 to 255",
                        };
                        self.error(
                            Code::BadAttributeValue,
                            file,
                            value.span,
                            format!("`{}` is not a valid value for `{name}`", value.text),
                            "invalid value",
                            Some(format!("`{name}` is {expected}")),
                        );
                        ok = false;
                    }
                }
            }
        }
        if !ok {
            return None;
        }
        // Consistency of the initial state (the model's invariants).
        let mut inconsistent = |attr: &str, message: String, help: &str| {
            let span = seen.get(attr).copied().unwrap_or(page.name.span);
            self.error(
                Code::InconsistentPage,
                file,
                span,
                message,
                "inconsistent",
                Some(help.to_owned()),
            );
        };
        let mut consistent = true;
        if !init.cached {
            for (attr, set) in [
                ("pte", init.pte != Pte::None),
                ("dirty", init.dirty),
                ("pte_dirty", init.pte_dirty),
            ] {
                if set {
                    inconsistent(
                        attr,
                        format!(
                            "page `{}` is not cached, so it cannot have `{attr}`",
                            page.name.text
                        ),
                        "add `cached;` (a page must be in the page cache to be mapped or dirty)",
                    );
                    consistent = false;
                }
            }
            if init.mem != init.disk {
                inconsistent(
                    "mem",
                    format!(
                        "page `{}` is not cached, so its memory must equal its disk (mem = {}, disk = {})",
                        page.name.text, init.mem, init.disk
                    ),
                    "add `cached;`, or drop `mem = …` (a page read in from disk holds the disk's value)",
                );
                consistent = false;
            }
        }
        // The kernel makes a pte writable only in a write fault, which
        // dirties the page (`fault_dirty_shared_page`), and writeback
        // write-protects every pte before it clears PG_dirty
        // (`clear_page_dirty_for_io` → `page_mkclean`): a writable pte on a
        // clean page is a state Linux cannot be in, and from it any freeze
        // protocol can be made to write while frozen.
        if init.pte == Pte::Writable && !init.dirty && init.cached {
            inconsistent(
                "pte",
                format!("page `{}` has a writable pte but is not dirty", page.name.text),
                "add `dirty;` (the write fault that makes a pte writable dirties the page, and writeback write-protects the pte before cleaning it), or make the pte `readonly`",
            );
            consistent = false;
        }
        if init.pte_dirty && init.pte != Pte::Writable && init.cached {
            inconsistent(
                "pte_dirty",
                format!(
                    "page `{}` has `pte_dirty` but its pte is not writable",
                    page.name.text
                ),
                "add `pte = writable;` (only a writable pte can be dirtied)",
            );
            consistent = false;
        }
        consistent.then_some(init)
    }

    fn action(
        &mut self,
        file: FileId,
        action: &ast::Action,
        pages: &[ir::PageInit],
        page_names: &[&str],
    ) -> Option<ir::Action> {
        let (first, args) = action.words.split_first()?;
        let loc = self.loc(file, action.span);
        let name = first.text.as_str();
        let kind = match name {
            "store" | "munmap" | "msync" => {
                let value_expected = name == "store";
                let (page_word, rest) = match (args.first(), value_expected) {
                    (Some(w), _) if !w.is_number => (Some(w), &args[1..]),
                    _ => (None, args),
                };
                let usage = if value_expected {
                    "`store [PAGE] VALUE`"
                } else if name == "munmap" {
                    "`munmap [PAGE]`"
                } else {
                    "`msync [PAGE]`"
                };
                let arity_ok = if value_expected {
                    rest.len() == 1 && rest[0].is_number
                } else {
                    rest.is_empty()
                };
                if !arity_ok {
                    let at = rest.first().map(|w| w.span).unwrap_or(first.span);
                    self.error(
                        Code::BadActionArguments,
                        file,
                        at,
                        format!("`{name}` is written {usage}"),
                        "unexpected here",
                        None,
                    );
                    return None;
                }
                let page = match page_word {
                    Some(w) => match page_names.iter().position(|p| *p == w.text) {
                        Some(i) => i,
                        None => {
                            let help = if page_names.is_empty() {
                                "the scenario has no pages; add `page NAME { … }`".to_owned()
                            } else {
                                did_you_mean(
                                    &w.text,
                                    page_names,
                                    &format!("pages are {}", page_names.join(", ")),
                                )
                            };
                            self.error(
                                Code::UnknownPage,
                                file,
                                w.span,
                                format!("unknown page `{}`", w.text),
                                "no such page",
                                Some(help),
                            );
                            return None;
                        }
                    },
                    None if page_names.len() == 1 => 0,
                    None => {
                        let help = if page_names.is_empty() {
                            "add `page NAME { … }` to the scenario".to_owned()
                        } else {
                            format!("name the page: `{name} {} …`", page_names[0])
                        };
                        self.error(
                            Code::AmbiguousPage,
                            file,
                            first.span,
                            format!(
                                "`{name}` must name its page: the scenario has {} pages",
                                page_names.len()
                            ),
                            "which page?",
                            Some(help),
                        );
                        return None;
                    }
                };
                // `pages` may be shorter than `page_names` if a page had errors; the
                // scenario is dropped in that case, so any index will do.
                let _ = pages;
                if value_expected {
                    let Some(value) = rest[0].text.parse::<u8>().ok() else {
                        self.error(
                            Code::NumberOutOfRange,
                            file,
                            rest[0].span,
                            format!("`{}` is not a value from 0 to 255", shown(&rest[0].text)),
                            "out of range",
                            None,
                        );
                        return None;
                    };
                    ir::ActionKind::Store { page, value }
                } else if name == "munmap" {
                    ir::ActionKind::Munmap { page }
                } else {
                    ir::ActionKind::Msync { page }
                }
            }
            "await" => {
                if args.len() != 1 || args[0].text != "frozen" {
                    let at = args.first().map(|w| w.span).unwrap_or(first.span);
                    self.error(
                        Code::BadActionArguments,
                        file,
                        at,
                        "`await` is written `await frozen`",
                        "expected `frozen`",
                        None,
                    );
                    return None;
                }
                ir::ActionKind::AwaitFrozen
            }
            "freeze" | "thaw" => {
                if let Some(extra) = args.first() {
                    let code = if ["store", "munmap", "msync", "await", "freeze", "thaw"]
                        .contains(&extra.text.as_str())
                    {
                        Code::MissingSemicolon
                    } else {
                        Code::BadActionArguments
                    };
                    let message = if code == Code::MissingSemicolon {
                        format!("missing `;` before `{}`", extra.text)
                    } else {
                        format!("`{name}` takes no arguments")
                    };
                    self.error(code, file, extra.span, message, "unexpected here", None);
                    return None;
                }
                if name == "freeze" {
                    ir::ActionKind::Freeze
                } else {
                    ir::ActionKind::Thaw
                }
            }
            other => {
                let help = did_you_mean(
                    other,
                    &["store", "munmap", "msync", "await", "freeze", "thaw"],
                    "actions are store, munmap, msync, await frozen, freeze and thaw",
                );
                self.error(
                    Code::UnknownAction,
                    file,
                    first.span,
                    format!("unknown action `{other}`"),
                    "not an action",
                    Some(help),
                );
                return None;
            }
        };
        Some(ir::Action { kind, loc })
    }
}

fn example_value(name: &str) -> &'static str {
    match name {
        "buffers" => "mapped",
        "pte" => "writable",
        "level" => "fs",
        _ => "1",
    }
}

fn usage(name: &str) -> &'static str {
    match name {
        "lock" => "lock umount read|write",
        "trylock" => "trylock umount read|write else S",
        "unlock" => "unlock umount",
        "wait_unfrozen" => "wait_unfrozen LEVEL",
        "set_level" => "set_level LEVEL",
        "sb_start" => "sb_start write|pagefault|fs",
        "sb_end" => "sb_end write|pagefault|fs",
        "wait_writers" => "wait_writers write|pagefault|fs",
        "fail" => "fail sigbus",
        "submit" => "submit` or `submit else S",
        "lock_page" => "lock_page",
        "unlock_page" => "unlock_page",
        "mark_dirty" => "mark_dirty",
        "allocate" => "allocate",
        "reserve" => "reserve",
        "clean" => "clean",
        "sync" => "sync` or `sync else S",
        _ => "skip",
    }
}

fn count_terms(cond: &ast::Cond) -> usize {
    match &cond.kind {
        ast::CondKind::Compare { .. } | ast::CondKind::Flag(_) => 1,
        ast::CondKind::Not(_, inner) => count_terms(inner),
        ast::CondKind::And(parts) | ast::CondKind::Or(parts) => parts.iter().map(count_terms).sum(),
    }
}

/// The location of the i-th arm of an if chain (`else if` arms start at their condition).
fn cond_loc(stage: &Stage<'_, '_>, file: FileId, arms: &[(ast::Cond, ast::Block)], i: usize) -> (Loc, Span) {
    let span = arms[i].0.span;
    (stage.loc(file, span), span)
}

/// Inlines named bodies into a hook, in the policy's scope.
struct Inliner<'s, 'e, 'a, 'b> {
    stage: &'s mut Stage<'e, 'a>,
    scope: &'b BTreeMap<&'b str, &'b Vec<PreStmt>>,
    count: usize,
    too_long: bool,
    /// Whether an invalid statement was inlined.
    invalid: bool,
    hook: Hook,
    /// The call site of the outermost named body being inlined.
    via: Option<Loc>,
}

impl Inliner<'_, '_, '_, '_> {
    fn body(&mut self, body: &[PreStmt], stack: &mut Vec<String>, depth: usize) -> ir::Body {
        let mut out = Vec::new();
        for stmt in body {
            self.stmt(stmt, stack, depth, &mut out);
        }
        out
    }

    fn nested(&mut self, body: &[PreStmt], stack: &mut Vec<String>, depth: usize, at: &PreStmt) -> ir::Body {
        if depth + 1 > limits::NESTING_MAX {
            self.stage.error(Code::NestingTooDeep, at.loc.file, at.span, format!("after inlining named bodies, blocks are nested more than {} deep (limit NESTING_MAX = {})", limits::NESTING_MAX, limits::NESTING_MAX), "too deep", Some("call fewer bodies from inside nested blocks".into()));
            return Vec::new();
        }
        self.body(body, stack, depth + 1)
    }

    fn stmt(&mut self, stmt: &PreStmt, stack: &mut Vec<String>, depth: usize, out: &mut ir::Body) {
        if self.too_long {
            return;
        }
        self.count += 1;
        if self.count > limits::HOOK_STATEMENTS_MAX {
            self.too_long = true;
            self.stage.error(Code::HookTooLong, stmt.loc.file, stmt.span, format!("hook `{}` has more than {} statements after inlining named bodies (limit HOOK_STATEMENTS_MAX)", self.hook.name(), limits::HOOK_STATEMENTS_MAX), "the limit is passed here", Some("shorten the hook or the bodies it calls".into()));
            return;
        }
        let kind = match &stmt.kind {
            PreKind::Leaf(kind) => kind.clone(),
            PreKind::TryLock(mode, otherwise) => StmtKind::TryLockUmount {
                mode: *mode,
                otherwise: self.nested(otherwise, stack, depth, stmt),
            },
            PreKind::Submit(otherwise) => StmtKind::Submit {
                otherwise: otherwise.as_ref().map(|b| self.nested(b, stack, depth, stmt)),
            },
            PreKind::Sync(otherwise) => StmtKind::Sync {
                otherwise: otherwise.as_ref().map(|b| self.nested(b, stack, depth, stmt)),
            },
            PreKind::If(cond, then, otherwise) => StmtKind::If {
                cond: cond.clone(),
                then: self.nested(then, stack, depth, stmt),
                otherwise: self.nested(otherwise, stack, depth, stmt),
            },
            PreKind::Invalid => {
                self.invalid = true;
                return;
            }
            PreKind::Call(name) => {
                if let Some(start) = stack.iter().position(|s| s == name) {
                    let mut cycle: Vec<&str> = stack[start..].iter().map(String::as_str).collect();
                    cycle.push(name);
                    self.stage.error(
                        Code::RecursiveBody,
                        stmt.loc.file,
                        stmt.span,
                        format!("named body `{name}` calls itself: {}", cycle.join(" → ")),
                        "recursive call",
                        Some("named bodies are inlined, so they cannot recurse".into()),
                    );
                    return;
                }
                let Some(body) = self.scope.get(name.as_str()) else {
                    let names: Vec<&str> = self.scope.keys().copied().collect();
                    let mut candidates = names.clone();
                    candidates.extend_from_slice(STATEMENT_WORDS);
                    let defined = if names.is_empty() {
                        "this policy defines no named bodies".to_owned()
                    } else {
                        format!("named bodies here: {}", names.join(", "))
                    };
                    let help = did_you_mean(
                        name,
                        &candidates,
                        &format!("{defined}; define it with `body {name} {{ … }}`"),
                    );
                    self.stage.error(
                        Code::UndefinedBody,
                        stmt.loc.file,
                        stmt.span,
                        format!("`{name}` is neither a statement nor a named body"),
                        "undefined",
                        Some(help),
                    );
                    return;
                };
                stack.push(name.clone());
                let outer = self.via;
                self.via = outer.or(Some(stmt.loc));
                for inner in body.iter() {
                    self.stmt(inner, stack, depth, out);
                }
                self.via = outer;
                stack.pop();
                return;
            }
        };
        out.push(ir::Stmt {
            kind,
            loc: stmt.loc,
            via: self.via,
        });
    }
}
