//! Text → syntax tree: a cheap pre-scan for nesting (so that pest, which
//! recurses, never sees input deep enough to overflow the stack), the pest
//! parse, and the conversion of pest's pairs and errors into `ast` values and
//! [`Diagnostic`]s. No IO.

use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;

use super::ast::{self, Span, Word};
use super::diag::{Code, Diagnostic, Source};
use crate::ir::{FileId, limits};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/policy.pest"]
struct PolicyParser;

/// Deepest brace nesting the pre-scan lets through: an item, a hook and
/// [`limits::NESTING_MAX`] nested blocks.
const BRACE_DEPTH_MAX: usize = limits::NESTING_MAX + 2;

/// Parses one file. On a syntax error, returns that one error (pest stops at
/// the first); otherwise the tree and any limit errors found while building it.
pub fn parse_file(source: &Source, file: FileId) -> (ast::File, Vec<Diagnostic>) {
    let text = source.text.as_str();
    if let Some(diag) = prescan_nesting(source, file) {
        return (ast::File::default(), vec![diag]);
    }
    let pairs = match PolicyParser::parse(Rule::file, text) {
        Ok(pairs) => pairs,
        Err(error) => return (ast::File::default(), vec![syntax_error(source, file, &error)]),
    };
    let mut builder = Builder {
        source,
        file,
        errors: Vec::new(),
    };
    let mut out = ast::File::default();
    for pair in pairs
        .flatten()
        .filter(|p| matches!(p.as_rule(), Rule::policy | Rule::scenario))
    {
        match pair.as_rule() {
            Rule::policy => out.items.push(ast::Item::Policy(builder.policy(pair))),
            _ => out.items.push(ast::Item::Scenario(builder.scenario(pair))),
        }
    }
    (out, builder.errors)
}

/// Rejects braces or parentheses nested deeper than the limits, before pest
/// runs. Comments are skipped; unbalanced braces are left to the parser.
fn prescan_nesting(source: &Source, file: FileId) -> Option<Diagnostic> {
    let bytes = source.text.as_bytes();
    let (mut braces, mut parens) = (0usize, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' => {
                braces += 1;
                if braces > BRACE_DEPTH_MAX {
                    return Some(
                        Diagnostic::at(
                            Code::NestingTooDeep,
                            source,
                            Some(file),
                            i,
                            1,
                            format!(
                                "blocks are nested more than {} deep (limit NESTING_MAX = {})",
                                limits::NESTING_MAX,
                                limits::NESTING_MAX
                            ),
                        )
                        .with_label("this block is too deep")
                        .with_help(
                            "split the logic into named bodies (`body NAME { … }`) or flatten the `if`s",
                        ),
                    );
                }
            }
            b'}' => braces = braces.saturating_sub(1),
            b'(' => {
                parens += 1;
                if parens > limits::NESTING_MAX {
                    return Some(
                        Diagnostic::at(
                            Code::NestingTooDeep,
                            source,
                            Some(file),
                            i,
                            1,
                            format!(
                                "parentheses are nested more than {} deep (limit NESTING_MAX = {})",
                                limits::NESTING_MAX,
                                limits::NESTING_MAX
                            ),
                        )
                        .with_label("too deep")
                        .with_help("simplify the condition"),
                    );
                }
            }
            b')' => parens = parens.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// The plain-words name of a grammar rule, for "expected …".
fn rule_words(rule: Rule) -> &'static str {
    match rule {
        Rule::policy | Rule::scenario | Rule::file => "`policy` or `scenario`",
        Rule::kw_policy => "`policy`",
        Rule::kw_scenario => "`scenario`",
        Rule::kw_extends | Rule::extends => "`extends`",
        Rule::kw_body | Rule::body_def => "`body`",
        Rule::kw_faults | Rule::faults => "`faults`",
        Rule::kw_probability => "`probability`",
        Rule::kw_max => "`max`",
        Rule::kw_page | Rule::page => "`page`",
        Rule::kw_thread | Rule::thread => "`thread`",
        Rule::kw_flusher | Rule::flusher_decl => "`flusher`",
        Rule::kw_if => "`if`",
        Rule::kw_else | Rule::else_if | Rule::else_block => "`else`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::hook_def | Rule::hook_name => "a hook (freeze, thaw, page_mkwrite, writeback, flusher)",
        Rule::name | Rule::ident => {
            "a name (lowercase letters, digits, `_` and `-`, starting with a letter or `_`)"
        }
        Rule::word | Rule::keyword => "a word",
        Rule::number => "a number",
        Rule::lbrace | Rule::block => "`{`",
        Rule::rbrace => "`}`",
        Rule::lparen => "`(`",
        Rule::rparen => "`)`",
        Rule::semi => "`;`",
        Rule::equals => "`=`",
        Rule::cmp_op => "a comparison (==, !=, <, <=, >, >=)",
        Rule::if_stmt | Rule::command | Rule::head | Rule::else_head => "a statement",
        Rule::cond | Rule::disjunct | Rule::conjunct | Rule::comparison | Rule::flag => "a condition",
        Rule::fault => "a fault (io-error, trylock-fail, evict, emergency-thaw)",
        Rule::attribute => {
            "a page attribute (cached, dirty, pte_dirty, buffers = …, pte = …, mem = N, disk = N)"
        }
        Rule::action => "an action (store, munmap, msync, await frozen, freeze, thaw)",
        Rule::EOI => "end of file",
        _ => "input",
    }
}

