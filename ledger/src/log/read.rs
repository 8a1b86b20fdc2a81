//! The log as it stood when the writer last published it: entries, checkpoints and proofs read
//! from the store at a fixed size, from any thread, without the [`Log`] (which the one writer
//! holds). [`Log`]'s own reads go through here too, at its current size, so there is one
//! implementation of each.

use evidence_verifier::layout::{checkpoint_key, key_number};
use evidence_verifier::note::Note;
use evidence_verifier::{AuditReport, Auditor, Checkpoint};
use serde::{Deserialize, Serialize};

use super::audit::SelfAuditError;
use super::error::LogError;
use super::proof::{ConsistencyProof, InclusionProof};
use super::quarantine::{self, QuarantineRecord};
use super::tree::{ProofError, TreeReader};
use super::verified::{read_entries, EntryRecords};
use super::{keys, Log};
use crate::store::keyspace::{prefix_end, CHECKPOINT};
use crate::store::Storage;

/// What an auditor's saved checkpoint says of this log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "extends", rename_all = "snake_case")]
pub enum Extension {
    /// The log extends it: the proof from its size to the latest checkpoint.
    Yes {
        /// The consistency proof, with both signed notes.
        proof: ConsistencyProof,
    },
    /// The log does not extend it, and why, in a sentence.
    No {
        /// Why.
        reason: String,
    },
}

/// Reads of a log of `size` entries whose latest signed checkpoint is at `latest`.
#[derive(Debug)]
pub struct LogAt<'a, S: Storage> {
    store: &'a S,
    size: u64,
    latest: u64,
}

impl<'a, S: Storage> LogAt<'a, S> {
    /// The log on `store` as it stood at `size` entries, signed up to `latest`.
    pub fn new(store: &'a S, size: u64, latest: u64) -> Self {
        LogAt { store, size, latest }
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The signed checkpoint note at `size`, if one was cut there, with the witness
    /// cosignatures kept for it after the log's signature.
    pub fn checkpoint_note(&self, size: u64) -> Result<Option<String>, LogError> {
        let Some(note) = self.store.get(&checkpoint_key(size))? else { return Ok(None) };
        let mut note = String::from_utf8_lossy(note.as_ref()).into_owned();
        note.push_str(&super::cosigned::lines(self.store, size)?);
        Ok(Some(note))
    }

    /// The latest signed checkpoint note, if any.
    pub fn latest_note(&self) -> Result<Option<String>, LogError> {
        if self.latest == 0 {
            return Ok(None);
        }
        self.checkpoint_note(self.latest)
    }

    /// Entry records from `from` on, each checked as it is read, up to the log's size.
    pub fn entries(&self, from: u64) -> impl Iterator<Item = Result<(u64, Vec<u8>), LogError>> + 'a {
        let size = self.size;
        read_entries(self.store, from).take_while(move |r| match r {
            Ok((seq, _)) | Err(LogError::BadEntry { seq, .. }) => *seq < size,
            Err(_) => true,
        })
    }

    /// The entry record at `seq`.
    pub fn entry(&self, seq: u64) -> Result<Option<Vec<u8>>, LogError> {
        Ok(self.entries(seq).next().transpose()?.filter(|(s, _)| *s == seq).map(|(_, r)| r))
    }

    /// The records of `seqs`, ascending, each checked as it is read: a run of neighbours is
    /// read in one pass, a gap starts a new read at the segment holding the next.
    pub fn records<'s>(
        &'s self,
        seqs: &'s std::collections::BTreeSet<u64>,
    ) -> impl Iterator<Item = (u64, Result<Vec<u8>, LogError>)> + 's {
        /// A gap this small is read through rather than started again.
        const READ_THROUGH: u64 = 64;
        let mut reading: Option<(u64, EntryRecords<'a>)> = None;
        seqs.iter().map(move |&seq| {
            if !reading.as_ref().is_some_and(|(next, _)| *next <= seq && seq - *next < READ_THROUGH) {
                reading = Some((seq, Box::new(self.entries(seq))));
            }
            let (next, entries) = reading.as_mut().expect("reading");
            loop {
                match entries.next() {
                    Some(Ok((s, record))) if s == seq => {
                        *next = seq + 1;
                        return (seq, Ok(record));
                    }
                    Some(Ok((s, _))) if s < seq => continue,
                    Some(Err(e)) => return (seq, Err(e)),
                    _ => return (seq, Err(LogError::Damaged(format!("entry {seq} is missing")))),
                }
            }
        })
    }

    /// The log's verifier keys, oldest first.
    pub fn verifier_keys(&self) -> Result<Vec<evidence_verifier::VerifierKey>, LogError> {
        keys::history(self.store)
    }

    /// Inclusion paths of entries in the tree of `size` entries.
    pub fn inclusion_paths(&self, size: u64) -> Result<InclusionPaths<'a, S>, LogError> {
        if size > self.size {
            return Err(ProofError::OutOfRange(format!("the log has only {} entries", self.size)).into());
        }
        Ok(InclusionPaths { reader: TreeReader::caching(self.store), size })
    }

    /// Quarantine records from number `from` on, at most `limit`.
    pub fn quarantine(&self, from: u64, limit: usize) -> Result<Vec<QuarantineRecord>, LogError> {
        quarantine::read(self.store, from, limit)
    }

    /// The inclusion proof of entry `seq` against the checkpoint at `size` (default: the
    /// latest checkpoint).
    pub fn inclusion_proof(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof, LogError> {
        let size = size.unwrap_or(self.latest);
        if size == self.latest && seq >= size {
            return Err(LogError::NotYetCheckpointed { seq, size });
        }
        let checkpoint = self.checkpoint_note(size)?.ok_or(LogError::NoCheckpoint { size, latest: self.latest })?;
        let reader = TreeReader::new(self.store);
        Ok(InclusionProof {
            seq,
            tree_size: size,
            leaf_hash: reader.leaf(seq)?,
            proof: reader.inclusion_proof(seq, size)?,
            checkpoint,
        })
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<evidence_verifier::merkle::Hash>, LogError> {
        if size2 > self.size {
            return Err(ProofError::OutOfRange(format!("the log has only {} entries", self.size)).into());
        }
        Ok(TreeReader::new(self.store).consistency_proof(size1, size2)?)
    }

    /// The consistency proof from the checkpoint at `from` to the one at `to` (default: the
    /// latest), with both signed notes.
    pub fn consistency(&self, from: u64, to: Option<u64>) -> Result<ConsistencyProof, LogError> {
        let latest = self.latest;
        let to = to.unwrap_or(latest);
        let note = |size| self.checkpoint_note(size)?.ok_or(LogError::NoCheckpoint { size, latest });
        let (checkpoint1, checkpoint2) = (note(from)?, note(to)?);
        Ok(ConsistencyProof {
            size1: from,
            size2: to,
            proof: self.consistency_proof(from, to)?,
            checkpoint1,
            checkpoint2,
        })
    }
}

/// Inclusion paths in one tree (see [`LogAt::inclusion_paths`]).
#[derive(Debug)]
pub struct InclusionPaths<'a, S: Storage> {
    reader: TreeReader<'a, S>,
    size: u64,
}

