//! Reading entries and source positions back: what any reader of the store may do while the
//! single writer appends.

use evidence_verifier::layout::{key_number, segment_key, segment_records};

use super::error::LogError;
use crate::store::keyspace::{prefix_end, prefixed, ENTRY, GAP, POSITION};
use crate::store::Storage;

/// Entry records with their sequence numbers, in order.
pub(crate) type EntryRecords<'s> = Box<dyn Iterator<Item = Result<(u64, Vec<u8>), LogError>> + 's>;

/// The key of a source's stored position.
pub(crate) fn position_key(source: &str) -> Vec<u8> {
    prefixed(POSITION, source.as_bytes())
}

/// The key of the offsets a source skipped.
pub(crate) fn gap_key(source: &str) -> Vec<u8> {
    prefixed(GAP, source.as_bytes())
}

/// Every source's stored value under `prefix` (positions or gaps), by source name. A value
/// that is not 8 bytes is left out.
pub(crate) fn read_by_source<S: Storage + ?Sized>(
    store: &S,
    prefix: u8,
) -> Result<std::collections::BTreeMap<String, u64>, LogError> {
    let mut out = std::collections::BTreeMap::new();
    for item in store.range(&[prefix], &prefix_end(prefix)) {
        let (k, v) = item?;
        if let Ok(bytes) = v.as_ref().try_into() {
            out.insert(String::from_utf8_lossy(&k.as_ref()[1..]).into_owned(), u64::from_be_bytes(bytes));
        }
    }
    Ok(out)
}

/// The stored next offset of a source in `store` (readable while another thread appends).
pub fn read_position<S: Storage + ?Sized>(store: &S, source: &str) -> Result<Option<i64>, LogError> {
    let v = store.get(&position_key(source))?;
    Ok(v.and_then(|v| v.as_ref().try_into().ok()).map(i64::from_be_bytes))
}

/// Entry records of `store` from `from` on, in order.
pub(crate) fn read_entries<S: Storage>(store: &S, from: u64) -> EntryRecords<'_> {
    // Start at the segment holding `from`: the last one whose first entry is at or before it.
    let start = match store.last_in(&segment_key(0), &segment_key(from.saturating_add(1))) {
        Ok(Some((k, _))) => k.as_ref().to_vec(),
        Ok(None) => segment_key(from).to_vec(),
        Err(e) => return Box::new(std::iter::once(Err(e.into()))),
    };
    let segments = store.range(&start, &prefix_end(ENTRY));
    Box::new(
        segments
            .flat_map(|r| -> Vec<Result<(u64, Vec<u8>), LogError>> {
                let (k, segment) = match r {
                    Ok(pair) => pair,
                    Err(e) => return vec![Err(e.into())],
                };
                let Some(first) = key_number(k.as_ref()) else {
                    return vec![Err(LogError::Damaged("malformed segment key".into()))];
                };
                segment_records(segment.as_ref())
                    .enumerate()
                    .map(|(n, r)| {
                        r.map(|rec| (first + n as u64, rec.to_vec()))
                            .map_err(|e| LogError::Damaged(format!("segment {first}: {e}")))
                    })
                    .collect()
            })
            .filter(move |r| r.as_ref().map_or(true, |(seq, _)| *seq >= from)),
    )
}
