//! [`ParallelGzEncoder`]: a deterministic, multi-threaded gzip writer in the style of pigz.
//!
//! Formats: gzip (RFC 1952) around one raw deflate stream (RFC 1951).
//!
//! The input is cut into fixed [`BLOCK_SIZE`] blocks by byte offset alone. Each block is
//! deflated on a worker thread by a freshly reset compressor primed with the 32 KiB of
//! input before it (the deflate window, so ratio barely suffers), and ends with a sync
//! flush (an empty stored block, which byte-aligns the output) so the compressed blocks
//! concatenate into one valid deflate stream. A block is cut as soon as it is full, so the
//! last block (the rest, possibly empty) is the only one finished with BFINAL. What a block
//! compresses to depends only on the input bytes, never on the number of threads or on
//! timing, so the output is identical for every thread count. The CRC-32 is computed on
//! the writer's thread over the uncompressed stream.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, Crc, FlushCompress, Status};

/// Uncompressed bytes per block (pigz uses the same).
pub const BLOCK_SIZE: usize = 128 * 1024;

/// The deflate window: how much preceding input primes each block's compressor.
const WINDOW: usize = 32 * 1024;

/// A block of input, preceded by its dictionary.
struct Job {
    seq: u64,
    /// `buf[..dict_len]` is the dictionary, `buf[dict_len..]` the block.
    buf: Vec<u8>,
    dict_len: usize,
    last: bool,
    /// A recycled vector for the output.
    out: Vec<u8>,
}

/// A compressed block.
struct Done {
    seq: u64,
    input: Vec<u8>,
    out: Vec<u8>,
}

/// A [`Write`] that gzips everything written to it on a pool of threads and writes the
/// result, in order, to an inner writer. [`finish`](Self::finish) must be called to write
/// the last block and the trailer; dropping the encoder abandons the stream.
///
/// [`flush`](Write::flush) does not end a block (that would make the output depend on
/// when callers flush); it only flushes what is already compressed.
pub struct ParallelGzEncoder<W: Write> {
    inner: W,
    level: u32,
    header_written: bool,
    crc: Crc,
    /// The dictionary and data of the block being filled.
    block: Vec<u8>,
    dict_len: usize,
    next_seq: u64,
    next_out: u64,
    in_flight: usize,
    max_in_flight: usize,
    /// Compressed blocks that finished before an earlier one.
    done: BTreeMap<u64, Vec<u8>>,
    free_in: Vec<Vec<u8>>,
    free_out: Vec<Vec<u8>>,
    results: Receiver<io::Result<Done>>,
    pool: Pool,
}

/// The worker threads; dropping it stops and joins them.
struct Pool {
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.jobs = None;
        for w in self.workers.drain(..) {
            // A panicked worker has already surfaced as a closed channel.
            let _ = w.join();
        }
    }
}

impl<W: Write> ParallelGzEncoder<W> {
    /// Returns an encoder compressing at `level` (0–9) on `threads` worker threads
    /// (at least one). The output does not depend on `threads`.
    pub fn new(inner: W, level: u32, threads: usize) -> io::Result<Self> {
        let level = level.min(9);
        let threads = threads.max(1);
        // Two blocks per worker keep every worker busy while the writer fills the next.
        let max_in_flight = 2 * threads;
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(max_in_flight);
        let (done_tx, done_rx) = mpsc::channel();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut pool = Pool {
            jobs: Some(job_tx),
            workers: Vec::with_capacity(threads),
        };
        for i in 0..threads {
            let rx = Arc::clone(&job_rx);
            let tx = done_tx.clone();
            let worker = std::thread::Builder::new()
                .name(format!("kiln-gzip-{i}"))
                .spawn(move || worker(level, &rx, &tx))?;
            pool.workers.push(worker);
        }
        Ok(Self {
            inner,
            level,
            header_written: false,
            crc: Crc::new(),
            block: Vec::with_capacity(WINDOW + BLOCK_SIZE),
            dict_len: 0,
            next_seq: 0,
            next_out: 0,
            in_flight: 0,
            max_in_flight,
            done: BTreeMap::new(),
            free_in: Vec::new(),
            free_out: Vec::new(),
            results: done_rx,
            pool,
        })
    }

