//! The query and the writer on two threads: DuckDB reads the next rows while
//! the writer renders these. On one thread the two took turns and one of the
//! two cores sat about a third idle through an export (`top -H`: the
//! export's thread at ~95 %, everything else ~60 % of a core).
//!
//! The queue between them is bounded by rows, not batches: the telemetry
//! export reads a whole slice (up to 64 k rows, [`crate::repo::telemetry`])
//! before handing any of it on, so a queue of a few batches let DuckDB run
//! ahead by a few thousand rows only and the two still took turns. With room
//! for more than a slice, DuckDB reads slice n + 1 while slice n is written.
//! Written batches go back to the query's thread to be freed there: freed on
//! the writer's thread, glibc's arenas grew (an earlier try: +435 MB of RSS
//! instead of ~+315 MB).

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};

use duckdb::arrow::datatypes::SchemaRef;
use duckdb::arrow::record_batch::RecordBatch;

use crate::repo::sql::BatchSink;

/// Rows queued for the writer at most: more than a telemetry slice (64 k
/// rows, ~25 MB of Arrow arrays), few enough that an export stays under
/// SPEC §10's 400 MB of growth.
const ROWS_IN_FLIGHT: u64 = 80 * 1024;

enum Message {
    Schema(SchemaRef),
    Batch(RecordBatch),
}

/// Rows handed on and not yet written; `closed` once the writer has stopped.
#[derive(Default)]
struct Gate {
    state: Mutex<(u64, bool)>,
    drained: Condvar,
}

impl Gate {
    /// Waits until `rows` more fit (or the queue is empty: a batch larger
    /// than the bound still goes). False when the writer has stopped.
    fn enter(&self, rows: u64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        while !s.1 && s.0 > 0 && s.0 + rows > ROWS_IN_FLIGHT {
            s = self.drained.wait(s).unwrap_or_else(|p| p.into_inner());
        }
        s.0 += rows;
        !s.1
    }

    fn leave(&self, rows: u64) {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.0 = s.0.saturating_sub(rows);
        self.drained.notify_one();
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).1 = true;
        self.drained.notify_one();
    }
}

