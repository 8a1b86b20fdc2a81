//! Cutting signed checkpoints: when ([`CheckpointPolicy`]) and how (proven consistent with the
//! previous one before signing, committed before it is returned).

use std::time::{Duration, Instant};

use evidence_verifier::layout::checkpoint_key;
use evidence_verifier::merkle::verify_consistency;
use evidence_verifier::note::{Note, SignerKey};
use evidence_verifier::Checkpoint;

use super::error::LogError;
use super::tree::TreeReader;
use super::Log;
use crate::store::{Storage, WriteBatch};

/// When to cut checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Cut after this many new entries.
    pub every_entries: u64,
    /// Cut when this long has passed since the last one and there are new entries.
    pub interval: Duration,
}

impl CheckpointPolicy {
    /// The default of `every_entries`.
    pub const DEFAULT_EVERY: u64 = 10_000;
    /// The default of `interval`, in seconds.
    pub const DEFAULT_INTERVAL_SECS: u64 = 10;

    /// A policy from its two settings, each defaulted when not given (at least one entry).
    pub fn new(every_entries: Option<u64>, interval_secs: Option<u64>) -> Self {
        CheckpointPolicy {
            every_entries: every_entries.unwrap_or(Self::DEFAULT_EVERY).max(1),
            interval: Duration::from_secs(interval_secs.unwrap_or(Self::DEFAULT_INTERVAL_SECS)),
        }
    }
}

impl Default for CheckpointPolicy {
    fn default() -> Self {
        CheckpointPolicy::new(None, None)
    }
}

impl<S: Storage> Log<S> {
    /// Cuts and stores a signed checkpoint of the whole log now, unless the latest one
    /// already covers it. Returns the signed note.
    pub fn checkpoint_now(&mut self) -> Result<Option<String>, LogError> {
        let result = self.cut();
        match &result {
            Ok(_) => self.checkpoint_failure = None,
            Err(e) => self.checkpoint_failure = Some(e.to_string()),
        }
        result
    }

    fn cut(&mut self) -> Result<Option<String>, LogError> {
        let size = self.head.size;
        if size == 0 || self.latest.as_ref().is_some_and(|c| c.size >= size) {
            return Ok(None);
        }
        if self.signers.is_empty() {
            return Err(LogError::NoSigner);
        }
        // Never sign over damage: the entries this checkpoint adds are read back and checked,
        // but for those a flush read back and checked already (`settle`).
        let from = self.latest.as_ref().map_or(0, |c| c.size).max(self.checked).min(size);
        if let Some(e) = self.entries(from).take((size - from) as usize).find_map(Result::err) {
            return Err(e);
        }
        if let Some((seq, problem)) = self.damage() {
            return Err(LogError::AppendsStopped { seq: *seq, problem: problem.clone() });
        }
        let root = self.head.tree.root();
        if let Some(prev) = &self.latest {
            let proof = TreeReader::new(&*self.store).consistency_proof(prev.size, size)?;
            verify_consistency(prev.size, size, &proof, &prev.root, &root).map_err(|e| {
                LogError::Damaged(format!(
                    "new tree of size {size} is not consistent with checkpoint {}: {e}",
                    prev.size
                ))
            })?;
        }
        let checkpoint = Checkpoint { origin: self.origin.clone(), size, root, extensions: Vec::new() };
        let signers: Vec<&SignerKey> = self.signers.iter().collect();
        let note = Note::sign(&checkpoint.to_string(), &signers)?.to_string();
        let mut wb = WriteBatch::default();
        wb.put(checkpoint_key(size), note.as_bytes());
        self.store.commit(wb)?;
        self.latest = Some(checkpoint);
        self.last_cut = Instant::now();
        tracing::debug!(message = "Checkpoint signed.", size);
        Ok(Some(note))
    }

    /// Cuts a checkpoint if the policy says one is due.
    pub fn maybe_checkpoint(&mut self) -> Result<Option<String>, LogError> {
        let since = self.head.size - self.latest_size();
        if since >= self.policy.every_entries || (since > 0 && self.last_cut.elapsed() >= self.policy.interval) {
            return self.checkpoint_now();
        }
        Ok(None)
    }

    /// Why the last attempt to cut a checkpoint failed, if it did (cleared by the next cut).
    pub fn checkpoint_failure(&self) -> Option<&str> {
        self.checkpoint_failure.as_deref()
    }
}
