//! The checks over a log: entries in order and the signed checkpoints over them. This is what
//! an auditor runs, whatever the entries come from (a stopped ledger directory, an export).
//!
//! For each entry, in order: it decodes; its position and the sequence number inside it are the
//! next one expected (no gap, no reordering); its stored event digest is `blake3` of its event;
//! its chain hash follows the previous one. The Merkle root is recomputed as entries stream
//! past, and every checkpoint's root is compared with it at the checkpoint's size; every
//! checkpoint must carry a valid signature by a trusted key and name the same origin. Since
//! every checkpoint is held against the same recomputed tree, checkpoints that all match are
//! consistent with one another. A trusted checkpoint saved earlier must be matched too: a log
//! shorter than it was rolled back, a log whose root differs at its size is a fork. The first
//! failure stops the audit and says what and where. No I/O.

use crate::checkpoint::Checkpoint;
use crate::entry::{chain_next, event_digest, EntryRef, GENESIS};
use crate::merkle::{Hash, RootBuilder};
use crate::note::VerifierKey;

/// The first thing found wrong, as a sentence naming the entry or checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// An entry is wrong in itself or does not follow its predecessor.
    #[error("entry {seq}: {problem}")]
    Entry {
        /// The entry's position in the log.
        seq: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// Two entries are out of order.
    #[error("entry {position}: it holds entry {found}, and entry {position} follows it: entries reordered")]
    Reordered {
        /// The position.
        position: u64,
        /// The sequence number found there.
        found: u64,
    },
    /// A position in the log holds no entry.
    #[error("entry {expected} is missing: the next entry stored is entry {found}")]
    Gap {
        /// The position expected next.
        expected: u64,
        /// The position found instead.
        found: u64,
    },
    /// A checkpoint is invalid or does not match the entries.
    #[error("checkpoint at size {size}: {problem}")]
    Checkpoint {
        /// The tree size the checkpoint is stored under.
        size: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// A checkpoint covers more entries than the log holds.
    #[error("checkpoint at size {size} covers more entries than the log holds ({entries}): the log was truncated")]
    Truncated {
        /// The checkpoint's size.
        size: u64,
        /// Entries in the log.
        entries: u64,
    },
    /// Entries and no signed checkpoint: nothing vouches for them.
    #[error("the log has {entries} entries and no signed checkpoint: nothing vouches for them")]
    NoCheckpoint {
        /// Entries in the log.
        entries: u64,
    },
    /// The log is shorter than a trusted checkpoint.
    #[error(
        "the log holds {entries} entries, fewer than the {trusted_size} of the trusted checkpoint: it was rolled back"
    )]
    RolledBack {
        /// The trusted checkpoint's size.
        trusted_size: u64,
        /// Entries in the log.
        entries: u64,
    },
    /// The log's tree differs from a trusted checkpoint at that checkpoint's size.
    #[error("the log is not an extension of the trusted checkpoint: at size {size} its root is {log_root}, the trusted checkpoint says {trusted_root} (a fork)")]
    Fork {
        /// The trusted checkpoint's size.
        size: u64,
        /// The log's root at that size (base64).
        log_root: String,
        /// The trusted root (base64).
        trusted_root: String,
    },
    /// The file the entries are stored in is malformed: its frames cannot be read as ones the
    /// ledger writes.
    #[error("the entries file is malformed at byte {offset}: {problem}")]
    File {
        /// Where the malformed frame starts.
        offset: u64,
        /// What is wrong with it.
        problem: String,
    },
    /// The trusted checkpoint names another log.
    #[error("the trusted checkpoint is for origin {trusted:?}, the log's checkpoints for {log:?}")]
    OtherLog {
        /// The trusted checkpoint's origin.
        trusted: String,
        /// The log's origin.
        log: String,
    },
}

/// What a successful audit established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditReport {
    /// Entries checked.
    pub entries: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The largest checkpoint.
    pub latest: Option<Checkpoint>,
    /// The Merkle root of all entries.
    pub root: Hash,
    /// The last chain hash.
    pub chain_head: Hash,
    /// Entries after the latest checkpoint: checked for chain and form, not yet signed.
    pub unsigned_tail: u64,
    /// The size of the trusted checkpoint the log was shown to extend.
    pub extends_trusted: Option<u64>,
    /// Bytes at the end of the store's entries file that are not a whole frame: a write a
    /// crash cut short, never committed, left out of the audit (the ledger cuts them off when
    /// it next opens the store).
    pub torn_tail: u64,
}

/// Checks a log fed to it entry by entry. See the module docs for what is checked.
#[derive(Debug)]
pub struct Auditor {
    /// An entry that carries a later sequence number than its position: a deletion if the
    /// log carries on from it, a reordering if the missing entry comes next.
    misplaced: Option<(u64, u64)>,
    checkpoints: Vec<Checkpoint>,
    next_checkpoint: usize,
    trusted: Option<Checkpoint>,
    expected: u64,
    chain: Hash,
    tree: RootBuilder,
}

fn b64(h: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h)
}

