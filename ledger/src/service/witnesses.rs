//! Witness cosigning (`serve --witness URL=WITNESS-KEY`): a thread submits each new signed
//! checkpoint to every witness configured, as C2SP tlog-witness `add-checkpoint` requests
//! (the old size the witness last cosigned and the consistency proof from it), checks the
//! cosignature it answers with against the witness's key, and keeps it beside the checkpoint
//! (`log::cosigned`), from where `GET /v1/checkpoint`, proofs and bundles hand it on.
//!
//! Nothing waits for a witness: the writer cuts and publishes checkpoints as before, and a
//! witness that is down, slow or refusing is retried after a backoff (1 s doubling to a
//! minute), its failure logged and counted. A 409 answer names the size the witness last
//! cosigned; the submitter takes it and submits again at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evidence_verifier::cosignature::WitnessKey;
use evidence_verifier::note::Note;

use super::writer::WriterHandle;
use crate::log::{cosigned, LogAt};
use crate::store::Storage;
use crate::witness::Request;

/// A witness to submit checkpoints to: the URL its `add-checkpoint` is under, and its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessTarget {
    /// The submission prefix (`<url>/add-checkpoint`).
    pub url: String,
    /// The witness's key, which its cosignatures must verify with.
    pub key: WitnessKey,
}

impl std::str::FromStr for WitnessTarget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (url, key) = s.split_once('=').ok_or_else(|| format!("--witness {s:?} is not URL=WITNESS-KEY"))?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!("--witness {s:?}: {url:?} is not an http:// or https:// URL"));
        }
        let key = WitnessKey::parse(key).map_err(|e| format!("--witness {s:?}: the witness key: {e}"))?;
        Ok(WitnessTarget { url: url.trim_end_matches('/').to_string(), key })
    }
}

/// The running submitter.
#[derive(Debug)]
pub(crate) struct Submitter {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Submitter {
    /// Stops the thread (within a request's timeout) and waits for it.
    pub(crate) fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

/// One witness's state.
struct Target {
    target: WitnessTarget,
    /// The size the witness last cosigned, as far as we know.
    known: Option<u64>,
    /// The checkpoint size last cosigned by it here.
    done: u64,
    next_try: Instant,
    backoff: Duration,
}

const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Starts submitting to `targets` (none: no thread).
pub(crate) fn start<S: Storage>(
    store: Arc<S>,
    writer: WriterHandle<S>,
    targets: &[WitnessTarget],
) -> Result<Option<Submitter>, String> {
    if targets.is_empty() {
        return Ok(None);
    }
    let mut state = Vec::new();
    for target in targets {
        let known = cosigned::latest(&*store, target.key.name()).map_err(|e| e.to_string())?;
        let now = Instant::now();
        state.push(Target {
            target: target.clone(),
            known,
            done: known.unwrap_or(0),
            next_try: now,
            backoff: FIRST_BACKOFF,
        });
    }
    // Without the system's trust store, https witnesses fail (each failure logged) and plain
    // http ones still work: say so once rather than refuse to serve.
    let certs = crate::trust::certificates(None, "").unwrap_or_else(|error| {
        tracing::warn!(message = "No trusted certificates for https witnesses.", %error);
        Vec::new()
    });
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .tls_config(crate::trust::ureq_tls(&certs))
        .build()
        .into();
    let stop = Arc::new(AtomicBool::new(false));
    let stopping = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("evidence-witnesses".into())
        .spawn(move || run(&*store, &writer, &agent, &mut state, &stopping))
        .map_err(|e| e.to_string())?;
    Ok(Some(Submitter { stop, thread }))
}

fn run<S: Storage>(
    store: &S,
    writer: &WriterHandle<S>,
    agent: &ureq::Agent,
    targets: &mut [Target],
    stop: &AtomicBool,
) {
    while !stop.load(Ordering::SeqCst) {
        let published = writer.published();
        for t in targets.iter_mut() {
            if published.latest == 0 || t.done >= published.latest || Instant::now() < t.next_try {
                continue;
            }
            let name = t.target.key.name().to_string();
            let log = LogAt::new(store, published.size, published.latest);
            match submit(agent, store, &log, t, published.latest) {
                Ok(()) => {
                    t.done = published.latest;
                    t.backoff = FIRST_BACKOFF;
                    metrics::gauge!("evidence_witness_cosigned_size", "witness" => name).set(published.latest as f64);
                }
                Err(error) => {
                    tracing::warn!(message = "A witness did not cosign; trying again later.", witness = %name, at = %t.target.url, %error, retry_in_secs = t.backoff.as_secs());
                    metrics::counter!("evidence_witness_failures_total", "witness" => name).increment(1);
                    t.next_try = Instant::now() + t.backoff;
                    t.backoff = (t.backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Submits the checkpoint at `size` to `t` and keeps its checked cosignature.
fn submit<S: Storage>(
    agent: &ureq::Agent,
    store: &S,
    log: &LogAt<'_, S>,
    t: &mut Target,
    size: u64,
) -> Result<(), String> {
    let note = log.checkpoint_note(size).map_err(|e| e.to_string())?.ok_or("the checkpoint is gone")?;
    let url = format!("{}/add-checkpoint", t.target.url);
    for _ in 0..3 {
        let old = t.known.unwrap_or(0);
        if old > size {
            return Err(format!("the witness cosigned a tree of {old} entries, more than this log's {size}: it saw another log under this origin"));
        }
        let proof = if old == 0 || old == size {
            Vec::new()
        } else {
            log.consistency_proof(old, size).map_err(|e| e.to_string())?
        };
        let body = Request { old, proof, checkpoint: note.clone().into_bytes() }.encode();
        let mut response = agent
            .post(&url)
            .header("Content-Type", "text/plain")
            .send(&body[..])
            .map_err(|e| format!("cannot reach it: {e}"))?;
        let status = response.status().as_u16();
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 10)
            .read_to_string()
            .map_err(|e| format!("its answer broke off: {e}"))?;
        match status {
            200 => {
                let line = cosignature_line(&note, &text, &t.target.key)?;
                cosigned::keep(store, size, t.target.key.name(), &line).map_err(|e| e.to_string())?;
                t.known = Some(size);
                return Ok(());
            }
            409 if kind.starts_with("text/x.tlog.size") => {
                t.known = Some(text.trim().parse().map_err(|_| format!("it answered 409 with {text:?}, not a size"))?);
            }
            _ => return Err(format!("it answered {status}: {}", text.trim())),
        }
    }
    Err("it kept answering 409 with other sizes".into())
}

/// The line of `answer` that is `key`'s valid cosignature of `note`.
fn cosignature_line(note: &str, answer: &str, key: &WitnessKey) -> Result<String, String> {
    for line in answer.lines().filter(|l| !l.is_empty()) {
        let with = format!("{note}{line}\n");
        if let Ok(parsed) = Note::parse(with.as_bytes()) {
            if let Ok(Some(_)) = key.cosigned(&parsed) {
                return Ok(format!("{line}\n"));
            }
        }
    }
    Err(format!("it answered 200 without a valid cosignature by {key}: {answer:?}"))
}
