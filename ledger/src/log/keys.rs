//! Key continuity: a store remembers every verifier key it has signed checkpoints with, oldest
//! first; the last is the key it signs with now. Opening a log to append with any other key
//! fails ([`LogError::WrongKey`]); [`Log::rotate_signer`] is the one way to change it, and the
//! ledger records each rotation in the log itself (a `ledger.key` entry, see
//! `crate::ledger::Ledger::rotate_key`).
//!
//! Stored under `mkeys` ([`META_KEYS`]): a JSON array of C2SP verifier key strings.

use evidence_verifier::layout::checkpoint_key;
use evidence_verifier::note::{Note, SignerKey, VerifierKey};

use super::error::LogError;
use super::Log;
use crate::store::keyspace::{prefix_end, CHECKPOINT, META_KEYS};
use crate::store::{Storage, WriteBatch};

/// The verifier keys `store` has signed with, oldest first (empty for a new store).
pub(crate) fn history<S: Storage + ?Sized>(store: &S) -> Result<Vec<VerifierKey>, LogError> {
    let Some(raw) = store.get(META_KEYS)? else { return Ok(Vec::new()) };
    let damaged = |e: String| LogError::Damaged(format!("the store's key history: {e}"));
    let texts: Vec<String> = serde_json::from_slice(raw.as_ref()).map_err(|e| damaged(e.to_string()))?;
    texts.iter().map(|t| VerifierKey::parse(t).map_err(|e| damaged(e.to_string()))).collect()
}

fn write_history<S: Storage + ?Sized>(store: &S, keys: &[VerifierKey]) -> Result<(), LogError> {
    let texts: Vec<String> = keys.iter().map(ToString::to_string).collect();
    let mut wb = WriteBatch::default();
    wb.put(META_KEYS, serde_json::to_vec(&texts).expect("strings serialize"));
    Ok(store.commit(wb)?)
}

/// Checks that `signer` is the key `store` signs with now and returns the key history. A store
/// with no history yet (a new one, or one made before keys were recorded) takes `signer`'s.
pub(crate) fn check<S: Storage + ?Sized>(store: &S, signer: &SignerKey) -> Result<Vec<VerifierKey>, LogError> {
    let mut keys = history(store)?;
    let given = signer.verifier();
    match keys.last() {
        Some(current) if *current == given => Ok(keys),
        Some(current) => Err(LogError::WrongKey {
            given: given.to_string(),
            current: current.to_string(),
            retired: keys.contains(&given),
        }),
        None => {
            // A store made before keys were recorded takes the key only if it signed the
            // store's latest checkpoint.
            if let Some((_, note)) = store.last_in(&[CHECKPOINT], &prefix_end(CHECKPOINT))? {
                let signed = Note::parse(note.as_ref()).is_ok_and(|n| n.verify(std::slice::from_ref(&given)).is_ok());
                if !signed {
                    return Err(LogError::NotTheSigner { given: given.to_string() });
                }
            }
            keys.push(given);
            write_history(store, &keys)?;
            Ok(keys)
        }
    }
}

impl<S: Storage> Log<S> {
    /// Every verifier key this log has signed checkpoints with, oldest first; the last signs
    /// now. An auditor needs them all to check every checkpoint.
    pub fn verifier_keys(&self) -> Vec<VerifierKey> {
        self.keys.clone()
    }

    /// Adds `signer`'s signature to the latest checkpoint note and stores it again.
    fn cosign_latest(&self, signer: &SignerKey) -> Result<String, LogError> {
        let size = self.latest_size();
        let stored = self.store.get(&checkpoint_key(size))?.ok_or(LogError::NoCheckpoint { size, latest: size })?;
        let mut note =
            Note::parse(stored.as_ref()).map_err(|e| LogError::Damaged(format!("latest checkpoint: {e}")))?;
        note.cosign(signer);
        let text = note.to_string();
        let mut wb = WriteBatch::default();
        wb.put(checkpoint_key(size), text.as_bytes());
        self.store.commit(wb)?;
        Ok(text)
    }

    /// Whether this log was opened with its signer key (it can append and sign).
    pub fn can_sign(&self) -> bool {
        !self.signers.is_empty()
    }

    /// Whether signing may be handed over to `new`: this log signs, `new` names its origin,
    /// and the store has never signed with it. Checked before anything is appended.
    pub fn check_rotation(&self, new: &SignerKey) -> Result<(), LogError> {
        let current = self.signers.first().ok_or(LogError::NoSigner)?.verifier();
        if new.name() != self.origin {
            return Err(LogError::OriginMismatch { store: self.origin.clone(), key: new.name().to_string() });
        }
        let next = new.verifier();
        if next == current || self.keys.contains(&next) {
            return Err(LogError::KeyReused { key: next.to_string() });
        }
        Ok(())
    }

    /// Hands signing over to `new`: cuts a checkpoint of everything appended so far signed by
    /// both the current key and `new` (so whoever trusts either can follow; when the latest
    /// checkpoint already covers everything, `new` cosigns it), then records `new` as the
    /// store's key. The caller appends the record of the rotation first, so that this
    /// checkpoint covers it. Returns the checkpoint note.
    pub fn rotate_signer(&mut self, new: SignerKey) -> Result<String, LogError> {
        self.check_rotation(&new)?;
        let next = new.verifier();
        self.signers.push(new);
        let cut = self.checkpoint_now();
        let new = self.signers.pop().expect("pushed above");
        let note = match cut? {
            Some(note) => note,
            None => self.cosign_latest(&new)?,
        };
        let mut keys = self.keys.clone();
        keys.push(next);
        write_history(&*self.store, &keys)?;
        self.keys = keys;
        self.signers = vec![new];
        Ok(note)
    }
}
