//! NDJSON from a file or standard input: one event per line, blank lines skipped, each line's
//! origin its 1-based line number. A line longer than the event size limit is never held whole
//! in memory: its first bytes are kept for the quarantine record and the rest is skipped.

use std::io::BufRead;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use evidence_schemas::Rejection;

use crate::intake::{validate_on, validation_threads, Appended, Incoming, Intake};
use crate::sink::{Origin, Outcome, Record, Sink};

/// Where the lines come from, for their origins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineSource {
    /// A file, by the path given.
    File(String),
    /// Standard input.
    Stdin,
}

impl LineSource {
    fn origin(&self, line: u64) -> Origin {
        match self {
            LineSource::File(path) => Origin::File { path: path.clone(), line },
            LineSource::Stdin => Origin::Stdin { line },
        }
    }
}

/// How long the appending thread waits for the next batch before it settles the one it holds
/// back and reports it: input that stalls (a pipe fed slowly) is reported as it comes.
const STALL: Duration = Duration::from_millis(50);

/// Why a file could not be ingested to the end.
#[derive(Debug, thiserror::Error)]
pub enum FileError<E: std::error::Error + 'static> {
    /// Reading failed.
    #[error("cannot read line {line}: {source}")]
    Read {
        /// The line being read.
        line: u64,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The sink failed; the batch was not stored.
    #[error("cannot store the batch ending at line {line}: {source}")]
    Sink {
        /// The last line of the batch.
        line: u64,
        /// The sink's error.
        source: E,
    },
}

/// Reads one line into `buf`, keeping at most `cap + 1` bytes. Returns the line's full length
/// (without its newline), or `None` at end of input.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, cap: usize) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut len = 0usize;
    let mut any = false;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok(any.then_some(len));
        }
        any = true;
        let (part, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let room = cap.saturating_add(1).saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        len += part.len();
        let used = done.unwrap_or(part.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(Some(len));
        }
    }
}

/// Ingests every line of `reader` into `sink` through `intake`, calling `report` with each
/// record and its outcome once its batch is stored.
///
/// A pipeline: a thread reads and validates the next batch while this one appends the last,
/// and the sink puts each batch on disk while this thread appends the next
/// ([`Sink::append_unsettled`]); a batch's records are reported once the sink has settled it.
/// At most one validated batch waits between the first two stages.
pub fn ingest_lines<S: Sink>(
    reader: impl BufRead + Send,
    source: &LineSource,
    intake: &mut Intake<'_>,
    sink: &mut S,
    cap: usize,
    mut report: impl FnMut(&Record, &Outcome),
) -> Result<(), FileError<S::Error>> {
    let (validator, batch_size) = (intake.validator(), intake.batch_size());
    let threads = validation_threads();
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<(u64, Vec<Record>)>>(1);
        // Batches reported go back to the reading thread to be dropped there, where they were
        // allocated (the allocator frees a block fastest on its own thread), off the appending
        // thread.
        let (spent, spent_rx) = std::sync::mpsc::channel::<Appended>();
        s.spawn(move || {
            let mut batches = Batches { reader, source, cap, batch_size, buf: Vec::new(), line: 0 };
            loop {
                drop(spent_rx.try_iter().collect::<Vec<_>>());
                let next =
                    batches.next().map(|(line, pending, done)| (line, validate_on(validator, pending, threads), done));
                let (stop, sent) = match next {
                    Ok((line, records, done)) => (done, tx.send(Ok((line, records)))),
                    Err(e) => (true, tx.send(Err(e))),
                };
                if stop || sent.is_err() {
                    break;
                }
            }
        });
        // Each batch is appended unsettled and reported once the next one is appended and the
        // sink has settled it: the sink puts it on disk while this thread appends the next.
        // When the next one is slow to come, the one held back is settled and reported.
        let mut held: Option<(u64, Appended)> = None;
        let mut last = 0;
        loop {
            let batch = match rx.recv_timeout(STALL) {
                Ok(batch) => batch,
                Err(RecvTimeoutError::Timeout) => {
                    settle_all(sink, intake, held.take(), &mut report)?;
                    match rx.recv() {
                        Ok(batch) => batch,
                        Err(_) => break,
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let (line, records) = match batch {
                Ok(batch) => batch,
                Err(source) => {
                    settle_all(sink, intake, held, &mut report)?;
                    return Err(FileError::Read { line: last + 1, source });
                }
            };
            last = line;
            intake.add(records);
            let appended = intake.flush_unsettled(sink).map_err(|source| FileError::Sink { line, source })?;
            let before = held.as_ref().map_or(line, |(l, _)| *l);
            sink.settle().map_err(|source| FileError::Sink { line: before, source })?;
            if let Some((_, done)) = held.take() {
                intake.settled(&done, &mut report);
                let _ = spent.send(done);
            }
            held = appended.map(|a| (line, a));
        }
        settle_all(sink, intake, held, &mut report)
    })
}

/// Waits until the sink holds every batch durably, then reports the one held back.
fn settle_all<S: Sink>(
    sink: &mut S,
    intake: &mut Intake<'_>,
    held: Option<(u64, Appended)>,
    report: impl FnMut(&Record, &Outcome),
) -> Result<(), FileError<S::Error>> {
    // Every batch before the one held back was settled already.
    let Some((line, done)) = held else { return Ok(()) };
    sink.settle_all().map_err(|source| FileError::Sink { line, source })?;
    intake.settled(&done, report);
    Ok(())
}

/// The lines of a reader, a batch at a time.
struct Batches<'s, R> {
    reader: R,
    source: &'s LineSource,
    cap: usize,
    batch_size: usize,
    buf: Vec<u8>,
    line: u64,
}

