//! The command line, one file per subcommand (as cargo does): each defines
//! its clap arguments and a `run` that returns the exit code. Flags are
//! collected by clap and validated before any work starts (absurd values are
//! usage errors, exit 2). Only this module touches files, the environment and
//! exit codes.
//!
//! Exit codes: 0 success; 1 a check failed (`check` found errors, `--expect`
//! differs, `corpus check` changed, a replay did not reach its expected
//! outcome); 2 bad input or usage; 130 interrupted (what was found so far is
//! printed, marked partial).

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod args;
pub mod check;
mod conform;
pub mod corpus;
mod explore;
mod load;
mod matrix;
mod merge;
mod progress;
mod replay;
mod repro;
mod shrink;
mod witness;

pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "freezefuzz",
    version,
    about = "Find bugs in how a filesystem freezes while programs write through mmap",
    after_help = "Exit codes: 0 ok; 1 a check failed (check errors, --expect differs, a replay missed its outcome); 2 bad input or usage; 130 interrupted."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Replay one run step by step: from a schedule string, a run seed or a corpus entry.
    Replay(replay::ReplayArgs),
    /// Shrink a failing schedule while its outcome holds: fewer steps, preemptions and faults.
    Shrink(shrink::ShrinkArgs),
    /// The corpus of witnesses in corpus/: check that each still replays to its outcomes.
    Corpus {
        #[command(subcommand)]
        action: corpus::CorpusAction,
    },
    /// Merge the JSON outputs of `matrix --shard K/N` into one matrix.
    Merge(merge::MergeArgs),
    /// Write a C reproducer of a scenario (or of one schedule, seed or corpus witness) for a real filesystem.
    Repro(repro::ReproArgs),
    /// Run the scenarios on a real Linux kernel in QEMU and compare with the model's verdicts.
    Conform(conform::ConformArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check(args) => check::run(&args.files),
        Command::Run(args) => matrix::run_one(args),
        Command::Matrix(args) => matrix::run(args),
        Command::Explore(args) => explore::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Shrink(args) => shrink::run(args),
        Command::Corpus { action } => corpus::run(action),
        Command::Merge(args) => merge::run(args),
        Command::Repro(args) => repro::run(args),
        Command::Conform(args) => conform::run(args),
    }
}

fn usage_error(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
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
