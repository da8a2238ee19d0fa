//! The command line, one file per subcommand (as cargo does): each defines
//! its clap arguments and a `run` that returns the exit code. Flags are
//! collected by clap and validated before any work starts (absurd values are
//! usage errors, exit 2). Only this module touches files, the environment and
//! exit codes.
//!
//! Exit codes: 0 success; 1 a check failed (`check` found errors, `--expect`
//! differs, `corpus check` changed, a replay did not reach its expected
//! outcome); 2 bad input or usage; 130 interrupted by SIGINT, SIGTERM or
//! SIGHUP (what was found so far is printed, marked partial).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `eprintln!` that cannot panic: when stderr itself fails (closed, or
/// /dev/full) there is nowhere left to report to, and the exit code says it.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

mod args;
pub mod check;
mod conform;
pub mod corpus;
mod diff;
mod explore;
mod generate;
mod load;
mod matrix;
mod merge;
mod progress;
mod read;
mod replay;
mod repro;
mod show;
mod shrink;
mod snapshot;
mod swarm;
mod witness;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "freezefuzz",
    version,
    about = "Find bugs in how a filesystem freezes while programs write through mmap",
    after_help = "Examples:
  freezefuzz matrix --exhaustive                      # every shipped policy × every standard scenario
  freezefuzz run no-block case3-after-freeze          # one seeded campaign
  freezefuzz show mainline                            # a policy as it runs, with file:line
  freezefuzz snapshot snapshots -f mine.ff            # verdicts as insta snapshots
  freezefuzz diff main:policies policies              # what a branch changes, and why

Exit codes: 0 ok; 1 a check failed (check errors, --expect differs, a replay missed its outcome, a snapshot changed); 2 bad input or usage; 130 interrupted."
)]
struct Cli {
    /// When to colour the output: bad outcomes red. `auto` colours a terminal unless NO_COLOR is set.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, value_name = "WHEN")]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// How stdout looks: colour and width, decided once from `--color`,
/// `NO_COLOR`, `COLUMNS` and the terminal.
static STYLE: std::sync::OnceLock<freezefuzz::report::matrix::TableStyle> = std::sync::OnceLock::new();

pub(crate) fn style() -> freezefuzz::report::matrix::TableStyle {
    STYLE.get().copied().unwrap_or_default()
}

fn decide_style(choice: ColorChoice) -> freezefuzz::report::matrix::TableStyle {
    use std::io::IsTerminal as _;
    let terminal = std::io::stdout().is_terminal();
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colour = match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => terminal && !no_color,
    };
    // COLUMNS when set (deterministic for scripts and tests), else the
    // terminal's width; a pipe without COLUMNS gets the full grid.
    let columns = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok());
    let width = columns.or_else(|| terminal.then(terminal_width).flatten());
    freezefuzz::report::matrix::TableStyle { width, colour }
}

/// The width of the terminal on stdout.
fn terminal_width() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a winsize; a zeroed one is a valid start.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(size.ws_col as usize)
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check policy and scenario files; one line per file.
    Check(check::CheckArgs),
    /// A seeded campaign for one policy and one scenario.
    Run(matrix::RunArgs),
    /// The outcome matrix: policies × scenarios (default: every loaded policy × every loaded scenario).
    Matrix(matrix::MatrixArgs),
    /// Explore one cell exhaustively.
    Explore(explore::ExploreArgs),
    /// Many seeded, bounded bitstate searches of one cell too large to explore; finds outcomes, never proves safety.
    Swarm(swarm::SwarmArgs),
    /// Replay one run step by step: from a schedule string, a run seed or a corpus entry.
    Replay(replay::ReplayArgs),
    /// Shrink a failing schedule while its outcome holds: fewer steps, preemptions and faults.
    Shrink(shrink::ShrinkArgs),
    /// The corpus of witnesses in corpus/: check that each still replays to its outcomes.
    Corpus {
        #[command(subcommand)]
        action: corpus::CorpusAction,
    },
    /// Merge the JSON outputs of `matrix --shard K/N` into one matrix, or of `swarm --shard K/N` into one swarm.
    Merge(merge::MergeArgs),
    /// Print a policy as it runs (after `extends`, defaults and named bodies) or a scenario, with file:line.
    Show(show::ShowArgs),
    /// The cells whose outcomes changed between two matrices, and the step where the runs part.
    Diff(diff::DiffArgs),
    /// Write shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions(generate::CompletionsArgs),
    /// Write the man page (roff) to stdout.
    Man(generate::ManArgs),
    /// Write each policy's exhaustive verdicts as an insta snapshot in DIR; on a change, a .snap.new and exit 1.
    Snapshot(snapshot::SnapshotArgs),
    /// Write a C reproducer of a scenario (or of one schedule, seed or corpus witness) for a real filesystem.
    Repro(repro::ReproArgs),
    /// Run the scenarios on a real Linux kernel in QEMU and compare with the model's verdicts.
    Conform(conform::ConformArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = STYLE.set(decide_style(cli.color));
    match cli.command {
        Command::Check(args) => check::run(&args.files),
        Command::Run(args) => matrix::run_one(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Swarm(args) => swarm::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Shrink(args) => shrink::run(args),
        Command::Corpus { action } => corpus::run(action),
        Command::Merge(args) => merge::run(args),
        Command::Show(args) => show::run(args),
        Command::Diff(args) => diff::run(args),
        Command::Completions(args) => generate::completions(args),
        Command::Man(args) => generate::man(args),
        Command::Snapshot(args) => snapshot::run(args),
        Command::Repro(args) => repro::run(args),
        Command::Conform(args) => conform::run(args),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    note!("error: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn emit(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|_| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => usage_error(format!("cannot write the output: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    /// Every argument of every subcommand says what it is for, and every
    /// subcommand has a line of its own in `--help`.
    #[test]
    fn every_argument_is_described() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "freezefuzz", &mut missing);
        assert!(missing.is_empty(), "undescribed: {missing:#?}");
        super::Cli::command().debug_assert();
    }
}
