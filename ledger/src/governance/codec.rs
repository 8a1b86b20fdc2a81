//! Reading view values back: every view value is JSON, decoded with its key named when it
//! does not decode (the views must then be rebuilt).

use serde::de::DeserializeOwned;

use super::error::ViewError;
use crate::store::Storage;

/// Decodes a stored view value; a value that does not decode is reported with its key.
pub fn decode<V: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<V, ViewError> {
    serde_json::from_slice(value)
        .map_err(|e| ViewError::Corrupt { key: key.escape_ascii().to_string(), message: e.to_string() })
}

/// Reads and decodes the value of `key`.
pub fn read<S: Storage, V: DeserializeOwned>(store: &S, key: &[u8]) -> Result<Option<V>, ViewError> {
    store.get(key)?.map(|v| decode(key, v.as_ref())).transpose()
}

/// Reads and decodes every value with a key in `[from, to)`, in key order.
pub fn read_range<S: Storage, V: DeserializeOwned>(store: &S, from: &[u8], to: &[u8]) -> Result<Vec<V>, ViewError> {
    store
        .range(from, to)
        .map(|item| {
            let (k, v) = item?;
            decode(k.as_ref(), v.as_ref())
        })
        .collect()
}
