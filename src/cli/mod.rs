//! Argument parsing and the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check;

#[derive(Parser, Debug)]
#[command(name = "freezefuzz", version, about = "Find bugs in how a filesystem freezes while programs write through mmap")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Parse and check policy and scenario files; one line per file.
    Check {
        /// Files to check (policies and scenarios).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files } => check::run(&files),
    }
}
