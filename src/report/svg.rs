//! A run as a swim-lane SVG: one lane per thread, time flowing down, one
//! labelled box per step, blocked stretches hatched, the frozen window
//! shaded across every lane, and the step that breaks an oracle in red. A
//! column on the right says what each step changed; a bar at a lane's
//! right edge marks a write-out of that thread in flight (PG_writeback).
//! Pure rendering: the same trace gives the same bytes.

use std::fmt::Write as _;

use crate::engine::exec;
use crate::engine::program::Program;
use crate::engine::run::{RunResult, TraceStep};
use crate::engine::schedule;
use crate::model::{State, record};
use crate::oracle::Outcome;
use crate::report::trace;

const ROW: usize = 24;
const BOX: usize = 18;
const LANE: usize = 236;
const NUMBERS: usize = 40;
const CHANGES: usize = 330;
const TOP: usize = 70;
/// The colour of a write-out in flight (PG_writeback).
const WRITEBACK: &str = "#e08a1e";
const FONT: &str = "font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\"";

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Cuts `text` to `max` characters, marking the cut with `…`.
fn fit(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The index of the step that breaks an oracle, if one step does: the one
/// that records a frozen write or a user error. (Deadlock and lost-write are
/// judged at the end; the end row shows them.)
pub fn breaking_step(steps: &[TraceStep]) -> Option<usize> {
    let opened = |s: &TraceStep, bit| !s.before.has_record(bit) && s.after.has_record(bit);
    steps
        .iter()
        .position(|s| opened(s, record::FROZEN_WRITE) || opened(s, record::USER_ERROR))
}

fn blocked_at(program: &Program, state: &State, thread: usize) -> bool {
    !exec::enabled(program, state, thread) && exec::stuck(program, state, thread)
}

/// Renders the run as a standalone SVG document.
pub fn render(program: &Program, steps: &[TraceStep], result: &RunResult) -> String {
    let threads = program.threads.len();
    let lanes_x = NUMBERS;
    let changes_x = lanes_x + threads * LANE + 12;
    let width = changes_x + CHANGES;
    let end_row = TOP + steps.len() * ROW;
    let legend_y = end_row + ROW * 2 + 40;
    let height = legend_y + 40;
    let breaking = breaking_step(steps);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" {FONT} font-size=\"11\">"
    );
    svg.push_str(
        "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#f3f3f3\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#b0b0b0\" stroke-width=\"2\"/></pattern></defs>\n",
    );
    let _ = writeln!(
        svg,
        "<rect width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>"
    );
    // Title.
    let outcomes = if result.outcomes.is_empty() {
        "none (unfinished)".to_string()
    } else {
        result.outcomes.to_string()
    };
    let _ = writeln!(
        svg,
        "<text x=\"8\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{} × {}: {}</text>",
        escape(&program.policy),
        escape(&program.scenario),
        escape(&outcomes)
    );
    let choices: Vec<_> = steps.iter().map(|s| s.choice).collect();
    let _ = writeln!(
        svg,
        "<text x=\"8\" y=\"38\" fill=\"#555555\">schedule: {}</text>",
        escape(&fit(&schedule::format(program, &choices), (width - 100) / 7))
    );
    // Frozen window: rows whose step runs while it is open or opens it.
    let mut row = 0;
    while row < steps.len() {
        let open = |s: &TraceStep| s.after.has_record(record::WINDOW_OPEN);
        if open(&steps[row]) {
            let start = row;
            while row < steps.len() && open(&steps[row]) {
                row += 1;
            }
            // Shade from the step that opens it to the step that closes it.
            let end = if row < steps.len() { row + 1 } else { row };
            let y = TOP + start * ROW;
            let h = (end - start) * ROW;
            let _ = writeln!(
                svg,
                "<rect x=\"{lanes_x}\" y=\"{y}\" width=\"{}\" height=\"{h}\" fill=\"#cfe3ff\" fill-opacity=\"0.55\"/>",
                threads * LANE
            );
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" fill=\"#2a5db0\" font-size=\"10\" text-anchor=\"end\">frozen window</text>",
                lanes_x + threads * LANE - 4,
                y + 11
            );
        } else {
            row += 1;
        }
    }
    // Lanes and their names.
    for (t, thread) in program.threads.iter().enumerate() {
        let x = lanes_x + t * LANE;
        let _ = writeln!(
            svg,
            "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#cccccc\"/>",
            TOP - 16,
            end_row + ROW
        );
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" font-weight=\"bold\" font-size=\"13\" text-anchor=\"middle\">{}</text>",
            x + LANE / 2,
            TOP - 6,
            escape(&thread.name)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{changes_x}\" y=\"{}\" font-weight=\"bold\" font-size=\"13\">what changed</text>",
        TOP - 6
    );
    // Blocked stretches, per thread.
    for t in 0..threads {
        let mut row = 0;
        while row < steps.len() {
            if steps[row].choice.thread as usize != t && blocked_at(program, &steps[row].before, t) {
                let start = row;
                while row < steps.len()
                    && steps[row].choice.thread as usize != t
                    && blocked_at(program, &steps[row].before, t)
                {
                    row += 1;
                }
                let x = lanes_x + t * LANE + 10;
                let y = TOP + start * ROW + 2;
                let h = (row - start) * ROW - 4;
                let on = schedule::label(program, &steps[start].before, t);
                let _ = writeln!(
                    svg,
                    "<g><title>{} blocked at {}</title><rect x=\"{x}\" y=\"{y}\" width=\"{}\" height=\"{h}\" fill=\"url(#hatch)\" stroke=\"#888888\" stroke-dasharray=\"4 3\" rx=\"3\"/><text x=\"{}\" y=\"{}\" fill=\"#555555\" font-style=\"italic\" font-size=\"10\">blocked: {}</text></g>",
                    escape(&program.threads[t].name),
                    escape(&on),
                    LANE - 20,
                    x + 4,
                    y + 13,
                    escape(&fit(&on, 24))
                );
            } else {
                row += 1;
            }
        }
    }
    // Write-outs in flight (PG_writeback), per thread: a bar at the lane's
    // right edge from the step that starts one (`clean` in a writeback body)
    // to the step that leaves the body (end_page_writeback).
    for t in 0..threads {
        let holds = |s: &State| {
            (0..program.pages.len())
                .filter(|&p| s.pages[p].writeback_by() & (1 << t) != 0)
                .collect::<Vec<_>>()
        };
        let mut row = 0;
        while row < steps.len() {
            let pages = holds(&steps[row].after);
            if pages.is_empty() {
                row += 1;
                continue;
            }
            let start = row;
            while row < steps.len() && holds(&steps[row].after) == pages {
                row += 1;
            }
            let names: Vec<&str> = pages.iter().map(|&p| program.pages[p].as_str()).collect();
            let x = lanes_x + (t + 1) * LANE - 5;
            let y = TOP + start * ROW + 3;
            let h = (row - start) * ROW;
            let _ = writeln!(
                svg,
                "<g><title>{} has {} under writeback</title><rect x=\"{x}\" y=\"{y}\" width=\"4\" height=\"{h}\" fill=\"{WRITEBACK}\"/></g>",
                escape(&program.threads[t].name),
                escape(&names.join(", "))
            );
        }
    }
    // Steps.
    for (i, step) in steps.iter().enumerate() {
        let t = step.choice.thread as usize;
        let y = TOP + i * ROW;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" fill=\"#777777\" text-anchor=\"end\">{}</text>",
            NUMBERS - 6,
            y + 16,
            i + 1
        );
        let label = schedule::label(program, &step.before, t);
        let origin = &program.origins[program.instr(t, step.pc).origin as usize];
        let mut text = label.clone();
        if step.choice.fire {
            text.push_str(" ⚡fault");
        }
        // Where the statement runs, in grey, when it fits in the box.
        let room = (LANE - 20) / 7;
        let context = if !origin.context.is_empty()
            && origin.context != origin.text
            && text.chars().count() + origin.context.chars().count() + 3 <= room
        {
            format!(
                "<tspan fill=\"#8a8a8a\" font-size=\"10\"> · {}</tspan>",
                escape(&origin.context)
            )
        } else {
            String::new()
        };
        let (fill, stroke, stroke_width) = if Some(i) == breaking {
            ("#ffd6d6", "#c00000", 2.5)
        } else if step.choice.fire {
            ("#ffe9c7", "#c77700", 1.5)
        } else {
            ("#eef3fb", "#5b7db1", 1.0)
        };
        let changes = trace::state_changes(program, &step.before, &step.after);
        let x = lanes_x + t * LANE + 6;
        let _ = writeln!(
            svg,
            "<g><title>step {}: {} runs {} [{}]{}</title><rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{BOX}\" rx=\"4\" fill=\"{fill}\" stroke=\"{stroke}\" stroke-width=\"{stroke_width}\"/><text x=\"{}\" y=\"{}\">{}{context}</text></g>",
            i + 1,
            escape(&program.threads[t].name),
            escape(&origin.text),
            escape(&origin.context),
            if changes.is_empty() {
                String::new()
            } else {
                format!(": {}", escape(&changes.join(", ")))
            },
            y + 3,
            LANE - 12,
            x + 5,
            y + 16,
            escape(&fit(&text, (LANE - 20) / 7))
        );
        if !changes.is_empty() {
            let colour = if Some(i) == breaking { "#c00000" } else { "#333333" };
            let _ = writeln!(
                svg,
                "<text x=\"{changes_x}\" y=\"{}\" fill=\"{colour}\" font-size=\"10\">{}</text>",
                y + 16,
                escape(&fit(&changes.join(", "), CHANGES / 6))
            );
        }
    }
    // The end: stuck threads and the verdict.
    for t in 0..threads {
        if exec::stuck(program, &result.state, t) && exec::enabled_mask(program, &result.state) == 0 {
            let x = lanes_x + t * LANE + 6;
            let on = schedule::label(program, &result.state, t);
            let _ = writeln!(
                svg,
                "<rect x=\"{x}\" y=\"{}\" width=\"{}\" height=\"{BOX}\" rx=\"4\" fill=\"#ffd6d6\" stroke=\"#c00000\" stroke-width=\"2.5\" stroke-dasharray=\"5 3\"/><text x=\"{}\" y=\"{}\" fill=\"#c00000\">{}</text>",
                end_row + 3,
                LANE - 12,
                x + 5,
                end_row + 16,
                escape(&fit(&format!("stuck: {on}"), (LANE - 20) / 7))
            );
        }
    }
    let ending = if result.step_limit {
        "the step budget was reached".to_string()
    } else if exec::enabled_mask(program, &result.state) == 0 {
        "no thread can move".to_string()
    } else {
        "the schedule ends while threads can still move (unfinished)".to_string()
    };
    let bad = result.outcomes.iter().any(Outcome::is_bad);
    let mut why = Vec::new();
    if result.outcomes.contains(Outcome::LostWrite) {
        for (page, name) in program.pages.iter().enumerate() {
            if let Some(stored) = result.state.stored(page) {
                let disk = result.state.disk_after_final_sync(page);
                if disk != stored {
                    why.push(format!(
                        "lost write: after a final sync, {name} on disk is {disk}, but the user last stored {stored}"
                    ));
                }
            }
        }
    }
    if result.outcomes.contains(Outcome::Deadlock) {
        let stuck: Vec<String> = (0..threads)
            .filter(|&t| exec::stuck(program, &result.state, t))
            .map(|t| {
                format!(
                    "{} at {}",
                    program.threads[t].name,
                    schedule::label(program, &result.state, t)
                )
            })
            .collect();
        why.push(format!(
            "deadlock: no thread can move, stuck: {}",
            stuck.join("; ")
        ));
    }
    for (k, line) in why.iter().enumerate() {
        let _ = writeln!(
            svg,
            "<text x=\"{lanes_x}\" y=\"{}\" fill=\"#c00000\">{}</text>",
            end_row + ROW + 36 + k * 16,
            escape(line)
        );
    }
    let _ = writeln!(
        svg,
        "<text x=\"{lanes_x}\" y=\"{}\" font-weight=\"bold\" fill=\"{}\">end: {} · outcomes: {}</text>",
        end_row + ROW + 18,
        if bad { "#c00000" } else { "#1a7f37" },
        escape(&ending),
        escape(&outcomes)
    );
    // Legend.
    let items: [(&str, &str, &str, &str); 5] = [
        ("#eef3fb", "#5b7db1", "", "step (statement run)"),
        ("url(#hatch)", "#888888", " stroke-dasharray=\"4 3\"", "blocked"),
        ("#cfe3ff", "#cfe3ff", "", "frozen window"),
        (WRITEBACK, WRITEBACK, "", "under writeback"),
        ("#ffd6d6", "#c00000", "", "breaks an oracle / stuck"),
    ];
    let mut x = 8;
    for (fill, stroke, dash, text) in items {
        let _ = writeln!(
            svg,
            "<rect x=\"{x}\" y=\"{legend_y}\" width=\"26\" height=\"14\" rx=\"3\" fill=\"{fill}\" stroke=\"{stroke}\"{dash}/><text x=\"{}\" y=\"{}\">{text}</text>",
            x + 32,
            legend_y + 11
        );
        x += 40 + text.chars().count() * 7 + 16;
    }
    svg.push_str("</svg>\n");
    svg
}
