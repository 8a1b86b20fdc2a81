//! Witness cosignatures kept beside the checkpoints they cosign: key `w` + tree size (u64
//! BE) + the witness's name, value the cosignature line (`— name base64`, C2SP
//! tlog-cosignature) as the witness sent it, after it was checked. A checkpoint note read
//! through [`super::LogAt::checkpoint_note`] carries them after the log's own signature, so
//! `GET /v1/checkpoint`, proofs and bundles hand them on. Written by the service's witness
//! submitter beside the writer; never part of what the log signs or audits.

use super::error::LogError;
use crate::store::keyspace::COSIGNATURE;
use crate::store::{Storage, WriteBatch};

fn key(size: u64, witness: &str) -> Vec<u8> {
    let mut key = vec![COSIGNATURE];
    key.extend_from_slice(&size.to_be_bytes());
    key.extend_from_slice(witness.as_bytes());
    key
}

/// Keeps `line`, `witness`'s checked cosignature of the checkpoint at `size`.
pub fn keep<S: Storage + ?Sized>(store: &S, size: u64, witness: &str, line: &str) -> Result<(), LogError> {
    let mut batch = WriteBatch::default();
    batch.put(key(size, witness), line.as_bytes().to_vec());
    Ok(store.apply(batch)?)
}

/// The cosignature lines of the checkpoint at `size`, by witness name.
pub fn lines<S: Storage + ?Sized>(store: &S, size: u64) -> Result<String, LogError> {
    let (from, to) = (key(size, ""), key(size + 1, ""));
    let mut out = String::new();
    for item in store.range(&from, &to) {
        let (_, line) = item?;
        out.push_str(&String::from_utf8_lossy(line.as_ref()));
    }
    Ok(out)
}

/// The largest tree size `witness` cosigned, if any.
pub fn latest<S: Storage + ?Sized>(store: &S, witness: &str) -> Result<Option<u64>, LogError> {
    let mut latest = None;
    for item in store.range(&[COSIGNATURE], &crate::store::keyspace::prefix_end(COSIGNATURE)) {
        let (k, _) = item?;
        let k = k.as_ref();
        if k.len() >= 9 && &k[9..] == witness.as_bytes() {
            latest = Some(u64::from_be_bytes(k[1..9].try_into().expect("8 bytes")));
        }
    }
    Ok(latest)
}
