//! C2SP `tlog-checkpoint` bodies: the statement "the log named `origin` had `size` entries
//! with Merkle root `root`", carried in a signed note.
//!
//! Body format: the origin line, the tree size in decimal (no leading zeros), the root hash in
//! standard base64, each followed by a newline, then optional extension lines (kept, not
//! interpreted). No I/O.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;

use crate::merkle::Hash;
use crate::note::{Note, NoteError, VerifierKey};

/// A checkpoint body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin: its unique name, and the checkpoint key's name.
    pub origin: String,
    /// Number of entries in the tree.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// Extension lines, without their newlines.
    pub extensions: Vec<String>,
}

/// Why a checkpoint was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The signed note around it was rejected.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// The body is not a checkpoint.
    #[error("malformed checkpoint body: {0}")]
    Malformed(String),
    /// The checkpoint names another log.
    #[error("checkpoint is for origin {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// The origin expected.
        expected: String,
        /// The origin found.
        found: String,
    },
}

impl Checkpoint {
    /// Parses a checkpoint body (the text of the note).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        let bad = |m: &str| CheckpointError::Malformed(m.to_string());
        let body = text.strip_suffix('\n').ok_or_else(|| bad("does not end with a newline"))?;
        let mut lines = body.split('\n');
        let origin = lines.next().filter(|o| !o.is_empty()).ok_or_else(|| bad("empty origin line"))?;
        let size = lines.next().ok_or_else(|| bad("no tree size line"))?;
        if size.is_empty() || !size.bytes().all(|b| b.is_ascii_digit()) || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad(&format!("tree size {size:?} is not a decimal number")));
        }
        let size: u64 = size.parse().map_err(|_| bad(&format!("tree size {size:?} is out of range")))?;
        let root = lines.next().ok_or_else(|| bad("no root hash line"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad(&format!("root hash {root:?} is not 32 bytes of base64")))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Checkpoint { origin: origin.to_string(), size, root, extensions })
    }

    /// The checkpoint body of a signed note, its signatures not checked: for naming a note's
    /// size in a message, or for a note this process signed itself.
    pub fn unverified(note: &[u8]) -> Result<Self, CheckpointError> {
        Checkpoint::parse(&Note::parse(note)?.text)
    }

    /// Verifies a signed checkpoint note against the trusted keys and parses its body. When
    /// `origin` is given, the checkpoint must be for that log.
    pub fn open(note: &[u8], trusted: &[VerifierKey], origin: Option<&str>) -> Result<Self, CheckpointError> {
        let note = Note::parse(note)?;
        note.verify(trusted)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        if let Some(expected) = origin {
            if checkpoint.origin != expected {
                return Err(CheckpointError::WrongOrigin { expected: expected.into(), found: checkpoint.origin });
            }
        }
        Ok(checkpoint)
    }

    /// The root hash in base64, as in the body.
    pub fn root_base64(&self) -> String {
        B64.encode(self.root)
    }
}

impl fmt::Display for Checkpoint {
    /// The body, ready to sign.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}\n{}\n{}\n", self.origin, self.size, self.root_base64())?;
        for e in &self.extensions {
            writeln!(f, "{e}")?;
        }
        Ok(())
    }
}
