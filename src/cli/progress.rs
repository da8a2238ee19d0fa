//! The progress bar and the interrupt flag of long campaigns.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub(super) fn interrupt_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // If a handler is already installed (it cannot be here), Ctrl-C just kills.
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
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
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} runs  {per_sec}  eta {eta}")
            {
                bar.set_style(style);
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
