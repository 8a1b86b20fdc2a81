//! What the `(source, id)` index does on open (`super::index`, steps 3, 6 and 7): its hash
//! key, the filter a clean close kept, and re-indexing the entries past its watermark; and
//! the index key an entry's event gives.

use std::sync::atomic::AtomicBool;

use evidence_verifier::entry::EntryRef;

use super::error::LogError;
use super::filter::{random_key, IdFilter};
use super::runs::{Runs, RUN_ENTRIES};
use crate::store::keyspace::{prefix_end, LEGACY_INDEX, META_ID_FILTER, META_INDEXED, META_INDEX_KEY};
use crate::store::{read_file_pieces, Storage, StorageError, WriteBatch};

/// The index key of `(source, id)`: source length (u16 BE) + source + id. It is hashed, and
/// compared with the key of the entry a hash names.
pub(crate) fn id_key(source: &str, id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + source.len() + id.len());
    k.extend_from_slice(&(source.len() as u16).to_be_bytes());
    k.extend_from_slice(source.as_bytes());
    k.extend_from_slice(id.as_bytes());
    k
}

/// The index key and event digest of an entry record.
pub(crate) fn entry_key(seq: u64, record: &[u8]) -> Result<(Vec<u8>, [u8; 32]), LogError> {
    #[derive(serde::Deserialize)]
    struct Names<'a> {
        #[serde(borrow)]
        source: std::borrow::Cow<'a, str>,
        #[serde(borrow)]
        id: std::borrow::Cow<'a, str>,
    }
    let entry = EntryRef::decode(record).map_err(|e| LogError::Damaged(format!("entry {seq}: {e}")))?;
    let names: Names = serde_json::from_slice(entry.event)
        .map_err(|e| LogError::Damaged(format!("entry {seq}: the event has no source and id: {e}")))?;
    Ok((id_key(&names.source, &names.id), *entry.digest))
}

/// The file a clean close keeps the filter in.
pub(crate) const FILTER_FILE: &str = "idfilter";

/// The whole of the file `name`; `None` if there is none.
pub(crate) fn read_whole<S: Storage>(store: &S, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
    let mut whole = Vec::new();
    let found = read_file_pieces(store, name, |_, piece| whole.extend_from_slice(piece))?;
    Ok(found.then_some(whole))
}

/// The filter a clean close kept ([`FILTER_FILE`]), if it covers exactly the log of `size`
/// entries, hashes with the index's `key` and is intact.
pub(crate) fn kept_filter<S: Storage>(store: &S, size: u64, key: &[u8; 32]) -> Option<IdFilter> {
    let kept = match read_whole(store, FILTER_FILE) {
        Ok(kept) => kept?,
        Err(e) => {
            tracing::warn!(message = "The kept id filter could not be read; it is rebuilt.", error = %e);
            return None;
        }
    };
    match IdFilter::from_bytes(kept.as_ref()) {
        Some((filter, covered)) if covered == size && filter.key() == key => Some(filter),
        Some((_, covered)) => {
            tracing::debug!(
                message = "The kept id filter is of another size of the log, or another index; it is rebuilt.",
                covered,
                size
            );
            None
        }
        None => {
            tracing::warn!(message = "The kept id filter is damaged; it is rebuilt.");
            None
        }
    }
}

/// The number of entries the stored index covers.
pub(crate) fn indexed<S: Storage>(store: &S) -> Result<u64, LogError> {
    match store.get(META_INDEXED)? {
        // A store without a watermark is re-indexed from its first entry.
        None => Ok(0),
        Some(v) => v
            .as_ref()
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| LogError::Damaged("malformed index watermark".into())),
    }
}