/// Closes the gate when the writer's thread ends, however it ends, so the
/// query never waits for a writer that is gone.
struct CloseOnDrop(Arc<Gate>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The writer's thread has stopped (its own error says why).
#[derive(Debug, thiserror::Error)]
#[error("the export's writer stopped")]
struct WriterStopped;

/// The query's side: a [`BatchSink`] that queues for the writer.
struct Forward {
    queue: Sender<Message>,
    gate: Arc<Gate>,
    returned: Receiver<RecordBatch>,
}

impl BatchSink for Forward {
    fn schema(&mut self, schema: SchemaRef) -> anyhow::Result<()> {
        self.queue
            .send(Message::Schema(schema))
            .map_err(|_| WriterStopped.into())
    }

    fn batch(&mut self, batch: &RecordBatch) -> anyhow::Result<bool> {
        // Frees what the writer is done with, here (see the module).
        while self.returned.try_recv().is_ok() {}
        if !self.gate.enter(batch.num_rows() as u64) {
            return Err(WriterStopped.into());
        }
        self.queue
            .send(Message::Batch(batch.clone()))
            .map_err(|_| WriterStopped)?;
        Ok(true)
    }
}

/// Runs `produce` on this thread and `write` (the format's writer, `sink`)
/// on a second one. Returns `produce`'s outcome — the writer's error first,
/// as a client that went away stops the query with it — then the sink, if
/// both went well, and the rows the sink was given.
pub(super) fn produce_and_write<S>(
    sink: S,
    produce: impl FnOnce(&mut dyn BatchSink) -> anyhow::Result<u64>,
) -> (anyhow::Result<(u64, S)>, u64)
where
    S: BatchSink + Send,
{
    let (queue, messages) = channel::<Message>();
    let (give_back, returned) = channel::<RecordBatch>();
    let gate = Arc::new(Gate::default());
    std::thread::scope(|s| {
        let writer_gate = gate.clone();
        let writing = s.spawn(move || {
            let _close = CloseOnDrop(writer_gate.clone());
            let mut sink = sink;
            let mut rows = 0u64;
            for m in messages {
                let written = match m {
                    Message::Schema(schema) => sink.schema(schema),
                    Message::Batch(b) => {
                        let n = b.num_rows() as u64;
                        let r = sink.batch(&b);
                        rows += n;
                        writer_gate.leave(n);
                        // The query's thread may have ended: then freed here.
                        let _ = give_back.send(b);
                        r.map(|_| ())
                    }
                };
                if let Err(e) = written {
                    return (Err(e), rows);
                }
            }
            (Ok(sink), rows)
        });
        let mut forward = Forward {
            queue,
            gate,
            returned,
        };
        let produced = produce(&mut forward);
        let Forward {
            queue, returned, ..
        } = forward;
        drop(queue);
        let (written, rows) = writing
            .join()
            .unwrap_or_else(|_| (Err(anyhow::anyhow!("the export's writer panicked")), 0));
        drop(returned);
        let outcome = match (produced, written) {
            (_, Err(e)) => Err(e),
            (Err(e), Ok(_)) => Err(e),
            (Ok(n), Ok(sink)) => Ok((n, sink)),
        };
        (outcome, rows)
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use duckdb::arrow::array::{ArrayRef, Int64Array};
    use duckdb::arrow::datatypes::SchemaRef;
    use duckdb::arrow::record_batch::RecordBatch;

    use super::*;

    fn batch(from: i64, n: i64) -> RecordBatch {
        RecordBatch::try_from_iter([(
            "n",
            Arc::new(Int64Array::from_iter_values(from..from + n)) as ArrayRef,
        )])
        .unwrap()
    }

    /// Collects what it is given, failing at `fail_at` rows if set.
    #[derive(Default)]
    struct Collect {
        schema: bool,
        values: Vec<i64>,
        fail_at: Option<usize>,
    }

    impl BatchSink for Collect {
        fn schema(&mut self, _: SchemaRef) -> anyhow::Result<()> {
            self.schema = true;
            Ok(())
        }
        fn batch(&mut self, b: &RecordBatch) -> anyhow::Result<bool> {
            if self.fail_at.is_some_and(|n| self.values.len() >= n) {
                return Err(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "gone").into());
            }
            let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            self.values.extend(a.values().iter());
            Ok(true)
        }
    }

    #[test]
    fn every_batch_reaches_the_writer_in_order_through_a_full_queue() {
        // Far more rows than the queue holds: the query waits for the
        // writer and nothing is lost or reordered.
        let total = 3 * ROWS_IN_FLIGHT as i64 + 123;
        let (outcome, rows) = produce_and_write(Collect::default(), |sink| {
            sink.schema(batch(0, 1).schema())?;
            let mut at = 0;
            while at < total {
                let n = 2048.min(total - at);
                sink.batch(&batch(at, n))?;
                at += n;
            }
            Ok(at as u64)
        });
        let (n, sink) = outcome.unwrap();
        assert_eq!((n, rows), (total as u64, total as u64));
        assert!(sink.schema);
        assert!(sink.values.iter().copied().eq(0..total));
    }

    #[test]
    fn a_writer_that_stops_stops_the_query_with_its_own_error() {
        let sink = Collect {
            fail_at: Some(10_000),
            ..Default::default()
        };
        let mut offered = 0u64;
        let (outcome, rows) = produce_and_write(sink, |sink| {
            sink.schema(batch(0, 1).schema())?;
            // Would run forever if the writer's stop went unnoticed.
            loop {
                sink.batch(&batch(0, 4096))?;
                offered += 4096;
            }
        });
        let e = outcome.err().expect("the writer's error");
        assert!(e
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe));
        assert!(rows >= 10_000 && rows <= offered + 4096, "{rows}");
    }

    #[test]
    fn a_batch_larger_than_the_queue_still_goes() {
        let (outcome, rows) = produce_and_write(Collect::default(), |sink| {
            sink.schema(batch(0, 1).schema())?;
            sink.batch(&batch(0, 2 * ROWS_IN_FLIGHT as i64))?;
            Ok(2 * ROWS_IN_FLIGHT)
        });
        assert_eq!(outcome.unwrap().0, 2 * ROWS_IN_FLIGHT);
        assert_eq!(rows, 2 * ROWS_IN_FLIGHT);
    }
}
