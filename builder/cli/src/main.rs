//! The `kiln` binary: parses flags, resolves settings, runs a subcommand, renders errors and
//! exits with the documented code (see [`failure::exit`]).

mod args;
mod base;
mod build;
mod completions;
mod errors;
mod failure;
mod image_config;
mod images;
mod inspect;
mod keys;
mod login;
mod output;
mod podman;
mod rebase;
mod report;
mod session;
mod settings;
mod sign;
mod signals;
mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{CacheCommand, Cli, Command, KeyCommand};
use crate::output::{Ui, Verbosity};
use crate::settings::Environment;

fn main() -> ExitCode {
    // kiln started as the build sandbox's launcher: confine this process, become the step.
    let mut args = std::env::args_os();
    if args
        .nth(1)
        .is_some_and(|a| a == kiln_lifecycle::SANDBOX_EXEC_ARG)
    {
        eprintln!("{}", kiln_lifecycle::confine_and_exec(args));
        return ExitCode::from(127);
    }
    let cli = Cli::parse();
    signals::install();
    let env = Environment::capture();
    output::configure(env.output_style(cli.color, cli.log_format));
    let ui = Ui::new(verbosity(&cli.command));
    let result = match &cli.command {
        Command::Build(args) => {
            if args.verbose {
                tracing_subscriber::fmt()
                    .with_writer(std::io::stderr)
                    .with_env_filter("kiln=debug,kiln_registry=debug,kiln_image=debug")
                    .init();
            }
            build::run(args, &env, &ui)
        }
        Command::Rebase(args) => rebase::run(args, &env, &ui),
        Command::Login(args) => login::run(args, &env),
        Command::Logout(args) => login::logout(args, &env),
        Command::Completions(args) => completions::run(args),
        Command::Man => completions::man(),
        Command::Base(cmd) => base::run(cmd, &env, &ui),
        Command::Sign(args) => sign::run_sign(args, &env),
        Command::Verify(args) => sign::run_verify(args, &env),
        Command::Inspect(args) => inspect::run(args, &env),
        Command::Key(KeyCommand::Generate(args)) => keys::generate(args, &env),
        Command::Images(args) => images::images(args, &env),
        Command::Rm(args) => images::rm(args, &env),
        Command::Cache(CacheCommand::Du(args)) => images::du(args, &env),
        Command::Cache(CacheCommand::Prune(args)) => images::prune(args, &env, &ui),
    };
    ui.finish(result.is_err());
    match result {
        Ok(()) => ExitCode::from(failure::exit::OK),
        Err(f) => {
            let f = f.classified();
            match output::style().json {
                true => eprintln!("{}", f.to_json()),
                false => eprint!("{}", f.render()),
            }
            ExitCode::from(f.code)
        }
    }
}

/// Returns how much the command prints: `-q` and `-v` where it has them.
fn verbosity(command: &Command) -> Verbosity {
    match command {
        Command::Build(args) if args.quiet => Verbosity::Quiet,
        Command::Build(args) if args.verbose => Verbosity::Verbose,
        Command::Rebase(args) if args.quiet => Verbosity::Quiet,
        _ => Verbosity::Normal,
    }
}
