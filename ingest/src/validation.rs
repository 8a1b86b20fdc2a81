//! The threads that validate what the service's sources receive ([`Validation`]): a fixed few
//! (one a core but one, [`validation_threads`]), fed by one queue in the order the work came.
//! A thread takes the next piece of work the moment it has finished one.
//!
//! Why threads of their own, not a blocking task per body or batch:
//! - A hand-over left the validating core idle between two pieces. For HTTP intake a request
//!   waited for a semaphore permit and handed its body to a blocking thread: the permit went to
//!   the next request's task, that task to a worker, its body to a blocking thread, against
//!   about 4 ms to validate a body of 500 events. Same-run A/B on `ops/bench/http`'s serve
//!   round, intake alone: 98,851-101,440 events/s with the permit, 104,556-113,034 with these
//!   threads.
//! - The events a validation builds are freed by the writer's thread. With tokio's blocking pool
//!   each batch of the Kafka source was validated on whichever of its (eight, on
//!   `ops/bench/kafka`) threads woke, so every one of them kept an allocator heap of
//!   half-used pages for the writer's frees to land in: those threads spent four times the time
//!   `evidence ingest`'s one validating thread does collecting them (`perf`, 1,000,000 events).
//!
//! [`validation_threads`]: crate::intake::validation_threads

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};

use evidence_schemas::Validator;
use tokio::sync::{mpsc, oneshot};

/// One piece of work: it sends its own result.
type Job = Box<dyn FnOnce(&Validator) + Send>;

/// The validation threads' queue. Cloning it shares the threads; they end once every clone
/// is dropped and the work queued is done.
#[derive(Clone, Debug)]
pub struct Validation {
    queue: mpsc::Sender<Job>,
    threads: usize,
}

/// Work could not be done: a thread panicked on it, or the threads are gone.
#[derive(Debug, thiserror::Error)]
#[error("the events could not be validated (the validating thread failed)")]
pub struct ValidationFailed;

impl Validation {
    /// Starts `threads` threads (one at least) validating with `validator`.
    pub fn start(validator: Arc<Validator>, threads: usize) -> std::io::Result<Self> {
        let threads = threads.max(1);
        // One piece waiting a thread: each finds its next piece queued; the other senders wait
        // for room in order, holding their work.
        let (queue, jobs) = mpsc::channel::<Job>(threads);
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let (validator, jobs) = (Arc::clone(&validator), Arc::clone(&jobs));
            std::thread::Builder::new().name(format!("evidence-validate-{n}")).spawn(move || run(&validator, &jobs))?;
        }
        Ok(Validation { queue, threads })
    }

    /// How many threads validate.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Queues `work` for the next free thread (waiting for room in the queue first) and
    /// returns where its result will come.
    pub async fn submit<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Validator) -> T + Send + 'static,
    ) -> Result<oneshot::Receiver<T>, ValidationFailed> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move |validator| drop(done.send(work(validator))));
        self.queue.send(job).await.map_err(|_| ValidationFailed)?;
        Ok(result)
    }

    /// Runs `work` on the next free thread and returns its result.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Validator) -> T + Send + 'static,
    ) -> Result<T, ValidationFailed> {
        self.submit(work).await?.await.map_err(|_| ValidationFailed)
    }
}

/// A validation thread: takes the next piece of work as soon as it has done one, until the
/// queue closes. A panic fails that piece only (its result never comes), not the thread.
fn run(validator: &Validator, jobs: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        // The lock is held while waiting, so that one thread waits on the queue and the others
        // on the lock; it is released before validating.
        let next = match jobs.lock() {
            Ok(mut jobs) => jobs.blocking_recv(),
            Err(_) => return,
        };
        let Some(job) = next else { return };
        if std::panic::catch_unwind(AssertUnwindSafe(|| job(validator))).is_err() {
            tracing::error!(message = "Validating panicked; the events it held are refused to their sender.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn work_is_done_on_the_validation_threads_and_a_panic_fails_only_its_own() {
        let validation = Validation::start(Arc::new(Validator::default()), 2).unwrap();
        // More at once than the threads and the queue hold: each waits its turn.
        let tasks: Vec<_> = (0..16u64)
            .map(|n| {
                let validation = validation.clone();
                tokio::spawn(async move {
                    validation
                        .run(move |_| {
                            assert_ne!(n, 5, "work 5 panics");
                            let name = std::thread::current().name().map(str::to_string);
                            (n, name)
                        })
                        .await
                })
            })
            .collect();
        for (n, task) in (0..16u64).zip(tasks) {
            let done = task.await.unwrap();
            if n == 5 {
                assert!(done.is_err(), "the work that panicked reports a failure");
                continue;
            }
            let (m, name) = done.unwrap();
            assert_eq!(m, n);
            assert!(name.is_some_and(|t| t.starts_with("evidence-validate-")), "work {n} ran off the pool");
        }
        // The threads outlived the panic.
        assert_eq!(validation.run(|_| 7).await.unwrap(), 7);
    }
}
