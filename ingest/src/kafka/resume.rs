//! Where each partition starts and what a resume skipped: steps 2 and 5 of the source's
//! contract ([`super`]). Partitions start at the positions the sink stored ([`Resume`], also
//! for a fixed set of partitions, [`own`]); the first record after a resume tells whether
//! records were lost before the ledger read them ([`gap`]), except on compacted topics.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

use super::Positions;

/// Partitions whose first record after an assignment is yet to come, with the stored position
/// they were started at.
pub(super) type Resumed = Arc<Mutex<HashMap<(String, i32), i64>>>;

pub(super) struct Resume {
    pub(super) positions: Positions,
    pub(super) resumed: Resumed,
    /// Where a partition starts that has neither a stored position nor a committed group
    /// offset ([`reset_to`]).
    pub(super) reset: Option<Offset>,
}

/// The end of a partition that `auto.offset.reset`, as `client` leaves it, starts it at when
/// it has no committed offset; none for `error` (librdkafka then reports it).
pub(super) fn reset_to(client: &ClientConfig) -> Option<Offset> {
    match client.get("auto.offset.reset")? {
        "smallest" | "earliest" | "beginning" => Some(Offset::Beginning),
        "largest" | "latest" | "end" => Some(Offset::End),
        _ => None,
    }
}

impl ClientContext for Resume {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(message = "Kafka client error; librdkafka keeps retrying.", %error, reason);
    }
}

impl Resume {
    /// Starts each partition of `tpl` at the position the sink stored for it; the others at
    /// the group's committed offset or, with none, at the end [`Resume::reset`] names.
    fn resume<C: Consumer<Self>>(&self, consumer: &C, tpl: &mut TopicPartitionList) {
        let parts: Vec<(String, i32)> = tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
        let mut fresh = TopicPartitionList::new();
        {
            let mut resumed = self.resumed.lock().unwrap_or_else(|e| e.into_inner());
            for (topic, partition) in parts {
                match (self.positions)(&topic, partition) {
                    Some(next) => {
                        let _ = tpl.set_partition_offset(&topic, partition, Offset::Offset(next));
                        resumed.insert((topic, partition), next);
                    }
                    None => {
                        fresh.add_partition(&topic, partition);
                    }
                }
            }
        }
        match self.reset {
            Some(reset) if fresh.count() > 0 => start_fresh(consumer, tpl, fresh, reset),
            _ => {}
        }
    }
}

/// Starts each partition of `fresh` (also in `tpl`) at the group's committed offset, asked
/// here, or at `reset` when the group has none. librdkafka, left to do it, asks the group
/// too, but starts a partition the group has no offset for through a timer of 100 ms
/// (`rd_kafka_offset_reset`: `err ? 100 : 0`), on every start of a fresh ledger, where a
/// named end starts at once. When the group does not answer, librdkafka's own way is left
/// to start them.
fn start_fresh<C: Consumer<Resume>>(
    consumer: &C,
    tpl: &mut TopicPartitionList,
    fresh: TopicPartitionList,
    reset: Offset,
) {
    let asked = tokio::task::block_in_place(|| consumer.committed_offsets(fresh, Duration::from_secs(5)));
    match asked {
        Ok(committed) => {
            for e in committed.elements() {
                let start = match e.offset() {
                    Offset::Offset(n) if n >= 0 => Offset::Offset(n),
                    _ => reset,
                };
                let _ = tpl.set_partition_offset(e.topic(), e.partition(), start);
            }
        }
        Err(error) => {
            tracing::debug!(message = "Cannot ask the group for its committed offsets; librdkafka will.", %error);
        }
    }
}

impl ConsumerContext for Resume {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(consumer.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.resume(consumer, tpl);
                tracing::info!(
                    message = "Partitions assigned; resuming from the ledger's positions.",
                    partitions = tpl.count()
                );
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                tracing::info!(message = "Partitions revoked.", partitions = tpl.count());
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
            other => {
                tracing::warn!(message = "Rebalance error.", error = ?other);
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::warn!(message = "Failed to apply the partition assignment.", %error);
        }
    }
}

