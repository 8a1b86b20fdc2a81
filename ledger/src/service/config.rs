//! `evidence serve`'s configuration: flags, then environment variables, then a TOML file
//! (`--config`), then defaults, in that order of precedence; `ops/README.md` is the reference.
//! The defaults are the ones every intake shares ([`IngestOptions`], [`CheckpointPolicy`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use evidence_ingest::kafka::KafkaConfig;
use serde::Deserialize;

use super::http::{HttpLimits, TlsFiles};
use super::siem::{SiemArgs, SiemConfig, SiemSection};
use super::tokens::TokenFile;
use crate::ledger::IngestOptions;
use crate::log::CheckpointPolicy;

/// The file in the data directory that names the running service (see [`ServeConfig::announce`]).
pub const ANNOUNCE_FILE: &str = "serve.json";

/// Where `evidence serve` listens unless told otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8700";

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
    /// Brokers without topics.
    #[error("Kafka brokers are set but no topics: set --topics, EVIDENCE_TOPICS or [kafka] topics.")]
    NoTopics,
    /// A Kafka option without brokers, which would otherwise be ignored.
    #[error(
        "{0} is a Kafka option, but no Kafka brokers are set: set --kafka-brokers, \
         EVIDENCE_KAFKA_BROKERS or [kafka] brokers, or leave it out."
    )]
    NoBrokers(&'static str),
    /// A listen address that is not one.
    #[error("--listen {0:?} is not an address such as 127.0.0.1:8700")]
    Listen(String),
    /// One of the TLS files without the other.
    #[error("--tls-cert and --tls-key go together: give both, or neither for plain HTTP")]
    Tls,
    /// A limit of zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// A `--kafka-setting` without `=`.
    #[error("--kafka-setting {0:?} is not KEY=VALUE")]
    Setting(String),
    /// A SIEM sink that cannot be used, in a sentence.
    #[error("{0}")]
    Siem(String),
    /// A `--witness` that cannot be used, in a sentence.
    #[error("{0}")]
    Witness(String),
    /// A partition list with a negative or repeated number.
    #[error("--partitions {0:?}: partitions are numbers from 0, each named once")]
    Partitions(Vec<i32>),
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
    /// Read only these partitions of the topics, comma-separated (for example `0,1`), instead
    /// of those the consumer group assigns: this ledger is the shard that owns them.
    #[arg(long, env = "EVIDENCE_PARTITIONS", value_delimiter = ',')]
    pub partitions: Vec<i32>,
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
    /// Where the HTTP API listens, HOST:PORT (default 127.0.0.1:8700; port 0 picks a free one).
    #[arg(long, env = "EVIDENCE_LISTEN")]
    pub listen: Option<String>,
    /// Largest request body in bytes (default 16 MiB); larger ones are answered 413.
    #[arg(long, env = "EVIDENCE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Most events in one request (default 10000); more are answered 413.
    #[arg(long, env = "EVIDENCE_MAX_EVENTS_PER_REQUEST")]
    pub max_events_per_request: Option<usize>,
    /// Seconds a client may take to send a request's headers (default 10); then the
    /// connection is closed.
    #[arg(long, env = "EVIDENCE_HEADER_TIMEOUT_SECS")]
    pub header_timeout_secs: Option<u64>,
    /// Seconds a request may take, body included (default 30); then it is answered 408.
    #[arg(long, env = "EVIDENCE_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Most open connections (default 1024); more are answered 503 and closed.
    #[arg(long, env = "EVIDENCE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Requests waiting for the writer before intake answers 503 (default 64).
    #[arg(long, env = "EVIDENCE_WRITE_QUEUE")]
    pub write_queue: Option<usize>,
    /// Serve /metrics without a token.
    #[arg(long, env = "EVIDENCE_METRICS_OPEN")]
    pub metrics_open: bool,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key).
    #[arg(long, env = "EVIDENCE_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "EVIDENCE_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Seconds between self-audits of the whole log (default 3600; one runs at start).
    #[arg(long, env = "EVIDENCE_SELF_AUDIT_INTERVAL_SECS")]
    pub self_audit_interval_secs: Option<u64>,
    /// Where alerts go.
    #[command(flatten)]
    pub siem: SiemArgs,
    /// A witness to submit each new checkpoint to, as URL=WITNESS-KEY (its add-checkpoint is
    /// at URL/add-checkpoint; its cosignatures must verify with the key). Repeat for more.
    #[arg(long = "witness", env = "EVIDENCE_WITNESSES", value_delimiter = ',', value_name = "URL=WITNESS-KEY")]
    pub witnesses: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    kafka: KafkaSection,
    #[serde(default)]
    checkpoint: CheckpointSection,
    #[serde(default)]
    http: HttpSection,
    #[serde(default)]
    self_audit: SelfAuditSection,
    #[serde(default)]
    siem: SiemSection,
    #[serde(default)]
    witness: WitnessSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessSection {
    #[serde(default)]
    submit: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelfAuditSection {
    interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpSection {
    listen: Option<String>,
    max_body_bytes: Option<usize>,
    max_events_per_request: Option<usize>,
    header_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    write_queue: Option<usize>,
    metrics_open: Option<bool>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSection {
    brokers: Option<String>,
    #[serde(default)]
    topics: Vec<String>,
    group: Option<String>,
    partitions: Option<Vec<i32>>,
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

/// The HTTP server's configuration.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Where it listens.
    pub listen: SocketAddr,
    /// Client limits.
    pub limits: HttpLimits,
    /// Whether `/metrics` answers without a token.
    pub metrics_open: bool,
    /// The certificate and key to serve HTTPS with, if any.
    pub tls: Option<TlsFiles>,
}

impl HttpConfig {
    /// On `listen`, with the default limits, `/metrics` behind a token, plain HTTP.
    pub fn on(listen: SocketAddr) -> Self {
        HttpConfig { listen, limits: HttpLimits::default(), metrics_open: false, tls: None }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Kafka consumption, when brokers are configured.
    pub kafka: Option<KafkaConfig>,
    /// The HTTP API.
    pub http: HttpConfig,
    /// The bearer tokens.
    pub tokens: TokenFile,
    /// Where to write the service's process id and URL while it runs (`<data-dir>/serve.json`),
    /// so that a command refused the store's lock can say how to reach the service instead.
    pub announce: Option<PathBuf>,
    /// Where rejected messages go, if anywhere.
    pub dead_letter_topic: Option<String>,
    /// When to cut checkpoints.
    pub checkpoints: CheckpointPolicy,
    /// How often the whole log is audited in place.
    pub self_audit_every: Duration,
    /// Where alerts go.
    pub siem: SiemConfig,
    /// The witnesses each checkpoint is submitted to.
    pub witnesses: Vec<super::witnesses::WitnessTarget>,
}

impl ServeArgs {
    /// Flags and environment over the config file over the defaults, for the ledger in
    /// `data_dir`.
    pub fn resolve(&self, data_dir: &Path) -> Result<ServeConfig, ConfigError> {
        let file: ConfigFile = match &self.config {
            None => ConfigFile::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?;
                toml::from_str(&text).map_err(|e| ConfigError::File { path: path.clone(), message: e.to_string() })?
            }
        };
        let http = self.http(file.http)?;
        let dead_letter_topic = self.dead_letter_topic.clone().or(file.kafka.dead_letter_topic.clone());
        let kafka = match self.kafka_brokers.clone().or(file.kafka.brokers.clone()) {
            None => match self.kafka_only(&file.kafka) {
                Some(option) => return Err(ConfigError::NoBrokers(option)),
                None => None,
            },
            Some(brokers) => Some(self.kafka(brokers, file.kafka)?),
        };
        let ingest = kafka.as_ref().map(|k| (k.brokers.as_str(), k.settings.as_slice()));
        let siem = self.siem.resolve(file.siem, ingest)?;
        let witnesses = if self.witnesses.is_empty() { file.witness.submit } else { self.witnesses.clone() };
        let witnesses = witnesses.iter().map(|w| w.parse().map_err(ConfigError::Witness)).collect::<Result<_, _>>()?;
        Ok(ServeConfig {
            siem,
            witnesses,
            kafka,
            http,
            tokens: TokenFile::of(data_dir),
            announce: Some(data_dir.join(ANNOUNCE_FILE)),
            self_audit_every: Duration::from_secs(
                self.self_audit_interval_secs.or(file.self_audit.interval_secs).unwrap_or(3600).max(1),
            ),
            dead_letter_topic,
            checkpoints: CheckpointPolicy::new(
                self.checkpoint_every.or(file.checkpoint.every),
                self.checkpoint_interval_secs.or(file.checkpoint.interval_secs),
            ),
        })
    }

    /// The first option set (by flag, environment or file) that only Kafka intake reads: a
    /// shard started with `--partitions` but no brokers would otherwise read nothing, silently.
    fn kafka_only(&self, file: &KafkaSection) -> Option<&'static str> {
        [
            (!self.topics.is_empty() || !file.topics.is_empty(), "--topics"),
            (!self.partitions.is_empty() || file.partitions.is_some(), "--partitions"),
            (self.group.is_some() || file.group.is_some(), "--group"),
            (!self.kafka_settings.is_empty() || !file.settings.is_empty(), "--kafka-setting"),
        ]
        .into_iter()
        .find_map(|(set, option)| set.then_some(option))
    }

    fn kafka(&self, brokers: String, file: KafkaSection) -> Result<KafkaConfig, ConfigError> {
        let topics = if self.topics.is_empty() { file.topics } else { self.topics.clone() };
        if topics.is_empty() {
            return Err(ConfigError::NoTopics);
        }
        let mut settings: Vec<(String, String)> = file.settings.into_iter().collect();
        for kv in &self.kafka_settings {
            let (k, v) = kv.split_once('=').ok_or_else(|| ConfigError::Setting(kv.clone()))?;
            settings.push((k.to_string(), v.to_string()));
        }
        let batch_size = self.batch_size.or(file.batch_size).unwrap_or(IngestOptions::DEFAULT_BATCH_SIZE);
        if !(1..=IngestOptions::MAX_BATCH_SIZE).contains(&batch_size) {
            return Err(ConfigError::BatchSize(batch_size));
        }
        let partitions = if self.partitions.is_empty() { file.partitions } else { Some(self.partitions.clone()) };
        if let Some(p) = &partitions {
            let distinct: std::collections::BTreeSet<i32> = p.iter().copied().collect();
            if p.is_empty() || distinct.len() != p.len() || p.iter().any(|&n| n < 0) {
                return Err(ConfigError::Partitions(p.clone()));
            }
        }
        Ok(KafkaConfig {
            brokers,
            topics,
            group: self.group.clone().or(file.group).unwrap_or_else(|| "evidence-ledger".into()),
            partitions,
            batch_size,
            batch_wait: Duration::from_millis(self.batch_wait_ms.or(file.batch_wait_ms).unwrap_or(200)),
            settings,
        })
    }

    fn http(&self, file: HttpSection) -> Result<HttpConfig, ConfigError> {
        let listen = self.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.into());
        let listen = listen.parse().map_err(|_| ConfigError::Listen(listen))?;
        let d = HttpLimits::default();
        let positive = |v: usize, name| if v == 0 { Err(ConfigError::Zero(name)) } else { Ok(v) };
        let secs = |v: u64, name| if v == 0 { Err(ConfigError::Zero(name)) } else { Ok(Duration::from_secs(v)) };
        let limits = HttpLimits {
            max_body_bytes: positive(
                self.max_body_bytes.or(file.max_body_bytes).unwrap_or(d.max_body_bytes),
                "--max-body-bytes",
            )?,
            max_events: positive(
                self.max_events_per_request.or(file.max_events_per_request).unwrap_or(d.max_events),
                "--max-events-per-request",
            )?,
            header_timeout: match self.header_timeout_secs.or(file.header_timeout_secs) {
                Some(v) => secs(v, "--header-timeout-secs")?,
                None => d.header_timeout,
            },
            request_timeout: match self.request_timeout_secs.or(file.request_timeout_secs) {
                Some(v) => secs(v, "--request-timeout-secs")?,
                None => d.request_timeout,
            },
            max_connections: positive(
                self.max_connections.or(file.max_connections).unwrap_or(d.max_connections),
                "--max-connections",
            )?,
            queue: positive(self.write_queue.or(file.write_queue).unwrap_or(d.queue), "--write-queue")?,
        };
        let tls = match (self.tls_cert.clone().or(file.tls_cert), self.tls_key.clone().or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(ConfigError::Tls),
        };
        Ok(HttpConfig { listen, limits, metrics_open: self.metrics_open || file.metrics_open.unwrap_or(false), tls })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kafka_option_without_brokers_is_refused_rather_than_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let shard = ServeArgs { partitions: vec![0, 1], ..ServeArgs::default() };
        let err = shard.resolve(dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::NoBrokers("--partitions")), "{err}");
        assert!(err.to_string().contains("--kafka-brokers"), "{err}");
        let file = dir.path().join("evidence.toml");
        std::fs::write(&file, "[kafka]\ntopics = [\"gateway\"]\n").unwrap();
        let err = ServeArgs { config: Some(file), ..ServeArgs::default() }.resolve(dir.path()).unwrap_err();
        assert!(matches!(err, ConfigError::NoBrokers("--topics")), "{err}");
        // With brokers, the same options are taken; without any, HTTP alone.
        let brokers = Some("127.0.0.1:9092".to_string());
        let shard = ServeArgs { kafka_brokers: brokers, topics: vec!["gateway".into()], ..shard };
        let kafka = shard.resolve(dir.path()).unwrap().kafka.expect("Kafka intake");
        assert_eq!(kafka.partitions, Some(vec![0, 1]));
        assert!(ServeArgs::default().resolve(dir.path()).unwrap().kafka.is_none());
    }
}
