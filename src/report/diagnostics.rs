//! Rendering of policy-language diagnostics (`crate::dsl::Diagnostic`) with
//! miette: plain for tests and pipes, coloured for a terminal.

use miette::{GraphicalReportHandler, GraphicalTheme};

use crate::dsl::Diagnostic;

/// Width the plain rendering wraps at, fixed so that snapshots are stable.
pub const PLAIN_WIDTH: usize = 100;

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
    let mut out = String::new();
    if handler.render_report(&mut out, diagnostic).is_err() {
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
