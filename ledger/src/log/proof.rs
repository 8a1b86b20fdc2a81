//! Proofs as answers: an entry's inclusion in a signed checkpoint, and one checkpoint's tree
//! extending another's. Both serialize to the JSON `evidence proof --json` and `evidence
//! consistency` print (hashes in base64) and carry the signed notes they are against.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_verifier::merkle::Hash;
use serde::{Serialize, Serializer};

use super::error::LogError;
use super::tree::{ProofError, TreeReader};
use super::Log;
use crate::store::Storage;

fn b64<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&B64.encode(hash))
}

fn b64_all<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(hashes.iter().map(|h| B64.encode(h)))
}

/// An inclusion proof with the signed checkpoint it is against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    /// The entry.
    pub seq: u64,
    /// The tree size of the checkpoint.
    pub tree_size: u64,
    /// The entry's Merkle leaf hash.
    #[serde(serialize_with = "b64")]
    pub leaf_hash: Hash,
    /// The audit path, leaf first.
    #[serde(serialize_with = "b64_all")]
    pub proof: Vec<Hash>,
    /// The signed checkpoint note at `tree_size`.
    pub checkpoint: String,
}

impl fmt::Display for InclusionProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "entry {} in the tree of {} entries", self.seq, self.tree_size)?;
        writeln!(f, "leaf hash: {}", B64.encode(self.leaf_hash))?;
        for h in &self.proof {
            writeln!(f, "  {}", B64.encode(h))?;
        }
        write!(f, "{}", self.checkpoint)
    }
}

/// A consistency proof between two signed checkpoints: the later tree extends the earlier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsistencyProof {
    /// The earlier tree size.
    pub size1: u64,
    /// The later tree size.
    pub size2: u64,
    /// The proof (RFC 9162 §2.1.4).
    #[serde(serialize_with = "b64_all")]
    pub proof: Vec<Hash>,
    /// The signed checkpoint note at `size1`.
    pub checkpoint1: String,
    /// The signed checkpoint note at `size2`.
    pub checkpoint2: String,
}

impl<S: Storage> Log<S> {
    /// The inclusion proof of entry `seq` against the checkpoint at `size` (default: the
    /// latest checkpoint).
    pub fn inclusion_proof(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof, LogError> {
        let latest = self.latest_size();
        let size = size.unwrap_or(latest);
        if size == latest && seq >= size {
            return Err(LogError::NotYetCheckpointed { seq, size });
        }
        let checkpoint = self.checkpoint_note(size)?.ok_or(LogError::NoCheckpoint { size, latest })?;
        let reader = TreeReader::new(self.store());
        Ok(InclusionProof {
            seq,
            tree_size: size,
            leaf_hash: reader.leaf(seq)?,
            proof: reader.inclusion_proof(seq, size)?,
            checkpoint,
        })
    }

    /// The consistency proof between two tree sizes.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, LogError> {
        if size2 > self.size() {
            return Err(ProofError::OutOfRange(format!("the log has only {} entries", self.size())).into());
        }
        Ok(TreeReader::new(self.store()).consistency_proof(size1, size2)?)
    }

    /// The consistency proof from the checkpoint at `from` to the one at `to` (default: the
    /// latest), with both signed notes.
    pub fn consistency(&self, from: u64, to: Option<u64>) -> Result<ConsistencyProof, LogError> {
        let latest = self.latest_size();
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
