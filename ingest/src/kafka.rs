//! The Kafka source: a consumer-group member on any number of topics (or the owner of a fixed
//! set of their partitions, [`KafkaConfig::partitions`]) that hands batches to a [`Sink`] with
//! an exactly-once effect.
//!
//! How nothing is lost or taken twice:
//! 1. Every record of a batch carries its Kafka coordinates, and the batch carries the next
//!    offset of every partition it read ([`Position`] `kafka:<topic>/<partition>`). The sink
//!    stores both in one durable write.
//! 2. When partitions are assigned (by the group, or once at the start when the source owns a
//!    fixed set), each is started at the position the sink stored for it ([`Positions`]); a
//!    partition the sink has never seen starts at the group's committed offset, or the
//!    earliest one (`auto.offset.reset`); the source asks the group for those offsets itself
//!    (`kafka/resume.rs`).
//! 3. Group offsets are committed to Kafka only after the sink has stored the batch. They are a
//!    hint for other tools; the sink's positions are what a restart uses.
//! 4. A message delivered again (a retry, a rebalance, a restart between steps 1 and 3) is
//!    recognised by the sink's `(source, id)` index and acknowledged without a second entry.
//! 5. A partition resumed at a stored position whose first record comes later than that
//!    position has lost records (retention deleted them, the broker lost them): the batch's
//!    [`Position::skipped`] carries the gap, the sink counts it, and a warning names it. Topics
//!    the broker reports as compacted are exempt, since compaction leaves offsets out by design.
//!
//! A bad message (empty, not UTF-8, not JSON, invalid, oversize) never blocks its partition:
//! it becomes a rejected record, quarantined by the sink with its reason and coordinates, and
//! the partition moves on.
//!
//! The loop runs until `shutdown` resolves: it then stops reading, stores the batches in hand,
//! commits their offsets and returns. Batches are submitted to the sink in order
//! ([`Sink::submit`]), up to [`IN_FLIGHT`] at a time, and their offsets committed in that
//! order once each is stored; while the sink stores them, the next is received and validated.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use evidence_schemas::Rejection;
use futures_util::StreamExt as _;
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, MessageStream, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use tokio::sync::oneshot;

use self::resume::{gap, own, reset_to, Compacted, Resume, Resumed};
use crate::intake::{shares, validate_on, Incoming, Totals};
use crate::sink::{Batch, BatchReport, Origin, Position, Record, Sink};
use crate::validation::{Validation, ValidationFailed};

mod resume;

/// How often progress is logged.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Messages behind the end of the partitions read so far: high watermark minus next offset,
/// also set per partition as the gauge `evidence_kafka_lag_messages`.
fn lag<C: ConsumerContext>(consumer: &StreamConsumer<C>, reached: &HashMap<(String, i32), i64>) -> Option<i64> {
    let mut total = 0;
    for ((topic, partition), next) in reached {
        let (_, high) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(1)).ok()?;
        let behind = (high - next).max(0);
        metrics::gauge!("evidence_kafka_lag_messages", "topic" => topic.clone(), "partition" => partition.to_string())
            .set(behind as f64);
        total += behind;
    }
    Some(total)
}

/// Looks up the next offset the sink has stored for a topic and partition.
pub type Positions = Arc<dyn Fn(&str, i32) -> Option<i64> + Send + Sync>;

/// The position name of a Kafka partition.
pub fn position_name(topic: &str, partition: i32) -> String {
    format!("kafka:{topic}/{partition}")
}

/// How to consume.
#[derive(Clone, Debug)]
pub struct KafkaConfig {
    /// `host:port,...`
    pub brokers: String,
    /// Topics to read.
    pub topics: Vec<String>,
    /// Consumer group: the members share the topics' partitions, or, with `partitions`, only
    /// the committed offsets.
    pub group: String,
    /// The partitions this source owns, of every topic, instead of those the group hands it:
    /// a shard of a topic, read by this source alone (no rebalancing).
    pub partitions: Option<Vec<i32>>,
    /// Records per batch at most.
    pub batch_size: usize,
    /// How long a batch may wait to fill.
    pub batch_wait: Duration,
    /// Extra librdkafka settings (SASL, TLS, ...), passed through as they are.
    pub settings: Vec<(String, String)>,
}

