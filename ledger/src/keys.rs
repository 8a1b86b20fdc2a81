//! Checkpoint signing keys on disk: one C2SP signer key string per file, mode 0600.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use anyhow::Context as _;
use evidence_verifier::SignerKey;

/// A new random signer key named `origin`.
pub fn generate(origin: &str) -> anyhow::Result<SignerKey> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("Cannot get randomness for a new key: {e}"))?;
    Ok(SignerKey::from_seed(origin, seed)?)
}

/// Writes `key` to a new file at `path` with mode 0600; never overwrites.
pub fn write_new(path: &Path, key: &SignerKey) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("Cannot create {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("Cannot create the key file {} (it must not exist yet)", path.display()))?;
    writeln!(file, "{}", key.to_key_string())?;
    file.sync_all()?;
    Ok(())
}

/// Reads the signer key at `path`.
pub fn read(path: &Path) -> anyhow::Result<SignerKey> {
    let text = std::fs::read_to_string(path).with_context(|| format!("Cannot read the key file {}", path.display()))?;
    SignerKey::parse(&text).with_context(|| format!("{} does not hold a signer key", path.display()))
}
