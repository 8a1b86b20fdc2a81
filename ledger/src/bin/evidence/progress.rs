//! The progress line of a long ingest or export: on standard error, only when it is a terminal, at most
//! twice a second and only after the first second, rewritten in place and cleared at the end.
//! Anything else printed to standard error clears it first.

use std::io::{IsTerminal as _, Write as _};
use std::time::{Duration, Instant};

/// How long an ingest runs before its progress shows.
const AFTER: Duration = Duration::from_secs(1);
/// How often the line is rewritten.
const EVERY: Duration = Duration::from_millis(500);

/// A progress line (see the module docs).
pub(crate) struct Progress {
    on: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    /// A progress line on standard error, shown only when it is a terminal.
    pub(crate) fn on_stderr() -> Progress {
        Progress { on: std::io::stderr().is_terminal(), started: Instant::now(), last: None }
    }

    /// Shows the totals so far, when a line is due.
    pub(crate) fn show(&mut self, accepted: u64, duplicates: u64, quarantined: u64) {
        let done = accepted + duplicates + quarantined;
        self.show_with(|secs| {
            let rate = done as f64 / secs;
            format!(
                "{done} events: accepted {accepted}, duplicate {duplicates}, quarantined {quarantined} ({rate:.0} events/s)"
            )
        });
    }

    /// Shows the line `line(seconds since the start)` makes, when a line is due.
    pub(crate) fn show_with(&mut self, line: impl FnOnce(f64) -> String) {
        if !self.on || self.started.elapsed() < AFTER || self.last.is_some_and(|l| l.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let line = line(self.started.elapsed().as_secs_f64());
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[2K{line}");
        let _ = err.flush();
    }

    /// Prints a line of its own to standard error, clearing the progress line first.
    pub(crate) fn say(&mut self, line: &str) {
        self.clear();
        eprintln!("{line}");
    }

    /// Clears the line, if one is shown (the next `show` draws it again).
    pub(crate) fn clear(&mut self) {
        if self.on && self.last.is_some() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.last = None;
        }
    }
}
