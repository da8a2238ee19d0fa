//! The matrix as one self-contained HTML page: inline CSS, inline SVG, no
//! scripts and no network. Each bad cell links to its witness: the swim-lane
//! picture and the exact command that replays it.

use std::fmt::Write as _;

use crate::report::matrix::{self, MatrixReport};
use crate::report::svg::escape;

/// The line under a witness saying where it comes from and what shrinking
/// did: `shrunk from 23 to 17 steps (4 to 2 preemptions)`, or that it found
/// nothing shorter (never "shrunk from 15 to 15").
pub fn shrink_note(outcome: &str, origin: &str, before: (usize, usize), after: (usize, usize)) -> String {
    let (steps_before, preemptions_before) = before;
    let (steps_after, preemptions_after) = after;
    if (steps_before, preemptions_before) == (steps_after, preemptions_after) {
        format!(
            "{outcome}: {origin}, {steps_after} steps ({preemptions_after} preemptions); shrinking found nothing shorter"
        )
    } else {
        format!(
            "{outcome}: {origin}, shrunk from {steps_before} to {steps_after} steps \
             ({preemptions_before} to {preemptions_after} preemptions)"
        )
    }
}

/// One witness to show under the matrix.
#[derive(Clone, Debug)]
pub struct HtmlWitness {
    pub policy: String,
    pub scenario: String,
    pub outcome: String,
    /// A line about where it comes from (`shrunk from 23 to 17 steps`).
    pub note: String,
    pub schedule: String,
    pub replay: String,
    /// The swim-lane SVG document.
    pub svg: String,
}

fn anchor(policy: &str, scenario: &str, outcome: &str) -> String {
    format!("w-{policy}-{scenario}-{outcome}")
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#222}\
table{border-collapse:collapse;font-size:13px}\
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}\
th{background:#f4f4f4}td.bad{background:#fde2e2}td.safe{background:#e6f4ea}\
td a{color:#a00000;text-decoration:none;display:block}\
section{margin-top:32px;border-top:2px solid #ddd;padding-top:8px}\
code,pre{font-family:DejaVu Sans Mono,Menlo,Consolas,monospace;font-size:12px}\
pre{background:#f6f8fa;padding:8px;overflow-x:auto;white-space:pre-wrap}\
.svg{overflow-x:auto}";

/// The whole page.
pub fn render(report: &MatrixReport, witnesses: &[HtmlWitness]) -> String {
    let mut out = String::new();
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<title>freezefuzz matrix</title>\n");
    let _ = writeln!(out, "<style>{CSS}</style>\n</head>\n<body>");
    out.push_str("<h1>freezefuzz: outcome matrix</h1>\n");
    let runs = match report.campaign.runs {
        Some(runs) => format!(" · {} runs in all", runs * report.cells.len() as u64),
        None => String::new(),
    };
    let _ = writeln!(
        out,
        "<p>{}{runs} · every bad outcome links to a replayable witness below.</p>",
        escape(&matrix::header_line(report)),
    );
    out.push_str("<table>\n<tr><th>policy</th>");
    for scenario in &report.scenarios {
        let _ = write!(out, "<th>{}</th>", escape(scenario));
    }
    out.push_str("</tr>\n");
    for policy in &report.policies {
        let _ = write!(out, "<tr><th>{}</th>", escape(policy));
        for scenario in &report.scenarios {
            let Some(cell) = report
                .cells
                .iter()
                .find(|c| &c.policy == policy && &c.scenario == scenario)
            else {
                out.push_str("<td>—</td>");
                continue;
            };
            let bad = cell.outcomes.0.iter().any(|(o, _)| o.is_bad());
            let _ = write!(out, "<td class=\"{}\">", if bad { "bad" } else { "safe" });
            let text = matrix::cell_text(report, cell);
            for (k, part) in text.split(" · ").enumerate() {
                let name = part.split(['@', ' ']).next().unwrap_or(part);
                let linked = witnesses
                    .iter()
                    .any(|w| &w.policy == policy && &w.scenario == scenario && w.outcome == name);
                if k > 0 && !linked {
                    out.push_str("<br/>");
                }
                if linked {
                    let _ = write!(
                        out,
                        "<a href=\"#{}\">{}</a>",
                        escape(&anchor(policy, scenario, name)),
                        escape(part)
                    );
                } else {
                    out.push_str(&escape(part));
                }
            }
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    for w in witnesses {
        let _ = writeln!(
            out,
            "<section id=\"{}\">\n<h2>{} × {}: {}</h2>",
            escape(&anchor(&w.policy, &w.scenario, &w.outcome)),
            escape(&w.policy),
            escape(&w.scenario),
            escape(&w.outcome)
        );
        if !w.note.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", escape(&w.note));
        }
        let _ = writeln!(
            out,
            "<p>schedule: <code>{}</code></p>\n<pre>{}</pre>",
            escape(&w.schedule),
            escape(&w.replay)
        );
        // The SVG document, inline: drop nothing but a trailing newline.
        let _ = writeln!(out, "<div class=\"svg\">{}</div>\n</section>", w.svg.trim_end());
    }
    out.push_str("</body>\n</html>\n");
    out
}
