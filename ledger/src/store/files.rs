//! The sled engine's files of derived data ([`super::Storage::write_file`]): plain files in
//! [`FILES_DIR`] beside the database, each written to a temporary name, synced, renamed and
//! its directory synced, so that a name is only ever seen whole; read in place through handles
//! kept open.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::StorageError;

/// The directory of the files, inside the store's.
pub const FILES_DIR: &str = "index";
/// The suffix of a file being written.
const WRITING: &str = ".writing";

/// The files of one store.
#[derive(Debug)]
pub(super) struct Files {
    dir: PathBuf,
    /// Handles of the files read so far.
    open: Mutex<HashMap<String, Arc<File>>>,
}

impl Files {
    /// The files in `store`'s directory; a file left half written (by a crash) is deleted.
    pub(super) fn open(store: &Path) -> Result<Self, StorageError> {
        let dir = store.join(FILES_DIR);
        std::fs::create_dir_all(&dir)?;
        for item in std::fs::read_dir(&dir)? {
            let item = item?;
            if item.file_name().to_string_lossy().ends_with(WRITING) {
                std::fs::remove_file(item.path())?;
            }
        }
        Ok(Files { dir, open: Mutex::default() })
    }

    fn path(&self, name: &str) -> PathBuf {
        debug_assert!(!name.contains('/') && !name.ends_with(WRITING), "a plain name: {name}");
        self.dir.join(name)
    }

    pub(super) fn write(
        &self,
        name: &str,
        parts: &mut dyn Iterator<Item = Result<Vec<u8>, StorageError>>,
    ) -> Result<(), StorageError> {
        let writing = self.dir.join(format!("{name}{WRITING}"));
        let written = (|| {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&writing)?);
            for part in parts {
                out.write_all(&part?)?;
            }
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&writing, self.path(name))?;
            File::open(&self.dir)?.sync_all()?;
            Ok::<_, StorageError>(())
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&writing);
        }
        self.handles().remove(name);
        written
    }

    fn handles(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<File>>> {
        self.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn read(&self, name: &str, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        // Taken in a statement of its own: the lock is not held while the file is opened.
        let held = self.handles().get(name).cloned();
        let file = match held {
            Some(file) => file,
            None => {
                let file = Arc::new(File::open(self.path(name))?);
                self.handles().insert(name.to_string(), Arc::clone(&file));
                file
            }
        };
        let mut buf = vec![0; len];
        let mut got = 0;
        while got < len {
            match file.read_at(&mut buf[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        buf.truncate(got);
        Ok(buf)
    }

    pub(super) fn remove(&self, name: &str) -> Result<(), StorageError> {
        self.handles().remove(name);
        match std::fs::remove_file(self.path(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub(super) fn names(&self) -> Result<Vec<String>, StorageError> {
        let mut names = Vec::new();
        for item in std::fs::read_dir(&self.dir)? {
            let name = item?.file_name().to_string_lossy().into_owned();
            if !name.ends_with(WRITING) {
                names.push(name);
            }
        }
        Ok(names)
    }
}
