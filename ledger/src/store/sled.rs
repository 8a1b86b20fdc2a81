//! [`SledStorage`]: the real engine, a sled database in a directory, guarded by a lock file of
//! our own so that a store held by another process is reported as such (sled reports its own
//! lock only as an untyped I/O error).

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{Pair, Storage, StorageError, StorageErrorKind, WriteBatch};

/// The lock file inside the sled directory: held exclusively by the process that has the
/// store open, and holding that process's id (the verifier reads it too).
pub use evidence_verifier::layout::LOCK_FILE;

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => io.into(),
            sled::Error::Corruption { .. } => StorageError::new(StorageErrorKind::Corrupt, e.to_string()),
            other => StorageError::new(StorageErrorKind::Other, other.to_string()),
        }
    }
}

/// sled's page cache size: `EVIDENCE_SLED_CACHE_MB` (default 128 MiB, which keeps `evidence
/// serve` under 300 MB resident; the append rate measured the same from 64 MiB to 2 GiB).
pub fn cache_bytes() -> u64 {
    std::env::var("EVIDENCE_SLED_CACHE_MB").ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(128) * 1024 * 1024
}

/// How the ledger configures sled for a database at `path` (benchmarks open their raw sled
/// baseline with it too, so both measure the same engine settings).
pub fn sled_config(path: &Path) -> sled::Config {
    sled::Config::new()
        .path(path)
        .cache_capacity(cache_bytes())
        // No background flusher: every commit flushes.
        .flush_every_ms(None)
}

/// The real engine: a sled database in a directory.
#[derive(Debug, Clone)]
pub struct SledStorage {
    db: sled::Db,
    /// Held while any clone is alive; dropped after the database handle.
    _lock: Arc<File>,
}

/// Takes the store's lock file, or says that another process holds it.
fn lock(path: &Path) -> Result<File, StorageError> {
    std::fs::create_dir_all(path)?;
    let mut file =
        std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path.join(LOCK_FILE))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(path.join(LOCK_FILE)).unwrap_or_default();
            let holder = holder.trim();
            let who = if holder.is_empty() { "another process".to_string() } else { format!("process {holder}") };
            return Err(StorageError::new(StorageErrorKind::Locked, format!("{} is in use by {who}", path.display())));
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

impl SledStorage {
    /// Opens (or creates) the database at `path`. Fails with [`StorageErrorKind::Locked`] if
    /// another process has it open.
    ///
    /// sled releases its own file lock a little after the last handle is dropped (its IO
    /// threads finish first), so once our lock is held, an open that sled refuses is retried
    /// for up to five seconds: only this process can be closing it.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let lock = Arc::new(lock(path)?);
        let config = sled_config(path);
        let mut tries = 0;
        loop {
            match config.open() {
                Ok(db) => return Ok(SledStorage { db, _lock: lock }),
                Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::Other && tries < 250 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Storage for SledStorage {
    type Bytes = sled::IVec;

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StorageError> {
        Ok(self.db.get(key)?)
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair<Self>, StorageError>> + '_> {
        Box::new(self.db.range(from..to).map(|r| r.map_err(StorageError::from)))
    }

    fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<Pair<Self>>, StorageError> {
        Ok(self.db.range(from..to).next_back().transpose()?)
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.apply(batch)?;
        self.db.flush()?;
        Ok(())
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.into_ops() {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        Ok(self.db.apply_batch(b)?)
    }
}