/// Why the source stopped.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError<E: std::error::Error + 'static> {
    /// The client could not be created or subscribed.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// The sink failed; the batch was not stored and its offsets were not committed.
    #[error("cannot store a batch: {0}")]
    Sink(E),
    /// A batch could not be validated; it was not stored and its offsets were not committed.
    #[error("{0}")]
    Validation(#[from] ValidationFailed),
}

/// Running totals and lag, for progress logs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// What became of the records so far.
    pub totals: Totals,
    /// Batches stored.
    pub batches: u64,
    /// Offsets skipped on resuming partitions (see step 5 at the top).
    pub skipped: u64,
}

/// The next offsets of partitions, to commit to the group.
fn offsets(next: &HashMap<(String, i32), i64>) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        let _ = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset));
    }
    tpl
}

/// Batches handed to the sink and not yet stored, at most. serve's writer flushes a batch
/// while it appends the next and answers it once that one is appended, so with one batch in
/// flight it always found its queue empty and appended and flushed each batch on its own; two
/// or three let the next batch wait in its queue (three measured within noise of two on
/// `ops/bench/kafka`, and keep the writer fed when validation runs late).
const IN_FLIGHT: usize = 3;

/// A batch submitted to the sink and waited for on a blocking thread, with the next offset of
/// each partition it reaches and the offsets it skipped.
struct Storing<E> {
    task: tokio::task::JoinHandle<Result<BatchReport, E>>,
    next: HashMap<(String, i32), i64>,
    lost: u64,
}

/// Waits for the oldest batches submitted until at most `keep` remain, in the order submitted,
/// and commits each one's offsets to the group once it is stored; `progress` counts them.
async fn settle<E: std::error::Error + 'static, C: ConsumerContext>(
    storing: &mut VecDeque<Storing<E>>,
    keep: usize,
    progress: &mut Progress,
    consumer: &StreamConsumer<C>,
    reached: &mut HashMap<(String, i32), i64>,
) -> Result<(), KafkaSourceError<E>> {
    while storing.len() > keep {
        let Some(oldest) = storing.pop_front() else { break };
        let report = oldest.task.await.expect("waiting for a batch does not panic").map_err(KafkaSourceError::Sink)?;
        for outcome in &report.outcomes {
            progress.totals.count(outcome);
        }
        progress.batches += 1;
        progress.skipped += oldest.lost;
        // The batch is durable: now tell the group.
        if let Err(error) = consumer.commit(&offsets(&oldest.next), CommitMode::Async) {
            tracing::warn!(message = "Failed to commit group offsets (the ledger's positions stand).", %error);
        }
        reached.extend(oldest.next);
    }
    Ok(())
}

/// How long a batch being received may go on filling once the batch before it is validated
/// and waits to be handed to the sink: under a backlog a batch fills long before, and a
/// trickle's batch waits no full batch wait behind the next one.
const CUT_AFTER_VALIDATED: Duration = Duration::from_millis(10);

/// A batch validated on the validation threads while the next one is received, with the next
/// offset and the offsets skipped of each partition it read.
struct Validating {
    /// The shares of the batch still being validated, each by a validation thread, in order.
    shares: VecDeque<oneshot::Receiver<Vec<Record>>>,
    /// The records of the shares validated so far, in order.
    records: Vec<Record>,
    /// Whether [`Validating::ready`] has completed.
    seen: bool,
    next: HashMap<(String, i32), i64>,
    skipped: HashMap<(String, i32), u64>,
}

impl Validating {
    /// Hands `received` to the validation threads, shared out among them.
    async fn start(validation: &Validation, received: Received) -> Result<Self, ValidationFailed> {
        let mut pending = VecDeque::new();
        for share in shares(received.raw, validation.threads()) {
            pending.push_back(validation.submit(move |validator| validate_on(validator, share, 1)).await?);
        }
        Ok(Validating {
            shares: pending,
            records: Vec::new(),
            seen: false,
            next: received.next.into_iter().collect(),
            skipped: received.skipped,
        })
    }

