//! `kiln sign` and `kiln verify`: cosign-compatible image signatures, made and checked by
//! [`kiln_pipeline::Signature`] and [`kiln_pipeline::signatures`].

use anyhow::anyhow;
use kiln_pipeline::{FoundSignature, Signature, resolve, signatures};

use crate::args::{SignArgs, VerifyArgs};
use crate::failure::{Failure, exit};
use crate::keys::{load_private, load_public};
use crate::session::{open, parse_image};
use crate::settings::Environment;

/// Runs `kiln sign`.
pub fn run_sign(args: &SignArgs, env: &Environment) -> Result<(), Failure> {
    let key = load_private(&args.key, &args.password, env)?;
    let reference = parse_image(&args.image)?;
    let session = open(env, &args.registry)?;
    let client = session.client();
    let (digest, attached) = session.block_on(async {
        let digest = resolve(client, &reference).await?;
        let signature = Signature::new(&reference, &digest, &key);
        let attached = signature.push(client, &reference, async { Ok(()) }).await?;
        anyhow::Ok((digest, attached))
    })?;
    println!("{}@{digest} signed ({})", reference.name(), attached.tag);
    Ok(())
}

/// Runs `kiln verify`: exit 0 when a signature made with the key names this image's
/// digest and repository, else exit 1.
pub fn run_verify(args: &VerifyArgs, env: &Environment) -> Result<(), Failure> {
    let key = load_public(&args.key)?;
    let reference = parse_image(&args.image)?;
    let session = open(env, &args.registry)?;
    let client = session.client();
    let (digest, found) = session.block_on(async {
        let digest = resolve(client, &reference).await?;
        let found = signatures(client, &reference, &digest, Some(&key)).await?;
        anyhow::Ok((digest, found))
    })?;
    let good: Vec<&FoundSignature> = found.iter().filter(|f| f.vouches_for(&reference)).collect();
    if good.is_empty() {
        let why = if found.is_empty() {
            "it has no signatures".to_string()
        } else {
            format!(
                "none of its {} signatures was made with this key for this image",
                found.len()
            )
        };
        return Err(Failure::new(
            exit::FAILURE,
            anyhow!("`{}@{digest}` is not verified: {why}", reference.name()),
        )
        .hint(Some(format!(
            "sign it: kiln sign {} --key KEY",
            reference.name()
        ))));
    }
    for f in good {
        println!(
            "{}@{digest}: verified signature for `{}` with key {}",
            reference.name(),
            f.docker_reference,
            &key.key_id()[..16]
        );
    }
    Ok(())
}
