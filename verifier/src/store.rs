//! Read-only adapter: audits a stopped ledger directory (laid out as [`crate::layout`] says)
//! with the [`Auditor`].
//!
//! The entry segments and checkpoints are read from the store's [`ENTRIES_FILE`] as they are,
//! under a shared lock on the ledger's [`LOCK_FILE`]: nothing is copied, and the memory taken
//! is the place of each key's value (about 40 bytes a segment of 32 entries), not the store.
//! A store written before that file existed keeps them in its sled database; opening a sled
//! database may write to it (recovery), so for such a store the adapter copies the database to
//! a temporary directory and reads the copy. The original is only ever read, byte for byte.
//! With [`crate::bundle_files`], the only modules that touch a disk.
//!
//! A store in use is not a stopped one: its files change while they are read. The ledger holds
//! an exclusive lock on [`LOCK_FILE`] while it runs; the adapter takes a shared lock on it
//! while it reads, and when it cannot, says which process holds the store instead of auditing
//! a torn copy (which could look like tampering).

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::Context as _;

use crate::audit::{AuditError, AuditReport, Auditor};
use crate::checkpoint::Checkpoint;
use crate::layout::{
    frame_header, key_number, segment_records, unpack_segment, CHECKPOINT, ENTRIES_FILE, ENTRIES_MAGIC, ENTRY,
    FRAME_HEADER, LOCK_FILE, LOG_DIR,
};
use crate::note::VerifierKey;

/// sled's page cache while the copy is read.
const CACHE_BYTES: u64 = 32 << 20;

/// Audits the ledger data directory `dir`. The outer error is about reading (no such
/// directory, not a ledger); the inner one is what the audit found wrong.
pub fn audit_dir(
    dir: &Path,
    keys: &[VerifierKey],
    trusted: Option<Checkpoint>,
) -> anyhow::Result<Result<AuditReport, AuditError>> {
    let log = dir.join(LOG_DIR);
    anyhow::ensure!(log.join("conf").is_file(), "{} is not a ledger data directory (no {LOG_DIR}/conf)", dir.display());
    if log.join(ENTRIES_FILE).is_file() {
        let lock = stopped(&log)?;
        let audit = audit_file(&log.join(ENTRIES_FILE), keys, trusted);
        drop(lock);
        return audit;
    }
    let copy = tempfile::tempdir().context("Cannot create a temporary directory for the copy")?;
    copy_stopped(&log, copy.path())?;
    // The audit reads each page once, in order: sled's default cache of 1 GiB would only hold
    // pages never read again (1.3 GB resident on 10,000,000 entries).
    let db = sled::Config::new()
        .path(copy.path())
        .cache_capacity(CACHE_BYTES)
        .open()
        .context("Cannot open the copied ledger database")?;
    let read = |prefix: u8, what: &'static str| {
        db.scan_prefix([prefix]).map(move |item| {
            let (key, value) = item.with_context(|| format!("Cannot read {what}"))?;
            Ok((key.to_vec(), value.to_vec()))
        })
    };
    audit_records(keys, trusted, read(CHECKPOINT, "a checkpoint"), read(ENTRY, "an entry segment"))
}

/// Where each key's value is in an entries file: (offset, length) of its last frame, `None`
/// where the last frame removed it.
type Places = BTreeMap<[u8; 9], Option<(u64, u32)>>;

/// What an entries file is read through: the file itself, or its bytes (the fuzz target).
pub trait ReadAt {
    /// The length in bytes.
    fn size(&self) -> std::io::Result<u64>;
    /// Fills `buf` from `offset`; an error if the source ends first.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for std::fs::File {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.len() as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| std::io::ErrorKind::UnexpectedEof)?;
        let bytes = start.checked_add(buf.len()).and_then(|end| self.get(start..end));
        buf.copy_from_slice(bytes.ok_or(std::io::ErrorKind::UnexpectedEof)?);
        Ok(())
    }
}

fn audit_file(
    path: &Path,
    keys: &[VerifierKey],
    trusted: Option<Checkpoint>,
) -> anyhow::Result<Result<AuditReport, AuditError>> {
    let file = std::fs::File::open(path).with_context(|| format!("Cannot open {}", path.display()))?;
    audit_entries(&file, keys, trusted).with_context(|| format!("Cannot read {}", path.display()))
}