    /// Waits until every share is validated, moving each one's records into `records` as it
    /// comes. Cancel-safe, as `receive`'s select needs: a share leaves `shares` only in the
    /// same step as its records join `records`, so a wait cut short loses nothing (the first
    /// version drained `shares` into the wait, and a message arriving mid-wait dropped the
    /// batch's records while its offsets went on to be stored).
    async fn validated(&mut self) -> Result<(), ValidationFailed> {
        while let Some(share) = self.shares.front_mut() {
            let mut done = share.await.map_err(|_| ValidationFailed)?;
            self.shares.pop_front();
            if self.records.is_empty() {
                self.records = done;
            } else {
                self.records.append(&mut done);
            }
        }
        Ok(())
    }

    /// Completes once the batch in `this` is validated (keeping its records; a failure is
    /// met again by [`Validating::submit`]); never when there is none, or it was seen
    /// validated already.
    async fn ready(this: &mut Option<Validating>) {
        match this {
            Some(v) if !v.seen => {
                let _ = v.validated().await;
                v.seen = true;
            }
            _ => std::future::pending().await,
        }
    }

    /// Waits for the batch to be validated and submits it to `sink` (waiting for room there),
    /// after every batch submitted before it: it joins `storing`.
    async fn submit<S: Sink>(
        mut self,
        sink: &mut S,
        storing: &mut VecDeque<Storing<S::Error>>,
    ) -> Result<(), ValidationFailed>
    where
        S::Error: Send + 'static,
    {
        self.validated().await?;
        let records = std::mem::take(&mut self.records);
        let positions: Vec<Position> = self
            .next
            .iter()
            .map(|(at, next)| Position {
                source: position_name(&at.0, at.1),
                next: *next,
                skipped: self.skipped.get(at).copied().unwrap_or(0),
            })
            .collect();
        // Handed over whole: the writer's sink takes it to its thread without a copy.
        let pending = tokio::task::block_in_place(|| sink.submit(Batch { records, positions }));
        let task = tokio::task::spawn_blocking(pending);
        storing.push_back(Storing { task, next: self.next, lost: self.skipped.values().sum() });
        Ok(())
    }
}

/// One batch as received: the records, the next offset and the offsets skipped of each
/// partition it read, and whether the source was asked to stop meanwhile.
#[derive(Default)]
struct Received {
    raw: Vec<Incoming>,
    /// A few partitions, looked up by name for every record: a list, where a map keyed by
    /// `(String, i32)` would copy the topic's name to look it up.
    next: Vec<((String, i32), i64)>,
    skipped: HashMap<(String, i32), u64>,
    stopping: bool,
}