impl<S: Storage> InclusionPaths<'_, S> {
    /// Entry `seq`'s path, its leaf's sibling first.
    pub fn path(&mut self, seq: u64) -> Result<Vec<evidence_verifier::merkle::Hash>, LogError> {
        Ok(self.reader.inclusion_proof(seq, self.size)?)
    }
}

impl<S: Storage> LogAt<'_, S> {
    /// Audits every entry up to the size and every checkpoint up to the latest, as
    /// `evidence-verify` would (see `Log::audit`).
    pub fn audit(&self) -> Result<AuditReport, SelfAuditError> {
        let keys = keys::history(self.store)?;
        let mut checkpoints = Vec::new();
        for item in self.store.range(&[CHECKPOINT], &prefix_end(CHECKPOINT)) {
            let (k, v) = item.map_err(LogError::from)?;
            let size = key_number(k.as_ref()).ok_or_else(|| LogError::Damaged("malformed checkpoint key".into()))?;
            if size <= self.latest {
                checkpoints.push((size, v.as_ref().to_vec()));
            }
        }
        let mut auditor = Auditor::new(&keys, checkpoints, None)?;
        for item in self.entries(0) {
            let (seq, record) = item?;
            auditor.entry(seq, &record)?;
        }
        Ok(auditor.finish()?)
    }

    /// Whether this log extends `note`, a checkpoint an auditor saved: signed by one of the
    /// log's keys, of its origin, and the log's tree at that size has that root. When it does,
    /// the consistency proof from it to the latest checkpoint.
    pub fn extends(&self, note: &str) -> Result<Extension, LogError> {
        let no = |reason: String| Ok(Extension::No { reason });
        let keys = keys::history(self.store)?;
        let parsed = match Note::parse(note.as_bytes()) {
            Ok(n) => n,
            Err(e) => return no(format!("it is not a signed note: {e}")),
        };
        if let Err(e) = parsed.verify(&keys) {
            return no(format!("it is not signed by any of this log's keys: {e}"));
        }
        let cp = match Checkpoint::parse(&parsed.text) {
            Ok(cp) => cp,
            Err(e) => return no(format!("its text is not a checkpoint: {e}")),
        };
        if cp.size > self.latest {
            return no(format!(
                "it is of {} entries, more than this log's latest checkpoint ({}): the log was cut back or forked",
                cp.size, self.latest
            ));
        }
        let root = TreeReader::new(self.store).root(cp.size)?;
        if root != cp.root {
            return no(format!(
                "this log's tree of {} entries has another root than the checkpoint: it was rewritten",
                cp.size
            ));
        }
        let latest = self.latest_note()?.ok_or(LogError::NoCheckpoint { size: self.latest, latest: self.latest })?;
        let proof = ConsistencyProof {
            size1: cp.size,
            size2: self.latest,
            proof: self.consistency_proof(cp.size, self.latest)?,
            checkpoint1: note.to_string(),
            checkpoint2: latest,
        };
        Ok(Extension::Yes { proof })
    }
}

impl<S: Storage> Log<S> {
    /// The log's reads at its current size.
    pub fn at(&self) -> LogAt<'_, S> {
        LogAt::new(self.store(), self.size(), self.latest_size())
    }

    /// The inclusion proof of entry `seq` against the checkpoint at `size` (default: the
    /// latest checkpoint).
    pub fn inclusion_proof(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof, LogError> {
        self.at().inclusion_proof(seq, size)
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<evidence_verifier::merkle::Hash>, LogError> {
        self.at().consistency_proof(size1, size2)
    }

    /// The consistency proof from the checkpoint at `from` to the one at `to` (default: the
    /// latest), with both signed notes.
    pub fn consistency(&self, from: u64, to: Option<u64>) -> Result<ConsistencyProof, LogError> {
        self.at().consistency(from, to)
    }
}