/// Which of the source's topics are compacted, asked of the broker the first time a partition
/// shows a gap: a ledger that loses nothing never asks, and a start does not wait for the
/// answer (an admin client and a round trip, about 0.1 s here).
pub(super) struct Compacted<'a> {
    client: &'a ClientConfig,
    topics: &'a [String],
    known: tokio::sync::OnceCell<HashSet<String>>,
}

impl<'a> Compacted<'a> {
    pub(super) fn new(client: &'a ClientConfig, topics: &'a [String]) -> Self {
        Compacted { client, topics, known: tokio::sync::OnceCell::new() }
    }

    async fn contains(&self, topic: &str) -> bool {
        self.known.get_or_init(|| compacted_topics(self.client, self.topics)).await.contains(topic)
    }
}

/// The topics among `topics` whose `cleanup.policy` includes `compact`. A broker that does not
/// answer (or does not report the setting) yields none: gaps are then reported, erring loud.
async fn compacted_topics(client: &ClientConfig, topics: &[String]) -> HashSet<String> {
    let specs: Vec<ResourceSpecifier<'_>> = topics.iter().map(|t| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let asked = match client.create::<AdminClient<DefaultClientContext>>() {
        Ok(admin) => admin.describe_configs(&specs, &options).await,
        Err(error) => Err(error),
    };
    let results = match asked {
        Ok(results) => results,
        Err(error) => {
            tracing::warn!(message = "Cannot ask the broker which topics are compacted; gaps on all are reported.", %error);
            return HashSet::new();
        }
    };
    let mut compacted = HashSet::new();
    for resource in results.into_iter().flatten() {
        let policy = resource.get("cleanup.policy").and_then(|e| e.value.clone()).unwrap_or_default();
        if let rdkafka::admin::OwnedResourceSpecifier::Topic(topic) = resource.specifier {
            if policy.contains("compact") {
                compacted.insert(topic);
            }
        }
    }
    compacted
}

/// Assigns `partitions` of every topic to `consumer`, each started where the sink left it (or
/// at the group's committed offset, or the earliest), and warns of any the broker does not
/// know: librdkafka waits for those to appear.
pub(super) fn own(consumer: &StreamConsumer<Resume>, topics: &[String], partitions: &[i32]) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics {
        for &partition in partitions {
            tpl.add_partition_offset(topic, partition, Offset::Stored)?;
        }
        let known = tokio::task::block_in_place(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(5)));
        let count = known.ok().and_then(|m| m.topics().first().map(|t| t.partitions().len() as i32));
        if let Some(count) = count.filter(|&c| c > 0) {
            let missing: Vec<i32> = partitions.iter().copied().filter(|&p| p >= count).collect();
            if !missing.is_empty() {
                tracing::warn!(message = "Partitions owned that the topic does not have (yet); they are read once they exist.", topic, partitions = ?missing, topic_partitions = count);
            }
        }
    }
    consumer.context().resume(consumer, &mut tpl);
    consumer.assign(&tpl)?;
    tracing::info!(message = "Owning partitions; resuming from the ledger's positions.", topics = ?topics, partitions = ?partitions);
    Ok(())
}

/// The offsets a partition skipped if `offset` is its first record since it was resumed at a
/// stored position; 0 otherwise. Called for every record: once every resumed partition has
/// shown its first one, it only looks at an empty map.
pub(super) async fn gap(resumed: &Resumed, compacted: &Compacted<'_>, topic: &str, partition: i32, offset: i64) -> u64 {
    let resumed_at = {
        let mut resumed = resumed.lock().unwrap_or_else(|e| e.into_inner());
        if resumed.is_empty() {
            return 0;
        }
        resumed.remove(&(topic.to_string(), partition))
    };
    let Some(start) = resumed_at else { return 0 };
    if offset <= start || compacted.contains(topic).await {
        return 0;
    }
    let skipped = (offset - start) as u64;
    tracing::warn!(
        message = "Offsets skipped: the partition's first record after resuming is past the ledger's position; records were lost before the ledger read them (on a transactional topic, these may be commit markers).",
        topic,
        partition,
        position = start,
        first_offset = offset,
        skipped
    );
    skipped
}
