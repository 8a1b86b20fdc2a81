//! A ledger directory: the sled store in `<data-dir>/log` and, by default, the checkpoint
//! signer key in `<data-dir>/checkpoint.key`. Opening one for reading, or opening or creating
//! one for appending, with one error type that says which step failed.

use std::path::PathBuf;

use evidence_verifier::layout::LOG_DIR;

use super::{AlertHook, Ledger};
use crate::error::ErrorKind;
use crate::governance::ViewError;
use crate::keys::{self, KeyError};
use crate::log::{CheckpointPolicy, Log, LogError};
use crate::store::{SledStorage, StorageError};

/// The signer key's file name inside a data directory, when no other path is given.
pub const KEY_FILE: &str = "checkpoint.key";

/// Why a ledger directory could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// There is no store at the path and none was to be created.
    #[error("There is no ledger at {} (set --data-dir or EVIDENCE_DATA_DIR).", path.display())]
    NotALedger {
        /// The data directory.
        path: PathBuf,
    },
    /// The signer key file is missing.
    #[error("The signer key file {} does not exist (create one with `evidence keygen`).", path.display())]
    NoKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// The signer key could not be read or made.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The store could not be opened.
    #[error("Cannot open the ledger at {}: {source}", path.display())]
    Storage {
        /// The store's directory.
        path: PathBuf,
        /// Why.
        source: StorageError,
    },
    /// The log could not be opened on the store.
    #[error("Cannot open the ledger at {}: {source}", path.display())]
    Log {
        /// The data directory.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
    /// The views could not be brought up to date.
    #[error("Cannot bring the views up to date: {0}")]
    Views(#[from] ViewError),
}

impl OpenError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            OpenError::NotALedger { .. } | OpenError::NoKeyFile { .. } => ErrorKind::Caller,
            OpenError::Key(e) => e.kind(),
            OpenError::Storage { source, .. } => source.kind(),
            OpenError::Log { source, .. } => source.kind(),
            OpenError::Views(e) => e.kind(),
        }
    }
}

/// Where a ledger lives and how it signs.
#[derive(Clone, Debug)]
pub struct LedgerDir {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The signer key file (default: `<data-dir>/checkpoint.key`).
    pub signer_key: Option<PathBuf>,
    /// The origin a new store's own key is made for.
    pub origin: String,
}

impl LedgerDir {
    /// The signer key file in use.
    pub fn key_path(&self) -> PathBuf {
        self.signer_key.clone().unwrap_or_else(|| self.data_dir.join(KEY_FILE))
    }

    /// The sled store's directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(LOG_DIR)
    }

    /// Whether a store exists here.
    pub fn exists(&self) -> bool {
        self.store_path().join("conf").exists()
    }

    /// Opens the log. With `create`, a missing store is created, with its own key if none
    /// was given.
    pub fn open_log(&self, create: bool, policy: CheckpointPolicy) -> Result<Log<SledStorage>, OpenError> {
        if !create && !self.exists() {
            return Err(OpenError::NotALedger { path: self.data_dir.clone() });
        }
        let path = self.key_path();
        let signer = if path.exists() {
            keys::read(&path)?
        } else if create && self.signer_key.is_none() {
            let key = keys::generate(&self.origin)?;
            keys::write_new(&path, &key)?;
            tracing::info!(
                message = "Generated a checkpoint signer key for the new store.",
                path = %path.display(),
                verifier_key = %key.verifier()
            );
            key
        } else {
            return Err(OpenError::NoKeyFile { path });
        };
        let store_path = self.store_path();
        let store = SledStorage::open(&store_path).map_err(|source| OpenError::Storage { path: store_path, source })?;
        Log::open(store, vec![signer], policy).map_err(|source| OpenError::Log { path: self.data_dir.clone(), source })
    }

    /// Opens the ledger with its views caught up; alerts raised on the way go to `on_alert`.
    pub fn open(
        &self,
        create: bool,
        policy: CheckpointPolicy,
        on_alert: Option<AlertHook>,
    ) -> Result<Ledger<SledStorage>, OpenError> {
        let log = self.open_log(create, policy)?;
        Ok(Ledger::open_with(log, on_alert)?)
    }
}
