//! [`SledStorage`]: the real engine, a sled database in a directory, guarded by a lock file of
//! our own so that a store held by another process is reported as such (sled reports its own
//! lock only as an untyped I/O error). Two repairs for full disks: a snapshot sled could not
//! finish is removed before sled opens (sled would read it and call the store corrupt), and
//! [`SledStorage::open_copy`] lets a reader open a copy when opening would need to write.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::filed::{filed, to_file, EntriesFile};
use super::files::Files;
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

/// The real engine: a sled database in a directory, with the entry segments, checkpoints and
/// full Merkle tiles in a file beside it (`filed`).
#[derive(Debug, Clone)]
pub struct SledStorage {
    db: sled::Db,
    entries: Arc<EntriesFile>,
    /// Files of derived data (the index's runs), in `index/`.
    files: Arc<Files>,
    /// Held while any clone is alive; dropped after the database handle.
    _lock: Arc<File>,
    /// For [`SledStorage::open_copy`]: the temporary directory the copy lives in.
    _copy: Option<Arc<tempfile::TempDir>>,
    /// Set when a write or flush failed (a full disk, an I/O error) and no flush has
    /// succeeded since: see the `Drop` below.
    failed: Arc<AtomicBool>,
}

/// After a failed write, the last handle is dropped without sled's closing flush; otherwise
/// the entries file is synced before it.
///
/// sled 0.34 flushes when its last handle goes, and after an I/O error that flush can wait
/// forever for a write that will never finish (seen on a full disk: `evidence ingest` printed
/// its error and then hung in the drop). Nothing is lost by leaving it out: every batch the
/// ledger acknowledged was flushed by its commit, and what was applied since is what a crash
/// loses too, which every open already recovers from. The handle is leaked instead (the
/// process is about to end, or has a store it can no longer write).
impl Drop for SledStorage {
    fn drop(&mut self) {
        if self.failed.load(Ordering::SeqCst) {
            std::mem::forget(self.db.clone());
        } else {
            // sled flushes when its last handle goes: the frames it places are synced first
            // (nothing to do when every write was committed).
            let _ = self.entries.sync();
        }
    }
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
    // The process id is for messages only: on a full disk, the lock holds without it.
    if let Err(error) = file.set_len(0).and_then(|()| write!(file, "{}", std::process::id())) {
        tracing::warn!(message = "Cannot write the process id into the lock file.", %error);
    }
    Ok(file)
}

