//! Reading entries back, checked: every record read is checked against itself and its
//! predecessor before anyone sees it. The entry format carries what a checksum would: the event
//! digest (`blake3` of the event bytes) and the chain hash (`blake3` keyed over the previous
//! chain hash and the leaf bytes), so a flipped bit anywhere in a record, or a record that does
//! not follow the one before, is caught on the read that meets it, without a format change the
//! verifier would have to follow.
//!
//! A bad record is reported as [`LogError::BadEntry`] with its sequence number, and reading goes
//! on after it (from its stored chain hash), so the sound entries around it stay readable. A
//! segment whose framing is broken is reported once, at the first record that cannot be
//! framed; the records after it in that segment cannot be read, and the next segment's first
//! record is then checked without its predecessor.

use evidence_verifier::entry::{chain_next, event_digest, EntryRef, GENESIS};
use evidence_verifier::layout::{key_number, segment_key, segment_records, unpack_segment};
use evidence_verifier::merkle::Hash;

use std::sync::OnceLock;

use super::error::LogError;
use crate::store::keyspace::{prefix_end, ENTRY, META_DAMAGED};
use crate::store::{Storage, WriteBatch};

/// Entry records with their sequence numbers, in order; bad ones as [`LogError::BadEntry`].
pub(crate) type EntryRecords<'s> = Box<dyn Iterator<Item = Result<(u64, Vec<u8>), LogError>> + 's>;

/// Checks `entry`, decoded from the record stored as entry `seq`, against the chain hash before
/// it (`None`: unknown, so only the record's own consistency is checked). Returns its chain hash.
fn check_entry(seq: u64, entry: &EntryRef<'_>, prev: Option<&Hash>) -> Result<Hash, LogError> {
    let bad = |problem: String| LogError::BadEntry { seq, problem };
    if entry.seq != seq {
        return Err(bad(format!("it is stored as entry {seq} but says it is entry {}", entry.seq)));
    }
    if event_digest(entry.event) != *entry.digest {
        return Err(bad("its event bytes do not match their digest".into()));
    }
    if let Some(prev) = prev {
        if chain_next(prev, entry.leaf) != *entry.chain {
            return Err(bad("its chain hash does not follow from the entry before it and its own bytes".into()));
        }
    }
    Ok(*entry.chain)
}

/// The stored chain hash of entry `seq - 1` (the genesis value before entry 0), unchecked.
fn chain_before<S: Storage + ?Sized>(store: &S, seq: u64) -> Result<Option<Hash>, LogError> {
    if seq == 0 {
        return Ok(Some(GENESIS));
    }
    let Some((key, segment)) = store.last_in(&segment_key(0), &segment_key(seq))? else { return Ok(None) };
    let Some(first) = key_number(key.as_ref()) else { return Ok(None) };
    let Ok(segment) = unpack_segment(segment.as_ref()) else { return Ok(None) };
    let last = segment_records(&segment).enumerate().last();
    Ok(match last {
        Some((n, Ok(record))) if first + n as u64 == seq - 1 => EntryRef::decode(record).ok().map(|e| *e.chain),
        _ => None,
    })
}

/// Checked entry records of `store` from `from` on, in order (see the module docs).
pub(crate) fn read_entries<S: Storage + ?Sized>(store: &S, from: u64) -> EntryRecords<'_> {
    read_entries_where(store, from, |_| true)
}

