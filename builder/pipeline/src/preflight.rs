//! The push check before a build: that the target registry answers, that it accepts the
//! credentials kiln has (or needs none), and that they may push to the repository, so a
//! build that cannot be delivered stops before its toolchain runs, saying which of the
//! three failed.

use kiln_oci::Reference;
use kiln_registry::{Client, ErrorClass, RegistryError};

/// Which part of the push check failed.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// The registry does not answer, or fails.
    #[error("`{registry}` does not answer; nothing was built")]
    Unreachable {
        /// The registry.
        registry: String,
        /// What the connection or the registry said.
        #[source]
        source: RegistryError,
    },
    /// The registry wants credentials, and kiln has none for the repository.
    #[error(
        "`{registry}` wants credentials for `{repository}`, and kiln has none; nothing was built"
    )]
    NoCredentials {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// The registry's refusal.
        #[source]
        source: RegistryError,
    },
    /// The registry refused the credentials kiln has.
    #[error("`{registry}` refused the credentials kiln has for `{repository}`; nothing was built")]
    Rejected {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// The registry's refusal.
        #[source]
        source: RegistryError,
    },
    /// The credentials (or anonymous access) may not push to the repository.
    #[error("kiln may not push to `{repository}` at `{registry}`; nothing was built")]
    Denied {
        /// The registry.
        registry: String,
        /// The repository.
        repository: String,
        /// The registry's refusal.
        #[source]
        source: RegistryError,
    },
    /// Anything else the check met (a bad certificate, a protocol error).
    #[error("checking that kiln may push to `{target}`")]
    Other {
        /// The target.
        target: Reference,
        /// Why.
        #[source]
        source: RegistryError,
    },
}

/// Checks that `client` may push to `target`'s repository (see the module docs).
pub async fn preflight(client: &Client, target: &Reference) -> Result<(), PreflightError> {
    let registry = target.registry().to_owned();
    let repository = target.repository().to_owned();
    let Err(source) = client.check_push(target).await else {
        return Ok(());
    };
    let with_credentials = client.has_credentials(target).await.unwrap_or(false);
    let unauthorized = source.status() == Some(401) || source.code() == Some("UNAUTHORIZED");
    // A token registry answers a push its token does not cover with a 401 too: credentials
    // that may read the repository (or learn that it does not exist yet) were accepted.
    let accepted = unauthorized && with_credentials && may_read(client, target).await;
    let refused_credentials = unauthorized && !accepted;
    let denied = accepted
        || matches!(source, RegistryError::InsufficientScope { .. })
        || source.status() == Some(403)
        || source.code() == Some("DENIED");
    Err(match source.class() {
        ErrorClass::Transient => PreflightError::Unreachable { registry, source },
        _ if (refused_credentials || denied) && !with_credentials => {
            PreflightError::NoCredentials {
                registry,
                repository,
                source,
            }
        }
        _ if refused_credentials => PreflightError::Rejected {
            registry,
            repository,
            source,
        },
        _ if denied => PreflightError::Denied {
            registry,
            repository,
            source,
        },
        _ => PreflightError::Other {
            target: target.clone(),
            source,
        },
    })
}

/// Returns whether `client`'s credentials are accepted for reading `target`'s repository:
/// its tags list answers, or says the repository does not exist yet.
async fn may_read(client: &Client, target: &Reference) -> bool {
    match client.list_tags(target).await {
        Ok(_) => true,
        Err(e) => e.status() == Some(404),
    }
}
