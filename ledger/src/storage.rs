//! The storage boundary: an ordered byte-key store with atomic, durable batches. The log is
//! written against [`Storage`] only, so the engine underneath can change without touching it.
//! [`SledStorage`] is the real engine; [`MemStorage`] is its in-memory twin for unit tests,
//! and both pass the same tests.
//!
//! Durability contract of [`Storage::commit`]:
//! 1. Every put and delete of the batch is applied, or none is (also across a crash).
//! 2. When `commit` returns `Ok`, the batch is on disk (sled: `apply_batch`, then `flush`).
//! 3. Batches become visible, and survive crashes, in commit order.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::RwLock;

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

    /// Number of operations.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// A key and its value.
pub type Pair = (Vec<u8>, Vec<u8>);

/// An ordered key-value store with atomic, durable batches.
pub trait Storage: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError>;
    /// Pairs with keys in `[from, to)`, in key order.
    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair, StorageError>> + '_>;
    /// The last pair whose key starts with `prefix`.
    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError>;
    /// Applies a batch atomically and durably (see the module docs).
    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError>;
}

/// The end of the key range that starts with `prefix` (for a one-byte prefix).
pub fn prefix_end(prefix: u8) -> [u8; 1] {
    [prefix + 1]
}

/// The real engine: a sled database in a directory.
#[derive(Debug, Clone)]
pub struct SledStorage {
    db: sled::Db,
}

impl SledStorage {
    /// Opens (or creates) the database at `path`. Fails if another process has it open.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        // No background flusher: every commit flushes, and the flusher thread would keep the
        // database locked for a while after the store is dropped.
        let db = sled::Config::new().path(path).cache_capacity(256 * 1024 * 1024).flush_every_ms(None).open()?;
        Ok(SledStorage { db })
    }
}

impl Storage for SledStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair, StorageError>> + '_> {
        Box::new(
            self.db
                .range(from.to_vec()..to.to_vec())
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(StorageError::from)),
        )
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        Ok(self.db.scan_prefix(prefix).next_back().transpose()?.map(|(k, v)| (k.to_vec(), v.to_vec())))
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut b = sled::Batch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        self.db.flush()?;
        Ok(())
    }
}

/// The in-memory twin, for unit tests.
#[derive(Debug, Default)]
pub struct MemStorage {
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Storage for MemStorage {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.map.read().expect("not poisoned").get(key).cloned())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair, StorageError>> + '_> {
        let items: Vec<_> = self
            .map
            .read()
            .expect("not poisoned")
            .range(from.to_vec()..to.to_vec())
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Box::new(items.into_iter())
    }

    fn last_with_prefix(&self, prefix: &[u8]) -> Result<Option<Pair>, StorageError> {
        let map = self.map.read().expect("not poisoned");
        Ok(map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .last()
            .map(|(k, v)| (k.clone(), v.clone())))
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut map = self.map.write().expect("not poisoned");
        for (k, v) in batch.ops {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }
}
