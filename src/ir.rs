//! The checked intermediate representation: what the policy language lowers to
//! and the only thing the engine ever sees.
//!
//! Everything here is span-free except for [`Loc`], which points back at the
//! statement's source so that traces can print `file:line`. Names are
//! resolved, `extends` is flattened, named bodies are inlined and every
//! default is explicit. This module depends on nothing else in the crate.

use std::fmt;

/// Index of a source file in [`Workspace::files`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// Where a statement, action or definition came from (1-based line and column).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Loc {
    pub file: FileId,
    pub line: u32,
    pub column: u32,
}

/// The freeze level of the superblock (`sb->s_writers.frozen`), ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Unfrozen = 0,
    Write = 1,
    Pagefault = 2,
    Fs = 3,
    Complete = 4,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Unfrozen,
        Level::Write,
        Level::Pagefault,
        Level::Fs,
        Level::Complete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Unfrozen => "unfrozen",
            Level::Write => "write",
            Level::Pagefault => "pagefault",
            Level::Fs => "fs",
            Level::Complete => "complete",
        }
    }

    pub fn from_name(name: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.name() == name)
    }
}

/// A level that has a writer count (`sb_start_write`, `sb_start_pagefault`,
/// `sb_start_intwrite` in the kernel): `write`, `pagefault` or `fs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum WriterLevel {
    Write = 0,
    Pagefault = 1,
    Fs = 2,
}

impl WriterLevel {
    pub const ALL: [WriterLevel; 3] = [WriterLevel::Write, WriterLevel::Pagefault, WriterLevel::Fs];

    pub fn level(self) -> Level {
        match self {
            WriterLevel::Write => Level::Write,
            WriterLevel::Pagefault => Level::Pagefault,
            WriterLevel::Fs => Level::Fs,
        }
    }

    pub fn from_level(level: Level) -> Option<WriterLevel> {
        match level {
            Level::Write => Some(WriterLevel::Write),
            Level::Pagefault => Some(WriterLevel::Pagefault),
            Level::Fs => Some(WriterLevel::Fs),
            Level::Unfrozen | Level::Complete => None,
        }
    }

    pub fn name(self) -> &'static str {
        self.level().name()
    }
}

/// How `s_umount` is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LockMode {
    Read,
    Write,
}

impl LockMode {
    pub fn name(self) -> &'static str {
        match self {
            LockMode::Read => "read",
            LockMode::Write => "write",
        }
    }
}

/// The state of a page's buffer heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Buffers {
    Unmapped = 0,
    /// Delalloc-reserved (`BH_Delay`); the kernel also sets `BH_Mapped` on
    /// such buffers, so the condition `buffers == mapped` is true for it.
    Delayed = 1,
    Mapped = 2,
}

impl Buffers {
    pub fn name(self) -> &'static str {
        match self {
            Buffers::Unmapped => "unmapped",
            Buffers::Delayed => "delayed",
            Buffers::Mapped => "mapped",
        }
    }

    pub fn from_name(name: &str) -> Option<Buffers> {
        [Buffers::Unmapped, Buffers::Delayed, Buffers::Mapped]
            .into_iter()
            .find(|b| b.name() == name)
    }
}

/// The state of the user's shared mapping of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Pte {
    None = 0,
    Readonly = 1,
    Writable = 2,
}

impl Pte {
    pub fn name(self) -> &'static str {
        match self {
            Pte::None => "none",
            Pte::Readonly => "readonly",
            Pte::Writable => "writable",
        }
    }

    pub fn from_name(name: &str) -> Option<Pte> {
        [Pte::None, Pte::Readonly, Pte::Writable]
            .into_iter()
            .find(|p| p.name() == name)
    }
}

/// `==` or `!=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EqOp {
    Eq,
    Ne,
}

/// A comparison of two ordered values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    pub fn holds<T: Ord>(self, left: T, right: T) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
        }
    }
}

impl EqOp {
    pub fn symbol(self) -> &'static str {
        match self {
            EqOp::Eq => "==",
            EqOp::Ne => "!=",
        }
    }
}

