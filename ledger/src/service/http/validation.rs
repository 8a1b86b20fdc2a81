//! The threads that validate intake bodies ([`Validation`]): one a core but one
//! (`service::validators`), fed by one queue in the order the bodies came. A thread takes the
//! next body the moment it has finished one.
//!
//! Validation is what limits HTTP intake: the writer keeps up with one validating core. Before
//! these threads, a request waited for a semaphore permit and then handed its body to a
//! blocking thread. Each hand-over (the permit to the next request's task, that task to a
//! worker, its body to a blocking thread) left the validating core idle between two bodies,
//! against about 4 ms to validate a body of 500 events (the Kafka source's loop, timed, woke
//! about 1.2 ms after its validation ended, on a busy 2-core machine). Same-run A/B on
//! `ops/bench/http`'s serve round, intake alone: 98,851-101,440 events/s with the permit,
//! 104,556-113,034 with these threads.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use evidence_ingest::{Origin, Record, Verdict};
use evidence_schemas::Validator;
use tokio::sync::{mpsc, oneshot};

/// One body to validate: its events, who sent it, and where its records go.
struct Job {
    raw: Vec<Bytes>,
    token: String,
    peer: String,
    done: oneshot::Sender<Vec<Record>>,
}

/// The validation threads' queue. Cloning it shares the threads; they end once every clone
/// is dropped and the bodies queued are done.
#[derive(Clone, Debug)]
pub struct Validation {
    queue: mpsc::Sender<Job>,
}

/// A body could not be validated: a thread panicked on it, or the threads are gone.
#[derive(Debug, thiserror::Error)]
#[error("the body could not be validated (the validating thread failed)")]
pub struct ValidationFailed;

impl Validation {
    /// Starts `threads` threads (one at least) validating with `validator`.
    pub fn start(validator: Arc<Validator>, threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        // One body waiting a thread: each finds its next body queued; the other requests wait
        // for room in order, holding their bodies, as they waited for a permit before.
        let (queue, jobs) = mpsc::channel::<Job>(threads);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let (validator, jobs) = (Arc::clone(&validator), Arc::clone(&jobs));
            std::thread::Builder::new().name(format!("evidence-validate-{n}")).spawn(move || run(&validator, &jobs))?;
        }
        Ok(Validation { queue })
    }

    /// The records of `raw`, the events of one request from `token` at `peer`, in order,
    /// once a thread has validated them; waits for room in the queue first.
    pub async fn validate(
        &self,
        raw: Vec<Bytes>,
        token: String,
        peer: String,
    ) -> Result<Vec<Record>, ValidationFailed> {
        let (done, records) = oneshot::channel();
        let job = Job { raw, token, peer, done };
        self.queue.send(job).await.map_err(|_| ValidationFailed)?;
        records.await.map_err(|_| ValidationFailed)
    }
}

/// A validation thread: takes the next body as soon as it has answered one, until the queue
/// closes. A panic fails its body only (the request is answered 500), not the thread.
fn run(validator: &Validator, jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held while waiting, so that one thread waits on the queue and the others
        // on the lock; it is released before validating.
        let next = match jobs.lock() {
            Ok(mut jobs) => jobs.blocking_recv(),
            Err(_) => return,
        };
        let Some(Job { raw, token, peer, done }) = next else { return };
        match std::panic::catch_unwind(AssertUnwindSafe(|| validate(validator, raw, &token, &peer))) {
            Ok(records) => drop(done.send(records)),
            Err(_) => tracing::error!(message = "Validating an intake body panicked; it is answered 500."),
        }
    }
}

/// Each event of a body as a record: validated, or rejected with its bytes, with its origin.
fn validate(validator: &Validator, raw: Vec<Bytes>, token: &str, peer: &str) -> Vec<Record> {
    raw.into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let origin = Origin::Http { token: token.to_string(), peer: peer.to_string(), item: i as u64 + 1 };
            let verdict = match validator.validate(&bytes) {
                Ok(valid) => Verdict::Valid(Box::new(valid)),
                Err(rejection) => Verdict::Rejected { rejection, raw: bytes.to_vec() },
            };
            Record { origin, verdict }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use evidence_schemas::sample::sample_event;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_body_is_validated_in_order_with_its_origins() {
        let validation = Validation::start(Arc::new(Validator::default()), 2).unwrap();
        // More requests at once than the threads and the queue hold: each waits its turn.
        let requests: Vec<_> = (0..16u64)
            .map(|r| {
                let validation = validation.clone();
                tokio::spawn(async move {
                    let bad = Bytes::from_static(b"{\"not\":\"an event\"}");
                    let raw = vec![Bytes::from(sample_event(2 * r)), bad, Bytes::from(sample_event(2 * r + 1))];
                    (r, validation.validate(raw, format!("token-{r}"), "127.0.0.1:1".into()).await.unwrap())
                })
            })
            .collect();
        for request in requests {
            let (r, records) = request.await.unwrap();
            let verdicts: Vec<bool> = records.iter().map(|rec| matches!(rec.verdict, Verdict::Valid(_))).collect();
            assert_eq!(verdicts, [true, false, true], "request {r}: the events' verdicts, in order");
            for (i, record) in records.iter().enumerate() {
                let expected =
                    Origin::Http { token: format!("token-{r}"), peer: "127.0.0.1:1".into(), item: i as u64 + 1 };
                assert_eq!(record.origin, expected);
            }
        }
    }
}
