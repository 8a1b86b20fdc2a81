//! `evidence serve`'s configuration: flags, then environment variables, then a TOML file
//! (`--config`), then defaults, in that order of precedence; `ops/README.md` is the reference.
//! The defaults are the ones every intake shares ([`IngestOptions`], [`CheckpointPolicy`]).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use evidence_ingest::kafka::KafkaConfig;
use serde::Deserialize;

use crate::ledger::IngestOptions;
use crate::log::CheckpointPolicy;

/// A configuration that cannot be used, in a sentence.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file cannot be read or parsed.
    #[error("{} is not a valid config file: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// No brokers anywhere.
    #[error("No Kafka brokers: set --kafka-brokers, EVIDENCE_KAFKA_BROKERS or [kafka] brokers in the config file.")]
    NoBrokers,
    /// No topics anywhere.
    #[error("No topics: set --topics, EVIDENCE_TOPICS or [kafka] topics.")]
    NoTopics,
    /// A `--kafka-setting` without `=`.
    #[error("--kafka-setting {0:?} is not KEY=VALUE")]
    Setting(String),
    /// A batch size out of range.
    #[error("the batch size {0} is out of range: 1 to {max}", max = IngestOptions::MAX_BATCH_SIZE)]
    BatchSize(usize),
}

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
    /// Events per durable batch (default 1000, [`IngestOptions::DEFAULT_BATCH_SIZE`]).
    #[arg(long, env = "EVIDENCE_BATCH_SIZE")]
    pub batch_size: Option<usize>,
    /// How long a batch may wait to fill, in milliseconds (default 200).
    #[arg(long, env = "EVIDENCE_BATCH_WAIT_MS")]
    pub batch_wait_ms: Option<u64>,
    /// Cut a checkpoint after this many new entries (default 10000, [`CheckpointPolicy::DEFAULT_EVERY`]).
    #[arg(long, env = "EVIDENCE_CHECKPOINT_EVERY")]
    pub checkpoint_every: Option<u64>,
    /// Cut a checkpoint when this many seconds have passed with new entries (default 10,
    /// [`CheckpointPolicy::DEFAULT_INTERVAL_SECS`]).
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
    pub fn resolve(&self) -> Result<ServeConfig, ConfigError> {
        let file: ConfigFile = match &self.config {
            None => ConfigFile::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?;
                toml::from_str(&text).map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?
            }
        };
        let brokers = self.kafka_brokers.clone().or(file.kafka.brokers).ok_or(ConfigError::NoBrokers)?;
        let topics = if self.topics.is_empty() { file.kafka.topics } else { self.topics.clone() };
        if topics.is_empty() {
            return Err(ConfigError::NoTopics);
        }
        let mut settings: Vec<(String, String)> = file.kafka.settings.into_iter().collect();
        for kv in &self.kafka_settings {
            let (k, v) = kv.split_once('=').ok_or_else(|| ConfigError::Setting(kv.clone()))?;
            settings.push((k.to_string(), v.to_string()));
        }
        let batch_size = self.batch_size.or(file.kafka.batch_size).unwrap_or(IngestOptions::DEFAULT_BATCH_SIZE);
        if !(1..=IngestOptions::MAX_BATCH_SIZE).contains(&batch_size) {
            return Err(ConfigError::BatchSize(batch_size));
        }
        Ok(ServeConfig {
            kafka: KafkaConfig {
                brokers,
                topics,
                group: self.group.clone().or(file.kafka.group).unwrap_or_else(|| "evidence-ledger".into()),
                batch_size,
                batch_wait: Duration::from_millis(self.batch_wait_ms.or(file.kafka.batch_wait_ms).unwrap_or(200)),
                settings,
            },
            dead_letter_topic: self.dead_letter_topic.clone().or(file.kafka.dead_letter_topic),
            checkpoints: CheckpointPolicy::new(
                self.checkpoint_every.or(file.checkpoint.every),
                self.checkpoint_interval_secs.or(file.checkpoint.interval_secs),
            ),
        })
    }
}
