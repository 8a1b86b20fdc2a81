//! C2SP `tlog-proof` (c2sp.org/tlog-proof@v1): an offline-verifiable proof that an entry is in
//! a log, as one text file: the header line, optional unauthenticated `extra` data, the
//! entry's `index`, its RFC 6962 inclusion path (one base64 SHA-256 hash a line, leaf's
//! sibling first), an empty line, then the signed checkpoint note verbatim (with any witness
//! cosignatures). Evidence bundles keep one per entry (`proofs/<seq>.tlog-proof`).
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! index 42
//! gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=
//! ...
//!
//! ledger.example.com/prod
//! 1000
//! sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=
//!
//! — ledger.example.com/prod hI2DJw...
//! ```

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::merkle::{verify_inclusion, Hash, ProofError};
use crate::note::VerifierKey;

/// The first line of every proof.
pub const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// `head`, then one base64 hash a line, an empty line, and the signed `note`: the shape of a
/// tlog-proof and of a tlog-witness add-checkpoint request.
pub fn with_note(mut head: String, hashes: &[Hash], note: &[u8]) -> Vec<u8> {
    for h in hashes {
        head.push_str(&B64.encode(h));
        head.push('\n');
    }
    head.push('\n');
    let mut out = head.into_bytes();
    out.extend_from_slice(note);
    out
}

/// Splits `head lines`, an empty line and a note: the lines before (UTF-8), and the note.
pub fn split_note(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let split = bytes.windows(2).position(|w| w == b"\n\n")?;
    Some((std::str::from_utf8(&bytes[..split]).ok()?, &bytes[split + 2..]))
}

/// A line of one base64 SHA-256 hash.
pub fn hash_line(line: &str) -> Option<Hash> {
    B64.decode(line).ok().and_then(|h| Hash::try_from(h).ok())
}

/// A parsed proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque extra data (not authenticated: never trusted).
    pub extra: Option<Vec<u8>>,
    /// The entry's index in the log.
    pub index: u64,
    /// The inclusion path, leaf's sibling first.
    pub path: Vec<Hash>,
    /// The signed checkpoint note, verbatim.
    pub checkpoint: Vec<u8>,
}

/// Why a proof was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlogProofError {
    /// The text is not a tlog-proof.
    #[error("not a c2sp.org/tlog-proof@v1 proof: {0}")]
    Malformed(String),
    /// The checkpoint in it was rejected (signature, origin, body).
    #[error("its checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    /// The inclusion path does not lead from the entry to the checkpoint's root.
    #[error("its inclusion proof of entry {index} in the tree of {size}: {source}")]
    Inclusion {
        /// The entry.
        index: u64,
        /// The checkpoint's tree size.
        size: u64,
        /// Why.
        source: ProofError,
    },
}

