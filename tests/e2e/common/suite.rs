//! What the whole e2e run shares: a directory of its own under the target dir, one podman
//! store (in a temp dir), and the timings of tests and fixtures that `main` prints as a table at the end.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kiln_e2e::Podman;

static RUN_DIR: OnceLock<PathBuf> = OnceLock::new();
static PODMAN: OnceLock<Podman> = OnceLock::new();

/// Returns this run's directory, `<target>/e2e-run/<pid>`, removed by [`teardown`]. The
/// first call removes the directories of runs that have exited without their teardown (a
/// killed run), so disk use stays at one run's worth.
pub fn run_dir() -> &'static Path {
    RUN_DIR.get_or_init(|| {
        let root = kiln_e2e::target_dir().join("e2e-run");
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let pid = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok());
            if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).expect("creating the e2e run dir");
        dir
    })
}

/// Returns the suite's podman: one store for every test, so an image's layers (a base
/// under many apps) are pulled and unpacked once per run. Containers are the tests' own
/// ([`kiln_e2e::RunningContainer`] removes each); [`teardown`] removes the store. It lives
/// in a temp dir (`kiln-e2e-*`), not in the run dir: podman refuses a run root longer than
/// 50 characters, and the target dir of a clone may be anywhere.
pub fn podman() -> &'static Podman {
    PODMAN.get_or_init(|| Podman::at(&kiln_e2e::Workspace::new().keep()))
}

/// When the run started, for the start offsets of [`record`].
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Marks the start of the run (the first call wins); offsets in the table count from it.
pub fn start_clock() {
    EPOCH.get_or_init(Instant::now);
}

/// One line of the timing table: what, when it started (from [`start_clock`]), how long.
#[derive(Clone, Debug)]
pub struct Timing {
    /// A test's name, or `fixture: …` / `<test>: <part>`.
    pub what: String,
    /// When it started, from the start of the run.
    pub started: Duration,
    /// How long it took.
    pub took: Duration,
}

/// What took how long: tests (by `main`), suite fixtures, and parts of long tests.
static TIMINGS: Mutex<Vec<Timing>> = Mutex::new(Vec::new());

/// Records that `what`, started at `start`, ends now; for the table at the end of the run.
pub fn record(what: impl Into<String>, start: Instant) {
    let epoch = *EPOCH.get_or_init(|| start);
    TIMINGS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Timing {
            what: what.into(),
            started: start.saturating_duration_since(epoch),
            took: start.elapsed(),
        });
}

/// Runs `f`, records its time under `what`, and returns what it returned.
pub fn timed<T>(what: impl Into<String>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    record(what, start);
    out
}

/// Returns everything recorded so far.
pub fn timings() -> Vec<Timing> {
    TIMINGS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Removes what the run shared: the podman store's containers, then the store and this
/// run's directory (kept when `KILN_E2E_KEEP` is set, for looking at a failure).
pub fn teardown() {
    let keep = std::env::var_os("KILN_E2E_KEEP").is_some();
    let podman = PODMAN.get().map(|p| {
        p.remove_all();
        p.dir()
    });
    for dir in podman
        .into_iter()
        .chain(RUN_DIR.get().map(PathBuf::as_path))
    {
        if keep {
            eprintln!("KILN_E2E_KEEP: kept `{}`", dir.display());
        } else {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
