//! Checkpoint signing keys on disk: one C2SP signer key string per file, mode 0600.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use evidence_verifier::note::NoteError;
use evidence_verifier::SignerKey;

use crate::error::ErrorKind;

/// What can go wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The system gave no randomness.
    #[error("cannot get randomness for a new key: {0}")]
    Randomness(String),
    /// The origin is not a valid key name.
    #[error("cannot make a key named {origin:?}: {source}")]
    Name {
        /// The origin asked for.
        origin: String,
        /// Why it cannot name a key.
        source: NoteError,
    },
    /// The file could not be created (it must not exist yet) or written.
    #[error("cannot create the key file {} (it must not exist yet): {source}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file could not be read.
    #[error("cannot read the key file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is readable or writable by others than its owner.
    #[error("the key file {} has mode {mode:04o}: a signer key must be readable by its owner only (chmod 600 it)", path.display())]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file does not hold a signer key.
    #[error("{} does not hold a signer key: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        source: NoteError,
    },
}

impl KeyError {
    /// Which kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            KeyError::Randomness(_) => ErrorKind::Engine,
            KeyError::Create { source, .. } | KeyError::Read { source, .. } if source.raw_os_error() == Some(28) => {
                ErrorKind::FullDisk
            }
            _ => ErrorKind::Caller,
        }
    }
}

/// A new random signer key named `origin`.
pub fn generate(origin: &str) -> Result<SignerKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| KeyError::Randomness(e.to_string()))?;
    SignerKey::from_seed(origin, seed).map_err(|source| KeyError::Name { origin: origin.to_string(), source })
}

/// Writes `key` to a new file at `path` with mode 0600; never overwrites.
pub fn write_new(path: &Path, key: &SignerKey) -> Result<(), KeyError> {
    write_secret(path, &key.to_key_string())
}

/// Writes a private key string to a new file at `path` with mode 0600; never overwrites.
pub fn write_secret(path: &Path, key: &str) -> Result<(), KeyError> {
    let create = |source| KeyError::Create { path: path.to_path_buf(), source };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(create)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map_err(create)?;
    writeln!(file, "{key}").map_err(create)?;
    file.sync_all().map_err(create)
}

/// Reads the signer key at `path`, which only its owner may read or write.
pub fn read(path: &Path) -> Result<SignerKey, KeyError> {
    let text = read_secret(path)?;
    SignerKey::parse(&text).map_err(|source| KeyError::Parse { path: path.to_path_buf(), source })
}

/// Reads the private key string at `path`, which only its owner may read or write.
pub fn read_secret(path: &Path) -> Result<String, KeyError> {
    let read_error = |source| KeyError::Read { path: path.to_path_buf(), source };
    let mode = std::fs::metadata(path).map_err(read_error)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions { path: path.to_path_buf(), mode });
    }
    std::fs::read_to_string(path).map_err(|source| KeyError::Read { path: path.to_path_buf(), source })
}
