//! The service's self-audit: on start and then every interval, a thread of its own checks the
//! log as the writer last published it, entry by entry and checkpoint by checkpoint, as
//! `evidence-verify` does offline (`LogAt::audit`), beside appends. `GET /v1/integrity`
//! reports the last result and when it finished.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::writer::WriterHandle;
use crate::log::LogAt;
use crate::store::Storage;

/// The result of a self-audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SelfAudit {
    /// Whether every entry and checkpoint checked out.
    pub ok: bool,
    /// When it finished (RFC 3339, UTC).
    pub finished: String,
    /// How long it took, in seconds.
    pub seconds: f64,
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The first thing that did not check out, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The last self-audit, shared with the API.
pub type LastAudit = Arc<RwLock<Option<SelfAudit>>>;

/// Audits the log as `writer` last published it.
pub fn audit_now<S: Storage>(store: &S, writer: &WriterHandle<S>) -> SelfAudit {
    let published = writer.published();
    let started = Instant::now();
    let result = LogAt::new(store, published.size, published.latest).audit();
    let finished = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(report) => SelfAudit {
            ok: true,
            finished,
            seconds,
            entries: report.entries,
            checkpoints: report.checkpoints,
            problem: None,
        },
        Err(e) => SelfAudit {
            ok: false,
            finished,
            seconds,
            entries: published.size,
            checkpoints: 0,
            problem: Some(e.to_string()),
        },
    }
}

/// Starts the self-audit thread: one audit now, then one every `every`, until `stop`.
pub fn spawn<S: Storage>(
    store: Arc<S>,
    writer: WriterHandle<S>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> (LastAudit, std::thread::JoinHandle<()>) {
    let last: LastAudit = Arc::new(RwLock::new(None));
    let shared = Arc::clone(&last);
    let thread = std::thread::Builder::new()
        .name("evidence-self-audit".into())
        .spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let audit = audit_now(&*store, &writer);
                if audit.ok {
                    tracing::info!(
                        message = "Self-audit passed.",
                        entries = audit.entries,
                        checkpoints = audit.checkpoints,
                        seconds = audit.seconds
                    );
                } else {
                    tracing::error!(
                        message = "Self-audit failed: run evidence-verify on a copy of the store.",
                        problem = audit.problem.as_deref().unwrap_or("")
                    );
                }
                metrics::gauge!("evidence_self_audit_ok").set(if audit.ok { 1.0 } else { 0.0 });
                *shared.write().expect("audit lock") = Some(audit);
                let next = Instant::now() + every;
                while Instant::now() < next && !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
        .expect("the self-audit thread starts");
    (last, thread)
}
