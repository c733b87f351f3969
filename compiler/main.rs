//! The `podc` binary: parse the command line, run it, exit with its status.
//! An internal error (a panic) exits with status 2, like other errors that are not the input's.

use clap::FromArgMatches;

fn main() {
    // The command line with each command's examples and exit statuses in `--help`.
    let matches = podc::cli::man::command().get_matches();
    let cli = podc::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let exit = std::panic::catch_unwind(|| podc::cli::run(cli)).unwrap_or(podc::cli::Exit::Usage);
    std::process::exit(exit as i32);
}

/// mimalloc: a sixth of a build was glibc malloc and free (many small strings); mimalloc does
/// the same work in about a third of the instructions.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