/// The audit of an entries file ([`ENTRIES_FILE`]): the frames' headers are read first, for
/// the place of each key's last value, then the checkpoints and the segments in key order,
/// each value read once from its place. Every byte comes from the store under audit, so
/// nothing here may panic (fuzzed: `ledger/tests/fuzz.rs`).
pub fn audit_entries(
    source: &(impl ReadAt + ?Sized),
    keys: &[VerifierKey],
    trusted: Option<Checkpoint>,
) -> anyhow::Result<Result<AuditReport, AuditError>> {
    let (places, torn_tail) = match frame_places(source)? {
        Ok(found) => found,
        Err(e) => return Ok(Err(e)),
    };
    let read = |prefix: u8| {
        places.iter().filter(move |(key, _)| key[0] == prefix).filter_map(move |(key, place)| {
            let (offset, len) = (*place)?;
            let mut value = vec![0u8; len as usize];
            let read = source.read_exact_at(&mut value, offset).context("Cannot read a value");
            Some(read.map(|()| (key.to_vec(), value)))
        })
    };
    let audit = audit_records(keys, trusted, read(CHECKPOINT), read(ENTRY))?;
    Ok(audit.map(|report| AuditReport { torn_tail, ..report }))
}

/// The place of each key's last value in an entries file (see [`Places`]), and the bytes of a
/// frame cut short at the end (see [`Frames`]). A header that cannot be a frame's is a finding.
fn frame_places(source: &(impl ReadAt + ?Sized)) -> std::io::Result<Result<(Places, u64), AuditError>> {
    let walk = || -> Result<(Places, u64), FramesError> {
        let mut frames = Frames::new(source)?;
        let mut places = Places::new();
        while let Some(frame) = frames.next_frame()? {
            // Only entry segments and checkpoints are read; the ledger's Merkle tiles are passed over.
            if let Ok(key @ [ENTRY | CHECKPOINT, ..]) = <[u8; 9]>::try_from(&frame.key[..]) {
                places.insert(key, frame.value);
            }
        }
        Ok((places, frames.torn()))
    };
    match walk() {
        Ok(found) => Ok(Ok(found)),
        Err(FramesError::Read(e)) => Err(e),
        Err(FramesError::Malformed(e)) => Ok(Err(e)),
    }
}

/// A whole frame of an entries file ([`ENTRIES_FILE`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its key.
    pub key: Vec<u8>,
    /// Where its value is in the file (offset, length); `None` for a removal.
    pub value: Option<(u64, u32)>,
}

/// Why the frames of an entries file could not be read.
#[derive(Debug)]
pub enum FramesError {
    /// The source could not be read.
    Read(std::io::Error),
    /// The bytes are not frames the ledger writes ([`AuditError::File`]).
    Malformed(AuditError),
}

impl From<std::io::Error> for FramesError {
    fn from(e: std::io::Error) -> Self {
        FramesError::Read(e)
    }
}

/// The whole frames of an entries file, in file order: what the verifier audits and what the
/// ledger places when it migrates a store, read by one walk. A frame cut short at the end is
/// a write a crash interrupted, never committed: the walk ends before it ([`Frames::end`]).
pub struct Frames<'s, R: ReadAt + ?Sized> {
    source: &'s R,
    len: u64,
    at: u64,
}

impl<R: ReadAt + ?Sized> std::fmt::Debug for Frames<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frames").field("len", &self.len).field("at", &self.at).finish()
    }
}

impl<'s, R: ReadAt + ?Sized> Frames<'s, R> {
    /// The frames of `source`, after its magic bytes (a finding at byte 0 if they are not
    /// [`ENTRIES_MAGIC`]).
    pub fn new(source: &'s R) -> Result<Self, FramesError> {
        let len = source.size()?;
        let mut magic = [0u8; ENTRIES_MAGIC.len()];
        if len < magic.len() as u64 || {
            source.read_exact_at(&mut magic, 0)?;
            magic != ENTRIES_MAGIC
        } {
            let problem = format!("it does not begin with {:?}", String::from_utf8_lossy(&ENTRIES_MAGIC));
            return Err(FramesError::Malformed(AuditError::File { offset: 0, problem }));
        }
        Ok(Frames { source, len, at: ENTRIES_MAGIC.len() as u64 })
    }

    /// The next whole frame, or `None` at the end of the whole frames.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FramesError> {
        if self.at + FRAME_HEADER as u64 > self.len {
            return Ok(None);
        }
        let mut header = [0u8; FRAME_HEADER];
        self.source.read_exact_at(&mut header, self.at)?;
        let (key, value_len) = frame_header(&header)
            .map_err(|e| FramesError::Malformed(AuditError::File { offset: self.at, problem: e.to_string() }))?;
        let value_at = self.at + FRAME_HEADER as u64;
        let end = value_at + u64::from(value_len.unwrap_or(0));
        if end > self.len {
            return Ok(None);
        }
        self.at = end;
        Ok(Some(Frame { key: key.to_vec(), value: value_len.map(|len| (value_at, len)) }))
    }

    /// Where the whole frames read so far end.
    pub fn end(&self) -> u64 {
        self.at
    }

    /// Once the walk is over: the bytes after the last whole frame (a frame cut short).
    pub fn torn(&self) -> u64 {
        self.len - self.at
    }
}

