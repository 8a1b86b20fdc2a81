//! The self-audit: the log's own store checked entry by entry by the verifier's [`Auditor`],
//! against the log's own verifier keys. What `evidence-verify` does offline, done in place
//! (the demo's last step, and a check an operator can run on a live store).

use evidence_verifier::{AuditError, AuditReport, Auditor};

use super::error::LogError;
use super::Log;
use crate::error::ErrorKind;
use crate::store::Storage;

/// Why the self-audit failed.
#[derive(Debug, thiserror::Error)]
pub enum SelfAuditError {
    /// The store could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The store does not check out: the first failing entry or checkpoint.
    #[error(transparent)]
    Audit(#[from] AuditError),
}

impl SelfAuditError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SelfAuditError::Log(e) => e.kind(),
            SelfAuditError::Audit(_) => ErrorKind::Damaged,
        }
    }
}

impl<S: Storage> Log<S> {
    /// Audits every entry and checkpoint of the store (see the module docs).
    pub fn audit(&self) -> Result<AuditReport, SelfAuditError> {
        let checkpoints = self.checkpoints().collect::<Result<Vec<_>, _>>()?;
        let mut auditor = Auditor::new(&self.verifier_keys(), checkpoints, None)?;
        for item in self.entries(0) {
            let (seq, record) = item?;
            auditor.entry(seq, &record)?;
        }
        Ok(auditor.finish()?)
    }
}
