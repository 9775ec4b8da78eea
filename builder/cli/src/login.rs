//! `kiln login`: check credentials against the registry and store them like `docker login`;
//! `kiln logout`: remove them.

use std::io::{IsTerminal, Read};

use anyhow::{Context, anyhow};

use crate::args::{LoginArgs, LogoutArgs};
use crate::failure::{Failure, exit};
use crate::settings::Environment;

/// Runs `kiln login`.
pub fn run(args: &LoginArgs, env: &Environment) -> Result<(), Failure> {
    let terminal = std::io::stdin().is_terminal();
    let username = match (&args.username, terminal) {
        (Some(user), _) => user.clone(),
        (None, true) => prompt_username()?,
        (None, false) => {
            return Err(
                Failure::new(exit::USAGE, anyhow!("no user name to log in as")).hint(Some(
                    format!("name it: kiln login {} -u USER", args.registry),
                )),
            );
        }
    };
    let password = match (args.password_stdin, terminal) {
        (true, _) => read_stdin()?,
        (false, true) => rpassword::prompt_password("Password: ")
            .context("reading the password from the terminal")?,
        (false, false) => {
            return Err(Failure::new(
                exit::USAGE,
                anyhow!(
                    "`kiln login` without a terminal reads the password from standard input only"
                ),
            )
            .hint(Some(format!(
                "echo \"$PASSWORD\" | kiln login {} -u {username} --password-stdin",
                args.registry
            ))));
        }
    };
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Failure::new(exit::USAGE, anyhow!("the password is empty")));
    }
    check_and_store(args, &username, password, env)
}

/// Asks for the user name on the terminal.
fn prompt_username() -> Result<String, Failure> {
    eprint!("Username: ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("reading the user name from the terminal")?;
    let user = line.trim().to_owned();
    if user.is_empty() {
        return Err(Failure::new(exit::USAGE, anyhow!("the user name is empty")));
    }
    Ok(user)
}

/// Reads the password from standard input (`--password-stdin`).
fn read_stdin() -> Result<String, Failure> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    Ok(password)
}

/// Checks the credentials against the registry, then stores them.
fn check_and_store(
    args: &LoginArgs,
    username: &str,
    password: &str,
    env: &Environment,
) -> Result<(), Failure> {
    let settings = env
        .registry_settings(&args.registry_args)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let session = kiln_pipeline::Session::open(settings.clone())
        .map_err(|e| crate::errors::session_failure(e, exit::FAILURE))?;
    session
        .block_on(kiln_registry::login(
            &settings,
            &args.registry,
            username,
            password,
        ))
        .map_err(|e| {
            let hint = crate::errors::registry_hint(&e);
            Failure::new(
                exit::FAILURE,
                anyhow!(e).context(format!("logging in to `{}`", args.registry)),
            )
            .hint(hint)
        })?;
    eprintln!("Login Succeeded");
    Ok(())
}

/// Runs `kiln logout`.
pub fn logout(args: &LogoutArgs, env: &Environment) -> Result<(), Failure> {
    let settings = env
        .registry_settings(&args.registry_args)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let session = kiln_pipeline::Session::open(settings.clone())
        .map_err(|e| crate::errors::session_failure(e, exit::FAILURE))?;
    let removed = session
        .block_on(kiln_registry::logout(&settings, &args.registry))
        .map_err(|e| {
            let hint = crate::errors::registry_hint(&e);
            Failure::new(
                exit::FAILURE,
                anyhow!(e).context(format!("logging out of `{}`", args.registry)),
            )
            .hint(hint)
        })?;
    match removed {
        true => eprintln!("Removed login credentials for {}", args.registry),
        false => eprintln!("Not logged in to {}", args.registry),
    }
    Ok(())
}