/// The index's hash key; a store without one has its index (of any format) deleted, to be
/// rebuilt from the entries with a new key (step 7).
pub(crate) fn hash_key<S: Storage>(store: &S) -> Result<[u8; 32], LogError> {
    if let Some(key) = store.get(META_INDEX_KEY)? {
        if let Ok(key) = key.as_ref().try_into() {
            return Ok(key);
        }
        tracing::warn!(message = "The (source, id) index's key is malformed; the index is rebuilt.");
    }
    let key = random_key()?;
    reset(store, key)?;
    Ok(key)
}

/// Deletes the index (the keys of the format before the runs, too), to be rebuilt from the
/// entries with hashes made with `key`.
pub(crate) fn reset<S: Storage>(store: &S, key: [u8; 32]) -> Result<(), LogError> {
    let mut legacy = 0u64;
    loop {
        let mut wb = WriteBatch::default();
        for item in store.range(&[LEGACY_INDEX], &prefix_end(LEGACY_INDEX)).take(4096) {
            wb.delete(item?.0.as_ref());
        }
        if wb.is_empty() {
            break;
        }
        legacy += wb.len() as u64;
        store.apply_each(wb)?;
    }
    if legacy > 0 {
        tracing::info!(message = "Deleted the (source, id) index of an older format; it is rebuilt.", keys = legacy);
    }
    Runs::clear(store)?;
    store.remove_file(FILTER_FILE)?;
    let mut wb = WriteBatch::default();
    // The filter of stores that kept it in a key.
    wb.delete(META_ID_FILTER);
    wb.put(META_INDEXED, 0u64.to_be_bytes());
    wb.put(META_INDEX_KEY, key.to_vec());
    Ok(store.commit(wb)?)
}

/// Re-indexes the entries from the watermark to `size`, as runs (merged as they are written),
/// hashing with `hasher`.
pub(crate) fn catch_up<S: Storage, I>(
    store: &S,
    runs: &Runs,
    size: u64,
    entries: impl FnOnce(u64) -> I,
    hasher: &IdFilter,
) -> Result<(), LogError>
where
    I: Iterator<Item = Result<(u64, Vec<u8>), LogError>>,
{
    let from = runs.end();
    if from > size {
        return Err(LogError::Damaged(format!(
            "the (source, id) index covers {from} entries but the log holds {size}; run evidence-verify"
        )));
    }
    if from == size {
        return Ok(());
    }
    let never = AtomicBool::new(false);
    let mut pairs = Vec::new();
    let (mut start, mut expected) = (from, from);
    let mut after_damage = false;
    for record in entries(from) {
        let (seq, record) = match record {
            Ok(pair) => pair,
            // A damaged entry cannot be indexed; reading it stopped appends (`verified`).
            Err(LogError::BadEntry { seq, problem }) if seq >= expected => {
                tracing::warn!(message = "A damaged entry is left out of the (source, id) index.", seq, %problem);
                (expected, after_damage) = (seq + 1, true);
                continue;
            }
            Err(e) => return Err(e),
        };
        // A segment whose framing broke hides the entries after the break: skip them too.
        if seq > expected && after_damage {
            expected = seq;
        }
        if seq != expected {
            return Err(LogError::Damaged(format!("re-indexing: entry {expected} is missing (the next is {seq})")));
        }
        let (key, _) = entry_key(seq, &record)?;
        pairs.push((hasher.hash(&key), seq));
        expected = seq + 1;
        if pairs.len() as u64 >= RUN_ENTRIES {
            runs.write(store, start, expected, std::mem::take(&mut pairs))?;
            runs.merge_due(store, &never)?;
            start = expected;
        }
    }
    if after_damage {
        expected = size;
    }
    if expected > start {
        runs.write(store, start, expected, pairs)?;
        runs.merge_due(store, &never)?;
    }
    store.commit(WriteBatch::default())?;
    let now = runs.end();
    if now != size {
        return Err(LogError::Damaged(format!("re-indexing stopped at entry {now} of {size}")));
    }
    tracing::info!(message = "Index caught up from the entries.", from, to = size);
    Ok(())
}
