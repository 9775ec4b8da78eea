//! Interrupts (SIGINT, SIGTERM) in the middle of a run (RELIABILITY.md C06): the uploads in
//! flight are cancelled at their registries (a `DELETE` on each open session), this
//! process's temp files are removed from the cache dirs it writes, and kiln exits 130 (or
//! 143). Tags are untouched: kiln moves a tag only after everything it names is pushed.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use kiln_registry::Client;

/// How long cancelling the uploads may take before kiln exits anyway.
const CANCEL_BUDGET: Duration = Duration::from_secs(5);

/// What an interrupt cleans up: clients whose uploads to cancel, dirs to sweep.
static WATCHED: Mutex<(Vec<Client>, Vec<PathBuf>)> = Mutex::new((Vec::new(), Vec::new()));

/// Starts the thread that waits for SIGINT and SIGTERM. Without it the default action (an
/// immediate exit) applies, which leaves upload sessions and temp files behind.
pub fn install() {
    let spawned = std::thread::Builder::new()
        .name("kiln-signals".into())
        .spawn(wait_and_clean_up);
    if let Err(e) = spawned {
        tracing::debug!(error = %e, "no signal thread; an interrupt exits at once");
    }
}

/// Cancels `client`'s uploads and sweeps `dirs` (the blob store, the cache dir) of this
/// process's temp files if kiln is interrupted.
pub fn watch(client: &Client, dirs: impl IntoIterator<Item = PathBuf>) {
    let mut watched = WATCHED.lock().unwrap_or_else(|e| e.into_inner());
    watched.0.push(client.clone());
    watched.1.extend(dirs);
}

fn wait_and_clean_up() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let code = runtime.block_on(async {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return None;
        };
        tokio::select! {
            _ = int.recv() => Some(130),
            _ = term.recv() => Some(143),
        }
    });
    let Some(code) = code else { return };
    eprintln!("\nkiln: interrupted: cancelling the uploads in flight and removing temp files");
    let (clients, dirs) = std::mem::take(&mut *WATCHED.lock().unwrap_or_else(|e| e.into_inner()));
    runtime.block_on(async {
        let cancels = clients.iter().map(Client::abort_uploads);
        let all = futures_util::future::join_all(cancels);
        let _ = tokio::time::timeout(CANCEL_BUDGET, all).await;
    });
    for dir in &dirs {
        kiln_layer::remove_own_temp_files(dir);
    }
    std::process::exit(code);
}
