//! Request bodies that can be rebuilt: a retry, a redirect or a resend after a 401 opens
//! the file again, so a layer is streamed from disk every time and never held in memory.

use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt as _;
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio_util::io::ReaderStream;

/// The read size for file bodies.
const READ_CHUNK: usize = 256 * 1024;

/// What a request sends.
#[derive(Default)]
pub(crate) enum Payload {
    /// Nothing.
    #[default]
    Empty,
    /// Bytes in memory (manifests, token requests).
    Bytes(Bytes),
    /// `len` bytes of `path` from `offset`; `progress` receives `offset` + bytes sent.
    File {
        /// The file.
        path: PathBuf,
        /// Where to start.
        offset: u64,
        /// How many bytes.
        len: u64,
        /// Where to report bytes sent so far.
        progress: Option<UnboundedSender<u64>>,
    },
}

impl Payload {
    /// Returns a fresh body and its length, or `None` for no body.
    pub(crate) async fn body(&self) -> std::io::Result<Option<(reqwest::Body, u64)>> {
        match self {
            Self::Empty => Ok(None),
            Self::Bytes(b) => Ok(Some((reqwest::Body::from(b.clone()), b.len() as u64))),
            Self::File {
                path,
                offset,
                len,
                progress,
            } => {
                let mut file = tokio::fs::File::open(path).await?;
                file.seek(SeekFrom::Start(*offset)).await?;
                let mut sent = *offset;
                let progress = progress.clone();
                let stream =
                    ReaderStream::with_capacity(file.take(*len), READ_CHUNK).map(move |chunk| {
                        if let (Ok(c), Some(p)) = (&chunk, &progress) {
                            sent += c.len() as u64;
                            let _ = p.send(sent);
                        }
                        chunk
                    });
                Ok(Some((reqwest::Body::wrap_stream(stream), *len)))
            }
        }
    }
}

/// Drives `fut` to completion while passing every count from `rx` to `progress`.
pub(crate) async fn with_progress<F: Future>(
    fut: F,
    mut rx: UnboundedReceiver<u64>,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    loop {
        tokio::select! {
            out = &mut fut => {
                while let Ok(n) = rx.try_recv() {
                    progress(n);
                }
                return out;
            }
            Some(n) = rx.recv() => progress(n),
        }
    }
}
