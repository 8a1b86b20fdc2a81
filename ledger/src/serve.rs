//! `evidence serve`: Kafka ingest into the ledger (the log, with views and rules following it;
//! alerts are logged as they are raised), periodic checkpoints, dead-letter forwarding,
//! progress logs, and a clean stop on SIGTERM or SIGINT (the batch in hand is stored and its
//! offsets committed before exit).
//!
//! Configuration comes from flags, then environment variables, then a TOML file (`--config`),
//! then defaults, in that order of precedence; `ops/README.md` is the reference.
//!
//! Dead letters use an outbox: a bad message is quarantined in the same durable batch as its
//! position, and quarantine records are then produced to the dead-letter topic from a cursor
//! kept in the ledger, which moves only after the broker acknowledged them. A crash between the
//! two sends them again; nothing is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::Args;
use evidence_ingest::kafka::{self, position_name, KafkaConfig, Positions};
use evidence_schemas::Validator;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::log::{read_position, Log};
use crate::storage::SledStorage;
use crate::{CheckpointPolicy, Ledger};

/// `evidence serve` options. Unset ones fall back to the environment, the config file, then the
/// defaults.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// A TOML config file.
    #[arg(long, env = "EVIDENCE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kafka bootstrap servers, HOST:PORT[,HOST:PORT...].
    #[arg(long, env = "EVIDENCE_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Topics to consume, comma-separated.
    #[arg(long, env = "EVIDENCE_TOPICS", value_delimiter = ',')]
    pub topics: Vec<String>,
    /// Consumer group (default "evidence-ledger").
    #[arg(long, env = "EVIDENCE_GROUP")]
    pub group: Option<String>,
    /// Topic to produce rejected messages to, with the reason in a header.
    #[arg(long, env = "EVIDENCE_DEAD_LETTER_TOPIC")]
    pub dead_letter_topic: Option<String>,
    /// A librdkafka setting passed through as it is (SASL, TLS, ...); repeatable.
    #[arg(long = "kafka-setting", value_name = "KEY=VALUE")]
    pub kafka_settings: Vec<String>,
    /// Events per durable batch (default 1000).
    #[arg(long, env = "EVIDENCE_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// How long a batch may wait to fill, in milliseconds (default 200).
    #[arg(long, env = "EVIDENCE_BATCH_WAIT_MS")]
    pub batch_wait_ms: Option<u64>,
    /// Cut a checkpoint after this many new entries (default 10000).
    #[arg(long, env = "EVIDENCE_CHECKPOINT_EVERY")]
    pub checkpoint_every: Option<u64>,
    /// Cut a checkpoint when this many seconds have passed with new entries (default 10).
    #[arg(long, env = "EVIDENCE_CHECKPOINT_INTERVAL_SECS")]
    pub checkpoint_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    kafka: KafkaSection,
    #[serde(default)]
    checkpoint: CheckpointSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSection {
    brokers: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    group: Option<String>,
    dead_letter_topic: Option<String>,
    batch_size: Option<usize>,
    batch_wait_ms: Option<u64>,
    #[serde(default)]
    settings: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointSection {
    every: Option<u64>,
    interval_secs: Option<u64>,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Kafka consumption.
    pub kafka: KafkaConfig,
    /// Where rejected messages go, if anywhere.
    pub dead_letter_topic: Option<String>,
    /// When to cut checkpoints.
    pub checkpoints: CheckpointPolicy,
}

impl ServeArgs {
    /// Flags and environment over the config file over the defaults.
    pub fn resolve(&self) -> anyhow::Result<ServeConfig> {
        let file: ConfigFile = match &self.config {
            None => ConfigFile::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("Cannot read {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("{} is not a valid config file", path.display()))?
            }
        };
        let brokers = self.kafka_brokers.clone().or(file.kafka.brokers).context(
            "No Kafka brokers: set --kafka-brokers, EVIDENCE_KAFKA_BROKERS or [kafka] brokers in the config file.",
        )?;
        let topics = if self.topics.is_empty() { file.kafka.topics } else { self.topics.clone() };
        anyhow::ensure!(!topics.is_empty(), "No topics: set --topics, EVIDENCE_TOPICS or [kafka] topics.");
        let mut settings: Vec<(String, String)> = file.kafka.settings.into_iter().collect();
        for kv in &self.kafka_settings {
            let (k, v) = kv.split_once('=').with_context(|| format!("--kafka-setting {kv:?} is not KEY=VALUE"))?;
            settings.push((k.to_string(), v.to_string()));
        }
        Ok(ServeConfig {
            kafka: KafkaConfig {
                brokers,
                topics,
                group: self.group.clone().or(file.kafka.group).unwrap_or_else(|| "evidence-ledger".into()),
                batch_size: self.batch_size.or(file.kafka.batch_size).unwrap_or(1000).max(1),
                batch_wait: Duration::from_millis(self.batch_wait_ms.or(file.kafka.batch_wait_ms).unwrap_or(200)),
                settings,
            },
            dead_letter_topic: self.dead_letter_topic.clone().or(file.kafka.dead_letter_topic),
            checkpoints: CheckpointPolicy {
                every_entries: self.checkpoint_every.or(file.checkpoint.every).unwrap_or(10_000).max(1),
                interval: Duration::from_secs(
                    self.checkpoint_interval_secs.or(file.checkpoint.interval_secs).unwrap_or(10),
                ),
            },
        })
    }
}

/// Produces quarantine records from the outbox cursor on to the dead-letter topic; moves the
/// cursor past those the broker acknowledged.
fn forward_dead_letters(log: &mut Log<SledStorage>, producer: &FutureProducer, topic: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Handle::current();
    loop {
        let cursor = log.dead_letter_cursor()?;
        let records = log.quarantine(cursor, 500)?;
        if records.is_empty() {
            return Ok(());
        }
        // Enqueue them all, then wait for every delivery report.
        let mut pending = Vec::with_capacity(records.len());
        for r in &records {
            let payload = match r.raw_encoding.as_str() {
                "base64" => B64.decode(&r.raw).unwrap_or_default(),
                _ => r.raw.clone().into_bytes(),
            };
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
                    Err((e, _)) => anyhow::bail!("cannot produce to the dead-letter topic {topic}: {e}"),
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
        log.set_dead_letter_cursor(cursor + delivered as u64)?;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            anyhow::bail!("the dead-letter topic {topic} did not take record {}: {e}", cursor + delivered as u64);
        }
    }
}

/// Logs an alert as it is raised (the SIEM sinks read the stored alerts).
pub fn log_alert(alert: &crate::Alert) {
    tracing::warn!(
        message = "Alert raised.",
        id = %alert.id,
        rule = %alert.rule,
        severity = ?alert.severity,
        entries = ?alert.entries,
        explanation = %alert.explanation
    );
}

/// Runs the service until SIGTERM or SIGINT.
pub fn run(ledger: Ledger<SledStorage>, config: ServeConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let store = ledger.log().store().clone();
        let positions: Positions =
            Arc::new(move |topic, partition| read_position(&store, &position_name(topic, partition)).ok().flatten());
        let dead_letters = match &config.dead_letter_topic {
            None => None,
            Some(topic) => {
                let mut client = ClientConfig::new();
                client.set("bootstrap.servers", &config.kafka.brokers).set("enable.idempotence", "true");
                for (k, v) in &config.kafka.settings {
                    client.set(k, v);
                }
                let producer: FutureProducer = client.create().context("Cannot create the dead-letter producer")?;
                Some((producer, topic.clone()))
            }
        };
        let after_batch = move |ledger: &mut Ledger<SledStorage>, _: &kafka::Progress| {
            let log = ledger.log_mut();
            if let Err(error) = log.maybe_checkpoint() {
                tracing::error!(message = "Failed to cut a checkpoint.", %error);
            }
            if let Some((producer, topic)) = &dead_letters {
                if let Err(error) = forward_dead_letters(log, producer, topic) {
                    tracing::warn!(message = "Failed to forward dead letters; will retry.", %error);
                }
            }
        };
        let shutdown = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("a SIGTERM handler can be installed");
            tokio::select! {
                _ = term.recv() => tracing::info!(message = "SIGTERM: finishing the batch in hand."),
                _ = tokio::signal::ctrl_c() => tracing::info!(message = "SIGINT: finishing the batch in hand."),
            }
        };
        let validator = Arc::new(Validator::default());
        let (mut ledger, progress) =
            kafka::run(config.kafka.clone(), validator, ledger, positions, after_batch, shutdown)
                .await
                .context("Kafka ingest stopped")?;
        let log = ledger.log_mut();
        log.checkpoint_now()?;
        tracing::info!(
            message = "Stopped cleanly.",
            entries = log.size(),
            accepted = progress.totals.accepted,
            duplicates = progress.totals.duplicates,
            quarantined = progress.totals.quarantined
        );
        anyhow::Ok(())
    })
}
