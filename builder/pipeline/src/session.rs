//! What every command that reads or writes images sets up first, once: an async runtime,
//! a registry client (and one for Debian mirrors), and kiln's local store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kiln_image::Blobs;
use kiln_layer::{BlobStore, FileLock, LayerError};
use kiln_registry::{Client, RegistryError, RegistrySettings};
use tokio::runtime::Runtime;

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The async runtime did not start (the machine is out of threads or file descriptors).
    #[error("starting the async runtime")]
    Runtime(#[source] std::io::Error),
    /// The registry settings are unusable (a CA file that does not parse, ...).
    #[error(transparent)]
    Client(#[from] RegistryError),
    /// The HTTP client for Debian mirrors could not be built (no TLS roots).
    #[error("building the HTTP client for Debian mirrors")]
    Mirror(#[source] reqwest::Error),
    /// kiln's local store could not be opened or created.
    #[error(transparent)]
    Store(#[from] LayerError),
}

/// A runtime, a registry client and an HTTP client for Debian mirrors, shared by every
/// phase of one command.
pub struct Session {
    runtime: Runtime,
    client: Client,
    http: std::sync::OnceLock<reqwest::Client>,
}

impl Session {
    /// Starts a multi-threaded runtime and a client with `settings`.
    pub fn open(settings: RegistrySettings) -> Result<Self, SessionError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(SessionError::Runtime)?;
        let client = Client::new(settings)?;
        Ok(Self {
            runtime,
            client,
            http: std::sync::OnceLock::new(),
        })
    }

    /// Returns the HTTP client for Debian mirrors, built on first use: loading the system's
    /// TLS roots costs milliseconds that commands which never fetch a `.deb` (a rebase, a
    /// push) do not pay.
    pub fn http(&self) -> Result<&reqwest::Client, SessionError> {
        if let Some(http) = self.http.get() {
            return Ok(http);
        }
        let http = reqwest::Client::builder()
            .user_agent(format!("kiln/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(SessionError::Mirror)?;
        Ok(self.http.get_or_init(|| http))
    }

    /// Returns the registry client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Returns the async runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Runs `future` to completion on the session's runtime (from a thread that is not
    /// itself driving a runtime).
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Opens (or creates) kiln's local store under `cache_dir`, its blobs fetched through
    /// this session's client when only a registry has them.
    pub fn store(&self, cache_dir: &Path) -> Result<Store, SessionError> {
        Store::open(cache_dir, Some(self.client.clone()))
    }
}

/// kiln's local store: an OCI image layout (`<cache dir>/oci`) whose blob directory is also
/// the content-addressed store every phase writes layers into.
///
/// While a `Store` (or a clone) lives, this process holds a shared lock on the cache dir
/// ([`IN_USE_LOCK`]): `kiln cache prune` waits for it, so it never removes what a build is
/// in the middle of writing.
#[derive(Clone)]
pub struct Store {
    dir: PathBuf,
    blobs: Blobs,
    _in_use: Arc<FileLock>,
}

/// The lock file in a cache dir that every process using it holds shared, and
/// `kiln cache prune` exclusively.
pub const IN_USE_LOCK: &str = "in-use.lock";

impl Store {
    /// Opens (or creates) the store under `cache_dir`; `client` fetches blobs only a
    /// registry has. Waits while the cache dir is being pruned.
    pub fn open(cache_dir: &Path, client: Option<Client>) -> Result<Self, SessionError> {
        let in_use = FileLock::shared(&cache_dir.join(IN_USE_LOCK)).map_err(|source| {
            SessionError::Store(LayerError::Store {
                path: cache_dir.join(IN_USE_LOCK),
                source,
            })
        })?;
        let dir = cache_dir.join("oci");
        let store = BlobStore::open(&dir)?;
        Ok(Self {
            dir,
            blobs: Blobs::new(store, client),
            _in_use: Arc::new(in_use),
        })
    }

    /// Returns the layout directory (`<cache dir>/oci`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the blobs, resolved locally or fetched.
    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Returns the directories the store writes temporary files into (a process that is
    /// interrupted cleans these).
    pub fn temp_dirs(&self) -> [PathBuf; 2] {
        [
            self.blobs.store().blob_dir().to_path_buf(),
            self.dir.clone(),
        ]
    }
}
