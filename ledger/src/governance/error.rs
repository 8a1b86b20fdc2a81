//! [`ViewError`]: what can go wrong with the views, each variant of one [`ErrorKind`].

use crate::error::ErrorKind;
use crate::log::LogError;
use crate::store::StorageError;

/// What can go wrong with the views.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A stored view value does not decode: the views must be rebuilt.
    #[error("view key {key} does not decode ({message}); run `evidence rebuild`")]
    Corrupt {
        /// The key, escaped.
        key: String,
        /// What the decoder said.
        message: String,
    },
    /// A log entry could not be read back as an event.
    #[error("entry {seq} cannot be projected: {message}")]
    Entry {
        /// The entry.
        seq: u64,
        /// Why.
        message: String,
    },
}

impl ViewError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ViewError::Storage(e) => e.kind(),
            ViewError::Log(e) => e.kind(),
            ViewError::Corrupt { .. } | ViewError::Entry { .. } => ErrorKind::Damaged,
        }
    }
}
