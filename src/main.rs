//! The `freezefuzz` command line: thin glue over the library. Only this
//! binary touches files, the environment and exit codes.

mod cli;

fn main() -> std::process::ExitCode {
    // Like other Unix filters, stop quietly when the reader of our output
    // goes away (`freezefuzz matrix | head`) instead of panicking in print.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE at start-up,
    // before any other thread exists, is the documented use of signal(2).
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    cli::main()
}
