//! Bytes from a blocking writer handed to the response body in chunks
//! through a bounded channel: a slow client slows the query down instead of
//! filling memory, and a client that goes away stops it (BrokenPipe).

use axum::body::Bytes;

pub(crate) type Chunk = Result<Bytes, std::io::Error>;

/// Bytes per chunk: big enough that the channel and the body's writes cost
/// little per row at a million rows a second, small enough that the channel
/// (8 chunks) holds a few MB.
const CHUNK: usize = 256 * 1024;

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

    /// The buffer the text formats write rows into; [`Self::row_done`]
    /// sends it once full.
    pub(crate) fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Sends the buffer if it holds a chunk's worth.
    pub(crate) fn row_done(&mut self) -> std::io::Result<()> {
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(())
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
        self.row_done()?;
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
