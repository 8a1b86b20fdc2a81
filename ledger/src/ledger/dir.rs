//! A ledger directory: the sled store in `<data-dir>/log`, created on purpose by
//! [`LedgerDir::init`] and opened by every other command, which refuses a directory that is not
//! a store. The checkpoint signer key lives outside the data directory unless the operator puts
//! it there (default: the sibling file `<data-dir>.key`), so copying the directory for an
//! auditor never hands over the key. Reading needs no key; appending needs the store's own
//! (the log checks it, see `crate::log` key continuity).

use std::path::{Path, PathBuf};

use evidence_verifier::layout::LOG_DIR;
use evidence_verifier::note::VerifierKey;

use super::{AlertHook, Ledger};
use crate::error::ErrorKind;
use crate::governance::ViewError;
use crate::keys::{self, KeyError};
use crate::log::{CheckpointPolicy, Log, LogError};
use crate::store::{SledStorage, StorageError, StorageErrorKind};

/// Why a ledger directory could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// There is no store at the path.
    #[error(
        "There is no ledger at {} (set --data-dir or EVIDENCE_DATA_DIR to a ledger's directory, or create one there with `evidence init`).",
        path.display()
    )]
    NotALedger {
        /// The data directory.
        path: PathBuf,
    },
    /// `init` found a ledger already there (or another `init` creating one).
    #[error("There is already a ledger at {}; `evidence init` creates new ones only.", path.display())]
    AlreadyALedger {
        /// The data directory.
        path: PathBuf,
    },
    /// `init` found a directory holding something else.
    #[error("{} is not empty and holds no ledger; `evidence init` needs a new or empty directory.", path.display())]
    NotEmpty {
        /// The data directory.
        path: PathBuf,
    },
    /// The directory could not be created.
    #[error("Cannot create {}: {source}", path.display())]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The signer key file is missing.
    #[error(
        "The signer key is not at {} (pass --signer-key or EVIDENCE_SIGNER_KEY). Appending needs the key the store signs with; reading needs none.",
        path.display()
    )]
    NoKeyFile {
        /// The key file.
        path: PathBuf,
    },
    /// A key file's name is not the origin asked for.
    #[error("The signer key at {} is for origin {key:?}, not {asked:?}.", path.display())]
    OriginMismatch {
        /// The key file.
        path: PathBuf,
        /// The key's origin.
        key: String,
        /// The origin asked for.
        asked: String,
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
            OpenError::Create { source, .. } if source.raw_os_error() == Some(28) => ErrorKind::FullDisk,
            OpenError::NotALedger { .. }
            | OpenError::AlreadyALedger { .. }
            | OpenError::NotEmpty { .. }
            | OpenError::Create { .. }
            | OpenError::NoKeyFile { .. }
            | OpenError::OriginMismatch { .. } => ErrorKind::Caller,
            OpenError::Key(e) => e.kind(),
            OpenError::Storage { source, .. } => source.kind(),
            OpenError::Log { source, .. } => source.kind(),
            OpenError::Views(e) => e.kind(),
        }
    }
}

/// What a command does with a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Reads (and keeps the views up to date): no signer key needed.
    Read,
    /// Appends and signs: the store's own signer key needed.
    Append,
}

/// What [`LedgerDir::init`] made.
#[derive(Debug)]
pub struct Created {
    /// The signer key file.
    pub key_path: PathBuf,
    /// Whether the key was generated now (rather than an existing file taken).
    pub new_key: bool,
    /// The verifier key to publish.
    pub verifier_key: VerifierKey,
}

/// Where a ledger lives and how it signs.
#[derive(Clone, Debug)]
pub struct LedgerDir {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The signer key file (default: [`LedgerDir::default_key_path`]).
    pub signer_key: Option<PathBuf>,
}

impl LedgerDir {
    /// The signer key file used when none is given: `<data-dir>.key`, beside the data
    /// directory rather than inside it.
    pub fn default_key_path(data_dir: &Path) -> PathBuf {
        // `.`, `..` and the like have no name of their own: name the directory they are.
        let named = match data_dir.file_name() {
            Some(_) => data_dir.to_path_buf(),
            None => data_dir.canonicalize().or_else(|_| std::path::absolute(data_dir)).unwrap_or_default(),
        };
        let mut name = named.file_name().map(|n| n.to_os_string()).unwrap_or_else(|| "evidence-data".into());
        name.push(".key");
        named.parent().unwrap_or(Path::new("/")).join(name)
    }

    /// The signer key file in use.
    pub fn key_path(&self) -> PathBuf {
        self.signer_key.clone().unwrap_or_else(|| Self::default_key_path(&self.data_dir))
    }

