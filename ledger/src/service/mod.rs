//! The service: `evidence serve`. Kafka ingest into the ledger (the log, with views and rules
//! following it; alerts are logged as they are raised), periodic checkpoints, dead-letter
//! forwarding, progress logs, and a clean stop on SIGTERM or SIGINT (the batch in hand is
//! stored and its offsets committed before exit). It runs on any [`Storage`], so it can be
//! tested on the in-memory engine too.
//!
//! Files: `config` (flags, environment, file, defaults), `dead_letters` (the outbox). This
//! module wires sources to [`Ledger`]; it appends through nothing else.

mod config;
mod dead_letters;

use std::sync::Arc;

use evidence_ingest::kafka::{self, position_name, KafkaSourceError, Positions};
use evidence_schemas::Validator;
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

pub use self::config::{ConfigError, ServeArgs, ServeConfig};
pub use self::dead_letters::DeadLetterError;
use crate::governance::Alert;
use crate::ledger::Ledger;
use crate::log::{read_position, LogError};
use crate::store::Storage;

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The dead-letter producer could not be made.
    #[error("Cannot create the dead-letter producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    /// Kafka ingest stopped.
    #[error("Kafka ingest stopped: {0}")]
    Kafka(#[from] KafkaSourceError<LogError>),
    /// The final checkpoint could not be cut.
    #[error("the final checkpoint could not be cut: {0}")]
    Checkpoint(#[from] LogError),
}

/// Logs an alert as it is raised (the SIEM sinks read the stored alerts).
pub fn log_alert(alert: &Alert) {
    tracing::warn!(
        message = "Alert raised.",
        id = %alert.id,
        rule = %alert.rule,
        severity = ?alert.severity,
        entries = ?alert.entries,
        explanation = %alert.explanation
    );
}

fn dead_letter_producer(config: &ServeConfig) -> Result<Option<(FutureProducer, String)>, ServeError> {
    let Some(topic) = &config.dead_letter_topic else { return Ok(None) };
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &config.kafka.brokers).set("enable.idempotence", "true");
    for (k, v) in &config.kafka.settings {
        client.set(k, v);
    }
    Ok(Some((client.create()?, topic.clone())))
}

/// Completes on SIGTERM or SIGINT. Should the SIGTERM handler not install, that is logged and
/// SIGINT alone stops the service.
async fn shutdown() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let mut term = match term {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(message = "Cannot handle SIGTERM; only SIGINT stops the service.", %error);
            let _ = tokio::signal::ctrl_c().await;
            return tracing::info!(message = "SIGINT: finishing the batch in hand.");
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(message = "SIGTERM: finishing the batch in hand."),
        _ = tokio::signal::ctrl_c() => tracing::info!(message = "SIGINT: finishing the batch in hand."),
    }
}

/// Runs the service until SIGTERM or SIGINT.
pub fn run<S: Storage>(ledger: Ledger<S>, config: ServeConfig) -> Result<(), ServeError> {
    run_until(ledger, config, shutdown()).map(drop)
}

/// Runs the service until `stop` completes, then stores the batch in hand, cuts a checkpoint
/// and returns the ledger.
pub fn run_until<S: Storage>(
    ledger: Ledger<S>,
    config: ServeConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Ledger<S>, ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let store = ledger.log().shared_store();
        let positions: Positions =
            Arc::new(move |topic, partition| read_position(&*store, &position_name(topic, partition)).ok().flatten());
        let dead_letters = dead_letter_producer(&config)?;
        let after_batch = move |ledger: &mut Ledger<S>, _: &kafka::Progress| {
            if let Err(error) = ledger.maybe_checkpoint() {
                tracing::error!(message = "Failed to cut a checkpoint.", %error);
            }
            if let Some((producer, topic)) = &dead_letters {
                if let Err(error) = dead_letters::forward(ledger, producer, topic) {
                    tracing::warn!(message = "Failed to forward dead letters; will retry.", %error);
                }
            }
        };
        let validator = Arc::new(Validator::default());
        let (mut ledger, progress) =
            kafka::run(config.kafka.clone(), validator, ledger, positions, after_batch, stop).await?;
        ledger.checkpoint_now()?;
        tracing::info!(
            message = "Stopped cleanly.",
            entries = ledger.log().size(),
            accepted = progress.totals.accepted,
            duplicates = progress.totals.duplicates,
            quarantined = progress.totals.quarantined
        );
        Ok(ledger)
    })
}
