//! Proofs as answers: an entry's inclusion in a signed checkpoint, and one checkpoint's tree
//! extending another's. Both serialize to the JSON `evidence proof --json` and `evidence
//! consistency` print (hashes in base64) and carry the signed notes they are against.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_verifier::merkle::Hash;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

fn b64<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&B64.encode(hash))
}

fn b64_all<S: Serializer>(hashes: &[Hash], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(hashes.iter().map(|h| B64.encode(h)))
}

fn hash_of<E: serde::de::Error>(text: &str) -> Result<Hash, E> {
    let bytes = B64.decode(text).map_err(E::custom)?;
    bytes.try_into().map_err(|_| E::custom("a hash is 32 bytes"))
}

fn from_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
    hash_of(&String::deserialize(d)?)
}

fn from_b64_all<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
    Vec::<String>::deserialize(d)?.iter().map(|t| hash_of(t)).collect()
}

/// An inclusion proof with the signed checkpoint it is against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InclusionProof {
    /// The entry.
    pub seq: u64,
    /// The tree size of the checkpoint.
    pub tree_size: u64,
    /// The entry's Merkle leaf hash.
    #[serde(serialize_with = "b64", deserialize_with = "from_b64")]
    #[schemars(with = "String")]
    pub leaf_hash: Hash,
    /// The audit path, leaf first.
    #[serde(serialize_with = "b64_all", deserialize_with = "from_b64_all")]
    #[schemars(with = "Vec<String>")]
    pub proof: Vec<Hash>,
    /// The signed checkpoint note at `tree_size`.
    pub checkpoint: String,
}

impl InclusionProof {
    /// The proof as a C2SP tlog-proof file (`c2sp.org/tlog-proof@v1`).
    pub fn tlog_proof(&self) -> evidence_verifier::tlog_proof::TlogProof {
        evidence_verifier::tlog_proof::TlogProof {
            extra: None,
            index: self.seq,
            path: self.proof.clone(),
            checkpoint: self.checkpoint.clone().into_bytes(),
        }
    }
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
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsistencyProof {
    /// The earlier tree size.
    pub size1: u64,
    /// The later tree size.
    pub size2: u64,
    /// The proof (RFC 9162 §2.1.4).
    #[serde(serialize_with = "b64_all", deserialize_with = "from_b64_all")]
    #[schemars(with = "Vec<String>")]
    pub proof: Vec<Hash>,
    /// The signed checkpoint note at `size1`.
    pub checkpoint1: String,
    /// The signed checkpoint note at `size2`.
    pub checkpoint2: String,
}

impl fmt::Display for ConsistencyProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the tree of {} entries extends the tree of {}", self.size2, self.size1)?;
        for h in &self.proof {
            writeln!(f, "  {}", B64.encode(h))?;
        }
        write!(f, "{}{}", self.checkpoint1, self.checkpoint2)
    }
}
