//! [`LogError`]: what can go wrong with the log, each variant of one [`ErrorKind`].

use evidence_verifier::note::NoteError;

use super::tree::ProofError;
use crate::error::ErrorKind;
use crate::store::StorageError;

/// What can go wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The store failed; nothing of the operation was stored.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A proof could not be made.
    #[error(transparent)]
    Proof(#[from] ProofError),
    /// The signer key belongs to another log.
    #[error("the signer key is for origin {key:?}, but this store's log is {store:?}")]
    OriginMismatch {
        /// The store's origin.
        store: String,
        /// The key's name.
        key: String,
    },
    /// No signer key was given.
    #[error("the store was opened without its checkpoint signer key, which appending and signing need")]
    NoSigner,
    /// The signer key given is not the one the store signs with.
    #[error("{}", wrong_key(given, current, *retired))]
    WrongKey {
        /// The key given.
        given: String,
        /// The key the store signs with.
        current: String,
        /// Whether the given key is one the store signed with before a rotation.
        retired: bool,
    },
    /// A store with no key history was opened with a key that did not sign its checkpoints.
    #[error("the signer key given ({given}) did not sign this store's checkpoints; use the key that did")]
    NotTheSigner {
        /// The key given.
        given: String,
    },
    /// A rotation to a key the store has already used.
    #[error("the store has already signed with {key}; rotate to a new key")]
    KeyReused {
        /// The key.
        key: String,
    },
    /// The store contradicts itself.
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// An entry read back is not what was appended.
    #[error("entry {seq} is damaged: {problem}")]
    BadEntry {
        /// The entry.
        seq: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// Appends are refused: a read met a damaged entry.
    #[error("appends are stopped: entry {seq} is damaged ({problem}). Reads of sound entries go on; restore the store from a copy that evidence-verify passes")]
    AppendsStopped {
        /// The first damaged entry found.
        seq: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// Signing failed.
    #[error("cannot sign the checkpoint: {0}")]
    Signing(#[from] NoteError),
    /// A proof was asked for a tree size no checkpoint covers.
    #[error("no checkpoint at tree size {size}; checkpointed sizes end at {latest}")]
    NoCheckpoint {
        /// The size asked for.
        size: u64,
        /// The latest checkpointed size (0 if none).
        latest: u64,
    },
    /// An entry beyond the latest checkpoint has no proof yet.
    #[error("entry {seq} is not covered by a checkpoint yet (the latest covers {size} entries)")]
    NotYetCheckpointed {
        /// The entry.
        seq: u64,
        /// The latest checkpoint's size.
        size: u64,
    },
    /// The `(source, id)` index writer stopped; appends are refused until the store is
    /// reopened (which rebuilds the index from the entries).
    #[error("the (source, id) index could not be written ({0}); reopen the store to rebuild it from the entries")]
    IndexStopped(StorageError),
}

fn wrong_key(given: &str, current: &str, retired: bool) -> String {
    let given = if retired {
        format!("the signer key given ({given}) was this store's until a rotation")
    } else {
        format!("the signer key given ({given}) is not this store's")
    };
    format!(
        "{given}: the store signs with {current}. Use that key, or change keys on purpose with \
         `evidence key rotate`, which records the change in the log"
    )
}

impl LogError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LogError::Storage(e) | LogError::IndexStopped(e) => e.kind(),
            LogError::Proof(e) => e.kind(),
            LogError::Damaged(_) | LogError::BadEntry { .. } | LogError::AppendsStopped { .. } => ErrorKind::Damaged,
            LogError::OriginMismatch { .. }
            | LogError::NoSigner
            | LogError::WrongKey { .. }
            | LogError::NotTheSigner { .. }
            | LogError::KeyReused { .. }
            | LogError::Signing(_)
            | LogError::NoCheckpoint { .. }
            | LogError::NotYetCheckpointed { .. } => ErrorKind::Caller,
        }
    }
}
