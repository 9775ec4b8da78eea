//! `kiln login`: check credentials against the registry and store them like `docker login`;
//! `kiln logout`: remove them.

use std::io::Read;

use anyhow::{Context, anyhow};

use crate::args::{LoginArgs, LogoutArgs};
use crate::failure::{Failure, exit};
use crate::settings::Environment;

/// Runs `kiln login`.
pub fn run(args: &LoginArgs, env: &Environment) -> Result<(), Failure> {
    if !args.password_stdin {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("`kiln login` reads the password from standard input only"),
        )
        .hint(Some(format!(
            "echo \"$PASSWORD\" | kiln login {} -u {} --password-stdin",
            args.registry, args.username
        ))));
    }
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .context("reading the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(Failure::new(
            exit::USAGE,
            anyhow!("the password on standard input is empty"),
        ));
    }
    let settings = env
        .registry_settings(&args.registry_args)
        .map_err(|e| Failure::new(exit::USAGE, e))?;
    let session = kiln_pipeline::Session::open(settings.clone())
        .map_err(|e| crate::errors::session_failure(e, exit::FAILURE))?;
    session
        .block_on(kiln_registry::login(
            &settings,
            &args.registry,
            &args.username,
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