/// A condition of an `if`. Reading it is one atomic step. Page fields read the
/// page the enclosing hook runs on (only `page_mkwrite` and `writeback` have one).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Cond {
    /// `buffers == mapped` is true for `mapped` and `delayed` (the kernel sets
    /// `BH_Mapped` on delalloc buffers); `== delayed` and `== unmapped` are exact.
    Buffers(EqOp, Buffers),
    Pte(EqOp, Pte),
    Level(CmpOp, Level),
    /// PG_dirty.
    Dirty,
    /// The dirty bit of the user's pte.
    PteDirty,
    /// The page is in the page cache.
    Cached,
    /// PG_locked is set (by any thread).
    Locked,
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

impl Cond {
    /// Whether the condition reads the page the hook runs on.
    pub fn reads_page(&self) -> bool {
        match self {
            Cond::Level(..) => false,
            Cond::Buffers(..)
            | Cond::Pte(..)
            | Cond::Dirty
            | Cond::PteDirty
            | Cond::Cached
            | Cond::Locked => true,
            Cond::Not(inner) => inner.reads_page(),
            Cond::And(a, b) | Cond::Or(a, b) => a.reads_page() || b.reads_page(),
        }
    }
}

/// A statement: one atomic step of the model (see docs/policy-language.md).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stmt {
    pub kind: StmtKind,
    pub loc: Loc,
    /// For a statement of an inlined named body: where the hook calls the
    /// (outermost) body, so that a trace can point at the call site.
    pub via: Option<Loc>,
}

pub type Body = Vec<Stmt>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StmtKind {
    /// `lock umount read|write`: `down_read`/`down_write(&sb->s_umount)`.
    LockUmount(LockMode),
    /// `trylock umount MODE else S`: `down_read_trylock`; on failure runs `otherwise`.
    TryLockUmount { mode: LockMode, otherwise: Body },
    /// `unlock umount`: release whatever this thread holds.
    UnlockUmount,
    /// `wait_unfrozen L`: block while `level >= L` (the old `vfs_check_frozen`).
    WaitUnfrozen(Level),
    /// `sb_start L`: `sb_start_write`/`sb_start_pagefault`/`sb_start_intwrite`.
    SbStart(WriterLevel),
    /// `sb_end L`.
    SbEnd(WriterLevel),
    /// `set_level L`: `sb->s_writers.frozen = L`.
    SetLevel(Level),
    /// `wait_writers L`: `sb_wait_write`, block until no writer at L.
    WaitWriters(WriterLevel),
    /// `lock_page`.
    LockPage,
    /// `unlock_page`.
    UnlockPage,
    /// `mark_dirty`: `set_page_dirty`.
    MarkDirty,
    /// `allocate`: buffers become mapped (block allocation in a transaction).
    Allocate,
    /// `reserve`: buffers become delayed (delalloc reservation).
    Reserve,
    /// `clean`: `page_mkclean` + `clear_page_dirty_for_io`.
    Clean,
    /// `submit` / `submit else S`: write the page to disk. On an injected I/O
    /// error the disk is unchanged and `otherwise` runs; without `else`, the
    /// page is redirtied.
    Submit { otherwise: Option<Body> },
    /// `sync` / `sync else S`: for each page in order, test `dirty` (a step)
    /// and run the policy's `writeback` on it if set. With `else`, when a
    /// `submit` of this sync failed (an injected I/O error), the sync
    /// reports the error after its last page (one step) and `otherwise` runs
    /// (`sync_filesystem` returning -EIO to `freeze_super`).
    Sync { otherwise: Option<Body> },
    /// `fail sigbus`: end the fault with an error (only in `page_mkwrite`).
    FailSigbus,
    /// `skip`: return from the body being run.
    Skip,
    /// `if COND { … } else { … }`: evaluating COND is one step.
    If { cond: Cond, then: Body, otherwise: Body },
}

/// The five hooks of a policy, with defaults filled in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Hooks {
    pub freeze: Body,
    pub thaw: Body,
    pub page_mkwrite: Body,
    pub writeback: Body,
    pub flusher: Body,
}

/// Which hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    Freeze,
    Thaw,
    PageMkwrite,
    Writeback,
    Flusher,
}

impl Hook {
    pub const ALL: [Hook; 5] = [
        Hook::Freeze,
        Hook::Thaw,
        Hook::PageMkwrite,
        Hook::Writeback,
        Hook::Flusher,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Hook::Freeze => "freeze",
            Hook::Thaw => "thaw",
            Hook::PageMkwrite => "page_mkwrite",
            Hook::Writeback => "writeback",
            Hook::Flusher => "flusher",
        }
    }

    pub fn from_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }

    /// Whether the hook runs on one page (so page statements are allowed).
    pub fn has_page(self) -> bool {
        matches!(self, Hook::PageMkwrite | Hook::Writeback)
    }
}

