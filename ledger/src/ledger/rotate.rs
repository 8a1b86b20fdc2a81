//! Rotating the checkpoint signer key on purpose: the rotation is appended to the log as a
//! `ledger.key` event (validated like any event, with the validator that alone passes the
//! ledger's own types), then the log cuts a checkpoint covering it signed by the old and the
//! new key, and signs with the new key from then on (`Log::rotate_signer`). An auditor who
//! trusts the old key sees, in a checkpoint that key signed, which key comes next.

use evidence_ingest::{Origin, Outcome};
use evidence_schemas::Validator;
use evidence_verifier::note::SignerKey;

use super::Ledger;
use crate::error::ErrorKind;
use crate::log::LogError;
use crate::store::Storage;

/// Why a key was not rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The rotation event was refused (a bug if it happens: the ledger builds it).
    #[error("the rotation event was refused: {0}")]
    Refused(String),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
}

impl RotateError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RotateError::Refused(_) => ErrorKind::Engine,
            RotateError::Log(e) => e.kind(),
        }
    }
}

/// A rotation done.
#[derive(Debug)]
pub struct Rotated {
    /// The `ledger.key` entry.
    pub seq: u64,
    /// The checkpoint covering it, signed by both keys.
    pub note: String,
}

impl<S: Storage> Ledger<S> {
    /// Hands checkpoint signing over to `new` (see the module docs), `actor` doing it at `time`
    /// (RFC 3339) for `reason`.
    pub fn rotate_key(
        &mut self,
        new: SignerKey,
        actor: &str,
        time: &str,
        reason: Option<&str>,
    ) -> Result<Rotated, RotateError> {
        let previous = self.log().verifier_keys().pop().ok_or(LogError::NoSigner)?;
        // Nothing is appended for a rotation that cannot happen.
        self.log().check_rotation(&new)?;
        let verifier = new.verifier();
        let mut data =
            serde_json::json!({ "verifier_key": verifier.to_string(), "previous_key": previous.to_string() });
        if let Some(reason) = reason {
            data["reason"] = reason.into();
        }
        let event = serde_json::json!({
            "specversion": "1.0",
            "id": format!("key-{:08x}", verifier.id()),
            "source": "evidence/cli/key",
            "type": "ledger.key",
            "time": time,
            "actor": actor,
            "data": data,
        });
        let valid = Validator::for_ledger()
            .validate(event.to_string().as_bytes())
            .map_err(|rejection| RotateError::Refused(rejection.to_string()))?;
        let seq = match self.append_one(valid, Origin::File { path: "evidence key rotate".into(), line: 1 })? {
            Outcome::Accepted { seq } => seq,
            Outcome::Duplicate { seq } => {
                return Err(LogError::KeyReused { key: format!("{verifier} (rotated to at entry {seq})") }.into())
            }
            Outcome::Quarantined { reason } => return Err(RotateError::Refused(reason)),
        };
        let note = self.log.rotate_signer(new)?;
        tracing::info!(message = "Signer key rotated.", seq, from = %previous, to = %verifier);
        Ok(Rotated { seq, note })
    }
}