impl Auditor {
    /// Starts an audit. `checkpoints` are the stored signed notes with the tree size each is
    /// stored under; each must verify against `keys`. `trusted` is a checkpoint saved earlier
    /// (already verified) that the log must extend.
    pub fn new(
        keys: &[VerifierKey],
        checkpoints: impl IntoIterator<Item = (u64, Vec<u8>)>,
        trusted: Option<Checkpoint>,
    ) -> Result<Self, AuditError> {
        let mut opened: Vec<Checkpoint> = Vec::new();
        let mut stored: Vec<(u64, Vec<u8>)> = checkpoints.into_iter().collect();
        stored.sort_by_key(|(size, _)| *size);
        for (size, note) in stored {
            let problem = |p: String| AuditError::Checkpoint { size, problem: p };
            let origin = opened.first().map(|c| c.origin.as_str());
            let cp = Checkpoint::open(&note, keys, origin).map_err(|e| problem(e.to_string()))?;
            if cp.size != size {
                return Err(problem(format!("it is stored under size {size} but says size {}", cp.size)));
            }
            opened.push(cp);
        }
        if let (Some(t), Some(first)) = (&trusted, opened.first()) {
            if t.origin != first.origin {
                return Err(AuditError::OtherLog { trusted: t.origin.clone(), log: first.origin.clone() });
            }
        }
        let mut auditor = Auditor {
            misplaced: None,
            checkpoints: opened,
            next_checkpoint: 0,
            trusted,
            expected: 0,
            chain: GENESIS,
            tree: RootBuilder::new(),
        };
        auditor.check_size()?;
        Ok(auditor)
    }

    /// Checks the next entry, stored at position `position`.
    pub fn entry(&mut self, position: u64, record: &[u8]) -> Result<(), AuditError> {
        if let Some((at, found)) = self.misplaced {
            let next = EntryRef::decode(record).map(|e| e.seq).ok();
            return Err(if next == Some(at) {
                AuditError::Reordered { position: at, found }
            } else {
                AuditError::Gap { expected: at, found }
            });
        }
        if position != self.expected {
            return Err(AuditError::Gap { expected: self.expected, found: position });
        }
        let bad = |problem: String| AuditError::Entry { seq: position, problem };
        let entry = EntryRef::decode(record).map_err(|e| bad(format!("cannot be decoded: {e}")))?;
        if entry.seq > position {
            // Missing or reordered: the next entry tells which.
            self.misplaced = Some((position, entry.seq));
            return Ok(());
        }
        if entry.seq != position {
            return Err(bad(format!("it carries sequence number {} (an earlier entry repeated or moved)", entry.seq)));
        }
        let digest = event_digest(entry.event);
        if &digest != entry.digest {
            return Err(bad(format!(
                "its event digest does not match its event bytes (stored {}, computed {}): the event was changed",
                hex::encode(entry.digest),
                hex::encode(digest)
            )));
        }
        let chain = chain_next(&self.chain, entry.leaf);
        if &chain != entry.chain {
            return Err(bad(format!(
                "its chain hash does not follow from entry {} (stored {}, expected {})",
                position.wrapping_sub(1) as i64,
                hex::encode(entry.chain),
                hex::encode(chain)
            )));
        }
        self.chain = chain;
        self.tree.push(entry.leaf_hash());
        self.expected += 1;
        self.check_size()
    }

    /// Holds the checkpoints (and the trusted one) at the current size against the tree.
    fn check_size(&mut self) -> Result<(), AuditError> {
        let size = self.tree.size();
        if let Some(cp) = self.checkpoints.get(self.next_checkpoint).filter(|c| c.size == size) {
            let root = self.tree.root();
            if cp.root != root {
                return Err(AuditError::Checkpoint {
                    size,
                    problem: format!(
                        "its root {} does not match the root {} recomputed from entries 0..{}",
                        b64(&cp.root),
                        b64(&root),
                        size
                    ),
                });
            }
            self.next_checkpoint += 1;
        }
        if let Some(t) = self.trusted.as_ref().filter(|t| t.size == size) {
            let root = self.tree.root();
            if t.root != root {
                return Err(AuditError::Fork { size, log_root: b64(&root), trusted_root: b64(&t.root) });
            }
        }
        Ok(())
    }

    /// Ends the audit once every entry has been fed.
    pub fn finish(self) -> Result<AuditReport, AuditError> {
        if let Some((expected, found)) = self.misplaced {
            return Err(AuditError::Gap { expected, found });
        }
        let entries = self.tree.size();
        if let Some(cp) = self.checkpoints.get(self.next_checkpoint) {
            return Err(AuditError::Truncated { size: cp.size, entries });
        }
        if let Some(t) = &self.trusted {
            if t.size > entries {
                return Err(AuditError::RolledBack { trusted_size: t.size, entries });
            }
        }
        let latest = self.checkpoints.last().cloned();
        if entries > 0 && latest.is_none() {
            return Err(AuditError::NoCheckpoint { entries });
        }
        Ok(AuditReport {
            entries,
            checkpoints: self.checkpoints.len(),
            unsigned_tail: entries - latest.as_ref().map_or(0, |c| c.size),
            latest,
            root: self.tree.root(),
            chain_head: self.chain,
            extends_trusted: self.trusted.map(|t| t.size),
            torn_tail: 0,
        })
    }
}
