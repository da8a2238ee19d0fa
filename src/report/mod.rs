//! Rendering: tables, Markdown, JSON, traces, diagnostics and IR text. The only place that formats text for people.
pub mod diagnostics;
pub mod diff;
pub mod html;
pub mod ir_text;
pub mod matrix;
pub mod merge;
pub mod snapshot;
pub mod svg;
pub mod swarm;
pub mod trace;
