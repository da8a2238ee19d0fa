//! The syntax tree of a policy file, with byte spans into the source.
//!
//! Statements, attributes and actions are kept as words (a head word and its
//! arguments): the lowering decides which words are known, so that an unknown
//! one gets its own message. Built by `parse.rs`, read by `lower.rs`.

/// A byte range in the source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// A name or word, or a number, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Span,
    pub is_number: bool,
}

#[derive(Clone, Debug, Default)]
pub struct File {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug)]
pub enum Item {
    Policy(PolicyDef),
    Scenario(ScenarioDef),
}

#[derive(Clone, Debug)]
pub struct PolicyDef {
    pub name: Word,
    pub extends: Option<Word>,
    pub hooks: Vec<NamedBlock>,
    pub bodies: Vec<NamedBlock>,
    pub faults: Vec<Fault>,
    pub span: Span,
}

/// `NAME { … }` (a hook) or `body NAME { … }`.
#[derive(Clone, Debug)]
pub struct NamedBlock {
    pub name: Word,
    pub block: Block,
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Stmt {
    pub kind: StmtKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum StmtKind {
    /// `HEAD ARG…`, optionally with `else S`.
    Command {
        head: Vec<Word>,
        otherwise: Option<Else>,
    },
    /// `if C { } else if C { } … else { }`.
    If {
        arms: Vec<(Cond, Block)>,
        otherwise: Option<Block>,
    },
}

#[derive(Clone, Debug)]
pub enum Else {
    Block(Block),
    /// `else skip` and the like: one simple statement.
    Command(Vec<Word>, Span),
}

#[derive(Clone, Debug)]
pub struct Cond {
    pub kind: CondKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum CondKind {
    /// `FIELD OP VALUE`.
    Compare {
        field: Word,
        op: Word,
        value: Word,
    },
    /// A bare flag: `dirty`, `cached`, …
    Flag(Word),
    /// `not` applied `count` times.
    Not(u32, Box<Cond>),
    And(Vec<Cond>),
    Or(Vec<Cond>),
}

#[derive(Clone, Debug)]
pub struct Fault {
    pub name: Word,
    pub probability: Word,
    pub max: Word,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ScenarioDef {
    pub name: Word,
    pub pages: Vec<Page>,
    pub threads: Vec<Thread>,
    /// Every `flusher;` line (more than one is an error).
    pub flushers: Vec<Span>,
    pub faults: Vec<Fault>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Page {
    pub name: Word,
    pub attributes: Vec<Attribute>,
    pub span: Span,
}

/// `cached` or `buffers = mapped`.
#[derive(Clone, Debug)]
pub struct Attribute {
    pub name: Word,
    pub value: Option<Word>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct Thread {
    pub name: Word,
    pub actions: Vec<Action>,
    pub span: Span,
}

/// `store a 2`, `await frozen`, …
#[derive(Clone, Debug)]
pub struct Action {
    pub words: Vec<Word>,
    pub span: Span,
}