/// What is at `offset`: a word, a character, or the end of the file.
fn found_at(text: &str, offset: usize) -> (String, usize) {
    let rest = &text[offset.min(text.len())..];
    let Some(first) = rest.chars().next() else {
        return ("end of file".to_owned(), 0);
    };
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if is_word(first) {
        let len = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        let shown: String = rest[..len].chars().take(40).collect();
        let ellipsis = if len > shown.len() { "…" } else { "" };
        (format!("`{shown}{ellipsis}`"), len)
    } else if first.is_control() || first == '\u{fffd}' {
        (format!("the character U+{:04X}", first as u32), first.len_utf8())
    } else {
        (format!("`{first}`"), first.len_utf8())
    }
}

fn syntax_error(source: &Source, file: FileId, error: &pest::error::Error<Rule>) -> Diagnostic {
    let offset = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((start, _)) => start,
    };
    let mut expected: Vec<&'static str> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            let words = rule_words(*rule);
            if !expected.contains(&words) {
                expected.push(words);
            }
        }
    }
    let (found, len) = found_at(&source.text, offset);
    // At the end of the file, point at the last thing in it rather than at nothing.
    let (offset, len, at_end) = match source.text[..offset.min(source.text.len())]
        .trim_end()
        .char_indices()
        .last()
    {
        Some((i, c)) if offset >= source.text.trim_end().len() && len == 0 => (i, c.len_utf8(), true),
        _ => (offset, len, false),
    };
    let expected_text = match expected.as_slice() {
        [] => "something else".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    };
    let help = help_for(&expected, &found);
    let diag = Diagnostic::at(
        Code::Syntax,
        source,
        Some(file),
        offset,
        len.max(1),
        format!("expected {expected_text}, found {found}"),
    )
    .with_label(if at_end {
        "the file ends after this".to_owned()
    } else {
        format!("expected {expected_text}")
    });
    match help {
        Some(help) => diag.with_help(help),
        None => diag,
    }
}

fn help_for(expected: &[&str], found: &str) -> Option<String> {
    if expected.contains(&"`;`") {
        return Some("end each simple statement with `;`".to_owned());
    }
    if found.starts_with("`") && found.chars().nth(1).is_some_and(|c| c.is_ascii_uppercase()) {
        return Some("names and keywords are lowercase".to_owned());
    }
    if expected.contains(&"`policy` or `scenario`") {
        return Some("a file holds `policy NAME { … }` and `scenario NAME { … }` items".to_owned());
    }
    None
}

struct Builder<'a> {
    source: &'a Source,
    file: FileId,
    errors: Vec<Diagnostic>,
}

fn span_of(pair: &Pair<'_, Rule>) -> Span {
    let s = pair.as_span();
    Span {
        start: s.start(),
        end: s.end(),
    }
}

