//! The [`Client`] handle and its shared state.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use url::Url;

use crate::auth::AuthState;
use crate::request::Target;
use crate::tls::Transports;
use crate::{RegistryError, RegistrySettings};

/// An OCI distribution client. Cheap to clone: clones share connections, the credentials
/// looked up and the bearer tokens obtained (cached per host and scope until they expire).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

/// The state every clone of a [`Client`] shares.
pub(crate) struct Inner {
    pub(crate) settings: RegistrySettings,
    pub(crate) transports: Transports,
    /// `http` or `https` per host[:port], decided once per loopback/insecure host.
    pub(crate) schemes: Mutex<HashMap<String, &'static str>>,
    pub(crate) auth: AuthState,
    /// `(target registry/repository, source repository)` pairs whose mount a registry
    /// refused with a 4xx: not asked again by this client (RELIABILITY.md R09).
    pub(crate) mounts_refused: Mutex<HashSet<(String, String)>>,
    /// Upload sessions open right now, by a number of their own: where each goes next and
    /// for whom (see [`Client::abort_uploads`]).
    pub(crate) uploads: Mutex<HashMap<u64, (Target, Url)>>,
    /// The number of the next upload session.
    pub(crate) next_upload: AtomicU64,
}

impl Client {
    /// Returns a client for `settings`, failing if a CA file cannot be loaded.
    pub fn new(settings: RegistrySettings) -> Result<Self, RegistryError> {
        let transports = Transports::new(&settings)?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                transports,
                schemes: Mutex::new(HashMap::new()),
                auth: AuthState::default(),
                mounts_refused: Mutex::new(HashSet::new()),
                uploads: Mutex::new(HashMap::new()),
                next_upload: AtomicU64::new(0),
            }),
        })
    }

    /// Returns the settings this client was made with.
    pub fn settings(&self) -> &RegistrySettings {
        &self.inner.settings
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Credentials and tokens live in `auth` and are deliberately not shown.
        f.debug_struct("Client")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use kiln_oci::{Digest, Reference};

    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[tokio::test]
    async fn futures_are_send_and_debug_is_plain() {
        let c = Client::new(RegistrySettings::default()).unwrap();
        let r: Reference = "127.0.0.1:1/app".parse().unwrap();
        let d = Digest::of(b"");
        let p = std::path::Path::new("/nonexistent");
        assert_send(&c.blob_exists(&r, &d));
        assert_send(&c.push_blob(&r, &d, 0, p, Some("base"), &|_| {}));
        assert_send(&c.mount_blob(&r, &d, "base"));
        assert_send(&c.push_manifest(&r, "v1", "x", b""));
        assert_send(&c.get_manifest(&r, "v1"));
        assert_send(&c.get_blob_to_file(&r, &d, None, p));
        assert_send(&c.get_blob_bytes(&r, &d, 1));
        assert_send(&crate::login(c.settings(), "h", "u", "p"));
        assert!(format!("{c:?}").starts_with("Client { settings: RegistrySettings"));
    }
}