    /// Compresses the last block, writes the gzip trailer and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.submit(true)?;
        while self.in_flight > 0 {
            self.receive(true)?;
        }
        self.write_header()?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.sum().to_le_bytes());
        // ISIZE is the input length modulo 2^32 (RFC 1952, 2.3.1).
        trailer[4..].copy_from_slice(&self.crc.amount().to_le_bytes());
        self.inner.write_all(&trailer)?;
        let Self { inner, pool, .. } = self;
        drop(pool);
        Ok(inner)
    }

    fn write_header(&mut self) -> io::Result<()> {
        if !self.header_written {
            // MTIME 0, no name, OS 255 ("unknown"): nothing host-dependent. XFL follows
            // RFC 1952's hint for the fastest and best levels.
            let xfl = match self.level {
                1 => 4,
                9 => 2,
                _ => 0,
            };
            self.inner
                .write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;
            self.header_written = true;
        }
        Ok(())
    }

    /// Hands the current block to the pool and starts the next one, primed with the
    /// last [`WINDOW`] bytes of input as its dictionary.
    fn submit(&mut self, last: bool) -> io::Result<()> {
        while self.in_flight >= self.max_in_flight {
            self.receive(true)?;
        }
        let mut next = self.free_in.pop().unwrap_or_default();
        next.clear();
        next.extend_from_slice(&self.block[self.block.len().saturating_sub(WINDOW)..]);
        let job = Job {
            seq: self.next_seq,
            buf: std::mem::replace(&mut self.block, next),
            dict_len: self.dict_len,
            last,
            out: self.free_out.pop().unwrap_or_default(),
        };
        self.dict_len = self.block.len();
        self.next_seq += 1;
        self.in_flight += 1;
        let jobs = self.pool.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())?;
        while self.receive(false)? {}
        Ok(())
    }

    /// Takes one compressed block (waiting for one if `wait`), writes every block that is
    /// now next in order, and returns whether a block was taken.
    fn receive(&mut self, wait: bool) -> io::Result<bool> {
        let done = if wait {
            self.results.recv().map_err(|_| stopped())?
        } else {
            match self.results.try_recv() {
                Ok(done) => done,
                Err(mpsc::TryRecvError::Empty) => return Ok(false),
                Err(mpsc::TryRecvError::Disconnected) => return Err(stopped()),
            }
        }?;
        self.in_flight -= 1;
        self.free_in.push(done.input);
        self.done.insert(done.seq, done.out);
        while let Some(out) = self.done.remove(&self.next_out) {
            self.write_header()?;
            self.inner.write_all(&out)?;
            self.free_out.push(out);
            self.next_out += 1;
        }
        Ok(true)
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = self.dict_len + BLOCK_SIZE - self.block.len();
        let n = buf.len().min(room);
        self.block.extend_from_slice(&buf[..n]);
        self.crc.update(&buf[..n]);
        if self.block.len() == self.dict_len + BLOCK_SIZE {
            self.submit(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn stopped() -> io::Error {
    io::Error::other("a gzip worker thread stopped unexpectedly")
}

fn worker(level: u32, jobs: &Mutex<Receiver<Job>>, done: &Sender<io::Result<Done>>) {
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if done.send(compress_block(level, job)).is_err() {
            return;
        }
    }
}

/// Deflates one block with a new compressor: the result depends on the block and its
/// dictionary only.
///
/// A new compressor per block, not a reused one: after `Compress::reset`, zlib-rs (as
/// zlib-ng) can still let leftover window bytes steer match selection, so a reused
/// compressor's output depends on what that worker compressed before
/// (trifectatechfoundation/zlib-rs#459, zlib-ng/zlib-ng#2100; seen here as different
/// blobs run to run). A new one starts zeroed and costs about as much as the reset.
fn compress_block(level: u32, job: Job) -> io::Result<Done> {
    let Job {
        seq,
        buf,
        dict_len,
        last,
        mut out,
    } = job;
    let mut compress = Compress::new(flate2::Compression::new(level), false);
    if dict_len > 0 {
        compress
            .set_dictionary(&buf[..dict_len])
            .map_err(io::Error::other)?;
    }
    let input = &buf[dict_len..];
    out.clear();
    // More than deflate's worst case (stored blocks), so one call normally does it all.
    out.reserve(input.len() + input.len() / 8 + 1024);
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut consumed = 0;
    loop {
        let before = compress.total_in();
        let status = compress
            .compress_vec(&input[consumed..], &mut out, flush)
            .map_err(io::Error::other)?;
        consumed += usize::try_from(compress.total_in() - before).map_err(io::Error::other)?;
        let complete = match status {
            Status::StreamEnd => true,
            // A sync flush is complete once all input is in and output space is left.
            _ => !last && consumed == input.len() && out.len() < out.capacity(),
        };
        if complete {
            break;
        }
        out.reserve(64 * 1024);
    }
    Ok(Done {
        seq,
        input: buf,
        out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mix compressible text with noise.
                if (i / 4096) % 3 == 0 {
                    (x >> 56) as u8
                } else {
                    b"kiln layer "[i % 11]
                }
            })
            .collect()
    }

    fn gzip(data: &[u8], threads: usize, chunk: usize) -> Vec<u8> {
        let mut enc = ParallelGzEncoder::new(Vec::new(), 1, threads).unwrap();
        for c in data.chunks(chunk.max(1)) {
            enc.write_all(c).unwrap();
        }
        enc.finish().unwrap()
    }

    #[test]
    fn output_is_the_same_for_every_thread_count_and_write_size() {
        let data = sample(5 * BLOCK_SIZE + 12345);
        let one = gzip(&data, 1, 1 << 20);
        for (threads, chunk) in [(2, 511), (3, 65536), (8, 1 << 20)] {
            assert_eq!(gzip(&data, threads, chunk), one, "threads={threads}");
        }
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&one[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
        assert!(one.len() < data.len() / 2, "text blocks compress");
    }

    /// Tar-like input: short zero-padded headers and text padded to 512 bytes. Runs of
    /// zeros next to text are what made a reused (reset) zlib-rs compressor emit
    /// different bytes than a new one.
    fn tar_like(len: usize) -> Vec<u8> {
        let mut x: u64 = 7;
        let mut out = Vec::with_capacity(len + 8192);
        let mut i = 0usize;
        while out.len() < len {
            let mut header = format!("docs/d{:03}/note-{i}.txt", i / 100).into_bytes();
            header.resize(512, 0);
            out.extend_from_slice(&header);
            let size = 200 + (i * 7919) % 3800;
            let start = out.len();
            while out.len() - start < size {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                out.extend_from_slice(format!("word{} ", (x >> 50) % 3000).as_bytes());
            }
            out.resize(out.len().next_multiple_of(512), 0);
            i += 1;
        }
        out.truncate(len);
        out
    }

    /// The format spelled out independently: fixed blocks, each deflated by a new
    /// compressor primed with the preceding 32 KiB, sync-flushed, the last one finished.
    fn reference_gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut out = vec![
            0x1f,
            0x8b,
            8,
            0,
            0,
            0,
            0,
            0,
            if level == 1 { 4 } else { 0 },
            255,
        ];
        // Every full block is cut as soon as it fills; the last block holds the rest
        // and may be empty.
        let count = data.len() / BLOCK_SIZE + 1;
        for i in 0..count {
            let start = i * BLOCK_SIZE;
            let block = &data[start..(start + BLOCK_SIZE).min(data.len())];
            let mut c = Compress::new(flate2::Compression::new(level), false);
            if start > 0 {
                c.set_dictionary(&data[start.saturating_sub(WINDOW)..start])
                    .unwrap();
            }
            let mut buf = Vec::with_capacity(2 * BLOCK_SIZE + 1024);
            let flush = if i + 1 == count {
                FlushCompress::Finish
            } else {
                FlushCompress::Sync
            };
            c.compress_vec(block, &mut buf, flush).unwrap();
            assert_eq!(c.total_in(), block.len() as u64);
            out.extend_from_slice(&buf);
        }
        let mut crc = Crc::new();
        crc.update(data);
        out.extend_from_slice(&crc.sum().to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    }

    #[test]
    fn output_matches_the_reference_format() {
        let data = tar_like(20 * BLOCK_SIZE + 999);
        let expected = reference_gzip(&data, 1);
        for threads in [1, 2, 3] {
            assert!(
                gzip(&data, threads, 100_000) == expected,
                "threads={threads}"
            );
        }
        let mut x = sample(3 * BLOCK_SIZE);
        x.extend(tar_like(3 * BLOCK_SIZE));
        assert!(gzip(&x, 2, 4096) == reference_gzip(&x, 1));
    }

    #[test]
    fn edge_sizes_round_trip() {
        for len in [
            0,
            1,
            BLOCK_SIZE - 1,
            BLOCK_SIZE,
            BLOCK_SIZE + 1,
            2 * BLOCK_SIZE,
        ] {
            let data = sample(len);
            let gz = gzip(&data, 2, 4096);
            let mut dec = flate2::read::MultiGzDecoder::new(&gz[..]);
            let mut back = Vec::new();
            dec.read_to_end(&mut back).unwrap();
            assert_eq!(back, data, "len={len}");
            assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0]);
            assert_eq!(&gz[4..8], &[0, 0, 0, 0], "mtime is zero");
        }
    }

    #[test]
    fn dropping_without_finish_stops_the_workers() {
        let mut enc = ParallelGzEncoder::new(Vec::new(), 1, 4).unwrap();
        enc.write_all(&sample(3 * BLOCK_SIZE)).unwrap();
        drop(enc);
    }
}
