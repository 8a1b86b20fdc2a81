//! NDJSON from a file or standard input: one event per line, blank lines skipped, each line's
//! origin its 1-based line number. A line longer than the event size limit is never held whole
//! in memory: its first bytes are kept for the quarantine record and the rest is skipped.

use std::io::BufRead;

use evidence_schemas::Rejection;

use crate::intake::{Incoming, Intake};
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
        let (part, done) = match chunk.iter().position(|b| *b == b'\n') {
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
pub fn ingest_lines<S: Sink>(
    mut reader: impl BufRead,
    source: &LineSource,
    intake: &mut Intake<'_>,
    sink: &mut S,
    cap: usize,
    mut report: impl FnMut(&Record, &Outcome),
) -> Result<(), FileError<S::Error>> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    let mut pending: Vec<Incoming> = Vec::with_capacity(intake.batch_size());
    loop {
        let len = read_line(&mut reader, &mut buf, cap).map_err(|source| FileError::Read { line: line + 1, source })?;
        let Some(len) = len else { break };
        line += 1;
        // A line within the limit loses a CRLF file's carriage return, and is skipped when
        // blank; one over the limit is quarantined whatever it holds.
        if len <= cap {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            if buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
        }
        let refused = (len > cap).then(|| {
            buf.truncate(cap);
            Rejection::TooLarge { size: len, limit: cap }
        });
        pending.push((source.origin(line), buf.clone(), refused));
        if pending.len() >= intake.batch_size() {
            intake.push_many(std::mem::take(&mut pending));
            intake.flush(sink, &mut report).map_err(|source| FileError::Sink { line, source })?;
        }
    }
    intake.push_many(pending);
    intake.flush(sink, &mut report).map_err(|source| FileError::Sink { line, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], cap: usize) -> Vec<(usize, Vec<u8>)> {
        let mut r = std::io::BufReader::with_capacity(4, input);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(len) = read_line(&mut r, &mut buf, cap).unwrap() {
            out.push((len, buf.clone()));
        }
        out
    }

    #[test]
    fn splits_lines_and_caps_long_ones() {
        assert_eq!(lines(b"ab\ncd", 10), vec![(2, b"ab".to_vec()), (2, b"cd".to_vec())]);
        assert_eq!(lines(b"abcdefghij\nx\n", 3), vec![(10, b"abcd".to_vec()), (1, b"x".to_vec())]);
        assert_eq!(lines(b"\n\n", 3), vec![(0, vec![]), (0, vec![])]);
        assert_eq!(lines(b"", 3), vec![]);
    }
}
