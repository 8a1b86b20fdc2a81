//! C2SP signed notes with Ed25519 signatures: keys, key IDs, signing and verification.
//!
//! Format (C2SP `signed-note`): the note text (UTF-8, ending in a newline, no ASCII control
//! characters but newline), a blank line, then one line per signature:
//! `— <key name> <base64(4-byte key ID || 64-byte signature)>`. The key ID is the first four
//! bytes of `SHA-256(name || 0x0A || 0x01 || public key)`. A verifier key is written
//! `<name>+<hex key ID>+<base64(0x01 || public key)>`, a signer key
//! `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x01 || 32-byte seed)>`.
//!
//! Verification uses `verify_strict`. Signatures by keys the verifier does not know are
//! ignored; a signature by a known key that fails is an error; a note with no valid signature
//! by a known key is rejected. No I/O.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The signature algorithm byte for Ed25519.
const ALG_ED25519: u8 = 0x01;
/// At most this many signature lines are read.
const MAX_SIGNATURES: usize = 100;
/// The signature line prefix: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a key, a note or a signature was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key string is malformed.
    #[error("malformed key: {0}")]
    BadKey(String),
    /// A key name is empty, has white space or a '+'.
    #[error("invalid key name {0:?}: it must be non-empty, with no spaces and no '+'")]
    BadKeyName(String),
    /// The note text is not acceptable.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A signature by a known key does not verify.
    #[error("the signature by {name}+{id:08x} does not verify")]
    BadSignature {
        /// The key's name.
        name: String,
        /// The key ID.
        id: u32,
    },
    /// No signature on the note is by a trusted key.
    #[error("not signed by any trusted key (signed by: {})", if signers.is_empty() { "nobody".to_string() } else { signers.join(", ") })]
    NoTrustedSignature {
        /// The signers named on the note, as `name+keyid`.
        signers: Vec<String>,
    },
}

pub(crate) fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(NoteError::BadKeyName(name.to_string()));
    }
    Ok(())
}

/// The key ID of an Ed25519 key: the first four bytes of `SHA-256(name || "\n" || 0x01 || key)`.
pub fn key_id(name: &str, public_key: &[u8; 32]) -> u32 {
    key_id_of(ALG_ED25519, name, public_key)
}