impl Hooks {
    pub fn get(&self, hook: Hook) -> &Body {
        match hook {
            Hook::Freeze => &self.freeze,
            Hook::Thaw => &self.thaw,
            Hook::PageMkwrite => &self.page_mkwrite,
            Hook::Writeback => &self.writeback,
            Hook::Flusher => &self.flusher,
        }
    }
}

/// A fault turned on by a `faults` block: which plug-in, how likely at each
/// point where it can fire (random and PCT campaigns), and at most how many
/// times per run.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultSpec {
    /// A name from the fault registry (`io-error`, `trylock-fail`, …).
    pub name: String,
    /// In `[0, 1]`.
    pub probability: f64,
    /// Per-run bound on firings.
    pub max: u32,
    pub loc: Loc,
}

impl FaultSpec {
    /// A fault probability: a decimal `0`, `1`, `0.DIGITS` or `1.000…`, judged
    /// on its digits (a float would round `1.0000000000000000000001` to 1, and
    /// `0.5000000000000000000000000000001` is 0.5 however long).
    pub fn parse_probability(text: &str) -> Option<f64> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty()
            || !digits(whole)
            || !digits(fraction)
            || (text.contains('.') && fraction.is_empty())
        {
            return None;
        }
        let whole = whole.trim_start_matches('0');
        match whole {
            "" => {}
            "1" if fraction.bytes().all(|b| b == b'0') => return Some(1.0),
            _ => return None,
        }
        // At most 17 significant digits matter to an f64.
        let kept: String = fraction.chars().take(40).collect();
        format!("0.{}", if kept.is_empty() { "0" } else { &kept })
            .parse()
            .ok()
    }
}

/// A checked policy: a name and five hooks.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub name: String,
    /// The parent it `extends`, if any (already flattened into `hooks`).
    pub extends: Option<String>,
    pub hooks: Hooks,
    pub faults: Vec<FaultSpec>,
    pub loc: Loc,
}

/// Index of a page in [`Scenario::pages`].
pub type PageId = usize;

/// The initial state of one page (and the disk block behind it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageInit {
    pub name: String,
    pub cached: bool,
    pub buffers: Buffers,
    pub pte: Pte,
    pub pte_dirty: bool,
    pub dirty: bool,
    pub mem: u8,
    pub disk: u8,
    pub loc: Loc,
}

/// A built-in user or administrator action in a scenario thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionKind {
    /// `store PAGE VALUE`: a user store through the shared mapping.
    Store { page: PageId, value: u8 },
    /// `munmap PAGE`.
    Munmap { page: PageId },
    /// `msync PAGE`.
    Msync { page: PageId },
    /// `await frozen`: wait until the frozen window has opened (a latch).
    AwaitFrozen,
    /// `freeze`: run the policy's `freeze` hook (`fsfreeze -f`).
    Freeze,
    /// `thaw`: run the policy's `thaw` hook (`fsfreeze -u`).
    Thaw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Action {
    pub kind: ActionKind,
    pub loc: Loc,
}

/// What kind of thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ThreadKind {
    /// Runs its actions once, in order, then finishes.
    Program(Vec<Action>),
    /// The background flusher daemon: sleeps until some page is dirty and no
    /// thread holds `s_umount` for writing, runs one `flusher` pass, sleeps again.
    Flusher,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThreadSpec {
    pub name: String,
    pub kind: ThreadKind,
    pub loc: Loc,
}

/// A checked scenario: pages and threads.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    pub name: String,
    pub pages: Vec<PageInit>,
    pub threads: Vec<ThreadSpec>,
    pub faults: Vec<FaultSpec>,
    pub loc: Loc,
}

/// A loaded source file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user gave it (or as found for an `extends`).
    pub path: String,
    pub text: String,
}

/// Everything loaded: files, policies and scenarios, in file order and then
/// definition order within a file.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    pub files: Vec<SourceFile>,
    pub policies: Vec<Policy>,
    pub scenarios: Vec<Scenario>,
}

