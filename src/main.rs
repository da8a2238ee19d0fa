//! The `freezefuzz` command line: thin glue over the library. Only this
//! binary touches files, the environment and exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
