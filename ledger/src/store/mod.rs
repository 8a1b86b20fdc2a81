//! The storage boundary: an ordered byte-key store with atomic, durable batches. The log, the
//! index and the views are written against [`Storage`] only, so the engine underneath can
//! change without touching them. [`SledStorage`] is the real engine; [`MemStorage`] is its
//! in-memory twin for unit tests, and both pass the same tests. [`keyspace`] is the one table
//! of every key prefix either writes.
//!
//! Durability contract of [`Storage::commit`]:
//! 1. Every put and delete of the batch is applied, or none is (also across a crash).
//! 2. When `commit` returns `Ok`, the batch is on disk (sled: `apply_batch`, then `flush`).
//! 3. Batches become visible, and survive crashes, in commit order.
//!
//! [`Storage::apply`] is the same without step 2, for derived state that can be recomputed
//! (the index, the views): atomic and visible at once, on disk by the next `commit` at the
//! latest.
//!
//! [`Storage::apply_each`] gives up step 1 as well: each write is applied on its own, in
//! order (after a crash, a prefix of them survives). It exists for readers' sake: sled stops
//! every reader of the store while a batch applies, so a large derived batch (the index's
//! 500 keys per round of intake, several milliseconds) would hold back every query for that
//! long. It suits keys that are rewritten idempotently behind a watermark written last.
//!
//! Beside its keys a store keeps files of derived data that is written once, read in place and
//! deleted whole ([`Storage::write_file`]; the index's runs): the sled engine keeps them in a
//! directory beside the database, where a deleted file gives its space back at once, which sled
//! does only for keys it gets round to cleaning. A file is durable once `write_file` returns, and
//! is named by keys written after it, so a crash leaves at most files no key names.
//!
//! This module owns bytes and their durability; it knows nothing of entries, views or events.

mod filed;
mod files;
pub mod keyspace;
mod mem;
mod sled;

pub use self::files::FILES_DIR;
pub use self::mem::MemStorage;
pub use self::sled::{cache_bytes, sled_config, SledStorage, LOCK_FILE};
use crate::error::ErrorKind;

/// What kind of storage failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// Another process holds the store.
    Locked,
    /// The file system is full.
    FullDisk,
    /// The engine found its own files damaged.
    Corrupt,
    /// An I/O error of this kind.
    Io(std::io::ErrorKind),
    /// Any other engine failure.
    Other,
}

/// A storage failure. Nothing of a failed commit was applied.
#[derive(Clone, Debug, thiserror::Error)]
#[error("storage: {message}")]
pub struct StorageError {
    /// What kind of failure, as the engine reported it.
    pub kind: StorageErrorKind,
    /// The engine's message.
    pub message: String,
}

impl StorageError {
    /// A failure of `kind`.
    pub fn new(kind: StorageErrorKind, message: impl Into<String>) -> Self {
        StorageError { kind, message: message.into() }
    }

    /// Which kind of failure, for callers that map failures to answers.
    pub fn kind(&self) -> ErrorKind {
        match self.kind {
            StorageErrorKind::Locked => ErrorKind::Busy,
            StorageErrorKind::FullDisk => ErrorKind::FullDisk,
            StorageErrorKind::Corrupt => ErrorKind::Damaged,
            StorageErrorKind::Io(_) | StorageErrorKind::Other => ErrorKind::Engine,
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28) {
            // One sentence however the error came: sled passes on a copy of its first I/O
            // error whose message is that error's debug text (`Os { code: 28, ... }`).
            return StorageError::new(StorageErrorKind::FullDisk, "No space left on device (os error 28)");
        }
        StorageError::new(StorageErrorKind::Io(e.kind()), e.to_string())
    }
}

impl StorageError {
    /// Whether it says that there is no such file.
    pub fn is_not_found(&self) -> bool {
        self.kind == StorageErrorKind::Io(std::io::ErrorKind::NotFound)
    }
}

/// Reads the file `name` from start to end, a piece of at most 1 MiB at a time, handing each
/// piece to `each` with its offset; `Ok(false)` if there is no such file.
pub fn read_file_pieces<S: Storage + ?Sized>(
    store: &S,
    name: &str,
    mut each: impl FnMut(u64, &[u8]),
) -> Result<bool, StorageError> {
    const PIECE: usize = 1 << 20;
    let mut at = 0;
    loop {
        let piece = match store.read_file(name, at, PIECE) {
            Ok(piece) => piece,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(e),
        };
        each(at, &piece);
        if piece.len() < PIECE {
            return Ok(true);
        }
        at += piece.len() as u64;
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

    /// The keys it puts or deletes, in order.
    pub fn keys(&self) -> impl Iterator<Item = &[u8]> {
        self.ops.iter().map(|(k, _)| k.as_slice())
    }

    /// The operations, in order: `(key, Some(value))` puts, `(key, None)` deletes.
    pub fn into_ops(self) -> impl Iterator<Item = (Vec<u8>, Option<Vec<u8>>)> {
        self.ops.into_iter()
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
    /// Applies each write of a batch on its own, in order, without waiting for the disk and
    /// without holding readers back (see the module docs).
    fn apply_each(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.apply(batch)
    }
    /// Writes the file `name` (a plain file name) from `parts`, in order, replacing any file of
    /// that name; durable when it returns. If a part is an error, nothing is written and that
    /// error is returned.
    fn write_file(
        &self,
        name: &str,
        parts: &mut dyn Iterator<Item = Result<Vec<u8>, StorageError>>,
    ) -> Result<(), StorageError>;
    /// Up to `len` bytes of the file `name` from `offset` (fewer at its end).
    fn read_file(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError>;
    /// Deletes the file `name`, if there is one.
    fn remove_file(&self, name: &str) -> Result<(), StorageError>;
    /// The names of the files there are.
    fn file_names(&self) -> Result<Vec<String>, StorageError>;
}

/// Forwards [`Storage`]'s file methods to the store in the field `$inner`, for a store that
/// wraps another and changes only how keys are written.
#[macro_export]
macro_rules! files_from {
    ($inner:ident) => {
        fn write_file(
            &self,
            name: &str,
            parts: &mut dyn Iterator<Item = Result<Vec<u8>, $crate::store::StorageError>>,
        ) -> Result<(), $crate::store::StorageError> {
            self.$inner.write_file(name, parts)
        }
        fn read_file(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, $crate::store::StorageError> {
            self.$inner.read_file(name, offset, len)
        }
        fn remove_file(&self, name: &str) -> Result<(), $crate::store::StorageError> {
            self.$inner.remove_file(name)
        }
        fn file_names(&self) -> Result<Vec<String>, $crate::store::StorageError> {
            self.$inner.file_names()
        }
    };
}

/// A key and its value.
pub type Pair<S> = (<S as Storage>::Bytes, <S as Storage>::Bytes);