/// Receives one batch: up to `batch_size` records, or what came within `batch_wait` of the
/// first one (or within a second, when none came), or what came before `shutdown`. Once the
/// batch before, `validating`, is validated, the batch is cut within [`CUT_AFTER_VALIDATED`]
/// (at once if nothing came yet).
async fn receive<C: ConsumerContext + 'static>(
    messages: &mut MessageStream<'_, C>,
    config: &KafkaConfig,
    resumed: &Resumed,
    compacted: &Compacted<'_>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    validating: &mut Option<Validating>,
) -> Received {
    let mut out = Received {
        raw: Vec::with_capacity(config.batch_size),
        next: Vec::new(),
        skipped: HashMap::new(),
        stopping: false,
    };
    // One timer for the batch, not one a message: a second while none came, then the batch
    // wait from the first one (a timeout around every recv read the clock and entered the
    // timer wheel for each message).
    let until = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(until);
    while out.raw.len() < config.batch_size {
        tokio::select! {
            biased;
            _ = shutdown.as_mut() => { out.stopping = true; break; }
            () = &mut until => break,
            received = messages.next() => match received.expect("a Kafka message stream never ends") {
                Err(error) => {
                    tracing::warn!(message = "Failed to receive from Kafka; retrying.", %error);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Ok(m) => {
                    // Once a record: each `topic()` is a call into librdkafka, a strlen and a
                    // UTF-8 check.
                    let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
                    let origin = Origin::Kafka { topic: topic.to_string(), partition, offset };
                    let refused = m.payload().is_none().then(|| Rejection::NotJson {
                        message: "empty message (no payload)".into(),
                        line: 1,
                        column: 0,
                    });
                    let lost = gap(resumed, compacted, topic, partition, offset).await;
                    if lost > 0 {
                        *out.skipped.entry((topic.to_string(), partition)).or_default() += lost;
                    }
                    match out.next.iter_mut().find(|((t, p), _)| *p == partition && t == topic) {
                        Some((_, next)) => *next = offset + 1,
                        None => out.next.push(((topic.to_string(), partition), offset + 1)),
                    }
                    out.raw.push((origin, m.payload().unwrap_or_default().to_vec(), refused));
                    if out.raw.len() == 1 {
                        until.as_mut().reset(tokio::time::Instant::now() + config.batch_wait);
                    }
                }
            },
            () = Validating::ready(validating) => {
                // The batch before is ready for the sink: this one is cut soon, or now if
                // nothing came yet, so that the one before waits for no full batch wait.
                if out.raw.is_empty() {
                    break;
                }
                let soon = tokio::time::Instant::now() + CUT_AFTER_VALIDATED;
                if soon < until.deadline() {
                    until.as_mut().reset(soon);
                }
            }
        }
    }
    out
}

/// The consumer's librdkafka settings: the source's own, then the operator's
/// ([`KafkaConfig::settings`]), which win.
fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("isolation.level", "read_committed")
        // Prefetch at most 32 MB (librdkafka's default is 64 MB): a batch is 1,000 messages.
        .set("queued.max.messages.kbytes", "32768")
        // Once the prefetch queue is over its limit, librdkafka puts off each partition's next
        // fetch by this much (its default is 1 s). Under a backlog the queue fills, serve
        // drains 32 MB in about 0.7 s, and then sat idle until the second was up: stalls of
        // 0.1-0.4 s every 1-3 s on ops/bench/kafka, both cores idle. At 20 ms the next fetch
        // goes out while the queue still holds most of its 32 MB.
        .set("fetch.queue.backoff.ms", "20");
    for (k, v) in &config.settings {
        client.set(k, v);
    }
    client
}

