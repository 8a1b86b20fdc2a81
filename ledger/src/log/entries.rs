//! Reading source positions and gaps back: what any reader of the store may do while the
//! single writer appends. (Entries are read, checked, in `verified`.)

use super::error::LogError;
use crate::store::keyspace::{prefix_end, prefixed, GAP, POSITION};
use crate::store::Storage;

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