/// Like [`read_entries`], yielding only the records `keep` picks (and every record that cannot
/// be decoded, as the [`LogError::BadEntry`] it is). Only those are checked: a record passed
/// over is neither checked nor copied, and its stored chain hash is what the next record is
/// checked against, so each record yielded is as checked as in [`read_entries`].
pub(crate) fn read_entries_where<'s, S: Storage + ?Sized>(
    store: &'s S,
    from: u64,
    keep: impl Fn(&EntryRef<'_>) -> bool + 's,
) -> EntryRecords<'s> {
    // Start at the segment holding `from`: the last one whose first entry is at or before it.
    let start = match store.last_in(&segment_key(0), &segment_key(from.saturating_add(1))) {
        Ok(Some((k, _))) => k.as_ref().to_vec(),
        Ok(None) => segment_key(from).to_vec(),
        Err(e) => return Box::new(std::iter::once(Err(e.into()))),
    };
    let mut prev = match key_number(&start).map(|first| chain_before(store, first)) {
        Some(Ok(prev)) => prev,
        Some(Err(e)) => return Box::new(std::iter::once(Err(e))),
        None => None,
    };
    let segments = store.range(&start, &prefix_end(ENTRY));
    Box::new(
        segments
            .flat_map(move |r| -> Vec<Result<(u64, Vec<u8>), LogError>> {
                let (k, segment) = match r {
                    Ok(pair) => pair,
                    Err(e) => return vec![Err(e.into())],
                };
                let Some(first) = key_number(k.as_ref()) else {
                    return vec![Err(LogError::Damaged("malformed segment key".into()))];
                };
                let segment = match unpack_segment(segment.as_ref()) {
                    Ok(segment) => segment,
                    Err(e) => {
                        prev = None;
                        return vec![Err(LogError::BadEntry {
                            seq: first,
                            problem: format!("its segment is unreadable: {e}"),
                        })];
                    }
                };
                let mut out = Vec::new();
                for (n, r) in segment_records(&segment).enumerate() {
                    let seq = first + n as u64;
                    let Ok(record) = r else {
                        let problem = "its segment's framing is broken here; the rest of the segment is unreadable";
                        out.push(Err(LogError::BadEntry { seq, problem: problem.into() }));
                        prev = None;
                        break;
                    };
                    let decoded = EntryRef::decode(record);
                    let checked = match &decoded {
                        // Passed over: its stored chain hash is what the next record is checked
                        // against.
                        Ok(entry) if seq < from || !keep(entry) => {
                            prev = Some(*entry.chain);
                            continue;
                        }
                        Ok(entry) => check_entry(seq, entry, prev.as_ref()),
                        Err(_) if seq < from => {
                            prev = None;
                            continue;
                        }
                        Err(e) => Err(LogError::BadEntry { seq, problem: e.to_string() }),
                    };
                    match checked {
                        Ok(chain) => {
                            prev = Some(chain);
                            out.push(Ok((seq, record.to_vec())));
                        }
                        Err(e) => {
                            // Go on from what the record says its chain hash is.
                            prev = decoded.ok().map(|e| *e.chain);
                            out.push(Err(e));
                        }
                    }
                }
                out
            })
            .filter(move |r| match r {
                Ok((seq, _)) | Err(LogError::BadEntry { seq, .. }) => *seq >= from,
                Err(_) => true,
            }),
    )
}

/// The first damaged entry a read met: appends stop until the store is repaired. Kept in the
/// store ([`META_DAMAGED`]) so that every later process refuses appends too, until a read
/// finds that entry sound again.
#[derive(Debug, Default)]
pub(crate) struct Damage(OnceLock<(u64, String)>);

impl Damage {
    /// What was found, if anything.
    pub(crate) fn get(&self) -> Option<&(u64, String)> {
        self.0.get()
    }

    /// Notes `error` if it is a damaged entry, keeping the mark in `store` (best effort: the
    /// read goes on whatever the write does).
    pub(crate) fn note<S: Storage + ?Sized>(&self, store: &S, error: &LogError) {
        let LogError::BadEntry { seq, problem } = error else { return };
        if self.0.set((*seq, problem.clone())).is_ok() {
            tracing::error!(message = "A damaged entry was read; appends are stopped.", seq, problem = %problem);
            let mut wb = WriteBatch::default();
            wb.put(META_DAMAGED, serde_json::to_vec(&(seq, problem)).expect("a pair serializes"));
            if let Err(error) = store.commit(wb) {
                tracing::warn!(message = "Cannot mark the store damaged.", %error);
            }
        }
    }

    /// The damage a log opening on `store` starts with: the stored mark if that entry still
    /// reads damaged (a mark whose entry now reads sound is cleared), and any damage in the
    /// last segment, the tail the log appends after.
    pub(crate) fn on_open<S: Storage + ?Sized>(store: &S) -> Result<Damage, LogError> {
        let damage = Damage::default();
        if let Some(raw) = store.get(META_DAMAGED)? {
            let seq = serde_json::from_slice::<(u64, String)>(raw.as_ref()).map_or(0, |(seq, _)| seq);
            match read_entries(store, seq).find(|r| !matches!(r, Ok((s, _)) if *s < seq)) {
                Some(Err(e @ LogError::BadEntry { .. })) => damage.note(store, &e),
                Some(Err(e)) => return Err(e),
                Some(Ok(_)) | None => {
                    tracing::info!(message = "The entry marked damaged reads sound now; appends resume.", seq);
                    let mut wb = WriteBatch::default();
                    wb.delete(META_DAMAGED);
                    store.commit(wb)?;
                }
            }
        }
        if let Some((key, _)) = store.last_in(&[ENTRY], &prefix_end(ENTRY))? {
            let first = key_number(key.as_ref()).unwrap_or(0);
            if let Some(e) = read_entries(store, first).find_map(Result::err) {
                damage.note(store, &e);
            }
        }
        Ok(damage)
    }
}
