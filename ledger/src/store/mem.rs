//! [`MemStorage`]: the in-memory twin of the sled engine, for unit tests and for running the
//! ledger (and the service) without a disk.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::{Pair, Storage, StorageError, WriteBatch};

/// The in-memory twin, for unit tests.
#[derive(Debug, Default)]
pub struct MemStorage {
    map: RwLock<BTreeMap<Vec<u8>, Arc<[u8]>>>,
    files: RwLock<BTreeMap<String, Arc<[u8]>>>,
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

    fn write_file(
        &self,
        name: &str,
        parts: &mut dyn Iterator<Item = Result<Vec<u8>, StorageError>>,
    ) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        for part in parts {
            bytes.extend_from_slice(&part?);
        }
        self.files.write().expect("not poisoned").insert(name.to_string(), Arc::from(bytes));
        Ok(())
    }

    fn read_file(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        let files = self.files.read().expect("not poisoned");
        let file = files.get(name).ok_or_else(|| no_file(name))?;
        let from = (offset as usize).min(file.len());
        Ok(file[from..(from + len).min(file.len())].to_vec())
    }

    fn remove_file(&self, name: &str) -> Result<(), StorageError> {
        self.files.write().expect("not poisoned").remove(name);
        Ok(())
    }

    fn file_names(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.files.read().expect("not poisoned").keys().cloned().collect())
    }
}

fn no_file(name: &str) -> StorageError {
    StorageError::from(std::io::Error::new(std::io::ErrorKind::NotFound, format!("no file {name}")))
}
