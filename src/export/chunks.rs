//! Bytes from a blocking writer handed to the response body in chunks
//! through a bounded channel: a slow client slows the query down instead of
//! filling memory, and a client that goes away stops it (BrokenPipe).

use axum::body::Bytes;

pub(crate) type Chunk = Result<Bytes, std::io::Error>;

const CHUNK: usize = 64 * 1024;

pub(crate) struct ChunkSender {
    buf: Vec<u8>,
    tx: tokio::sync::mpsc::Sender<Chunk>,
}

impl ChunkSender {
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<Chunk>) -> ChunkSender {
        ChunkSender {
            buf: Vec::with_capacity(CHUNK + 4096),
            tx,
        }
    }

    /// Sends what is buffered.
    pub(crate) fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(CHUNK + 4096),
        ));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away")
        })
    }
}

impl std::io::Write for ChunkSender {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
