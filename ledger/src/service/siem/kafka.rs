//! The Kafka sink: each alert change as an OCSF Detection Finding, one message each, keyed by
//! the alert's id (so that one alert's changes stay in one partition, in order). A batch is
//! acknowledged when the broker acknowledged every message of it (`acks=all`, one request in
//! flight per connection, so that retries keep the order); a message the producer could not
//! deliver within its timeout fails the batch, which is sent again through a new producer.
//! (No idempotent producer: at-least-once allows the repeats it would save, and a broker that
//! restarted without the producer's state refuses its sequence numbers with an unknown error,
//! which no retry of the same producer gets past.)

use std::time::Duration;

use chrono::Utc;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::ClientConfig;

use super::{ocsf, Deliver, SinkError};
use crate::governance::outbox::Change;

/// How long the producer tries to deliver a message before it reports a failure.
const MESSAGE_TIMEOUT_MS: &str = "10000";

/// The Kafka sink.
pub(crate) struct KafkaSink {
    producer: FutureProducer,
    config: ClientConfig,
    topic: String,
    runtime: tokio::runtime::Handle,
}

impl KafkaSink {
    /// A producer to `topic` on `brokers`, with librdkafka `settings`. Made within the
    /// service's runtime.
    pub(crate) fn new(brokers: &str, topic: &str, settings: &[(String, String)]) -> Result<Self, SinkError> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", brokers)
            .set("acks", "all")
            .set("max.in.flight.requests.per.connection", "1")
            .set("message.timeout.ms", MESSAGE_TIMEOUT_MS);
        for (k, v) in settings {
            client.set(k, v);
        }
        let producer = client.create().map_err(|e| SinkError(format!("cannot create the SIEM Kafka producer: {e}")))?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| SinkError(format!("the SIEM Kafka producer needs the service's runtime: {e}")))?;
        Ok(KafkaSink { producer, config: client, topic: topic.to_string(), runtime })
    }

    /// After a failed batch, a new producer, which the batch is sent again through: whatever
    /// state the old one held about the broker (a connection to a broker that restarted, an
    /// error it keeps returning) goes with it.
    fn renew(&mut self) {
        match self.config.create() {
            Ok(producer) => self.producer = producer,
            Err(error) => tracing::warn!(message = "Cannot make a new SIEM Kafka producer; will retry.", %error),
        }
    }
}

impl Deliver for KafkaSink {
    fn deliver(&mut self, origin: &str, changes: &[Change]) -> Result<(), String> {
        let sent = self.send(origin, changes);
        if sent.is_err() {
            self.renew();
        }
        sent
    }
}

impl KafkaSink {
    fn send(&mut self, origin: &str, changes: &[Change]) -> Result<(), String> {
        let now = Utc::now().timestamp_millis();
        let mut pending = Vec::with_capacity(changes.len());
        for change in changes {
            let doc = serde_json::to_vec(&ocsf::document(origin, change, now)).expect("a JSON value serializes");
            let record = FutureRecord::to(&self.topic).key(&change.alert.id).payload(&doc);
            let sent = self.producer.send_result(record).map_err(|(e, _)| format!("cannot queue an alert: {e}"))?;
            pending.push(sent);
        }
        let topic = &self.topic;
        self.runtime.block_on(async {
            for sent in pending {
                match sent.await {
                    Ok(Ok(_)) => {}
                    Ok(Err((e, _))) => return Err(format!("the broker did not take an alert for {topic}: {e}")),
                    Err(_) => return Err(format!("the producer for {topic} dropped an alert")),
                }
            }
            Ok(())
        })
    }
}

impl Drop for KafkaSink {
    fn drop(&mut self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}
