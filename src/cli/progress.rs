//! The progress bar and the interrupt flag of long campaigns.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The stop flag of a long command, set by Ctrl-C (SIGINT), SIGTERM or SIGHUP
/// (batch schedulers such as Slurm and Kubernetes send SIGTERM at their time
/// limit). The first signal asks the work to stop: it checks the flag between
/// runs and every few thousand states, and the command prints what it found,
/// marked partial, and exits 130. A second signal exits at once.
pub(super) fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // If a handler is already installed (it cannot be here), a signal just kills.
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            note!("interrupted twice: exiting at once, without output");
            std::process::exit(super::EXIT_INTERRUPTED.into());
        }
        note!("interrupted: stopping, then printing the partial results (interrupt again to exit at once)");
    });
    stop
}

/// A progress bar on stderr, shown only on a terminal and only once a
/// campaign has run for more than a second.
pub(super) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    done: AtomicU64,
    start: Instant,
}

impl Progress {
    pub(super) fn new(total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                Some(total),
                indicatif::ProgressDrawTarget::hidden(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {rate}  eta {eta}")
            {
                bar.set_style(style.with_key(
                    "rate",
                    |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&rate(state.per_sec()));
                    },
                ));
            }
            bar
        });
        Progress {
            bar,
            done: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    pub(super) fn advance(&self, runs: u64) {
        self.done.fetch_add(runs, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            if bar.is_hidden() && self.start.elapsed() > Duration::from_secs(1) {
                bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            }
            bar.inc(runs);
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// A rate for people: `850 runs/s`, `12.3 k runs/s`, `1.86 M runs/s`
/// (three significant digits).
pub(super) fn rate(per_sec: f64) -> String {
    let (value, unit) = if per_sec >= 1e9 {
        (per_sec / 1e9, "G ")
    } else if per_sec >= 1e6 {
        (per_sec / 1e6, "M ")
    } else if per_sec >= 1e3 {
        (per_sec / 1e3, "k ")
    } else {
        (per_sec, "")
    };
    let digits = if unit.is_empty() || value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.digits$} {unit}runs/s")
}

#[cfg(test)]
mod tests {
    #[test]
    fn rates_read_with_three_digits_and_a_unit() {
        assert_eq!(super::rate(1_860_000.0), "1.86 M runs/s");
        assert_eq!(super::rate(12_340.0), "12.3 k runs/s");
        assert_eq!(super::rate(850.4), "850 runs/s");
        assert_eq!(super::rate(0.0), "0 runs/s");
    }
}
