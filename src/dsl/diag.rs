//! Diagnostics of the policy language: one error, located by file, line and
//! column, with a label, a plain-words message and an optional help line.
//!
//! A [`Diagnostic`] implements [`miette::Diagnostic`]; rendering it to text is
//! the job of `crate::report::diagnostics`. This module does no IO.

use std::fmt;
use std::sync::Arc;

use miette::{LabeledSpan, NamedSource, SourceCode};

use crate::ir::FileId;

/// What kind of error: each kind has a stable code (`ff::…`) that the
/// reference (docs/policy-language.md) explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    UnreadableFile,
    InvalidUtf8,
    FileTooLarge,
    NestingTooDeep,
    Syntax,
    IdentifierTooLong,
    NumberOutOfRange,
    UnknownHook,
    UnknownStatement,
    BadArguments,
    MissingSemicolon,
    UnknownLevel,
    NotAWriterLevel,
    UnknownLockMode,
    UnknownConditionField,
    UnknownConditionValue,
    BadOperator,
    ConditionTooLong,
    UndefinedBody,
    RecursiveBody,
    HookTooLong,
    ExtendsCycle,
    MissingParent,
    MissingRequiredHook,
    DuplicatePolicy,
    DuplicateScenario,
    DuplicateHook,
    DuplicateBody,
    DuplicatePage,
    DuplicateThread,
    DuplicateFault,
    DuplicateFlusher,
    DuplicateAttribute,
    EmptyBody,
    UmountHeldAtEnd,
    PageLockHeldAtEnd,
    SbStartWithoutEnd,
    UnlockNotHeld,
    SelfDeadlock,
    PageOutsidePageHook,
    SigbusOutsidePageMkwrite,
    SyncInWriteback,
    UnknownFault,
    FaultProbability,
    FaultMax,
    UnknownAttribute,
    BadAttributeValue,
    InconsistentPage,
    UnknownPage,
    AmbiguousPage,
    UnknownAction,
    BadActionArguments,
    NoThreads,
    EmptyThread,
    TooManyPages,
    TooManyThreads,
    TooManyActions,
    TooManyErrors,
    ExtendsTooDeep,
}

impl Code {
    pub const ALL: &[Code] = &[
        Code::UnreadableFile,
        Code::InvalidUtf8,
        Code::FileTooLarge,
        Code::NestingTooDeep,
        Code::Syntax,
        Code::IdentifierTooLong,
        Code::NumberOutOfRange,
        Code::UnknownHook,
        Code::UnknownStatement,
        Code::BadArguments,
        Code::MissingSemicolon,
        Code::UnknownLevel,
        Code::NotAWriterLevel,
        Code::UnknownLockMode,
        Code::UnknownConditionField,
        Code::UnknownConditionValue,
        Code::BadOperator,
        Code::ConditionTooLong,
        Code::UndefinedBody,
        Code::RecursiveBody,
        Code::HookTooLong,
        Code::ExtendsCycle,
        Code::MissingParent,
        Code::MissingRequiredHook,
        Code::DuplicatePolicy,
        Code::DuplicateScenario,
        Code::DuplicateHook,
        Code::DuplicateBody,
        Code::DuplicatePage,
        Code::DuplicateThread,
        Code::DuplicateFault,
        Code::DuplicateFlusher,
        Code::DuplicateAttribute,
        Code::EmptyBody,
        Code::UmountHeldAtEnd,
        Code::PageLockHeldAtEnd,
        Code::SbStartWithoutEnd,
        Code::UnlockNotHeld,
        Code::SelfDeadlock,
        Code::PageOutsidePageHook,
        Code::SigbusOutsidePageMkwrite,
        Code::SyncInWriteback,
        Code::UnknownFault,
        Code::FaultProbability,
        Code::FaultMax,
        Code::UnknownAttribute,
        Code::BadAttributeValue,
        Code::InconsistentPage,
        Code::UnknownPage,
        Code::AmbiguousPage,
        Code::UnknownAction,
        Code::BadActionArguments,
        Code::NoThreads,
        Code::EmptyThread,
        Code::TooManyPages,
        Code::TooManyThreads,
        Code::TooManyActions,
        Code::TooManyErrors,
        Code::ExtendsTooDeep,
    ];