impl Workspace {
    pub fn policy(&self, name: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.name == name)
    }

    pub fn scenario(&self, name: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.name == name)
    }

    pub fn file_path(&self, file: FileId) -> &str {
        self.files
            .get(file.0 as usize)
            .map(|f| f.path.as_str())
            .unwrap_or("<unknown>")
    }
}

/// Limits checked by the lowering (and named in its errors).
pub mod limits {
    /// Largest accepted source file.
    pub const FILE_BYTES_MAX: usize = 1 << 20;
    /// Deepest nesting of `if`/`else`/`trylock … else`/`submit else`/`sync else` blocks.
    pub const NESTING_MAX: usize = 32;
    /// Most statements in a hook after named bodies are inlined.
    pub const HOOK_STATEMENTS_MAX: usize = 4096;
    /// Longest identifier.
    pub const IDENTIFIER_LEN_MAX: usize = 64;
    /// Most pages in a scenario.
    pub const PAGES_MAX: usize = 8;
    /// Most threads in a scenario (the flusher included).
    pub const THREADS_MAX: usize = 8;
    /// Most actions in one scenario thread.
    pub const ACTIONS_MAX: usize = 64;
    /// Largest `max` of a fault.
    pub const FAULT_FIRINGS_MAX: u32 = 16;
    /// Most policies in one `extends` chain, the policy itself included.
    pub const EXTENDS_DEPTH_MAX: usize = 64;
    /// Most diagnostics reported by one load; the rest are counted in a
    /// last `ff::too-many-errors` ("and N more errors").
    pub const DIAGNOSTICS_MAX: usize = 100;
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for WriterLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cond::Buffers(op, b) => write!(f, "buffers {} {}", op.symbol(), b.name()),
            Cond::Pte(op, p) => write!(f, "pte {} {}", op.symbol(), p.name()),
            Cond::Level(op, l) => write!(f, "level {} {}", op.symbol(), l.name()),
            Cond::Dirty => f.write_str("dirty"),
            Cond::PteDirty => f.write_str("pte_dirty"),
            Cond::Cached => f.write_str("cached"),
            Cond::Locked => f.write_str("locked"),
            Cond::Not(inner) => write!(f, "not {}", Paren(inner)),
            Cond::And(a, b) => write!(f, "{} and {}", Paren(a), Paren(b)),
            Cond::Or(a, b) => write!(f, "{} or {}", Paren(a), Paren(b)),
        }
    }
}

/// Prints compound conditions in parentheses so that the text is unambiguous.
struct Paren<'a>(&'a Cond);

impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Cond::And(..) | Cond::Or(..) | Cond::Not(..) => write!(f, "({})", self.0),
            other => write!(f, "{other}"),
        }
    }
}

impl StmtKind {
    /// The statement's head as a user wrote it, without nested bodies
    /// (`lock umount write`, `if buffers == unmapped`, `submit else`).
    pub fn head(&self) -> String {
        match self {
            StmtKind::LockUmount(mode) => format!("lock umount {}", mode.name()),
            StmtKind::TryLockUmount { mode, .. } => format!("trylock umount {}", mode.name()),
            StmtKind::UnlockUmount => "unlock umount".into(),
            StmtKind::WaitUnfrozen(l) => format!("wait_unfrozen {l}"),
            StmtKind::SbStart(l) => format!("sb_start {l}"),
            StmtKind::SbEnd(l) => format!("sb_end {l}"),
            StmtKind::SetLevel(l) => format!("set_level {l}"),
            StmtKind::WaitWriters(l) => format!("wait_writers {l}"),
            StmtKind::LockPage => "lock_page".into(),
            StmtKind::UnlockPage => "unlock_page".into(),
            StmtKind::MarkDirty => "mark_dirty".into(),
            StmtKind::Allocate => "allocate".into(),
            StmtKind::Reserve => "reserve".into(),
            StmtKind::Clean => "clean".into(),
            StmtKind::Submit { otherwise: None } => "submit".into(),
            StmtKind::Submit { otherwise: Some(_) } => "submit else".into(),
            StmtKind::Sync { otherwise: None } => "sync".into(),
            StmtKind::Sync { otherwise: Some(_) } => "sync else".into(),
            StmtKind::FailSigbus => "fail sigbus".into(),
            StmtKind::Skip => "skip".into(),
            StmtKind::If { cond, .. } => format!("if {cond}"),
        }
    }
}
