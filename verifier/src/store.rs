//! Read-only adapter: audits a stopped ledger directory (a sled database laid out as
//! [`crate::layout`] says) with the [`Auditor`].
//!
//! Opening a sled database may write to it (recovery), so the adapter never opens the
//! evidence itself: it copies the database to a temporary directory and reads the copy. The
//! original is only ever read, byte for byte. With [`crate::bundle_files`], the only modules
//! that touch a disk.
//!
//! A store in use is not a stopped one: its files change under a copy, and the copy would be
//! torn. The ledger holds an exclusive lock on [`LOCK_FILE`] while it runs; the adapter takes
//! a shared lock on it for the time of the copy, and when it cannot, says which process holds
//! the store instead of auditing a torn copy (which could look like tampering).

use std::path::Path;

use anyhow::Context as _;

use crate::audit::{AuditError, AuditReport, Auditor};
use crate::checkpoint::Checkpoint;
use crate::layout::{key_number, segment_records, unpack_segment, CHECKPOINT, ENTRY, LOCK_FILE, LOG_DIR};
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
