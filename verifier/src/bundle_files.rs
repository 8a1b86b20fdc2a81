//! Reads a bundle from disk for [`crate::bundle::verify`]: a directory, or a `.tar.gz`
//! archive, into a map of paths to bytes. With [`crate::store`], the only modules that touch
//! a disk. A bundle is input from elsewhere: a path that leaves the bundle (absolute, `..`),
//! a link, or a special file is refused, never followed.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Component, Path};

use anyhow::Context as _;

/// Every file of the bundle at `path`, by its path inside the bundle (`/`-separated).
pub fn read_bundle(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    if path.is_dir() {
        read_dir(path, path, &mut files)?;
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("Cannot open {}", path.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::io::BufReader::new(file)));
        for entry in archive.entries().with_context(|| format!("{} is not a .tar.gz archive", path.display()))? {
            let mut entry = entry.with_context(|| format!("{} is not a readable .tar.gz archive", path.display()))?;
            let kind = entry.header().entry_type();
            let name = entry.path()?.into_owned();
            if kind.is_dir() {
                continue;
            }
            anyhow::ensure!(kind.is_file(), "{} in the archive is not a regular file", name.display());
            let name = inside(&name)?;
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes)?;
            anyhow::ensure!(files.insert(name.clone(), bytes).is_none(), "{name} is in the archive twice");
        }
    }
    Ok(files)
}

/// `name` as a path inside the bundle, or an error when it would leave it.
fn inside(name: &Path) -> anyhow::Result<String> {
    let mut parts = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().context("a path in the bundle is not UTF-8")?.to_string()),
            Component::CurDir => {}
            _ => anyhow::bail!("{} leaves the bundle", name.display()),
        }
    }
    anyhow::ensure!(!parts.is_empty(), "an empty path in the bundle");
    Ok(parts.join("/"))
}

fn read_dir(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) -> anyhow::Result<()> {
    let mut paths = Vec::new();
    list(root, dir, &mut paths)?;
    // Reading many small files is system calls more than bytes: two threads read half each.
    let (first, second) = paths.split_at(paths.len() / 2);
    let read = |part: &[(String, std::path::PathBuf)]| -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        part.iter()
            .map(|(name, path)| {
                Ok((name.clone(), std::fs::read(path).with_context(|| format!("Cannot read {}", path.display()))?))
            })
            .collect()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| read(first));
        let b = read(second);
        (a.join().expect("a reading thread"), b)
    });
    files.extend(a?);
    files.extend(b?);
    Ok(())
}

/// Every file under `dir`, with its name inside the bundle.
fn list(root: &Path, dir: &Path, out: &mut Vec<(String, std::path::PathBuf)>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("Cannot read {}", dir.display()))? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            list(root, &path, out)?;
        } else {
            anyhow::ensure!(kind.is_file(), "{} is not a regular file", path.display());
            out.push((inside(path.strip_prefix(root).expect("under the root"))?, path));
        }
    }
    Ok(())
}
