//! `kiln completions SHELL`: a completion script for bash, zsh, fish, elvish or PowerShell,
//! generated from the same clap definitions as the parser, so it never drifts from it.

use std::io::Write as _;

use anyhow::Context as _;
use clap::CommandFactory as _;

use crate::args::{Cli, CompletionsArgs};
use crate::failure::Failure;

/// Prints the completion script of `args.shell` on standard output.
pub fn run(args: &CompletionsArgs) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "kiln", &mut script);
    match std::io::stdout().write_all(&script) {
        // A reader that stopped early (`| head`) wanted no more.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other.context("writing the completion script")?),
    }
}