/// Removes the snapshots sled began in `path` and never finished (see
/// [`evidence_verifier::store::unfinished_snapshot`]), which would make the next open fail.
/// Called with the store's lock held, so no other process is writing one.
fn clear_unfinished_snapshots(path: &Path) -> Result<(), StorageError> {
    for item in std::fs::read_dir(path)? {
        let item = item?;
        if evidence_verifier::store::unfinished_snapshot(&item.file_name()) {
            tracing::warn!(
                message = "Removing a snapshot sled never finished (a failed write, such as on a full disk).",
                file = %item.path().display()
            );
            std::fs::remove_file(item.path())?;
        }
    }
    Ok(())
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
        clear_unfinished_snapshots(path)?;
        let config = sled_config(path);
        let mut tries = 0;
        loop {
            match config.open() {
                Ok(db) => {
                    let entries = Arc::new(EntriesFile::open(&db, path)?);
                    let files = Arc::new(Files::open(path)?);
                    return Ok(SledStorage { db, entries, files, _lock: lock, _copy: None, failed: Arc::default() });
                }
                Err(sled::Error::Io(e)) if e.kind() == std::io::ErrorKind::Other && tries < 250 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl SledStorage {
    /// Opens a private copy of the database at `path`, made in a temporary directory while the
    /// store is not in use (taken under a shared lock) and removed when the last clone is
    /// dropped. For reading a store whose own disk is too full to open it: opening a sled
    /// database may write, a copy elsewhere can. Writes go to the copy and are lost.
    pub fn open_copy(path: &Path) -> Result<Self, StorageError> {
        let copy = tempfile::tempdir()?;
        evidence_verifier::store::copy_stopped(path, copy.path())
            .map_err(|e| StorageError::new(StorageErrorKind::Other, format!("{e:#}")))?;
        let mut storage = SledStorage::open(copy.path())?;
        storage._copy = Some(Arc::new(copy));
        Ok(storage)
    }
}

impl SledStorage {
    /// A pair as sled holds it, with a filed value read from the entries file.
    fn resolved(&self, (key, value): (sled::IVec, sled::IVec)) -> Result<Pair<Self>, StorageError> {
        if filed(&key) {
            return Ok((key, self.entries.resolve(value)?));
        }
        Ok((key, value))
    }
}

impl Storage for SledStorage {
    type Bytes = sled::IVec;

    fn get(&self, key: &[u8]) -> Result<Option<sled::IVec>, StorageError> {
        match self.db.get(key)? {
            Some(value) if filed(key) => Ok(Some(self.entries.resolve(value)?)),
            value => Ok(value),
        }
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair<Self>, StorageError>> + '_> {
        Box::new(self.db.range(from..to).map(|r| self.resolved(r?)))
    }

    fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<Pair<Self>>, StorageError> {
        self.db.range(from..to).next_back().transpose()?.map(|pair| self.resolved(pair)).transpose()
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.apply(batch)?;
        // The frames the flushed batches place reach the disk first.
        self.noting_failure(self.entries.sync())?;
        let flushed = self.db.flush();
        self.failed.store(flushed.is_err(), Ordering::SeqCst);
        flushed?;
        Ok(())
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.noting_failure(self.apply_unnoted(batch))
    }

    fn apply_each(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.noting_failure(self.apply_each_unnoted(batch))
    }

    fn write_file(
        &self,
        name: &str,
        parts: &mut dyn Iterator<Item = Result<Vec<u8>, StorageError>>,
    ) -> Result<(), StorageError> {
        self.files.write(name, parts)
    }

    fn read_file(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        self.files.read(name, offset, len)
    }

    fn remove_file(&self, name: &str) -> Result<(), StorageError> {
        self.files.remove(name)
    }

    fn file_names(&self) -> Result<Vec<String>, StorageError> {
        self.files.names()
    }
}

impl SledStorage {
    /// Passes `result` on, remembering a failure for `Drop`.
    fn noting_failure(&self, result: Result<(), StorageError>) -> Result<(), StorageError> {
        if result.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        result
    }

    fn apply_unnoted(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut b = sled::Batch::default();
        let mut filing = Vec::new();
        for (k, v) in batch.into_ops() {
            match v {
                _ if to_file(&k, v.as_deref()) => filing.push((k, v)),
                Some(v) => b.insert(k, v),
                None => b.remove(k),
            }
        }
        if filing.is_empty() {
            return Ok(self.db.apply_batch(b)?);
        }
        self.entries.write(&self.db, filing, b)
    }

    fn apply_each_unnoted(&self, batch: WriteBatch) -> Result<(), StorageError> {
        // Single writes take sled's concurrency control for reading only, so readers go on.
        for (k, v) in batch.into_ops() {
            if to_file(&k, v.as_deref()) {
                let mut one = WriteBatch::default();
                match v {
                    Some(v) => one.put(k, v),
                    None => one.delete(k),
                }
                self.apply_unnoted(one)?;
                continue;
            }
            match v {
                Some(v) => self.db.insert(k, v)?,
                None => self.db.remove(k)?,
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::keyspace::ENTRY;

    /// serve applies a round in slices and commits once: the entries file is synced by the
    /// commit, once, not by each slice (an `fdatasync` each took 14% of serve's writer).
    #[test]
    fn the_entries_file_is_synced_by_each_commit_not_by_each_batch_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStorage::open(dir.path()).unwrap();
        for seq in 0u64..3 {
            let mut batch = WriteBatch::default();
            batch.put([&[ENTRY][..], &(seq * 32).to_be_bytes()].concat(), vec![seq as u8; 100]);
            store.apply(batch).unwrap();
        }
        assert_eq!(store.entries.syncs(), 0, "applying a batch does not sync the entries file");
        store.commit(WriteBatch::default()).unwrap();
        assert_eq!(store.entries.syncs(), 1, "a commit syncs the frames written before it");
        store.commit(WriteBatch::default()).unwrap();
        assert_eq!(store.entries.syncs(), 1, "with nothing written since, a commit does not sync again");
        let mut batch = WriteBatch::default();
        batch.put([&[ENTRY][..], &96u64.to_be_bytes()].concat(), vec![3u8; 100]);
        store.commit(batch).unwrap();
        assert_eq!(store.entries.syncs(), 2, "a commit's own frames are synced by it");
        // EVIDENCE_SYNC_EACH_BATCH: each batch is synced before sled places its frames.
        store.entries.set_sync_each_batch(true);
        let mut batch = WriteBatch::default();
        batch.put([&[ENTRY][..], &128u64.to_be_bytes()].concat(), vec![4u8; 100]);
        store.apply(batch).unwrap();
        assert_eq!(store.entries.syncs(), 3, "with EVIDENCE_SYNC_EACH_BATCH, an applied batch is synced");
        store.commit(WriteBatch::default()).unwrap();
        assert_eq!(store.entries.syncs(), 3, "and the commit after it has nothing left to sync");
        drop(store);
        let store = SledStorage::open(dir.path()).unwrap();
        for seq in 0u64..5 {
            let key = [&[ENTRY][..], &(seq * 32).to_be_bytes()].concat();
            assert_eq!(store.get(&key).unwrap().as_deref(), Some(&vec![seq as u8; 100][..]), "entry segment {seq}");
        }
    }
}
