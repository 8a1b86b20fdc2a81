//! The SIEM sinks' configuration: `--siem-*` flags, `EVIDENCE_SIEM_*` variables and the
//! config file's `[siem]` table, in that order of precedence, as for the rest of `serve`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use serde::Deserialize;

use super::hec::Hec;
use super::kafka::KafkaSink;
use super::syslog::{Syslog, SyslogTarget};
use super::{Deliver, SinkError};
use crate::service::ConfigError;

/// `evidence serve`'s SIEM options.
#[derive(Args, Debug, Clone, Default)]
pub struct SiemArgs {
    /// Send every alert change to this Kafka topic, as an OCSF Detection Finding keyed by
    /// alert id.
    #[arg(long, env = "EVIDENCE_SIEM_KAFKA_TOPIC")]
    pub siem_kafka_topic: Option<String>,
    /// The brokers of --siem-kafka-topic (default: the ingest brokers).
    #[arg(long, env = "EVIDENCE_SIEM_KAFKA_BROKERS")]
    pub siem_kafka_brokers: Option<String>,
    /// Send every alert change to this syslog server as RFC 5424 with octet-counting framing:
    /// tcp://HOST:PORT, or tls://HOST:PORT (RFC 5425).
    #[arg(long, env = "EVIDENCE_SIEM_SYSLOG")]
    pub siem_syslog: Option<String>,
    /// Send every alert change to this Splunk HEC-shaped collector (its base URL, or the full
    /// .../services/collector/event URL).
    #[arg(long, env = "EVIDENCE_SIEM_HEC")]
    pub siem_hec: Option<String>,
    /// The collector's token, sent as `Authorization: Splunk <token>`.
    #[arg(long, env = "EVIDENCE_SIEM_HEC_TOKEN", hide_env_values = true)]
    pub siem_hec_token: Option<String>,
    /// PEM certificates a tls:// syslog server's or an https:// collector's certificate must
    /// chain to (default: the system's trust store).
    #[arg(long, env = "EVIDENCE_SIEM_CA_CERT")]
    pub siem_ca_cert: Option<PathBuf>,
    /// The longest wait between retries of a sink that is down, in seconds (default 10).
    #[arg(long, env = "EVIDENCE_SIEM_MAX_BACKOFF_SECS")]
    pub siem_max_backoff_secs: Option<u64>,
}

/// The config file's `[siem]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiemSection {
    kafka_topic: Option<String>,
    kafka_brokers: Option<String>,
    #[serde(default)]
    kafka_settings: std::collections::BTreeMap<String, String>,
    syslog: Option<String>,
    hec: Option<String>,
    hec_token: Option<String>,
    ca_cert: Option<PathBuf>,
    max_backoff_secs: Option<u64>,
}

/// The Kafka sink's brokers, topic and librdkafka settings.
#[derive(Clone, Debug)]
pub struct KafkaTarget {
    /// Bootstrap servers.
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// librdkafka settings passed through.
    pub settings: Vec<(String, String)>,
}

/// A sink's name (which names its cursor) and its receiver.
type Named = (String, Box<dyn Deliver>);

/// The resolved SIEM configuration.
#[derive(Clone, Debug, Default)]
pub struct SiemConfig {
    /// The Kafka sink.
    pub kafka: Option<KafkaTarget>,
    /// The syslog sink.
    pub syslog: Option<SyslogTarget>,
    /// The HEC sink: its event URL and token.
    pub hec: Option<(String, String)>,
    /// The certificates TLS receivers must chain to.
    pub ca_cert: Option<PathBuf>,
    /// The cap on the backoff between retries.
    pub max_backoff: Duration,
}

impl SiemArgs {
    /// Flags and environment over `file`; `ingest` is the ingest brokers and settings, if any.
    pub(crate) fn resolve(
        &self,
        file: SiemSection,
        ingest: Option<(&str, &[(String, String)])>,
    ) -> Result<SiemConfig, ConfigError> {
        let kafka = match self.siem_kafka_topic.clone().or(file.kafka_topic) {
            None => None,
            Some(topic) => match (self.siem_kafka_brokers.clone().or(file.kafka_brokers), ingest) {
                (Some(brokers), _) => {
                    Some(KafkaTarget { brokers, topic, settings: file.kafka_settings.into_iter().collect() })
                }
                (None, Some((brokers, settings))) => {
                    Some(KafkaTarget { brokers: brokers.to_string(), topic, settings: settings.to_vec() })
                }
                (None, None) => {
                    return Err(ConfigError::Siem(
                        "--siem-kafka-topic needs brokers: set --siem-kafka-brokers or the ingest brokers".into(),
                    ))
                }
            },
        };
        let syslog = self.siem_syslog.clone().or(file.syslog).map(|url| SyslogTarget::parse(&url)).transpose()?;
        let hec = match (self.siem_hec.clone().or(file.hec), self.siem_hec_token.clone().or(file.hec_token)) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ConfigError::Siem(
                    "--siem-hec needs a token: set --siem-hec-token or EVIDENCE_SIEM_HEC_TOKEN".into(),
                ))
            }
            (Some(url), Some(token)) => Some((Hec::event_url(&url)?, token)),
        };
        let max_backoff = self.siem_max_backoff_secs.or(file.max_backoff_secs).unwrap_or(10);
        if max_backoff == 0 {
            return Err(ConfigError::Zero("--siem-max-backoff-secs"));
        }
        Ok(SiemConfig {
            kafka,
            syslog,
            hec,
            ca_cert: self.siem_ca_cert.clone().or(file.ca_cert),
            max_backoff: Duration::from_secs(max_backoff),
        })
    }
}

impl SiemConfig {
    /// Whether any sink is configured.
    pub fn any(&self) -> bool {
        self.kafka.is_some() || self.syslog.is_some() || self.hec.is_some()
    }

    /// Each configured sink's receiver, by the sink's name (which names its cursor).
    pub(super) fn receivers(&self) -> Result<Vec<Named>, SinkError> {
        let mut out: Vec<Named> = Vec::new();
        if let Some(k) = &self.kafka {
            out.push((format!("kafka:{}", k.topic), Box::new(KafkaSink::new(&k.brokers, &k.topic, &k.settings)?)));
        }
        if let Some(target) = &self.syslog {
            out.push((format!("syslog:{}", target.url()), Box::new(Syslog::new(target.clone(), self.ca_cert.clone()))));
        }
        if let Some((url, token)) = &self.hec {
            out.push((format!("hec:{url}"), Box::new(Hec::new(url, token, self.ca_cert.as_deref())?)));
        }
        Ok(out)
    }
}
