//! Where a bundle's files go: a directory, or a `.tar.gz` stream (a file, or an HTTP body).

use std::io::Write;
use std::path::{Path, PathBuf};

/// Receives a bundle's files, each once, whole.
pub trait BundleOut {
    /// Writes the file at `path` (`/`-separated, inside the bundle).
    fn file(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()>;
}

/// A bundle written to a directory: built in a temporary directory beside it and renamed
/// into place by [`DirOut::finish`], so that a directory at the path is always whole.
#[derive(Debug)]
pub struct DirOut {
    building: tempfile::TempDir,
    target: PathBuf,
    /// Folders made so far (a bundle has few; its files are many).
    made: std::collections::BTreeSet<PathBuf>,
}

impl DirOut {
    /// A bundle to be written at `target`, which must not exist yet.
    pub fn create(target: &Path) -> std::io::Result<Self> {
        if target.exists() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists already: export to a new path", target.display()),
            ));
        }
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let building = tempfile::Builder::new().prefix(".export-").tempdir_in(parent)?;
        Ok(DirOut { building, target: target.into(), made: Default::default() })
    }

    /// Moves the finished bundle into place.
    pub fn finish(self) -> std::io::Result<()> {
        std::fs::rename(self.building.keep(), &self.target)
    }
}

impl BundleOut for DirOut {
    fn file(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.building.path().join(path);
        if let Some(dir) = path.parent() {
            if !self.made.contains(dir) {
                std::fs::create_dir_all(dir)?;
                self.made.insert(dir.to_path_buf());
            }
        }
        std::fs::write(path, bytes)
    }
}

/// A bundle as a gzip-compressed tar stream.
pub struct TarGzOut<W: Write> {
    tar: tar::Builder<flate2::write::GzEncoder<W>>,
    mtime: u64,
}

impl<W: Write> std::fmt::Debug for TarGzOut<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarGzOut").finish_non_exhaustive()
    }
}

impl<W: Write> TarGzOut<W> {
    /// An archive written to `w`, its files dated `mtime` (seconds since the epoch).
    pub fn new(w: W, mtime: u64) -> Self {
        let gz = flate2::write::GzEncoder::new(w, flate2::Compression::fast());
        TarGzOut { tar: tar::Builder::new(gz), mtime }
    }

    /// Ends the archive and the compressed stream; returns the writer.
    pub fn finish(self) -> std::io::Result<W> {
        self.tar.into_inner()?.finish()
    }
}

impl<W: Write> BundleOut for TarGzOut<W> {
    fn file(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_entry_type(tar::EntryType::Regular);
        self.tar.append_data(&mut header, path, bytes)
    }
}
