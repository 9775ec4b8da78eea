//! `kiln completions SHELL` and `kiln man`: a completion script for bash, zsh, fish, elvish
//! or PowerShell, and the man page, generated from the same clap definitions as the
//! parser, so they never drift from it.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::args::{Cli, CompletionsArgs};
use crate::failure::Failure;

/// Prints the completion script of `args.shell` on standard output.
pub fn run(args: &CompletionsArgs) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "kiln", &mut script);
    print(&script)
}

/// Prints the man page (roff) on standard output.
pub fn man() -> Result<(), Failure> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("rendering the man page")?;
    print(&page)
}

/// Writes `bytes` to standard output.
fn print(bytes: &[u8]) -> Result<(), Failure> {
    match std::io::stdout().write_all(bytes) {
        // A reader that stopped early (`| head`) wanted no more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("writing the completion script")?),
    }
}