    /// The sled store's directory.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(LOG_DIR)
    }

    /// Whether a store exists here.
    pub fn exists(&self) -> bool {
        self.store_path().join("conf").exists()
    }

    /// Creates a new, empty ledger signed by the key at [`LedgerDir::key_path`], generating
    /// that key (named `origin`) if the file does not exist yet. The data directory must be
    /// new or empty; of two `init`s racing on one directory, exactly one succeeds.
    pub fn init(&self, origin: &str) -> Result<Created, OpenError> {
        let data = &self.data_dir;
        if self.exists() {
            return Err(OpenError::AlreadyALedger { path: data.clone() });
        }
        std::fs::create_dir_all(data).map_err(|source| OpenError::Create { path: data.clone(), source })?;
        let entries = std::fs::read_dir(data).map_err(|source| OpenError::Create { path: data.clone(), source })?;
        if entries.filter_map(Result::ok).any(|e| e.file_name() != LOG_DIR) {
            return Err(OpenError::NotEmpty { path: data.clone() });
        }
        // Claiming the store's directory is the one step only one process can win.
        let store_path = self.store_path();
        match std::fs::create_dir(&store_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(OpenError::AlreadyALedger { path: data.clone() });
            }
            Err(source) => return Err(OpenError::Create { path: store_path, source }),
        }
        // Whatever fails from here gives the directory back, so that init can be run again.
        let created = self.create(origin, &store_path);
        if created.is_err() {
            let _ = std::fs::remove_dir_all(&store_path);
        }
        created
    }

    /// The part of [`LedgerDir::init`] after the store's directory is claimed.
    fn create(&self, origin: &str, store_path: &Path) -> Result<Created, OpenError> {
        let data = &self.data_dir;
        let key_path = self.key_path();
        let (signer, new_key) = if key_path.exists() {
            let key = keys::read(&key_path)?;
            if key.name() != origin {
                let (key, asked) = (key.name().to_string(), origin.to_string());
                return Err(OpenError::OriginMismatch { path: key_path, key, asked });
            }
            (key, false)
        } else {
            let key = keys::generate(origin)?;
            keys::write_new(&key_path, &key)?;
            (key, true)
        };
        let store = SledStorage::open(store_path)
            .map_err(|source| OpenError::Storage { path: store_path.to_path_buf(), source })?;
        let log = Log::open(store, vec![signer], CheckpointPolicy::default())
            .map_err(|source| OpenError::Log { path: data.clone(), source })?;
        let verifier_key = log.verifier_keys().pop().expect("a new log has its key");
        Ok(Created { key_path, new_key, verifier_key })
    }

    /// Opens the log of an existing store: to read (no key), or to append (the store's key).
    pub fn open_log(&self, access: Access, policy: CheckpointPolicy) -> Result<Log<SledStorage>, OpenError> {
        if !self.exists() {
            return Err(OpenError::NotALedger { path: self.data_dir.clone() });
        }
        let signer = match access {
            Access::Read => None,
            Access::Append => {
                let path = self.key_path();
                if !path.exists() {
                    return Err(OpenError::NoKeyFile { path });
                }
                Some(keys::read(&path)?)
            }
        };
        let store_path = self.store_path();
        let store = match SledStorage::open(&store_path) {
            // Opening may write (sled's snapshot): a reader on a full disk reads a copy instead.
            Err(e) if e.kind == StorageErrorKind::FullDisk && access == Access::Read => {
                tracing::warn!(
                    message = "The disk holding the store is full; reading a temporary copy of it instead.",
                    store = %store_path.display()
                );
                SledStorage::open_copy(&store_path)
            }
            opened => opened,
        };
        let store = store.map_err(|source| OpenError::Storage { path: store_path.clone(), source })?;
        let log = match signer {
            Some(signer) => Log::open(store, vec![signer], policy),
            None => match Log::open_reader(store, policy) {
                // Opening may write the index's runs (re-indexing what a crash or a failed
                // write left unindexed): a reader on a full disk reads a copy instead.
                Err(LogError::Storage(e)) if e.kind == StorageErrorKind::FullDisk => {
                    tracing::warn!(
                        message = "The disk holding the store is full; reading a temporary copy of it instead.",
                        store = %store_path.display()
                    );
                    let copy = SledStorage::open_copy(&store_path)
                        .map_err(|source| OpenError::Storage { path: store_path, source })?;
                    Log::open_reader(copy, policy)
                }
                opened => opened,
            },
        };
        log.map_err(|source| OpenError::Log { path: self.data_dir.clone(), source })
    }

    /// Opens the ledger with its views caught up; alerts raised on the way go to `on_alert`.
    pub fn open(
        &self,
        access: Access,
        policy: CheckpointPolicy,
        on_alert: Option<AlertHook>,
    ) -> Result<Ledger<SledStorage>, OpenError> {
        let log = self.open_log(access, policy)?;
        Ok(Ledger::open_with(log, on_alert)?)
    }
}
