//! A user's transcripts as one ZIP, written while it is sent.
//!
//! The archive is produced on a blocking thread into a [`ChannelWriter`]
//! whose chunks go through a bounded channel to the response body, so memory
//! stays at a few buffers whatever the total size, and a client that goes
//! away stops the work at the next chunk. Entries use data descriptors (the
//! stream is never rewound) and deflate.

use std::io::Write;

use bytes::Bytes;
use tokio::sync::mpsc::Sender;

use super::paths::DirFile;

/// Bytes buffered before a chunk is handed to the body.
const CHUNK: usize = 64 * 1024;

/// `Write` into a bounded channel of body chunks.
pub struct ChannelWriter {
    tx: Sender<Bytes>,
    buf: Vec<u8>,
    /// Bytes handed on so far.
    pub sent: u64,
}

impl ChannelWriter {
    pub fn new(tx: Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            sent: 0,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.sent += chunk.len() as u64;
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// What went into an archive.
#[derive(Debug, Default, Clone, Copy)]
pub struct Written {
    pub file_count: u64,
    /// Uncompressed bytes of the transcripts.
    pub total_bytes: u64,
}

/// Writes `files` (already through the path guard) as a ZIP into `out`. A
/// file that disappeared since it was listed is left out.
pub fn write_zip<W: Write>(files: &[DirFile], out: W) -> std::io::Result<Written> {
    let mut zip = ::zip::ZipWriter::new_stream(out);
    let options = ::zip::write::SimpleFileOptions::default()
        .compression_method(::zip::CompressionMethod::Deflated)
        // Level 1: transcripts still shrink several-fold, at a few times the
        // speed of the default level on a busy 2-core server.
        .compression_level(Some(1))
        .large_file(true);
    let mut written = Written::default();
    for f in files {
        let Ok(mut src) = std::fs::File::open(&f.path) else {
            continue;
        };
        zip.start_file(f.name.as_str(), options)
            .map_err(std::io::Error::other)?;
        written.total_bytes += std::io::copy(&mut src, &mut zip)?;
        written.file_count += 1;
    }
    let mut inner = zip.finish().map_err(std::io::Error::other)?;
    inner.flush()?;
    Ok(written)
}
