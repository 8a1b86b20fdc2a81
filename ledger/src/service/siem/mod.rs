//! Alerts to the SIEM: every change in the [`outbox`] delivered to each configured sink, at
//! least once and in order. A Kafka topic gets OCSF Detection Findings keyed by alert id
//! (`kafka`), a syslog server RFC 5424 messages framed by octet counting over TCP or TLS
//! (`syslog`), an HTTP collector Splunk HEC batches of OCSF events (`hec`); `ocsf` builds the
//! documents. The live stream (`GET /v1/alerts/stream`) reads the same outbox.
//!
//! Each sink runs on a thread of its own with a durable cursor in the store
//! ([`outbox::cursor`]): it reads a batch of changes from the cursor, hands them to its
//! receiver, and moves the cursor past them only once the receiver acknowledged them all (the
//! Kafka broker's ack, HEC's 2xx, syslog's write and flush on a connection still open after
//! it). A failed batch is sent again, after a backoff that doubles up to a cap, with jitter;
//! nothing else waits for it: the writer and the other sinks go on, and the outbox keeps every
//! change until the sink catches up. After a restart or a crash each sink resumes at its
//! cursor, so a receiver may see a change twice, always with the same ids. A sink hands out
//! only changes on disk ([`outbox::Durable`]), so that none is numbered again after a crash. Each sink's lag,
//! last error and last delivery are in [`SinkStatus`] (`/v1/status`, `evidence status`) and in
//! `/metrics`.

mod config;
mod hec;
mod kafka;
pub mod ocsf;
mod syslog;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

pub use self::config::{KafkaTarget, SiemArgs, SiemConfig, SiemSection};
pub use self::syslog::SyslogTarget;
use crate::governance::outbox::{self, Change};
use crate::store::Storage;

/// Changes handed to a receiver at once.
const BATCH: usize = 500;

/// How often an idle sink looks for new changes.
const IDLE: Duration = Duration::from_millis(100);

/// The first wait after a failure; it doubles up to the configured cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// A receiver of alert changes.
pub(crate) trait Deliver: Send {
    /// Sends `changes` of the log named `origin`, in order. `Ok` only once the receiver
    /// acknowledged every one of them; an error is a sentence.
    fn deliver(&mut self, origin: &str, changes: &[Change]) -> Result<(), String>;
}

/// A sink's health, shared between its thread and the status readers.
#[derive(Debug)]
pub struct Health {
    name: String,
    cursor: AtomicU64,
    delivered: AtomicU64,
    failures: AtomicU64,
    last: Mutex<Last>,
}

#[derive(Debug, Default)]
struct Last {
    delivery: Option<DateTime<Utc>>,
    error: Option<(String, DateTime<Utc>)>,
    failing: bool,
}

/// A sink's delivery, as `/v1/status` and `evidence status` show it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SinkStatus {
    /// The sink (`kafka:<topic>`, `syslog:<url>`, `hec:<url>`).
    pub name: String,
    /// The next outbox change it has to deliver.
    pub cursor: u64,
    /// Changes in the outbox it has not delivered yet.
    pub lag: u64,
    /// Changes it delivered since the service started.
    #[serde(default)]
    pub delivered: u64,
    /// When its receiver last acknowledged a batch (RFC 3339), since the service started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery: Option<String>,
    /// Whether its last attempt failed (it is retrying).
    #[serde(default)]
    pub failing: bool,
    /// Its last error, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When that error happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<String>,
}

impl Health {
    fn new(name: String, cursor: u64) -> Self {
        Health {
            name,
            cursor: AtomicU64::new(cursor),
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last: Mutex::new(Last::default()),
        }
    }

    fn last(&self) -> std::sync::MutexGuard<'_, Last> {
        self.last.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn delivered(&self, next: u64, count: usize) {
        self.cursor.store(next, Ordering::SeqCst);
        self.delivered.fetch_add(count as u64, Ordering::Relaxed);
        let now = Utc::now();
        let mut last = self.last();
        last.delivery = Some(now);
        last.failing = false;
        metrics::counter!("evidence_siem_delivered_total", "sink" => self.name.clone()).increment(count as u64);
        metrics::gauge!("evidence_siem_last_delivery_timestamp_seconds", "sink" => self.name.clone())
            .set(now.timestamp_millis() as f64 / 1000.0);
    }

    fn failed(&self, error: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("evidence_siem_failures_total", "sink" => self.name.clone()).increment(1);
        let mut last = self.last();
        last.failing = true;
        last.error = Some((error, Utc::now()));
    }

    /// Its status, with the outbox's `head` (the number the next change gets).
    pub fn status(&self, head: u64) -> SinkStatus {
        let cursor = self.cursor.load(Ordering::SeqCst);
        let last = self.last();
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        SinkStatus {
            name: self.name.clone(),
            cursor,
            lag: head.saturating_sub(cursor),
            delivered: self.delivered.load(Ordering::Relaxed),
            last_delivery: last.delivery.as_ref().map(time),
            failing: last.failing,
            last_error: last.error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: last.error.as_ref().map(|(_, t)| time(t)),
        }
    }
}

