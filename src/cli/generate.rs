//! `freezefuzz completions SHELL` and `freezefuzz man`: generated from the
//! clap definition, so they never drift from the flags.

use std::process::ExitCode;

use clap::CommandFactory as _;

use super::{Cli, emit};

#[derive(clap::Args, Debug)]
#[command(after_help = "Examples:
  freezefuzz completions bash > ~/.local/share/bash-completion/completions/freezefuzz
  freezefuzz completions zsh > ~/.zfunc/_freezefuzz
  freezefuzz completions fish > ~/.config/fish/completions/freezefuzz.fish")]
pub(super) struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum, value_name = "SHELL")]
    shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Example:
  freezefuzz man > freezefuzz.1 && man ./freezefuzz.1")]
pub(super) struct ManArgs {}

pub(super) fn completions(args: CompletionsArgs) -> ExitCode {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "freezefuzz", &mut out);
    emit(&String::from_utf8_lossy(&out))
}

/// The man page: synopsis, every option, the subcommands, examples.
pub(super) fn man(_: ManArgs) -> ExitCode {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
        return super::usage_error(format!("cannot render the man page: {e}"));
    }
    emit(&String::from_utf8_lossy(&out))
}