impl<R: BufRead> Batches<'_, R> {
    /// The next batch of at most `batch_size` records: the last line read, the records, and
    /// whether the input ended.
    fn next(&mut self) -> std::io::Result<(u64, Vec<Incoming>, bool)> {
        let mut pending: Vec<Incoming> = Vec::with_capacity(self.batch_size);
        while pending.len() < self.batch_size {
            let Some(len) = read_line(&mut self.reader, &mut self.buf, self.cap)? else {
                return Ok((self.line, pending, true));
            };
            self.line += 1;
            // A line within the limit loses a CRLF file's carriage return, and is skipped when
            // blank; one over the limit is quarantined whatever it holds.
            if len <= self.cap {
                if self.buf.last() == Some(&b'\r') {
                    self.buf.pop();
                }
                if self.buf.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
            }
            let refused = (len > self.cap).then(|| {
                self.buf.truncate(self.cap);
                Rejection::TooLarge { size: len, limit: self.cap }
            });
            pending.push((self.source.origin(self.line), self.buf.clone(), refused));
        }
        Ok((self.line, pending, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::{Batch, BatchReport};

    fn lines(input: &[u8], cap: usize) -> Vec<(usize, Vec<u8>)> {
        let mut r = std::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(len) = read_line(&mut r, &mut buf, cap).unwrap() {
            out.push((len, buf.clone()));
        }
        out
    }

    /// A sink that puts batches on disk behind the caller, as the ledger does, and logs what
    /// it was asked: `a<n>` for the n-th batch appended, `s` for a settle, `S` for settle_all.
    /// A batch is durable once the second settle after it has returned, or settle_all.
    #[derive(Default)]
    struct Behind {
        calls: Vec<String>,
        appended: usize,
        /// Batches appended before the last settle.
        asked: usize,
        /// Batches durable, shared with the test's report.
        durable: std::rc::Rc<std::cell::Cell<usize>>,
    }

    impl Sink for Behind {
        type Error = std::io::Error;

        fn append(&mut self, _: &Batch) -> Result<BatchReport, Self::Error> {
            panic!("a file's batches are appended unsettled")
        }

        fn append_unsettled(&mut self, batch: &Batch) -> Result<BatchReport, Self::Error> {
            self.appended += 1;
            self.calls.push(format!("a{}", self.appended));
            Ok(BatchReport { outcomes: batch.records.iter().map(|_| Outcome::Accepted { seq: 0 }).collect() })
        }

        fn settle(&mut self) -> Result<(), Self::Error> {
            self.calls.push("s".into());
            self.durable.set(self.asked);
            self.asked = self.appended;
            Ok(())
        }

        fn settle_all(&mut self) -> Result<(), Self::Error> {
            self.calls.push("S".into());
            self.durable.set(self.appended);
            self.asked = self.appended;
            Ok(())
        }
    }

    #[test]
    fn a_batch_is_reported_only_once_the_sink_has_settled_it() {
        let validator = evidence_schemas::Validator::default();
        let mut intake = Intake::new(&validator, 2);
        let mut sink = Behind::default();
        let durable = std::rc::Rc::clone(&sink.durable);
        let input: &[u8] = b"{}\n{}\n{}\n{}\n{}\n";
        // Each report: the record's line, and how many batches were durable when it was made.
        let mut reports: Vec<(u64, usize)> = Vec::new();
        ingest_lines(input, &LineSource::File("f".into()), &mut intake, &mut sink, 1024, |record, _| {
            let Origin::File { line, .. } = record.origin else { unreachable!() };
            reports.push((line, durable.get()));
        })
        .unwrap();
        assert_eq!(reports.iter().map(|r| r.0).collect::<Vec<_>>(), [1, 2, 3, 4, 5], "every record, in order");
        // Batch n holds lines 2n-1 and 2n: reported only once n batches are durable.
        for (line, durable) in reports {
            assert!(durable >= line.div_ceil(2) as usize, "line {line} reported with {durable} batches durable");
        }
        // Unless the reading thread stalled (then a batch is settled early): a1 s a2 s a3 s S.
        assert_eq!(sink.calls.iter().filter(|c| c.starts_with('a')).count(), 3, "{:?}", sink.calls);
        assert_eq!(sink.calls.last().map(String::as_str), Some("S"), "{:?}", sink.calls);
        assert_eq!(intake.totals().accepted, 5);
    }

    #[test]
    fn splits_lines_and_caps_long_ones() {
        assert_eq!(lines(b"ab\ncd", 10), vec![(2, b"ab".to_vec()), (2, b"cd".to_vec())]);
        assert_eq!(lines(b"abcdefghij\nx\n", 3), vec![(10, b"abcd".to_vec()), (1, b"x".to_vec())]);
        assert_eq!(lines(b"\n\n", 3), vec![(0, vec![]), (0, vec![])]);
        assert_eq!(lines(b"", 3), vec![]);
    }
}