/// Consumes until `shutdown` resolves, handing batches to `sink` ([`Sink::submit`]), at most
/// [`IN_FLIGHT`] at a time, and returns it with the progress made.
pub async fn run<S>(
    config: KafkaConfig,
    validation: Validation,
    mut sink: S,
    positions: Positions,
    shutdown: impl Future<Output = ()>,
) -> Result<(S, Progress), KafkaSourceError<S::Error>>
where
    S: Sink + Send + 'static,
    S::Error: Send,
{
    let client = client_config(&config);
    let compacted = Compacted::new(&client, &config.topics);
    let resumed = Resumed::default();
    let consumer: StreamConsumer<Resume> =
        client.create_with_context(Resume { positions, resumed: Arc::clone(&resumed), reset: reset_to(&client) })?;
    match &config.partitions {
        None => {
            let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
            consumer.subscribe(&topics)?;
            tracing::info!(message = "Subscribed.", brokers = %config.brokers, topics = ?config.topics, group = %config.group);
        }
        Some(owned) => own(&consumer, &config.topics, owned)?,
    }

    // One stream for the whole run: `recv` makes one for every message, each registering
    // its waker slot under a lock and removing it again.
    let mut messages = consumer.stream();
    let mut storing: VecDeque<Storing<S::Error>> = VecDeque::new();
    let mut validating: Option<Validating> = None;
    let mut progress = Progress::default();
    let mut reached: HashMap<(String, i32), i64> = HashMap::new();
    let started = Instant::now();
    let (mut last_log, mut last_accepted) = (Instant::now(), 0u64);
    tokio::pin!(shutdown);
    let mut stopping = false;
    loop {
        if last_log.elapsed() >= PROGRESS_EVERY {
            let lag = tokio::task::block_in_place(|| lag(&consumer, &reached));
            let rate = (progress.totals.accepted - last_accepted) as f64 / last_log.elapsed().as_secs_f64();
            tracing::info!(
                message = "Progress.",
                rate = format!("{rate:.0}/s"),
                accepted = progress.totals.accepted,
                duplicates = progress.totals.duplicates,
                quarantined = progress.totals.quarantined,
                skipped_offsets = progress.skipped,
                lag = lag.map_or_else(|| "unknown".to_string(), |l| l.to_string()),
                uptime_s = started.elapsed().as_secs()
            );
            (last_log, last_accepted) = (Instant::now(), progress.totals.accepted);
        }
        // While the batches submitted are stored and the last one received is validated, the
        // next one is received.
        // Once stopping, nothing more is received: the last pass hands over the batch still
        // being validated.
        let received = if stopping {
            Received::default()
        } else {
            receive(&mut messages, &config, &resumed, &compacted, &mut shutdown, &mut validating).await
        };
        stopping |= received.stopping;
        let cut = validating.is_some();
        if let Some(before) = validating.take() {
            settle(&mut storing, IN_FLIGHT - 1, &mut progress, &consumer, &mut reached).await?;
            before.submit(&mut sink, &mut storing).await?;
        }
        if received.raw.is_empty() {
            if stopping {
                break;
            }
            if !cut {
                // Idle: nothing comes behind the batches in flight, so wait for them.
                settle(&mut storing, 0, &mut progress, &consumer, &mut reached).await?;
            }
            continue;
        }
        validating = Some(Validating::start(&validation, received).await?);
    }
    settle(&mut storing, 0, &mut progress, &consumer, &mut reached).await?;
    // A last synchronous commit, so that the group's offsets match the ledger's positions once
    // the source stopped: a partition handed to another ledger starts there.
    if !reached.is_empty() {
        if let Err(error) = tokio::task::block_in_place(|| consumer.commit(&offsets(&reached), CommitMode::Sync)) {
            tracing::warn!(message = "Failed to commit group offsets on stopping (the ledger's positions stand).", %error);
        }
    }
    tracing::info!(
        message = "Kafka source stopped.",
        accepted = progress.totals.accepted,
        duplicates = progress.totals.duplicates,
        quarantined = progress.totals.quarantined,
        skipped_offsets = progress.skipped
    );
    Ok((sink, progress))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &[(&str, &str)]) -> KafkaConfig {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            topics: vec!["evidence".into()],
            group: "ledger".into(),
            partitions: None,
            batch_size: 1000,
            batch_wait: Duration::from_millis(100),
            settings: settings.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// `receive` gives up waiting for the batch before whenever a message comes first; the
    /// batch's records must still be there once validated.
    #[tokio::test]
    async fn a_wait_for_validation_cut_short_loses_no_record() {
        let (validated, share) = oneshot::channel();
        let mut validating = Some(Validating {
            shares: VecDeque::from([share]),
            records: Vec::new(),
            seen: false,
            next: HashMap::from([(("evidence".to_string(), 0), 1)]),
            skipped: HashMap::new(),
        });
        let cut = tokio::time::timeout(Duration::from_millis(20), Validating::ready(&mut validating)).await;
        assert!(cut.is_err(), "nothing was validated yet");
        let origin = Origin::Kafka { topic: "evidence".into(), partition: 0, offset: 0 };
        let rejection = Rejection::NotJson { message: "not JSON".into(), line: 1, column: 0 };
        let record = Record { origin, verdict: crate::Verdict::Rejected { rejection, raw: b"x".to_vec() } };
        validated.send(vec![record]).unwrap();
        Validating::ready(&mut validating).await;
        let validating = validating.unwrap();
        assert_eq!(validating.records.len(), 1, "the record validated after the wait was cut short");
        assert!(validating.seen);
    }

    #[test]
    fn the_consumer_refetches_soon_after_its_queue_drains_unless_the_operator_says_otherwise() {
        let ours = client_config(&config(&[]));
        assert_eq!(ours.get("fetch.queue.backoff.ms"), Some("20"));
        assert_eq!(ours.get("enable.auto.commit"), Some("false"));
        let theirs = client_config(&config(&[("fetch.queue.backoff.ms", "1000"), ("security.protocol", "ssl")]));
        assert_eq!(theirs.get("fetch.queue.backoff.ms"), Some("1000"));
        assert_eq!(theirs.get("security.protocol"), Some("ssl"));
        assert_eq!(theirs.get("group.id"), Some("ledger"));
    }
}
