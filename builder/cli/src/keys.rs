//! Signing keys: `kiln key generate`, and reading keys for `kiln sign`, `kiln verify`,
//! `kiln inspect` and `--sign-key`. Passwords come from a file or the environment, never
//! from a flag's value (command lines are visible to every user of the machine).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::anyhow;
use kiln_attest::sign::{PrivateKey, PublicKey, SignError};

use crate::args::{KeyGenerateArgs, KeyPasswordArgs, SupplyArgs};
use crate::failure::{Failure, exit};
use crate::settings::Environment;

const PASSWORD_HINT: &str = "give the password in `KILN_KEY_PASSWORD` (or `COSIGN_PASSWORD`), or `--key-password-file FILE`";

/// Runs `kiln key generate`.
pub fn generate(args: &KeyGenerateArgs, env: &Environment) -> Result<(), Failure> {
    let password = password(&args.password, env)?;
    let key = PrivateKey::generate();
    let private_pem = key
        .to_pem(password.as_deref())
        .map_err(|e| Failure::new(exit::FAILURE, e))?;
    let public_pem = key.public_key().to_pem();
    let prefix = args.output_prefix.display().to_string();
    let (private_path, public_path) = (
        PathBuf::from(format!("{prefix}.key")),
        PathBuf::from(format!("{prefix}.pub")),
    );
    for path in [&private_path, &public_path] {
        if path.exists() && !args.force {
            return Err(Failure::new(
                exit::USAGE,
                anyhow!("`{}` exists; kiln does not overwrite keys", path.display()),
            )
            .hint(Some("pass `--force`, or another `--output-prefix`".into())));
        }
    }
    write_private(&private_path, private_pem.as_bytes())?;
    std::fs::write(&public_path, public_pem).map_err(|e| {
        Failure::new(
            exit::FAILURE,
            anyhow!("writing `{}`: {e}", public_path.display()),
        )
    })?;
    if password.is_none() {
        eprintln!(
            "warning: `{}` is not encrypted; {PASSWORD_HINT} to encrypt it",
            private_path.display()
        );
    }
    println!("{}", private_path.display());
    println!("{}", public_path.display());
    Ok(())
}

/// Reads the `--sign-key`, if any.
pub fn signing_key(args: &SupplyArgs, env: &Environment) -> Result<Option<PrivateKey>, Failure> {
    args.sign_key
        .as_deref()
        .map(|path| load_private(path, &args.password, env))
        .transpose()
}

/// Reads the private key at `path`, decrypting it with the password `args` or the
/// environment give.
pub fn load_private(
    path: &Path,
    args: &KeyPasswordArgs,
    env: &Environment,
) -> Result<PrivateKey, Failure> {
    let pem = std::fs::read(path).map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow!("reading the signing key `{}`: {e}", path.display()),
        )
    })?;
    let password = password(args, env)?;
    PrivateKey::from_pem(&pem, password.as_deref()).map_err(|e| {
        let hint = match e {
            SignError::PasswordNeeded { .. } | SignError::WrongPassword => {
                Some(PASSWORD_HINT.into())
            }
            _ => Some("kiln reads cosign's keys and PKCS#8 / SEC1 PEM EC P-256 keys".into()),
        };
        Failure::new(
            exit::USAGE,
            anyhow!(e).context(format!("reading the signing key `{}`", path.display())),
        )
        .hint(hint)
    })
}

/// Reads the public key at `path`.
pub fn load_public(path: &Path) -> Result<PublicKey, Failure> {
    let pem = std::fs::read(path).map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow!("reading the public key `{}`: {e}", path.display()),
        )
    })?;
    PublicKey::from_pem(&pem).map_err(|e| {
        Failure::new(
            exit::USAGE,
            anyhow!(e).context(format!("reading the public key `{}`", path.display())),
        )
        .hint(Some(
            "pass the `.pub` file `kiln key generate` or `cosign generate-key-pair` wrote".into(),
        ))
    })
}

fn password(args: &KeyPasswordArgs, env: &Environment) -> Result<Option<Vec<u8>>, Failure> {
    env.key_password(args.key_password_file.as_deref())
        .map_err(|e| Failure::new(exit::USAGE, e))
}

/// Writes a private key readable by its owner only.
fn write_private(path: &Path, pem: &[u8]) -> Result<(), Failure> {
    let fail = |e: std::io::Error| {
        Failure::new(
            exit::FAILURE,
            anyhow!("writing the private key `{}`: {e}", path.display()),
        )
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(pem).map_err(fail)
}