impl TlogProof {
    /// The proof as its file holds it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = format!("{HEADER}\n");
        if let Some(extra) = &self.extra {
            out.push_str(&format!("extra {}\n", B64.encode(extra)));
        }
        out.push_str(&format!("index {}\n", self.index));
        with_note(out, &self.path, &self.checkpoint)
    }

    /// Parses a proof file.
    pub fn parse(bytes: &[u8]) -> Result<Self, TlogProofError> {
        let bad = |m: String| TlogProofError::Malformed(m);
        let (head, checkpoint) =
            split_note(bytes).ok_or_else(|| bad("no empty line (after UTF-8 lines) before the checkpoint".into()))?;
        let checkpoint = checkpoint.to_vec();
        let mut lines = head.split('\n').peekable();
        if lines.next() != Some(HEADER) {
            return Err(bad(format!("the first line is not {HEADER}")));
        }
        let mut extra = None;
        if let Some(line) = lines.peek().and_then(|l| l.strip_prefix("extra ")) {
            extra = Some(B64.decode(line).map_err(|e| bad(format!("extra is not base64: {e}")))?);
            lines.next();
        }
        let index = lines.next().and_then(|l| l.strip_prefix("index ")).ok_or_else(|| bad("no index line".into()))?;
        if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) || (index.len() > 1 && index.starts_with('0'))
        {
            return Err(bad(format!("index {index:?} is not a decimal number without leading zeroes")));
        }
        let index = index.parse().map_err(|_| bad(format!("index {index} is out of range")))?;
        let path = lines
            .map(|l| hash_line(l).ok_or_else(|| bad(format!("proof line {l:?} is not 32 bytes of base64"))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TlogProof { extra, index, path, checkpoint })
    }

    /// Checks the proof for the entry whose Merkle leaf hash is `leaf`: the checkpoint is
    /// signed by one of the `trusted` keys (for `origin`, when given), and the path leads from
    /// the leaf at the proof's index to the checkpoint's root. Returns the checkpoint.
    pub fn verify(
        &self,
        leaf: &Hash,
        trusted: &[VerifierKey],
        origin: Option<&str>,
    ) -> Result<Checkpoint, TlogProofError> {
        let checkpoint = Checkpoint::open(&self.checkpoint, trusted, origin)?;
        verify_inclusion(self.index, checkpoint.size, leaf, &self.path, &checkpoint.root)
            .map_err(|source| TlogProofError::Inclusion { index: self.index, size: checkpoint.size, source })?;
        Ok(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, node_hash};
    use crate::note::{Note, SignerKey};

    /// A log of three entries, a checkpoint of it, and the proof of entry 2.
    fn three() -> (SignerKey, Vec<Hash>, TlogProof) {
        let key = SignerKey::from_seed("example.com/log", [9u8; 32]).unwrap();
        let leaves: Vec<Hash> = [b"a", b"b", b"c"].iter().map(|d| leaf_hash(*d)).collect();
        let root = node_hash(&node_hash(&leaves[0], &leaves[1]), &leaves[2]);
        let body = Checkpoint { origin: "example.com/log".into(), size: 3, root, extensions: vec![] }.to_string();
        let note = Note::sign(&body, &[&key]).unwrap().to_string();
        let proof = TlogProof {
            extra: None,
            index: 2,
            path: vec![node_hash(&leaves[0], &leaves[1])],
            checkpoint: note.into_bytes(),
        };
        (key, leaves, proof)
    }

    #[test]
    fn a_proof_reads_back_as_written_and_verifies() {
        let (key, leaves, proof) = three();
        let text = proof.encode();
        assert!(text.starts_with(b"c2sp.org/tlog-proof@v1\nindex 2\n"));
        let back = TlogProof::parse(&text).unwrap();
        assert_eq!(back, proof);
        let checkpoint = back.verify(&leaves[2], &[key.verifier()], Some("example.com/log")).unwrap();
        assert_eq!(checkpoint.size, 3);
        let with_extra = TlogProof { extra: Some(b"context".to_vec()), ..proof };
        assert_eq!(TlogProof::parse(&with_extra.encode()).unwrap(), with_extra);
    }

    #[test]
    fn another_leaf_another_key_or_a_bad_file_is_refused() {
        let (key, leaves, proof) = three();
        let trusted = [key.verifier()];
        assert!(matches!(proof.verify(&leaves[1], &trusted, None), Err(TlogProofError::Inclusion { .. })));
        let other = SignerKey::from_seed("example.com/log", [8u8; 32]).unwrap();
        assert!(matches!(proof.verify(&leaves[2], &[other.verifier()], None), Err(TlogProofError::Checkpoint(_))));
        assert!(matches!(
            proof.verify(&leaves[2], &trusted, Some("example.com/other")),
            Err(TlogProofError::Checkpoint(CheckpointError::WrongOrigin { .. }))
        ));
        let text = String::from_utf8(proof.encode()).unwrap();
        for bad in [
            text.replace("tlog-proof@v1", "tlog-proof@v2"),
            text.replace("index 2", "index 02"),
            text.replace("index 2", "idx 2"),
            text.replacen("\n\n", "\n", 1),
            text.replace("index 2\n", "index 2\nnot base64!\n"),
        ] {
            assert!(TlogProof::parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
    }
}
