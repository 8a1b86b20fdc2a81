//! Read-only adapter: audits a stopped ledger directory (a sled database laid out as
//! [`crate::layout`] says) with the [`Auditor`].
//!
//! Opening a sled database may write to it (recovery), so the adapter never opens the
//! evidence itself: it copies the database to a temporary directory and reads the copy. The
//! original is only ever read, byte for byte. This is the only module that touches a disk.

use std::path::Path;

use anyhow::Context as _;

use crate::audit::{AuditError, AuditReport, Auditor};
use crate::checkpoint::Checkpoint;
use crate::layout::{key_number, segment_records, CHECKPOINT, ENTRY, LOG_DIR};
use crate::note::VerifierKey;

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
    copy_dir(&log, copy.path()).with_context(|| format!("Cannot copy {}", log.display()))?;
    let db = sled::Config::new().path(copy.path()).open().context("Cannot open the copied ledger database")?;

    let mut checkpoints = Vec::new();
    for item in db.scan_prefix([CHECKPOINT]) {
        let (key, value) = item.context("Cannot read a checkpoint")?;
        let size = key_number(&key).with_context(|| format!("malformed checkpoint key {key:?}"))?;
        checkpoints.push((size, value.to_vec()));
    }
    let mut auditor = match Auditor::new(keys, checkpoints, trusted) {
        Ok(a) => a,
        Err(e) => return Ok(Err(e)),
    };
    for item in db.scan_prefix([ENTRY]) {
        let (key, segment) = item.context("Cannot read an entry segment")?;
        let first = key_number(&key).with_context(|| format!("malformed segment key {key:?}"))?;
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

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for item in std::fs::read_dir(from)? {
        let item = item?;
        let target = to.join(item.file_name());
        if item.file_type()?.is_dir() {
            copy_dir(&item.path(), &target)?;
        } else {
            std::fs::copy(item.path(), target)?;
        }
    }
    Ok(())
}
