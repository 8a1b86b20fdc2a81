//! Bearer tokens and their roles. Deny by default: a request names a token, the token a role,
//! and the role what it may do ([`Role::allows`]).
//!
//! The tokens file is `<data-dir>/tokens.json`, beside the store and outside it, so that
//! `evidence token create` works while `evidence serve` holds the store; the service re-reads
//! it when it changes. It holds each token's name, role, creation time and the SHA-256 of the
//! token, never the token: a token is 32 random bytes (256 bits), so one plain hash is enough
//! to make the file useless to a reader. A presented token is hashed and compared with every
//! stored hash in constant time (`subtle`), all of them, so neither timing nor order tells
//! which one nearly matched. Writes take an exclusive lock on the file's own lock file and
//! replace the file whole (write, sync, rename), mode 0600.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// The tokens file's name in a data directory.
pub const TOKENS_FILE: &str = "tokens.json";
/// What every token starts with, so that one pasted in the wrong place is recognisable.
pub const TOKEN_PREFIX: &str = "evl_";

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every GET.
    Reader,
    /// `POST /v1/events`.
    Producer,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether this role includes `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }

    /// The role's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Producer => "producer",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored token: everything but the token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Its name, which logs and quarantine records show.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was created (RFC 3339).
    pub created: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
}

/// Why the tokens file could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing failed.
    #[error("Cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a tokens file.
    #[error("{} is not a tokens file: {message}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A token of that name exists.
    #[error("There is already a token named {0:?}; revoke it first or choose another name.")]
    Exists(String),
    /// No token of that name.
    #[error("There is no token named {0:?} (`evidence token list` shows them).")]
    Unknown(String),
    /// A name that logs could not show plainly.
    #[error("{0:?} is not a token name: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
}

/// The tokens file of a data directory.
#[derive(Debug, Clone)]
pub struct TokenFile {
    path: PathBuf,
}

impl TokenFile {
    /// The tokens file of `data_dir`.
    pub fn of(data_dir: &Path) -> Self {
        TokenFile { path: data_dir.join(TOKENS_FILE) }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every stored token, oldest first (none when there is no file).
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(TokenError::Io { what: "read", path: self.path.clone(), source }),
        };
        serde_json::from_slice(&text)
            .map_err(|e| TokenError::Damaged { path: self.path.clone(), message: e.to_string() })
    }

    /// Creates a token named `name` with `role`; returns the token, which is stored nowhere.
    pub fn create(&self, name: &str, role: Role) -> Result<String, TokenError> {
        let ok = (1..=64).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(TokenError::BadName(name.to_string()));
        }
        let mut bytes = [0u8; 32];
        getrandom::getrandom(&mut bytes).map_err(|e| TokenError::Io {
            what: "draw random bytes for",
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let token = format!("{TOKEN_PREFIX}{}", B64URL.encode(bytes));
        self.change(|records| {
            if records.iter().any(|r| r.name == name) {
                return Err(TokenError::Exists(name.to_string()));
            }
            let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            records.push(TokenRecord { name: name.to_string(), role, created, sha256: hex::encode(hash(&token)) });
            Ok(())
        })?;
        Ok(token)
    }

    /// Revokes the token named `name`.
    pub fn revoke(&self, name: &str) -> Result<TokenRecord, TokenError> {
        let mut gone = None;
        self.change(|records| {
            let i = records.iter().position(|r| r.name == name).ok_or_else(|| TokenError::Unknown(name.into()))?;
            gone = Some(records.remove(i));
            Ok(())
        })?;
        Ok(gone.expect("set when the change succeeded"))
    }

    /// Reads, changes and replaces the file under its lock.
    fn change(&self, edit: impl FnOnce(&mut Vec<TokenRecord>) -> Result<(), TokenError>) -> Result<(), TokenError> {
        let io = |what| {
            let path = self.path.clone();
            move |source| TokenError::Io { what, path, source }
        };
        let lock_path = self.path.with_extension("lock");
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io("lock"))?;
        lock.lock().map_err(io("lock"))?;
        let mut records = self.list()?;
        edit(&mut records)?;
        let tmp = self.path.with_extension("json.tmp");
        let mut file = private_file(&tmp).map_err(io("write"))?;
        file.write_all(&serde_json::to_vec_pretty(&records).expect("records serialize")).map_err(io("write"))?;
        file.sync_all().map_err(io("write"))?;
        std::fs::rename(&tmp, &self.path).map_err(io("replace"))?;
        Ok(())
    }
}

fn private_file(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path)
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Who a request's token says it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The token's name.
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// The tokens the service checks against, re-read when the file changes.
#[derive(Debug)]
pub struct Tokens {
    file: TokenFile,
    loaded: Mutex<Loaded>,
}

#[derive(Debug, Default)]
struct Loaded {
    /// The file's modification time and length when read.
    stamp: Option<(SystemTime, u64)>,
    tokens: Vec<(Caller, [u8; 32])>,
}

impl Tokens {
    /// The tokens of `file`, read now.
    pub fn open(file: TokenFile) -> Result<Self, TokenError> {
        let tokens = Tokens { file, loaded: Mutex::new(Loaded::default()) };
        tokens.refresh(&mut tokens.loaded.lock().expect("tokens lock"))?;
        Ok(tokens)
    }

    /// How many tokens are in force.
    pub fn count(&self) -> usize {
        self.loaded.lock().expect("tokens lock").tokens.len()
    }

    fn refresh(&self, loaded: &mut Loaded) -> Result<(), TokenError> {
        let stamp =
            std::fs::metadata(self.file.path()).ok().map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
        if stamp == loaded.stamp && stamp.is_some() {
            return Ok(());
        }
        let mut tokens = Vec::new();
        for r in self.file.list()? {
            let mut sha = [0u8; 32];
            hex::decode_to_slice(&r.sha256, &mut sha).map_err(|e| TokenError::Damaged {
                path: self.file.path().to_path_buf(),
                message: format!("token {:?}: {e}", r.name),
            })?;
            tokens.push((Caller { name: r.name, role: r.role }, sha));
        }
        *loaded = Loaded { stamp, tokens };
        Ok(())
    }

    /// The caller `token` belongs to, if any. A tokens file that changed and cannot be read
    /// keeps the tokens read before (and is logged).
    pub fn check(&self, token: &str) -> Option<Caller> {
        let mut loaded = self.loaded.lock().expect("tokens lock");
        if let Err(error) = self.refresh(&mut loaded) {
            tracing::error!(message = "Cannot re-read the tokens file; the tokens read before stay in force.", %error);
        }
        let presented = hash(token);
        let mut found = None;
        for (caller, sha) in &loaded.tokens {
            if bool::from(sha.ct_eq(&presented)) {
                found = Some(caller.clone());
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_created_checked_listed_and_revoked_and_only_their_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::of(dir.path());
        let reader = file.create("dashboards", Role::Reader).unwrap();
        let admin = file.create("ops", Role::Admin).unwrap();
        assert!(reader.starts_with(TOKEN_PREFIX) && reader.len() == TOKEN_PREFIX.len() + 43);
        let stored = std::fs::read_to_string(file.path()).unwrap();
        assert!(!stored.contains(&reader[TOKEN_PREFIX.len()..]) && !stored.contains(&admin[TOKEN_PREFIX.len()..]));
        let tokens = Tokens::open(file.clone()).unwrap();
        assert_eq!(tokens.check(&reader), Some(Caller { name: "dashboards".into(), role: Role::Reader }));
        assert_eq!(tokens.check(&admin).map(|c| c.role), Some(Role::Admin));
        assert_eq!(tokens.check("evl_nope"), None);
        assert!(matches!(file.create("ops", Role::Reader), Err(TokenError::Exists(_))));
        assert!(matches!(file.create("bad name", Role::Reader), Err(TokenError::BadName(_))));
        assert_eq!(file.revoke("dashboards").unwrap().role, Role::Reader);
        assert!(matches!(file.revoke("dashboards"), Err(TokenError::Unknown(_))));
        assert_eq!(tokens.check(&reader), None, "a revoked token is refused by a running service");
        assert_eq!(file.list().unwrap().len(), 1);
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(file.path()).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn roles_allow_their_own_and_admin_allows_all() {
        assert!(Role::Admin.allows(Role::Producer) && Role::Admin.allows(Role::Reader));
        assert!(Role::Reader.allows(Role::Reader) && !Role::Reader.allows(Role::Producer));
        assert!(!Role::Producer.allows(Role::Reader) && !Role::Producer.allows(Role::Admin));
    }
}
