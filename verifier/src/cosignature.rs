//! C2SP `tlog-cosignature`, the Ed25519 `cosignature/v1` type: a witness's statement that,
//! as of a time, the largest consistent tree it has seen of a log has the checkpoint's root.
//! A cosignature is a signature line of the checkpoint's signed note,
//! `— <witness name> base64(key ID || timestamp || signature)`: the key ID is the first four
//! bytes of `SHA-256(name || "\n" || 0x04 || public key)`, the timestamp a u64 (POSIX seconds,
//! big-endian), and the Ed25519 signature is over
//! `cosignature/v1\ntime <timestamp>\n<checkpoint body>`. A witness key is written
//! `<name>+<hex key ID>+<base64(0x04 || public key)>`, its private key
//! `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>`.

use std::fmt;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::note::{check_name, check_text, key_id_of, parse_key_string, Note, NoteError, NoteSignature};

/// The signature type byte of Ed25519 cosignatures.
const ALG_COSIGNATURE_V1: u8 = 0x04;

/// The message a cosignature signs: the header line, the time line, the checkpoint body.
pub fn message(body: &str, timestamp: u64) -> Vec<u8> {
    format!("cosignature/v1\ntime {timestamp}\n{body}").into_bytes()
}

/// A witness's public key, which checks its cosignatures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessKey {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl WitnessKey {
    /// Parses `<name>+<hex key ID>+<base64(0x04 || public key)>`, checking the key ID.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, key) = parse_key_string(s, ALG_COSIGNATURE_V1, false, "cosignature/v1 witness key")?;
        if key_id_of(ALG_COSIGNATURE_V1, &name, &key) != id {
            return Err(NoteError::BadKey(format!("key ID {id:08x} does not match the name and key")));
        }
        let key = VerifyingKey::from_bytes(&key).map_err(|e| NoteError::BadKey(format!("invalid Ed25519 key: {e}")))?;
        Ok(WitnessKey { name, id, key })
    }

    /// The witness's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The time of this witness's cosignature on `note`: `None` when it has not cosigned it,
    /// an error when a line by this key does not verify.
    pub fn cosigned(&self, note: &Note) -> Result<Option<u64>, NoteError> {
        let Some(line) = note.signatures.iter().find(|s| s.name == self.name && s.id == self.id) else {
            return Ok(None);
        };
        let bad = || NoteError::BadSignature { name: line.name.clone(), id: line.id };
        if line.signature.len() != 72 {
            return Err(bad());
        }
        let timestamp = u64::from_be_bytes(line.signature[..8].try_into().expect("8 bytes"));
        if timestamp > i64::MAX as u64 {
            return Err(bad());
        }
        let signature = ed25519_dalek::Signature::from_bytes(&line.signature[8..].try_into().expect("64 bytes"));
        self.key.verify_strict(&message(&note.text, timestamp), &signature).map_err(|_| bad())?;
        Ok(Some(timestamp))
    }
}

impl fmt::Display for WitnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = vec![ALG_COSIGNATURE_V1];
        raw.extend_from_slice(self.key.as_bytes());
        write!(f, "{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// A witness's private key, which cosigns checkpoints.
pub struct CosignerKey {
    name: String,
    id: u32,
    key: SigningKey,
}

impl fmt::Debug for CosignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CosignerKey({}+{:08x})", self.name, self.id)
    }
}

impl CosignerKey {
    /// A cosigner key with this name from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Self, NoteError> {
        check_name(name)?;
        let key = SigningKey::from_bytes(&seed);
        let id = key_id_of(ALG_COSIGNATURE_V1, name, key.verifying_key().as_bytes());
        Ok(CosignerKey { name: name.to_string(), id, key })
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+<base64(0x04 || seed)>`, checking the key ID.
    pub fn parse(s: &str) -> Result<Self, NoteError> {
        let (name, id, seed) = parse_key_string(s, ALG_COSIGNATURE_V1, true, "cosignature/v1 cosigner key")?;
        let key = CosignerKey::from_seed(&name, seed)?;
        if key.id != id {
            return Err(NoteError::BadKey(format!("key ID {id:08x} does not match the name and key")));
        }
        Ok(key)
    }

    /// The private key string (keep it secret).
    pub fn to_key_string(&self) -> String {
        let mut raw = vec![ALG_COSIGNATURE_V1];
        raw.extend_from_slice(self.key.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }

    /// The matching public key.
    pub fn witness_key(&self) -> WitnessKey {
        WitnessKey { name: self.name.clone(), id: self.id, key: self.key.verifying_key() }
    }

    /// Cosigns the checkpoint body `text` at `timestamp`: the signature line to add to its
    /// note.
    pub fn cosign(&self, text: &str, timestamp: u64) -> Result<NoteSignature, NoteError> {
        check_text(text)?;
        let mut signature = timestamp.to_be_bytes().to_vec();
        signature.extend_from_slice(&self.key.sign(&message(text, timestamp)).to_bytes());
        Ok(NoteSignature { name: self.name.clone(), id: self.id, signature })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::note::SignerKey;

    const BODY: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    #[test]
    fn the_signed_message_is_the_header_the_time_and_the_body() {
        let m = String::from_utf8(message(BODY, 1679315147)).unwrap();
        assert_eq!(m, format!("cosignature/v1\ntime 1679315147\n{BODY}"));
    }

    #[test]
    fn a_cosignature_verifies_with_its_witness_key_and_nothing_else() {
        let log = SignerKey::from_seed("example.com/behind-the-sofa", [1; 32]).unwrap();
        let witness = CosignerKey::from_seed("witness.example.com/w1", [2; 32]).unwrap();
        let mut note = Note::sign(BODY, &[&log]).unwrap();
        note.signatures.push(witness.cosign(BODY, 1679315147).unwrap());
        let text = note.to_string();
        let parsed = Note::parse(text.as_bytes()).unwrap();
        let key = witness.witness_key();
        assert_eq!(key.cosigned(&parsed).unwrap(), Some(1679315147));
        // The log's own signature still verifies beside it; the witness key reads back.
        parsed.verify(&[log.verifier()]).unwrap();
        assert_eq!(WitnessKey::parse(&key.to_string()).unwrap(), key);
        assert_eq!(CosignerKey::parse(&witness.to_key_string()).unwrap().witness_key(), key);
        // Another witness has not cosigned it; a changed body or time does not verify.
        let other = CosignerKey::from_seed("witness.example.com/w2", [3; 32]).unwrap();
        assert_eq!(other.witness_key().cosigned(&parsed).unwrap(), None);
        let mut changed = parsed.clone();
        changed.text = changed.text.replace("20852163", "20852164");
        assert!(key.cosigned(&changed).is_err());
        let mut later = parsed.clone();
        later.signatures[1].signature[7] ^= 1;
        assert!(key.cosigned(&later).is_err());
        // The same key as a checkpoint signer's (type 0x01) is not a witness key.
        assert!(WitnessKey::parse(&log.verifier().to_string()).is_err());
    }
}