    /// The stable code, as printed (`ff::unknown-level`).
    pub fn name(self) -> &'static str {
        match self {
            Code::UnreadableFile => "ff::unreadable-file",
            Code::InvalidUtf8 => "ff::invalid-utf8",
            Code::FileTooLarge => "ff::file-too-large",
            Code::NestingTooDeep => "ff::nesting-too-deep",
            Code::Syntax => "ff::syntax",
            Code::IdentifierTooLong => "ff::identifier-too-long",
            Code::NumberOutOfRange => "ff::number-out-of-range",
            Code::UnknownHook => "ff::unknown-hook",
            Code::UnknownStatement => "ff::unknown-statement",
            Code::BadArguments => "ff::bad-arguments",
            Code::MissingSemicolon => "ff::missing-semicolon",
            Code::UnknownLevel => "ff::unknown-level",
            Code::NotAWriterLevel => "ff::not-a-writer-level",
            Code::UnknownLockMode => "ff::unknown-lock-mode",
            Code::UnknownConditionField => "ff::unknown-condition-field",
            Code::UnknownConditionValue => "ff::unknown-condition-value",
            Code::BadOperator => "ff::bad-operator",
            Code::ConditionTooLong => "ff::condition-too-long",
            Code::UndefinedBody => "ff::undefined-body",
            Code::RecursiveBody => "ff::recursive-body",
            Code::HookTooLong => "ff::hook-too-long",
            Code::ExtendsCycle => "ff::extends-cycle",
            Code::MissingParent => "ff::missing-parent",
            Code::MissingRequiredHook => "ff::missing-required-hook",
            Code::DuplicatePolicy => "ff::duplicate-policy",
            Code::DuplicateScenario => "ff::duplicate-scenario",
            Code::DuplicateHook => "ff::duplicate-hook",
            Code::DuplicateBody => "ff::duplicate-body",
            Code::DuplicatePage => "ff::duplicate-page",
            Code::DuplicateThread => "ff::duplicate-thread",
            Code::DuplicateFault => "ff::duplicate-fault",
            Code::DuplicateFlusher => "ff::duplicate-flusher",
            Code::DuplicateAttribute => "ff::duplicate-attribute",
            Code::EmptyBody => "ff::empty-body",
            Code::UmountHeldAtEnd => "ff::umount-held-at-end",
            Code::PageLockHeldAtEnd => "ff::page-lock-held-at-end",
            Code::SbStartWithoutEnd => "ff::sb-start-without-end",
            Code::UnlockNotHeld => "ff::unlock-not-held",
            Code::SelfDeadlock => "ff::self-deadlock",
            Code::PageOutsidePageHook => "ff::page-outside-page-hook",
            Code::SigbusOutsidePageMkwrite => "ff::sigbus-outside-page-mkwrite",
            Code::SyncInWriteback => "ff::sync-in-writeback",
            Code::UnknownFault => "ff::unknown-fault",
            Code::FaultProbability => "ff::fault-probability",
            Code::FaultMax => "ff::fault-max",
            Code::UnknownAttribute => "ff::unknown-attribute",
            Code::BadAttributeValue => "ff::bad-attribute-value",
            Code::InconsistentPage => "ff::inconsistent-page",
            Code::UnknownPage => "ff::unknown-page",
            Code::AmbiguousPage => "ff::ambiguous-page",
            Code::UnknownAction => "ff::unknown-action",
            Code::BadActionArguments => "ff::bad-action-arguments",
            Code::NoThreads => "ff::no-threads",
            Code::EmptyThread => "ff::empty-thread",
            Code::TooManyPages => "ff::too-many-pages",
            Code::TooManyThreads => "ff::too-many-threads",
            Code::TooManyActions => "ff::too-many-actions",
            Code::TooManyErrors => "ff::too-many-errors",
            Code::ExtendsTooDeep => "ff::extends-too-deep",
        }
    }
}

/// A source file as the diagnostics see it: its path and text, shared, and
/// an index of its lines.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: String,
    pub text: Arc<String>,
    pub lines: Arc<LineIndex>,
}

impl Source {
    pub fn new(path: impl Into<String>, text: impl Into<String>) -> Source {
        let text = text.into();
        Source {
            path: path.into(),
            lines: Arc::new(LineIndex::new(&text)),
            text: Arc::new(text),
        }
    }
}

/// Bytes between two checkpoints of a [`LineIndex`] within one line.
const CHECKPOINT_BYTES: usize = 256;