/// The key ID of a key of signature type `alg`: the first four bytes of
/// `SHA-256(name || "\n" || alg || key)`.
pub(crate) fn key_id_of(alg: u8, name: &str, public_key: &[u8; 32]) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([alg]);
    h.update(public_key);
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A public key that checks signatures: `<name>+<hex id>+<base64(0x01 || key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl VerifierKey {
    /// Parses a verifier key string, checking that its key ID matches its name and key.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, key) = parse_key_string(s, ALG_ED25519, false, "Ed25519 verifier key")?;
        if key_id(&name, &key) != id {
            return Err(NoteError::BadKey(format!("key ID {id:08x} does not match the name and key")));
        }
        let key = VerifyingKey::from_bytes(&key).map_err(|e| NoteError::BadKey(format!("invalid Ed25519 key: {e}")))?;
        Ok(VerifierKey { name, id, key })
    }

    /// The key's name (for a checkpoint key, the log's origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key ID.
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// A key string's name, key ID and 32 key bytes: `<name>+<hex key ID>+<base64(alg || key)>`,
/// after `PRIVATE+KEY+` for a private key (`private`). The key ID is checked by the caller,
/// which knows how to derive the public key. `what` names the key in errors.
pub(crate) fn parse_key_string(
    s: &str,
    alg: u8,
    private: bool,
    what: &str,
) -> Result<(String, u32, [u8; 32]), NoteError> {
    let s = s.trim();
    let (s, grammar) = if private {
        let rest = s
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| NoteError::BadKey(format!("a private {what} starts with PRIVATE+KEY+")))?;
        (rest, "PRIVATE+KEY+<name>+<hex key ID>+<base64 seed>")
    } else {
        (s, "<name>+<hex key ID>+<base64 key>")
    };
    let mut parts = s.splitn(3, '+');
    let (Some(name), Some(id_hex), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::BadKey(format!("expected {grammar} for a {what}")));
    };
    check_name(name)?;
    let id = parse_id(id_hex)?;
    let raw = B64.decode(b64).map_err(|e| NoteError::BadKey(format!("key is not base64: {e}")))?;
    let bytes = match raw.split_first() {
        Some((&a, bytes)) if a == alg => bytes,
        _ => return Err(NoteError::BadKey(format!("not a {what} (type byte is not {alg:#04x})"))),
    };
    let bytes: [u8; 32] =
        bytes.try_into().map_err(|_| NoteError::BadKey(format!("Ed25519 key is {} bytes, not 32", bytes.len())))?;
    Ok((name.to_string(), id, bytes))
}

pub(crate) fn parse_id(hex_id: &str) -> Result<u32, NoteError> {
    if hex_id.len() != 8 || !hex_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NoteError::BadKey(format!("key ID {hex_id:?} is not 8 hex digits")));
    }
    u32::from_str_radix(hex_id, 16).map_err(|e| NoteError::BadKey(e.to_string()))
}

/// A private key that signs notes: `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 || seed)>`.
pub struct SignerKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignerKey({}+{:08x})", self.name, self.id)
    }
}

impl SignerKey {
    /// A signer key with this name from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id(name, key.verifying_key().as_bytes());
        Ok(SignerKey { name: name.to_string(), id, key })
    }

    /// Parses a signer key string, checking its key ID.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, seed) = parse_key_string(s, ALG_ED25519, true, "Ed25519 signer key")?;
        let signer = SignerKey::from_seed(&name, seed)?;
        if signer.id != id {
            return Err(NoteError::BadKey(format!("key ID {id:08x} does not match the name and key")));
        }
        Ok(signer)
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The matching verifier key.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// The signer key string (keep it secret).
    pub fn to_key_string(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    /// Signs `text` (which must be a valid note text) and returns the signed note.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        Note::sign(text, &[self]).map(|n| n.to_string())
    }

    fn signature(&self, text: &str) -> NoteSignature {
        NoteSignature {
            name: self.name.clone(),
            id: self.id,
            signature: self.key.sign(text.as_bytes()).to_bytes().to_vec(),
        }
    }
}

pub(crate) fn check_text(text: &str) -> Result<(), NoteError> {
    if !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text does not end with a newline".into()));
    }
    if text.chars().any(|c| c.is_ascii_control() && c != '\n') {
        return Err(NoteError::Malformed("the text has an ASCII control character".into()));
    }
    Ok(())
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The signer's key name.
    pub name: String,
    /// The signer's key ID.
    pub id: u32,
    /// The signature bytes (after the key ID).
    pub signature: Vec<u8>,
}

/// A parsed (not yet verified) signed note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The signed text, ending in a newline.
    pub text: String,
    /// The signature lines, in order.
    pub signatures: Vec<NoteSignature>,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.text)?;
        for sig in &self.signatures {
            let mut blob = sig.id.to_be_bytes().to_vec();
            blob.extend_from_slice(&sig.signature);
            writeln!(f, "{SIG_PREFIX}{} {}", sig.name, B64.encode(blob))?;
        }
        Ok(())
    }
}

impl Note {
    /// Signs `text` with every signer, in order (key rotation, cosignatures).
    pub fn sign(text: &str, signers: &[&SignerKey]) -> Result<Note, NoteError> {
        check_text(text)?;
        let signatures = signers.iter().map(|s| s.signature(text)).collect();
        Ok(Note { text: text.to_string(), signatures })
    }

    /// Adds a signature by `signer` (a witness's cosignature, or a new key during rotation).
    pub fn cosign(&mut self, signer: &SignerKey) {
        if !self.signatures.iter().any(|s| s.name == signer.name && s.id == signer.id) {
            self.signatures.push(signer.signature(&self.text));
        }
    }

    /// Splits a signed note into its text and signature lines.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        let msg = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8".into()))?;
        let split =
            msg.rfind("\n\n").ok_or_else(|| NoteError::Malformed("no blank line before the signatures".into()))?;
        let text = &msg[..split + 1];
        check_text(text)?;
        let sigs = &msg[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("the last signature line does not end with a newline".into()));
        }
        let mut signatures = Vec::new();
        for line in sigs[..sigs.len() - 1].split('\n') {
            if signatures.len() == MAX_SIGNATURES {
                return Err(NoteError::Malformed(format!("more than {MAX_SIGNATURES} signatures")));
            }
            let body = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
                NoteError::Malformed(format!("signature line {line:?} does not start with an em dash"))
            })?;
            let (name, b64) = body
                .split_once(' ')
                .ok_or_else(|| NoteError::Malformed(format!("signature line {line:?} has no signature")))?;
            check_name(name)?;
            let blob =
                B64.decode(b64).map_err(|_| NoteError::Malformed(format!("the signature by {name} is not base64")))?;
            if blob.len() < 5 {
                return Err(NoteError::Malformed(format!("the signature by {name} is too short")));
            }
            signatures.push(NoteSignature {
                name: name.to_string(),
                id: u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]),
                signature: blob[4..].to_vec(),
            });
        }
        if signatures.is_empty() {
            return Err(NoteError::Malformed("no signatures".into()));
        }
        Ok(Note { text: text.to_string(), signatures })
    }

    /// Checks the signatures against the trusted keys. Returns the keys that signed; fails if
    /// a trusted key's signature does not verify or if no trusted key signed.
    pub fn verify(&self, trusted: &[VerifierKey]) -> Result<Vec<VerifierKey>, NoteError> {
        let mut signed_by = Vec::new();
        for sig in &self.signatures {
            let Some(key) = trusted.iter().find(|k| k.name == sig.name && k.id == sig.id) else {
                continue;
            };
            let bad = || NoteError::BadSignature { name: sig.name.clone(), id: sig.id };
            let bytes: [u8; 64] = sig.signature.as_slice().try_into().map_err(|_| bad())?;
            let signature = ed25519_dalek::Signature::from_bytes(&bytes);
            key.key.verify_strict(self.text.as_bytes(), &signature).map_err(|_| bad())?;
            if !signed_by.contains(key) {
                signed_by.push(key.clone());
            }
        }
        if signed_by.is_empty() {
            return Err(NoteError::NoTrustedSignature {
                signers: self.signatures.iter().map(|s| format!("{}+{:08x}", s.name, s.id)).collect(),
            });
        }
        Ok(signed_by)
    }
}

/// Parses and verifies a signed note in one step, returning its text.
pub fn open(bytes: &[u8], trusted: &[VerifierKey]) -> Result<String, NoteError> {
    let note = Note::parse(bytes)?;
    note.verify(trusted)?;
    Ok(note.text)
}