/// The audit of [`audit_dir`] over the store's records as read: `checkpoints` and `segments`
/// as (key, value) pairs in key order. Every byte here comes from the store under audit, so
/// nothing in it may panic (fuzzed: `ledger/tests/fuzz.rs`).
pub fn audit_records(
    keys: &[VerifierKey],
    trusted: Option<Checkpoint>,
    checkpoints: impl Iterator<Item = anyhow::Result<(Vec<u8>, Vec<u8>)>>,
    segments: impl Iterator<Item = anyhow::Result<(Vec<u8>, Vec<u8>)>>,
) -> anyhow::Result<Result<AuditReport, AuditError>> {
    let mut notes = Vec::new();
    for item in checkpoints {
        let (key, value) = item?;
        let size = key_number(&key).with_context(|| format!("malformed checkpoint key {key:?}"))?;
        notes.push((size, value));
    }
    let mut auditor = match Auditor::new(keys, notes, trusted) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    for item in segments {
        let (key, segment) = item?;
        let first = key_number(&key).with_context(|| format!("malformed segment key {key:?}"))?;
        let segment = match unpack_segment(&segment) {
            Ok(segment) => segment,
            Err(e) => return Ok(Err(AuditError::Entry { seq: first, problem: format!("cannot be read: {e}") })),
        };
        for (n, record) in segment_records(&segment).enumerate() {
            let position = first + n as u64;
            let checked = match record {
                Ok(record) => auditor.entry(position, record),
                Err(e) => Err(AuditError::Entry { seq: position, problem: format!("cannot be read: {e}") }),
            };
            if let Err(e) = checked {
                return Ok(Err(e));
            }
        }
    }
    Ok(auditor.finish())
}

/// A shared lock on the store's lock file, held while the store is copied; an error naming the
/// process when a ledger holds the store. A store without a lock file (written before the
/// ledger kept one) is taken as stopped.
fn stopped(log: &Path) -> anyhow::Result<Option<std::fs::File>> {
    let path = log.join(LOCK_FILE);
    let Ok(file) = std::fs::File::open(&path) else { return Ok(None) };
    match file.try_lock_shared() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(&path).unwrap_or_default();
            let who = match pid.trim() {
                "" => "another process".to_string(),
                pid => format!("process {pid}"),
            };
            anyhow::bail!(
                "the ledger at {} is in use by {who}: stop it first, or verify a copy taken while it was stopped (a copy of a running store is not a consistent snapshot)",
                log.parent().unwrap_or(log).display()
            )
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("Cannot lock {}", path.display())),
    }
}

/// Copies the sled database in `log` (a ledger's `log` directory) to `to`, under a shared lock
/// on the store's lock file (an error naming the process when a ledger holds it), leaving out
/// unfinished snapshots ([`unfinished_snapshot`]).
pub fn copy_stopped(log: &Path, to: &Path) -> anyhow::Result<()> {
    let lock = stopped(log)?;
    copy_dir(log, to).with_context(|| format!("Cannot copy {}", log.display()))?;
    drop(lock);
    Ok(())
}

/// Whether a file in a sled directory is a snapshot sled began and never finished
/// (`snap.<lsn>.generating`: a write that failed, on a full disk for one). sled 0.34 reads the
/// newest `snap.*` file at open, unfinished or not, and fails on an empty one with "Read
/// corrupted data"; the data is all in the log segments, so such a file is safe to leave out.
pub fn unfinished_snapshot(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with("snap.") && name.ends_with(".generating")
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for item in std::fs::read_dir(from)? {
        let item = item?;
        let target = to.join(item.file_name());
        if unfinished_snapshot(&item.file_name()) {
            continue;
        }
        if item.file_type()?.is_dir() {
            copy_dir(&item.path(), &target)?;
        } else {
            std::fs::copy(item.path(), target)?;
        }
    }
    Ok(())
}

/// Files under `dir` (at most `depth` levels down) that hold a private signer key: evidence
/// handed over with its key lets whoever holds the copy sign checkpoints as the ledger. Only
/// small files are read (a key file is under 200 bytes); unreadable entries are skipped.
pub fn private_keys_in(dir: &Path, depth: usize) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(items) = std::fs::read_dir(dir) else { return found };
    for item in items.filter_map(Result::ok) {
        let Ok(meta) = item.metadata() else { continue };
        if meta.is_dir() && depth > 0 {
            found.extend(private_keys_in(&item.path(), depth - 1));
        } else if meta.is_file() && meta.len() < 4096 {
            let holds_key = std::fs::read(item.path()).is_ok_and(|b| b.trim_ascii_start().starts_with(b"PRIVATE+KEY+"));
            if holds_key {
                found.push(item.path());
            }
        }
    }
    found.sort();
    found
}
