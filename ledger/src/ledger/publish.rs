//! Publishing a governance policy: a `registry.policy` event built from a policy document,
//! validated like any producer's event and appended through the ledger. A version is
//! published once.

use evidence_ingest::{Batch, Origin, Outcome, Record, Sink, Verdict};
use evidence_schemas::{RegistryPolicy, ValidEvent, Validator};

use super::Ledger;
use crate::error::ErrorKind;
use crate::governance::{policy, ViewError};
use crate::log::LogError;
use crate::query::policy_versions as query_policy_versions;
use crate::store::Storage;

/// Why a policy was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// That version is already in the log.
    #[error("policy version {version} was already published as entry {seq}")]
    AlreadyPublished {
        /// The version.
        version: String,
        /// The entry that published it.
        seq: u64,
    },
    /// The policy event is not valid.
    #[error("{origin} is not a valid policy: {problems}")]
    Invalid {
        /// Where the policy came from.
        origin: String,
        /// Every problem, with its pointer.
        problems: String,
    },
    /// The event was quarantined.
    #[error("the policy event was quarantined: {0}")]
    Quarantined(String),
    /// The views could not be read.
    #[error(transparent)]
    Views(#[from] ViewError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl PublishError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PublishError::AlreadyPublished { .. } | PublishError::Invalid { .. } | PublishError::Quarantined(_) => {
                ErrorKind::Caller
            }
            PublishError::Views(e) => e.kind(),
            PublishError::Log(e) => e.kind(),
        }
    }
}

impl<S: Storage> Ledger<S> {
    /// Appends `data` as a `registry.policy` event by `actor` at `time` (RFC 3339); `origin`
    /// names where it came from (a file). Returns its entry: the policy is in force from it.
    pub fn publish_policy(
        &mut self,
        data: &RegistryPolicy,
        actor: &str,
        time: &str,
        origin: &str,
    ) -> Result<u64, PublishError> {
        if let Some(earlier) = query_policy_versions(self.store())?.into_iter().find(|p| p.version == data.version) {
            return Err(PublishError::AlreadyPublished { version: data.version.clone(), seq: earlier.cite.seq });
        }
        let event = policy::event(data, actor, time);
        let valid = Validator::default().validate(event.to_string().as_bytes()).map_err(|rejection| {
            let problems: Vec<String> = rejection.problems().iter().map(ToString::to_string).collect();
            PublishError::Invalid { origin: origin.to_string(), problems: problems.join("; ") }
        })?;
        match self.append_one(valid, Origin::File { path: origin.to_string(), line: 1 })? {
            Outcome::Accepted { seq } => Ok(seq),
            Outcome::Duplicate { seq } => Err(PublishError::AlreadyPublished { version: data.version.clone(), seq }),
            Outcome::Quarantined { reason } => Err(PublishError::Quarantined(reason)),
        }
    }

    /// Appends one event the ledger itself made, as a batch of its own.
    pub(super) fn append_one(&mut self, valid: ValidEvent, origin: Origin) -> Result<Outcome, LogError> {
        let batch =
            Batch { records: vec![Record { origin, verdict: Verdict::Valid(Box::new(valid)) }], positions: Vec::new() };
        let outcome = self.append(&batch)?.outcomes.into_iter().next();
        Ok(outcome.expect("a sink answers one outcome per record"))
    }
}