/// Line and column lookups in O(log n) plus a few hundred bytes, whatever
/// the length of the file and of its lines: every IR node gets a location,
/// and scanning from the start of the file for each made loading quadratic.
#[derive(Debug, Default)]
pub struct LineIndex {
    /// (byte offset, 0-based line, 0-based column in characters), at every
    /// line start and every [`CHECKPOINT_BYTES`] within a line, sorted both
    /// by offset and by (line, column).
    checkpoints: Vec<(usize, u32, u32)>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut checkpoints = vec![(0, 0, 0)];
        let (mut line, mut column, mut last) = (0u32, 0u32, 0usize);
        for (i, c) in text.char_indices() {
            if i - last >= CHECKPOINT_BYTES {
                checkpoints.push((i, line, column));
                last = i;
            }
            if c == '\n' {
                line = line.saturating_add(1);
                column = 0;
                checkpoints.push((i + 1, line, 0));
                last = i + 1;
            } else {
                column = column.saturating_add(1);
            }
        }
        LineIndex { checkpoints }
    }

    /// 1-based line and column (in characters) of a byte offset of `text`
    /// (the text this index was built from).
    pub fn line_column(&self, text: &str, offset: usize) -> (u32, u32) {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let k = self.checkpoints.partition_point(|cp| cp.0 <= offset).max(1) - 1;
        let (start, mut line, mut column) = self.checkpoints.get(k).copied().unwrap_or((0, 0, 0));
        for c in text[start.min(offset)..offset].chars() {
            if c == '\n' {
                line = line.saturating_add(1);
                column = 0;
            } else {
                column = column.saturating_add(1);
            }
        }
        (line.saturating_add(1), column.saturating_add(1))
    }

    /// The byte offset of a 1-based line and column (the inverse of
    /// [`LineIndex::line_column`]; as [`offset_of`]).
    pub fn offset_of(&self, text: &str, line: u32, column: u32) -> usize {
        let target = (line.saturating_sub(1), column.saturating_sub(1));
        let k = self.checkpoints.partition_point(|cp| (cp.1, cp.2) <= target);
        let Some(&(start, cp_line, cp_column)) = k.checked_sub(1).and_then(|k| self.checkpoints.get(k))
        else {
            return 0;
        };
        if cp_line < target.0 {
            return text.len();
        }
        let rest = &text[start..];
        start
            + rest
                .char_indices()
                .nth((target.1 - cp_column) as usize)
                .map(|(i, _)| i)
                .unwrap_or(rest.len())
    }
}

/// One error in a policy or scenario file.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// The file's path as given (or as found for an `extends`).
    pub path: String,
    /// Its index in the workspace's files, if it got that far.
    pub file: Option<FileId>,
    /// 1-based line and column of the label; 0 when the error has no place
    /// in the text (an unreadable file).
    pub line: u32,
    pub column: u32,
    /// Byte offset and length of the label in the file.
    pub offset: usize,
    pub len: usize,
    pub label: String,
    pub help: Option<String>,
    /// The file's text, named, for miette's snippet (`[file:line:col]`).
    source: Option<NamedSource<Arc<String>>>,
}

impl Diagnostic {
    /// An error located in `source` at byte `offset` (`len` bytes long).
    pub fn at(
        code: Code,
        source: &Source,
        file: Option<FileId>,
        offset: usize,
        len: usize,
        message: impl Into<String>,
    ) -> Diagnostic {
        let text = &source.text;
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let len = len.min(text.len() - offset);
        let len = ceil_char_boundary(text, offset + len) - offset;
        let (line, column) = source.lines.line_column(text, offset);
        Diagnostic {
            code,
            message: message.into(),
            path: source.path.clone(),
            file,
            line,
            column,
            offset,
            len,
            label: String::new(),
            help: None,
            source: Some(NamedSource::new(source.path.clone(), source.text.clone())),
        }
    }

    /// An error about a whole file that has no text to point into.
    pub fn whole_file(code: Code, path: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            code,
            message: message.into(),
            path: path.to_owned(),
            file: None,
            line: 0,
            column: 0,
            offset: 0,
            len: 0,
            label: String::new(),
            help: None,
            source: None,
        }
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Diagnostic {
        self.help = Some(help.into());
        self
    }

    /// The text of the file the error points into (`None` for whole-file errors).
    pub fn source_text(&self) -> Option<&str> {
        self.source.as_ref().map(|n| n.inner().as_str())
    }

    /// `file:line:column`, or just the file for whole-file errors.
    pub fn location(&self) -> String {
        if self.line == 0 {
            self.path.clone()
        } else {
            format!("{}:{}:{}", self.path, self.line, self.column)
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code.name()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|n| n as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        self.source.as_ref()?;
        let label = if self.label.is_empty() {
            None
        } else {
            Some(self.label.clone())
        };
        Some(Box::new(std::iter::once(LabeledSpan::new(
            label,
            self.offset,
            self.len,
        ))))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (u32, u32) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = text[line_start..offset].chars().count() + 1;
    (saturate(line), saturate(column))
}

/// The byte offset of a 1-based line and column (the inverse of [`line_column`]).
pub fn offset_of(text: &str, line: u32, column: u32) -> usize {
    let mut offset = 0;
    for _ in 1..line {
        match text[offset..].find('\n') {
            Some(i) => offset += i + 1,
            None => return text.len(),
        }
    }
    let rest = &text[offset..];
    offset
        + rest
            .char_indices()
            .nth(column.saturating_sub(1) as usize)
            .map(|(i, _)| i)
            .unwrap_or(rest.len())
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i.min(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The index agrees with the plain scans on every offset and position.
    #[test]
    fn line_index_agrees_with_a_scan() {
        let long = "x".repeat(700);
        let text = format!("ab\n\nçé{long}\n  end\nlast é line");
        let index = LineIndex::new(&text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                index.line_column(&text, offset),
                line_column(&text, offset),
                "offset {offset}"
            );
        }
        for line in 0..8 {
            for column in 0..720 {
                assert_eq!(
                    index.offset_of(&text, line, column),
                    offset_of(&text, line, column),
                    "line {line} column {column}"
                );
            }
        }
    }
}
