//! Rendering of policy-language diagnostics (`crate::dsl::Diagnostic`) with
//! miette: plain for tests and pipes, coloured for a terminal.
//!
//! miette is never shown the whole file: each diagnostic is rendered against
//! a window of its own line and one line either side, each clipped to
//! [`WINDOW_CHARS`] characters around the label. So rendering costs the same
//! for a 1 MiB one-line file as for a short line, and miette's own column
//! arithmetic (which panics past 65 535 columns) never sees a long line.

use std::fmt;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode,
    SourceSpan, SpanContents,
};

use crate::dsl::Diagnostic;

/// Width the plain rendering wraps at, fixed so that snapshots are stable.
pub const PLAIN_WIDTH: usize = 100;

/// Characters of a source line shown at most; a longer line is clipped
/// around the label and marked with `…`.
pub const WINDOW_CHARS: usize = 160;
/// Characters kept before the label when a line is clipped.
const BEFORE_LABEL_CHARS: usize = 40;
/// Lines of a label spanning several shown at most.
const LABEL_LINES_MAX: usize = 16;

/// Renders one diagnostic: `ff::code`, the message, `[file:line:column]`, the
/// source line with a caret and label, and the help line.
pub fn render(diagnostic: &Diagnostic, colour: bool) -> String {
    let theme = if colour {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(PLAIN_WIDTH)
        .with_context_lines(1);
    let windowed = Windowed::new(diagnostic);
    let mut out = String::new();
    if handler.render_report(&mut out, &windowed).is_err() {
        // miette only fails on a broken span; fall back to one plain line.
        out = format!(
            "error[{}]: {}: {}\n",
            diagnostic.code.name(),
            diagnostic.location(),
            diagnostic.message
        );
    }
    out
}

/// Renders every diagnostic, plain, one after another.
pub fn render_all_plain(diagnostics: &[Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| render(d, false))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A diagnostic with its source cut down to a [`Window`].
struct Windowed<'a> {
    diagnostic: &'a Diagnostic,
    window: Option<Window>,
}

/// The lines around a label, clipped, standing in for the whole file.
struct Window {
    name: String,
    text: String,
    /// 0-based line number of the window's first line in the file.
    first_line: usize,
    /// 0-based index of the label's line in the window.
    label_line: usize,
    /// The label's 0-based column in the file, in characters.
    column: usize,
    /// The label in `text`.
    offset: usize,
    len: usize,
}

impl<'a> Windowed<'a> {
    fn new(diagnostic: &'a Diagnostic) -> Windowed<'a> {
        let window = diagnostic
            .source_text()
            .map(|text| Window::new(&diagnostic.path, text, diagnostic));
        Windowed { diagnostic, window }
    }
}

impl Window {
    fn new(name: &str, text: &str, diagnostic: &Diagnostic) -> Window {
        let offset = diagnostic.offset.min(text.len());
        let label_end = (offset + diagnostic.len).min(text.len());
        let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let label_column = text[line_start..offset].chars().count();
        let label_line_chars = label_column + text[offset..line_end].chars().count();
        let clip_start = if label_line_chars > WINDOW_CHARS {
            label_column.saturating_sub(BEFORE_LABEL_CHARS)
        } else {
            0
        };
        let next_line = |end: usize| {
            (end < text.len()).then(|| {
                let start = end + 1;
                (start, text[start..].find('\n').map_or(text.len(), |i| start + i))
            })
        };
        let mut lines: Vec<(usize, usize)> = Vec::new();
        let mut first_line = diagnostic.line.saturating_sub(1) as usize;
        if line_start > 0 {
            let previous_start = text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
            lines.push((previous_start, line_start - 1));
            first_line = first_line.saturating_sub(1);
        }
        let label_line = lines.len();
        // The label's lines (a label over many lines is cut short), then one more.
        lines.push((line_start, line_end));
        while lines.len() - label_line < LABEL_LINES_MAX {
            let &(_, end) = lines.last().expect("not empty");
            if end >= label_end {
                break;
            }
            match next_line(end) {
                Some(line) => lines.push(line),
                None => break,
            }
        }
        if let Some(line) = next_line(lines.last().expect("not empty").1) {
            lines.push(line);
        }
        let mut window = String::new();
        let (mut label_offset, mut label_window_end) = (None, None);
        for (i, &(start, end)) in lines.iter().enumerate() {
            if i > 0 {
                window.push('\n');
            }
            let line = &text[start..end];
            if clip_start > 0 && !line.is_empty() {
                window.push('…');
            }
            let mut shown_end = start;
            for (n, (at, c)) in line.char_indices().skip(clip_start).enumerate() {
                if n == WINDOW_CHARS {
                    break;
                }
                if start + at == offset {
                    label_offset = Some(window.len());
                }
                window.push(c);
                shown_end = start + at + c.len_utf8();
                if (offset..label_end).contains(&(start + at)) {
                    label_window_end = Some(window.len());
                }
            }
            if shown_end > start && shown_end < end {
                window.push('…');
            }
        }
        let offset = label_offset.unwrap_or(window.len());
        Window {
            name: name.to_owned(),
            len: label_window_end.map_or(0, |end| end.saturating_sub(offset)),
            text: window,
            first_line,
            label_line,
            column: label_column,
            offset,
        }
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_str().read_span(span, before, after)?;
        // The header's `[file:line:column]` reads the label's own span.
        let column = if inner.line() == self.label_line && inner.span().offset() == self.offset {
            self.column
        } else {
            inner.column()
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            column,
            inner.line_count(),
        )))
    }
}

impl fmt::Debug for Windowed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.diagnostic, f)
    }
}

impl fmt::Display for Windowed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.diagnostic, f)
    }
}

impl std::error::Error for Windowed<'_> {}

impl miette::Diagnostic for Windowed<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        miette::Diagnostic::code(self.diagnostic)
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        miette::Diagnostic::help(self.diagnostic)
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.window.as_ref().map(|w| w as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let window = self.window.as_ref()?;
        let label = (!self.diagnostic.label.is_empty()).then(|| self.diagnostic.label.clone());
        Some(Box::new(std::iter::once(LabeledSpan::new(
            label,
            window.offset,
            window.len,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(text: &str) -> String {
        let errors = crate::dsl::load_str("p.ff", text).expect_err("has an error");
        render_all_plain(&errors.diagnostics)
    }

    /// F01: miette panicked on a label past column 65 535.
    #[test]
    fn a_very_long_line_is_clipped_around_the_label() {
        let text = format!(
            "policy p {{\n  freeze {{ {}lokc; }}\n  page_mkwrite {{ lock_page }}\n}}\n",
            " ".repeat(70_000)
        );
        let out = rendered(&text);
        assert!(out.contains("[p.ff:2:70012]"), "{out}");
        assert!(out.contains(" 2 │ …     "), "{out}");
        assert!(
            out.lines().all(|l| l.chars().count() < WINDOW_CHARS + 40),
            "{out}"
        );
        assert!(out.contains("lokc"), "{out}");
    }

    #[test]
    fn short_lines_render_as_the_whole_file_would() {
        let text = "policy p {\n  freeze { lokc; }\n  page_mkwrite { lock_page }\n}\n";
        let out = rendered(text);
        assert!(out.contains("[p.ff:2:12]"), "{out}");
        assert!(out.contains(" 1 │ policy p {"), "{out}");
        assert!(out.contains(" 2 │   freeze { lokc; }"), "{out}");
        assert!(out.contains(" 3 │   page_mkwrite { lock_page }"), "{out}");
        assert!(!out.contains("│ …"), "{out}");
    }
}
