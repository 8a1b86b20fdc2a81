//! [`MemStorage`]: the in-memory twin of the sled engine, for unit tests and for running the
//! ledger (and the service) without a disk.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Pair, Storage, StorageError, WriteBatch};

/// The in-memory twin, for unit tests.
#[derive(Debug, Default)]
pub struct MemStorage {
    map: RwLock<BTreeMap<Vec<u8>, Arc<[u8]>>>,
}

impl Storage for MemStorage {
    type Bytes = Arc<[u8]>;

    fn get(&self, key: &[u8]) -> Result<Option<Arc<[u8]>>, StorageError> {
        Ok(self.map.read().expect("not poisoned").get(key).cloned())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Box<dyn Iterator<Item = Result<Pair<Self>, StorageError>> + '_> {
        let items: Vec<_> = self
            .map
            .read()
            .expect("not poisoned")
            .range(from.to_vec()..to.to_vec())
            .map(|(k, v)| Ok((Arc::from(k.as_slice()), v.clone())))
            .collect();
        Box::new(items.into_iter())
    }

    fn last_in(&self, from: &[u8], to: &[u8]) -> Result<Option<Pair<Self>>, StorageError> {
        let map = self.map.read().expect("not poisoned");
        Ok(map.range(from.to_vec()..to.to_vec()).next_back().map(|(k, v)| (Arc::from(k.as_slice()), v.clone())))
    }

    fn commit(&self, batch: WriteBatch) -> Result<(), StorageError> {
        let mut map = self.map.write().expect("not poisoned");
        for (k, v) in batch.into_ops() {
            match v {
                Some(v) => map.insert(k, Arc::from(v)),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn apply(&self, batch: WriteBatch) -> Result<(), StorageError> {
        self.commit(batch)
    }
}