impl Builder<'_> {
    fn word(&mut self, pair: Pair<'_, Rule>) -> Word {
        let span = span_of(&pair);
        let is_number = pair.as_rule() == Rule::number;
        let text = pair.as_str();
        if !is_number && text.len() > limits::IDENTIFIER_LEN_MAX {
            self.errors.push(
                Diagnostic::at(
                    Code::IdentifierTooLong,
                    self.source,
                    Some(self.file),
                    span.start,
                    span.len().min(8),
                    format!(
                        "identifier is {} characters long (limit IDENTIFIER_LEN_MAX = {})",
                        text.len(),
                        limits::IDENTIFIER_LEN_MAX
                    ),
                )
                .with_label("this identifier")
                .with_help("use a shorter name"),
            );
            return Word {
                text: text[..limits::IDENTIFIER_LEN_MAX].to_owned(),
                span,
                is_number,
            };
        }
        Word {
            text: text.to_owned(),
            span,
            is_number,
        }
    }

    fn first_word(&mut self, pair: Pair<'_, Rule>) -> Word {
        let inner = pair
            .into_inner()
            .find(|p| matches!(p.as_rule(), Rule::name | Rule::word | Rule::number))
            .expect("grammar: a name");
        self.word(inner)
    }

    fn policy(&mut self, pair: Pair<'_, Rule>) -> ast::PolicyDef {
        let span = span_of(&pair);
        let mut name = None;
        let mut extends = None;
        let (mut hooks, mut bodies, mut faults) = (Vec::new(), Vec::new(), Vec::new());
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => name = Some(self.word(p)),
                Rule::extends => extends = Some(self.first_word(p)),
                Rule::hook_def | Rule::body_def => {
                    let is_hook = p.as_rule() == Rule::hook_def;
                    let mut inner = p.into_inner().filter(|q| !matches!(q.as_rule(), Rule::kw_body));
                    let name_pair = inner.next().expect("grammar: hook name");
                    let name = self.word(name_pair);
                    let block = self.block(inner.next().expect("grammar: block"));
                    let named = ast::NamedBlock { name, block };
                    if is_hook {
                        hooks.push(named)
                    } else {
                        bodies.push(named)
                    }
                }
                Rule::faults => faults.extend(self.faults(p)),
                _ => {}
            }
        }
        ast::PolicyDef {
            name: name.expect("grammar: policy name"),
            extends,
            hooks,
            bodies,
            faults,
            span,
        }
    }

    fn faults(&mut self, pair: Pair<'_, Rule>) -> Vec<ast::Fault> {
        let mut out = Vec::new();
        for p in pair.into_inner().filter(|p| p.as_rule() == Rule::fault) {
            let span = span_of(&p);
            let mut words = p
                .into_inner()
                .filter(|q| matches!(q.as_rule(), Rule::name | Rule::number));
            let name = words.next().expect("grammar: fault name");
            let probability = words.next().expect("grammar: probability");
            let max = words.next().expect("grammar: max");
            out.push(ast::Fault {
                name: self.word(name),
                probability: self.word(probability),
                max: self.word(max),
                span,
            });
        }
        out
    }

    fn block(&mut self, pair: Pair<'_, Rule>) -> ast::Block {
        let span = span_of(&pair);
        let stmts = pair
            .into_inner()
            .filter(|p| matches!(p.as_rule(), Rule::if_stmt | Rule::command))
            .map(|p| self.stmt(p))
            .collect();
        ast::Block { stmts, span }
    }

    fn head(&mut self, pair: Pair<'_, Rule>) -> Vec<Word> {
        pair.into_inner()
            .filter(|p| matches!(p.as_rule(), Rule::word | Rule::number))
            .map(|p| self.word(p))
            .collect()
    }

    fn stmt(&mut self, pair: Pair<'_, Rule>) -> ast::Stmt {
        let span = span_of(&pair);
        match pair.as_rule() {
            Rule::command => {
                let mut head = Vec::new();
                let mut otherwise = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::head => head = self.head(p),
                        Rule::block => otherwise = Some(ast::Else::Block(self.block(p))),
                        Rule::else_head => {
                            let else_span = span_of(&p);
                            let inner = p
                                .into_inner()
                                .find(|q| q.as_rule() == Rule::head)
                                .expect("grammar: head");
                            otherwise = Some(ast::Else::Command(self.head(inner), else_span));
                        }
                        _ => {}
                    }
                }
                ast::Stmt {
                    kind: ast::StmtKind::Command { head, otherwise },
                    span,
                }
            }
            _ => {
                let mut arms = Vec::new();
                let mut otherwise = None;
                let mut pending_cond = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::cond => pending_cond = Some(self.cond(p)),
                        Rule::block => {
                            let cond = pending_cond.take().expect("grammar: cond before block");
                            arms.push((cond, self.block(p)));
                        }
                        Rule::else_if => {
                            let mut inner = p
                                .into_inner()
                                .filter(|q| matches!(q.as_rule(), Rule::cond | Rule::block));
                            let cond = self.cond(inner.next().expect("grammar: cond"));
                            let block = self.block(inner.next().expect("grammar: block"));
                            arms.push((cond, block));
                        }
                        Rule::else_block => {
                            let inner = p
                                .into_inner()
                                .find(|q| q.as_rule() == Rule::block)
                                .expect("grammar: block");
                            otherwise = Some(self.block(inner));
                        }
                        _ => {}
                    }
                }
                ast::Stmt {
                    kind: ast::StmtKind::If { arms, otherwise },
                    span,
                }
            }
        }
    }

    fn cond(&mut self, pair: Pair<'_, Rule>) -> ast::Cond {
        let span = span_of(&pair);
        match pair.as_rule() {
            Rule::cond | Rule::disjunct => {
                let is_or = pair.as_rule() == Rule::cond;
                let mut parts: Vec<ast::Cond> = pair
                    .into_inner()
                    .filter(|p| matches!(p.as_rule(), Rule::disjunct | Rule::conjunct))
                    .map(|p| self.cond(p))
                    .collect();
                if parts.len() == 1 {
                    return parts.pop().expect("one part");
                }
                let kind = if is_or {
                    ast::CondKind::Or(parts)
                } else {
                    ast::CondKind::And(parts)
                };
                ast::Cond { kind, span }
            }
            Rule::conjunct => {
                let mut nots = 0u32;
                let mut inner = None;
                for p in pair.into_inner() {
                    match p.as_rule() {
                        Rule::kw_not => nots = nots.saturating_add(1),
                        Rule::cond | Rule::comparison | Rule::flag => inner = Some(self.cond(p)),
                        _ => {}
                    }
                }
                let inner = inner.expect("grammar: conjunct has an atom");
                if nots == 0 {
                    inner
                } else {
                    ast::Cond {
                        kind: ast::CondKind::Not(nots, Box::new(inner)),
                        span,
                    }
                }
            }
            Rule::comparison => {
                let mut inner = pair.into_inner();
                let field = self.word(inner.next().expect("grammar: field"));
                let op = self.word(inner.next().expect("grammar: op"));
                let value = self.word(inner.next().expect("grammar: value"));
                ast::Cond {
                    kind: ast::CondKind::Compare { field, op, value },
                    span,
                }
            }
            _ => {
                let flag = self.first_word(pair);
                ast::Cond {
                    kind: ast::CondKind::Flag(flag),
                    span,
                }
            }
        }
    }

    fn scenario(&mut self, pair: Pair<'_, Rule>) -> ast::ScenarioDef {
        let span = span_of(&pair);
        let mut def = ast::ScenarioDef {
            name: Word {
                text: String::new(),
                span,
                is_number: false,
            },
            pages: Vec::new(),
            threads: Vec::new(),
            flushers: Vec::new(),
            faults: Vec::new(),
            span,
        };
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::name => def.name = self.word(p),
                Rule::page => {
                    let page_span = span_of(&p);
                    let mut name = None;
                    let mut attributes = Vec::new();
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::name => name = Some(self.word(q)),
                            Rule::attribute => {
                                let attr_span = span_of(&q);
                                let mut words = q
                                    .into_inner()
                                    .filter(|r| matches!(r.as_rule(), Rule::word | Rule::number));
                                let attr_name = self.word(words.next().expect("grammar: attribute name"));
                                let value = words.next().map(|w| self.word(w));
                                attributes.push(ast::Attribute {
                                    name: attr_name,
                                    value,
                                    span: attr_span,
                                });
                            }
                            _ => {}
                        }
                    }
                    def.pages.push(ast::Page {
                        name: name.expect("grammar: page name"),
                        attributes,
                        span: page_span,
                    });
                }
                Rule::thread => {
                    let thread_span = span_of(&p);
                    let mut name = None;
                    let mut actions = Vec::new();
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::name => name = Some(self.word(q)),
                            Rule::action => {
                                let action_span = span_of(&q);
                                let words = self.head(q);
                                actions.push(ast::Action {
                                    words,
                                    span: action_span,
                                });
                            }
                            _ => {}
                        }
                    }
                    def.threads.push(ast::Thread {
                        name: name.expect("grammar: thread name"),
                        actions,
                        span: thread_span,
                    });
                }
                Rule::flusher_decl => def.flushers.push(span_of(&p)),
                Rule::faults => def.faults.extend(self.faults(p)),
                _ => {}
            }
        }
        def
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> (ast::File, Vec<Diagnostic>) {
        parse_file(&Source::new("t.ff", text), FileId(0))
    }

    #[test]
    fn parses_statements_and_else_forms() {
        let (file, errors) = parse(
            "policy p { freeze { trylock umount read else skip; submit else { skip } if dirty and not (cached or locked) { x } else if level >= fs { y } else { z } } }",
        );
        assert!(errors.is_empty(), "{errors:?}");
        let ast::Item::Policy(p) = &file.items[0] else {
            panic!()
        };
        assert_eq!(p.hooks[0].block.stmts.len(), 3);
    }

    #[test]
    fn syntax_error_says_what_was_expected() {
        let (_, errors) = parse("policy p { freeze { lock umount write set } ");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].code, Code::Syntax);
    }

    #[test]
    fn deep_nesting_is_rejected_before_pest() {
        let text = format!("policy p {{ freeze {{ {} }} }}", "if dirty { ".repeat(10_000));
        let (_, errors) = parse(&text);
        assert_eq!(errors[0].code, Code::NestingTooDeep);
    }
}