/// The sinks' statuses read from a store with no service running: each cursor and lag.
pub fn stored_status<S: Storage>(store: &S) -> Result<Vec<SinkStatus>, crate::store::StorageError> {
    let head = outbox::head(store)?;
    Ok(outbox::cursors(store)?.into_iter().map(|(name, cursor)| Health::new(name, cursor).status(head)).collect())
}

/// The running sinks.
#[derive(Debug, Default)]
pub struct Sinks {
    health: Vec<Arc<Health>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Sinks {
    /// Starts a thread for each sink `config` names, delivering from `store`'s outbox, the
    /// outbox of the log named `origin`.
    pub fn start<S: Storage>(store: &Arc<S>, origin: &str, config: &SiemConfig) -> Result<Sinks, SinkError> {
        let mut sinks = Sinks::default();
        for (name, receiver) in config.receivers()? {
            let cursor = outbox::cursor(&**store, &name).map_err(|e| SinkError(e.to_string()))?;
            let health = Arc::new(Health::new(name.clone(), cursor));
            let run = Runner {
                store: Arc::clone(store),
                origin: origin.to_string(),
                health: Arc::clone(&health),
                stop: Arc::clone(&sinks.stop),
                max_backoff: config.max_backoff,
            };
            let thread = std::thread::Builder::new()
                .name(format!("siem {name}"))
                .spawn(move || run.run(receiver))
                .map_err(|e| SinkError(format!("cannot start the sink {name}: {e}")))?;
            tracing::info!(message = "Delivering alerts.", sink = %name, cursor);
            sinks.health.push(health);
            sinks.threads.push(thread);
        }
        Ok(sinks)
    }

    /// Each sink's health, for the status readers.
    pub fn health(&self) -> Arc<[Arc<Health>]> {
        self.health.iter().cloned().collect()
    }

    /// Asks every sink to stop, and waits for them (a batch in flight ends first; its
    /// network calls are bounded by their timeouts).
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in std::mem::take(&mut self.threads) {
            let _ = thread.join();
        }
    }
}

impl Drop for Sinks {
    fn drop(&mut self) {
        // Threads not joined (a service that failed to start) still stop on their own.
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// A sink that cannot start, in a sentence.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

struct Runner<S: Storage> {
    store: Arc<S>,
    origin: String,
    health: Arc<Health>,
    stop: Arc<AtomicBool>,
    max_backoff: Duration,
}

impl<S: Storage> Runner<S> {
    fn run(self, mut receiver: Box<dyn Deliver>) {
        let name = self.health.name.clone();
        let mut cursor = self.health.cursor.load(Ordering::SeqCst);
        let mut durable = outbox::Durable::default();
        let mut backoff = FIRST_BACKOFF;
        while !self.stop.load(Ordering::SeqCst) {
            let changes = match durable.read(&*self.store, cursor, BATCH) {
                Ok(changes) => changes,
                Err(error) => {
                    self.health.failed(format!("cannot read the outbox: {error}"));
                    self.pause(&mut backoff);
                    continue;
                }
            };
            let head = outbox::head(&*self.store).unwrap_or(cursor);
            metrics::gauge!("evidence_siem_lag_changes", "sink" => name.clone())
                .set(head.saturating_sub(cursor) as f64);
            if changes.is_empty() {
                self.sleep(IDLE);
                continue;
            }
            let attempt = receiver.deliver(&self.origin, &changes).map(|()| changes);
            match attempt {
                Ok(changes) => {
                    let next = changes.last().map_or(cursor, |c| c.number + 1);
                    if let Err(error) = outbox::advance(&*self.store, &name, next) {
                        tracing::warn!(message = "Cannot store a sink's cursor; its changes may be sent again.", sink = %name, %error);
                    }
                    cursor = next;
                    self.health.delivered(next, changes.len());
                    backoff = FIRST_BACKOFF;
                }
                Err(error) => {
                    tracing::warn!(message = "A SIEM sink failed; retrying.", sink = %name, %error, retry_in_ms = backoff.as_millis() as u64);
                    self.health.failed(error);
                    self.pause(&mut backoff);
                }
            }
        }
    }

    /// Waits out `backoff` with jitter (between half and all of it), then doubles it up to
    /// the cap.
    fn pause(&self, backoff: &mut Duration) {
        let mut byte = [0u8; 1];
        let _ = getrandom::getrandom(&mut byte);
        let wait = backoff.mul_f64(0.5 + f64::from(byte[0]) / 510.0);
        self.sleep(wait);
        *backoff = (*backoff * 2).min(self.max_backoff.max(FIRST_BACKOFF));
    }

    /// Sleeps for `d`, or until asked to stop.
    fn sleep(&self, d: Duration) {
        let until = std::time::Instant::now() + d;
        while !self.stop.load(Ordering::SeqCst) {
            let left = until.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}
