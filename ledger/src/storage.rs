//! The storage boundary: an ordered byte-key store with atomic, durable batches. The log is
//! written against [`Storage`] only, so the engine underneath can change without touching it.
//! [`SledStorage`] is the real engine; [`MemStorage`] is its in-memory twin for unit tests,
//! and both pass the same tests.
//!
//! Durability contract of [`Storage::commit`]:
//! 1. Every put and delete of the batch is applied, or none is (also across a crash).
//! 2. When `commit` returns `Ok`, the batch is on disk (sled: `apply_batch`, then `flush`).
//! 3. Batches become visible, and survive crashes, in commit order.
//!
//! [`Storage::apply`] is the same without step 2, for derived state that can be recomputed
//! (the views): atomic and visible at once, on disk by the next `commit` at the latest.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// A storage failure. Nothing of a failed commit was applied.
#[derive(Debug, thiserror::Error)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

impl From<sled::Error> for StorageError {
    fn from(e: sled::Error) -> Self {
        StorageError(e.to_string())
    }
}

/// Puts and deletes applied together by [`Storage::commit`].
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl WriteBatch {
    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), Some(value.into())));
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.ops.push((key.into(), None));
    }

    /// Adds every operation of `other`, after this batch's own.
    pub fn extend(&mut self, other: WriteBatch) {
        self.ops.extend(other.ops);
    }

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// An ordered key-value store with atomic, durable batches.
pub trait Storage: Send + Sync + 'static {
    /// A stored value or key, shared rather than copied where the engine allows.
    type Bytes: AsRef<[u8]> + Clone + Send + Sync + std::fmt::Debug;
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Self::Bytes>, StorageError>;
    /// Pairs with keys in `[from, to)`, in key order.
    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair<Self>, StorageError>> + '_>;
    /// The last pair with a key in `[from, to)`.
    fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<Pair<Self>>, StorageError>;
    /// Applies a batch atomically and durably (see the module docs).
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError>;
    /// Applies a batch atomically, without waiting for the disk (see the module docs).
    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError>;
}

/// A key and its value.
pub type Pair<S> = (<S as Storage>::Bytes, <S as Storage>::Bytes);

/// The end of the key range that starts with `prefix` (for a one-byte prefix).
pub fn prefix_end(prefix: u8) -> [u8; 1] {
    [prefix + 1]
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
}

impl SledStorage {
    /// Opens (or creates) the database at `path`. Fails if another process has it open.
    ///
    /// sled releases its file lock a little after the last handle is dropped (its IO threads
    /// finish first), so an open within the same process right after a close is retried for up
    /// to five seconds before the lock is reported as held.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        let config = sled_config(path);
        let mut tries = 0;
        loop {
            match config.open() {
                Ok(db) => return Ok(SledStorage { db }),
                // sled reports a held lock as an `Other` I/O error with this message.
                Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") && tries < 250 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(20));
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
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        Ok(self.db.apply_batch(b)?)
    }
}

/// The in-memory twin, for unit tests.
#[derive(Debug, Default)]
pub struct MemStorage {
    map: RwLock<BTreeMap<Vec<u8>, Arc<[u8]>>>,
}

impl Storage for MemStorage {
    type Bytes = Arc<[u8]>;

    fn get(&self, key: &[u8]) -> Result<Option<Arc<[u8]>>, StorageError> {
        Ok(self.map.read().expect("not poisoned").get(key).cloned())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair<Self>, StorageError>> + '_> {
        let items: Vec<_> = self
            .map
            .read()
            .expect("not poisoned")
            .range(from.to_vec()..to.to_vec())
            .map(|(k, v)| Ok((Arc::from(k.as_slice()), v.clone())))
            .collect();
        Box::new(items.into_iter())
    }

    fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<Pair<Self>>, StorageError> {
        let map = self.map.read().expect("not poisoned");
        Ok(map.range(from.to_vec()..to.to_vec()).next_back().map(|(k, v)| (Arc::from(k.as_slice()), v.clone())))
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut map = self.map.write().expect("not poisoned");
        for (k, v) in batch.ops {
            match v {
                Some(v) => map.insert(k, Arc::from(v)),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.commit(batch)
    }
}
