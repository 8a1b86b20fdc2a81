//! The HTTP collector sink, in Splunk HEC's shape: a batch of alert changes is one POST to
//! `/services/collector/event` of concatenated event objects, each with the OCSF document as
//! its `event`, and `Authorization: Splunk <token>` (and a request channel, which a collector
//! with indexer acknowledgement requires). Only a 2xx answer acknowledges the batch; any other
//! answer (HEC's error bodies name the reason) or a network failure is an error, and the batch
//! is sent again, however long it takes: a refused token or a rejected batch is not dropped,
//! it stays the sink's visible error (`evidence status`) until the operator fixes it.

use std::path::Path;
use std::time::Duration;

use chrono::Utc;

use super::{ocsf, Deliver, SinkError};
use crate::governance::outbox::Change;
use crate::service::ConfigError;

/// HEC's event endpoint.
const EVENT_PATH: &str = "/services/collector/event";

/// How long one POST may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The HEC sink.
pub(crate) struct Hec {
    url: String,
    authorization: String,
    /// HEC's request channel (a collector with indexer acknowledgement requires one).
    channel: String,
    agent: ureq::Agent,
}

impl Hec {
    /// The event URL of a collector given by its base URL or by the event URL itself.
    pub(crate) fn event_url(url: &str) -> Result<String, ConfigError> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ConfigError::Siem(format!("--siem-hec {url:?} is not an http:// or https:// URL")));
        }
        let base = url.trim_end_matches('/');
        let base = base.strip_suffix(EVENT_PATH).unwrap_or(base);
        let base = base.strip_suffix("/services/collector").unwrap_or(base);
        Ok(format!("{base}{EVENT_PATH}"))
    }

    pub(crate) fn new(url: &str, token: &str, ca_cert: Option<&Path>) -> Result<Self, SinkError> {
        let mut config = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(TIMEOUT));
        if url.starts_with("https://") {
            let certs = crate::trust::certificates(ca_cert, "--siem-ca-cert").map_err(SinkError)?;
            config = config.tls_config(crate::trust::ureq_tls(&certs));
        }
        let mut id = [0u8; 16];
        getrandom::getrandom(&mut id).map_err(|e| SinkError(format!("no randomness for the HEC channel: {e}")))?;
        id[6] = (id[6] & 0x0f) | 0x40;
        id[8] = (id[8] & 0x3f) | 0x80;
        let h = hex::encode(id);
        let channel = format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..]);
        let authorization = format!("Splunk {token}");
        Ok(Hec { url: url.to_string(), authorization, channel, agent: config.build().into() })
    }
}

/// The batch's body: one HEC event object per change, concatenated.
pub(crate) fn body(origin: &str, changes: &[Change], host: &str) -> Vec<u8> {
    let now = Utc::now();
    let mut body = Vec::new();
    for change in changes {
        let event = serde_json::json!({
            "time": change.alert.time.timestamp_millis() as f64 / 1000.0,
            "host": host,
            "source": format!("evidence-ledger:{origin}"),
            "sourcetype": "ocsf:detection_finding",
            "event": ocsf::document(origin, change, now.timestamp_millis()),
        });
        serde_json::to_writer(&mut body, &event).expect("a JSON value serializes");
    }
    body
}

impl Deliver for Hec {
    fn deliver(&mut self, origin: &str, changes: &[Change]) -> Result<(), String> {
        let body = body(origin, changes, "evidence-ledger");
        let answer = self
            .agent
            .post(&self.url)
            .header("Authorization", &self.authorization)
            .header("Content-Type", "application/json")
            .header("X-Splunk-Request-Channel", &self.channel)
            .send(&body[..])
            .map_err(|e| format!("cannot POST to {}: {e}", self.url))?;
        let status = answer.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let text = answer.into_body().read_to_string().unwrap_or_default();
        let text: String = text.chars().take(300).collect();
        Err(format!("{} answered {status}: {}", self.url, text.trim()))
    }
}
