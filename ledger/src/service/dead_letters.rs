//! The dead-letter outbox: quarantine records produced to a Kafka topic from a cursor kept in
//! the ledger, which moves only past the records the broker acknowledged. A bad message is
//! quarantined in the same durable batch as its position; a crash between that and the
//! forwarding sends them again; nothing is lost.

use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::ledger::Ledger;
use crate::log::LogError;
use crate::store::Storage;

/// Why forwarding stopped; it is retried after the next batch.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    /// The ledger failed (reading the records or moving the cursor), or a record is damaged.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The broker refused or lost a record.
    #[error("the dead-letter topic {topic} did not take record {number}: {message}")]
    Broker {
        /// The topic.
        topic: String,
        /// The quarantine record's number.
        number: u64,
        /// What the producer said.
        message: String,
    },
}

/// Produces quarantine records from the outbox cursor on to `topic`; moves the cursor past
/// those the broker acknowledged.
/// Runs on the writer thread, outside the runtime: `runtime` waits for the delivery reports.
pub(super) fn forward<S: Storage>(
    ledger: &mut Ledger<S>,
    producer: &FutureProducer,
    topic: &str,
    runtime: &tokio::runtime::Handle,
) -> Result<(), DeadLetterError> {
    loop {
        let cursor = ledger.dead_letter_cursor()?;
        let records = ledger.quarantine(cursor, 500)?;
        if records.is_empty() {
            return Ok(());
        }
        // Enqueue them all, then wait for every delivery report.
        let mut pending = Vec::with_capacity(records.len());
        for r in &records {
            let payload = r.payload()?;
            let headers = OwnedHeaders::new()
                .insert(Header { key: "evidence-reason", value: Some(r.reason.as_str()) })
                .insert(Header { key: "evidence-origin", value: Some(r.origin.as_str()) })
                .insert(Header { key: "evidence-quarantine-number", value: Some(&r.number.to_string()) });
            let mut record = FutureRecord::to(topic).payload(&payload).key(&r.origin).headers(headers);
            loop {
                match producer.send_result(record) {
                    Ok(delivery) => break pending.push(delivery),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err((e, _)) => {
                        let message = e.to_string();
                        return Err(DeadLetterError::Broker { topic: topic.into(), number: r.number, message });
                    }
                }
            }
        }
        let results: Vec<Result<(), String>> = runtime.block_on(async {
            let mut out = Vec::with_capacity(pending.len());
            for delivery in pending {
                out.push(match delivery.await {
                    Ok(Ok(_)) => Ok(()),
                    Ok(Err((e, _))) => Err(e.to_string()),
                    Err(_) => Err("the delivery report was lost".to_string()),
                });
            }
            out
        });
        let delivered = results.iter().take_while(|r| r.is_ok()).count();
        ledger.set_dead_letter_cursor(cursor + delivered as u64)?;
        if let Some(Err(message)) = results.into_iter().find(|r| r.is_err()) {
            return Err(DeadLetterError::Broker { topic: topic.into(), number: cursor + delivered as u64, message });
        }
    }
}
