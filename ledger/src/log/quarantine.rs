//! Quarantine: records kept out of the log (rejected by validation, or conflicting with an
//! entry), each kept once with everything needed to understand and replay it.
//!
//! Key space (prefixes from [`crate::store::keyspace`]):
//!
//! | key | value |
//! | --- | --- |
//! | `q` + number (u64 BE) | [`QuarantineRecord`], JSON |
//! | `Q` + first 16 bytes of blake3(origin, 0, raw bytes) | its number: the same bad record is kept once |

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_schemas::Problem;
use serde::{Deserialize, Serialize};

use super::error::LogError;
use crate::store::keyspace::{prefix_end, prefixed, QUARANTINE, QUARANTINE_SEEN};
use crate::store::{Storage, WriteBatch};

/// The same `(source, id)` arrived with other content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Conflict {
    /// The event's source.
    pub source: String,
    /// The event's id.
    pub id: String,
    /// The entry already holding that `(source, id)`.
    pub seq: u64,
    /// Its event digest (hex blake3).
    pub stored_digest: String,
    /// The digest of the conflicting event.
    pub new_digest: String,
}

impl Conflict {
    /// The conflict in a sentence.
    pub fn reason(&self) -> String {
        format!(
            "conflict: ({}, {}) is already entry {} with digest {}, this event has digest {}",
            self.source, self.id, self.seq, self.stored_digest, self.new_digest
        )
    }
}

/// How a quarantined record's bytes are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum RawEncoding {
    /// As text: the bytes were UTF-8.
    Utf8,
    /// Base64: the bytes were not UTF-8.
    Base64,
}

/// A record kept out of the log, with everything needed to understand and replay it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct QuarantineRecord {
    /// Its number, from 0 in arrival order.
    pub number: u64,
    /// When the ledger received it (RFC 3339).
    pub received: String,
    /// Where it came from.
    pub origin: String,
    /// Why it was kept out, in a sentence.
    pub reason: String,
    /// Each problem, with its JSON pointer.
    pub problems: Vec<Problem>,
    /// Set when the record conflicts with an entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<Conflict>,
    /// The bytes as received: UTF-8 text, or base64 when they are not UTF-8.
    pub raw: String,
    /// How `raw` holds the bytes.
    pub raw_encoding: RawEncoding,
}

impl QuarantineRecord {
    /// The bytes as received. A `base64` record whose text does not decode is damage.
    pub fn payload(&self) -> Result<Vec<u8>, LogError> {
        match self.raw_encoding {
            RawEncoding::Utf8 => Ok(self.raw.clone().into_bytes()),
            RawEncoding::Base64 => B64.decode(&self.raw).map_err(|e| {
                LogError::Damaged(format!("quarantine record {}: its base64 bytes do not decode: {e}", self.number))
            }),
        }
    }
}

/// One record to quarantine.
pub(crate) struct Rejected<'a> {
    /// Where it came from.
    pub(crate) origin: &'a str,
    /// The bytes as received.
    pub(crate) raw: &'a [u8],
    /// Why, in a sentence.
    pub(crate) reason: String,
    /// Each problem with its pointer.
    pub(crate) problems: Vec<Problem>,
    /// Set for a conflict.
    pub(crate) conflict: Option<Conflict>,
}

/// Quarantine state a batch advances: the next number, and the content keys seen in it.
pub(crate) struct Quarantine<'s, S: Storage> {
    /// The store, to find records quarantined by earlier batches.
    pub(crate) store: &'s S,
    /// The content keys quarantined by this batch.
    pub(crate) seen: HashSet<Vec<u8>>,
    /// RFC 3339 receive time of the batch.
    pub(crate) received: String,
}

impl<S: Storage> Quarantine<'_, S> {
    /// Puts `record` into `wb` with the number `*next` unless the same bytes from the same
    /// origin were quarantined before; returns whether it was new (and `*next` moved on).
    pub(crate) fn put(&mut self, wb: &mut WriteBatch, next: &mut u64, record: Rejected<'_>) -> Result<bool, LogError> {
        let mut h = blake3::Hasher::new();
        h.update(record.origin.as_bytes());
        h.update(&[0]);
        h.update(record.raw);
        let seen_key = prefixed(QUARANTINE_SEEN, &h.finalize().as_bytes()[..16]);
        if self.seen.contains(&seen_key) || self.store.get(&seen_key)?.is_some() {
            return Ok(false);
        }
        let number = *next;
        let (raw, raw_encoding) = match std::str::from_utf8(record.raw) {
            Ok(s) => (s.to_string(), RawEncoding::Utf8),
            Err(_) => (B64.encode(record.raw), RawEncoding::Base64),
        };
        let record = QuarantineRecord {
            number,
            received: self.received.clone(),
            origin: record.origin.to_string(),
            reason: record.reason,
            problems: record.problems,
            conflict: record.conflict,
            raw,
            raw_encoding,
        };
        let json = serde_json::to_vec(&record).expect("quarantine records serialize");
        wb.put(prefixed(QUARANTINE, &number.to_be_bytes()), json);
        wb.put(seen_key.clone(), number.to_be_bytes());
        self.seen.insert(seen_key);
        *next += 1;
        Ok(true)
    }
}

/// The number the next quarantine record gets.
pub(crate) fn next_number<S: Storage>(store: &S) -> Result<u64, LogError> {
    Ok(match store.last_in(&[QUARANTINE], &prefix_end(QUARANTINE))? {
        Some((k, _)) => evidence_verifier::layout::key_number(k.as_ref()).map_or(0, |n| n + 1),
        None => 0,
    })
}

/// Quarantine records of `store` from number `from` on, at most `limit`.
pub(crate) fn read<S: Storage>(store: &S, from: u64, limit: usize) -> Result<Vec<QuarantineRecord>, LogError> {
    let start = prefixed(QUARANTINE, &from.to_be_bytes());
    store
        .range(&start, &prefix_end(QUARANTINE))
        .take(limit)
        .map(|r| {
            let (_, v) = r?;
            serde_json::from_slice(v.as_ref()).map_err(|e| LogError::Damaged(format!("quarantine record: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(raw: &str, raw_encoding: RawEncoding) -> QuarantineRecord {
        QuarantineRecord {
            number: 7,
            received: "2026-04-01T00:00:00Z".into(),
            origin: "kafka:t/0@1".into(),
            reason: "not JSON".into(),
            problems: Vec::new(),
            conflict: None,
            raw: raw.into(),
            raw_encoding,
        }
    }

    #[test]
    fn a_payload_decodes_or_reports_damage() {
        assert_eq!(record("{x", RawEncoding::Utf8).payload().unwrap(), b"{x");
        assert_eq!(record("/w==", RawEncoding::Base64).payload().unwrap(), [0xff]);
        let err = record("not base64!", RawEncoding::Base64).payload().unwrap_err();
        assert!(matches!(err, LogError::Damaged(_)), "{err}");
        assert!(err.to_string().contains("quarantine record 7: its base64 bytes do not decode"), "{err}");
    }

    #[test]
    fn raw_encodings_keep_their_stored_names() {
        let json = serde_json::to_string(&record("", RawEncoding::Base64)).unwrap();
        assert!(json.contains(r#""raw_encoding":"base64""#), "{json}");
    }
}
