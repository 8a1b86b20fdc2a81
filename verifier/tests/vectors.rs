//! The public test vectors (testdata/vectors, from shared/vectors; see its README for their
//! origin and licence), run file by file: happy paths pass, every `wantErr` file fails.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_verifier::merkle::{leaf_hash, verify_consistency, verify_inclusion, RootBuilder};
use evidence_verifier::note::{Note, NoteError, SignerKey, VerifierKey};
use serde_json::Value;

fn vectors() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for item in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = item.unwrap().path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn b64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    v.as_array().map(|a| a.iter().map(b64).collect()).unwrap_or_default()
}

/// Runs one proof vector file; returns whether the verifier accepted it.
fn run(path: &Path) -> (bool, bool) {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let want_err = v["wantErr"].as_bool().unwrap();
    let accepted = if path.components().any(|c| c.as_os_str() == "inclusion") {
        verify_inclusion(
            v["leafIdx"].as_u64().unwrap(),
            v["treeSize"].as_u64().unwrap(),
            &b64(&v["leafHash"]),
            &proof(&v["proof"]),
            &b64(&v["root"]),
        )
        .is_ok()
    } else {
        verify_consistency(
            v["size1"].as_u64().unwrap(),
            v["size2"].as_u64().unwrap(),
            &proof(&v["proof"]),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        )
        .is_ok()
    };
    (accepted, want_err)
}

#[test]
fn rfc6962_proof_vectors_file_by_file() {
    let mut files = Vec::new();
    json_files(&vectors().join("rfc6962/inclusion"), &mut files);
    json_files(&vectors().join("rfc6962/consistency"), &mut files);
    files.sort();
    let (mut passed, mut rejected, mut wrong) = (0, 0, Vec::new());
    for f in &files {
        let (accepted, want_err) = run(f);
        match (accepted, want_err) {
            (true, false) => passed += 1,
            (false, true) => rejected += 1,
            _ => wrong.push(format!("{} (accepted: {accepted}, wantErr: {want_err})", f.display())),
        }
    }
    println!("{} vector files: {passed} valid proofs accepted, {rejected} wantErr proofs rejected", files.len());
    assert!(files.len() >= 190, "only {} vector files found", files.len());
    assert!(wrong.is_empty(), "vectors handled wrongly:\n{}", wrong.join("\n"));
}

#[test]
fn rfc6962_roots_of_every_size() {
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(vectors().join("rfc6962/tree.json")).unwrap()).unwrap();
    let leaves: Vec<Vec<u8>> =
        v["leaves"].as_array().unwrap().iter().map(|l| hex::decode(l.as_str().unwrap()).unwrap()).collect();
    let roots: Vec<String> = v["roots"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    let mut tree = RootBuilder::new();
    assert_eq!(hex::encode(tree.root()), roots[0]);
    for (i, leaf) in leaves.iter().enumerate() {
        tree.push(leaf_hash(leaf));
        assert_eq!(hex::encode(tree.root()), roots[i + 1], "root of size {}", i + 1);
    }
}

fn signed_note_vectors() -> Vec<Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(vectors().join("signed-note.json")).unwrap()).unwrap();
    v["vectors"].as_array().unwrap().clone()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("no {k}"))
}

#[test]
fn signed_note_is_produced_byte_for_byte() {
    let v = &signed_note_vectors()[0];
    let signer = SignerKey::parse(s(v, "signer_key")).unwrap();
    assert_eq!(signer.to_key_string(), s(v, "signer_key"));
    assert_eq!(signer.verifier().to_string(), s(v, "verifier_key"));
    assert_eq!(signer.sign(s(v, "text")).unwrap(), s(v, "signed_note"));
}

#[test]
fn signed_notes_verify_and_unknown_signers_are_ignored() {
    for v in signed_note_vectors() {
        let key = VerifierKey::parse(s(&v, "verifier_key")).unwrap();
        assert_eq!(key.to_string(), s(&v, "verifier_key"));
        let note = Note::parse(s(&v, "signed_note").as_bytes()).unwrap();
        assert_eq!(note.to_string(), s(&v, "signed_note"), "round trip of {}", s(&v, "name"));
        assert_eq!(note.verify(std::slice::from_ref(&key)).unwrap(), vec![key.clone()], "{}", s(&v, "name"));
        if let Some(other) = v["other_verifier_key"].as_str() {
            let other = VerifierKey::parse(other).unwrap();
            assert_eq!(note.verify(std::slice::from_ref(&other)).unwrap(), vec![other.clone()]);
            assert_eq!(note.verify(&[key.clone(), other.clone()]).unwrap().len(), 2);
        }
    }
}

#[test]
fn tampered_notes_are_rejected() {
    let v = &signed_note_vectors()[0];
    let key = VerifierKey::parse(s(v, "verifier_key")).unwrap();
    let good = s(v, "signed_note");
    let edited = good.replace("cryptography", "cryptographi");
    assert!(matches!(
        Note::parse(edited.as_bytes()).unwrap().verify(std::slice::from_ref(&key)),
        Err(NoteError::BadSignature { .. })
    ));
    let stranger = SignerKey::from_seed("Mallory", [7u8; 32]).unwrap();
    let forged = stranger.sign(s(v, "text")).unwrap();
    let err = Note::parse(forged.as_bytes()).unwrap().verify(std::slice::from_ref(&key)).unwrap_err();
    assert!(err.to_string().starts_with("not signed by any trusted key (signed by: Mallory+"), "{err}");
    for bad in [&good[..good.len() - 1], "no signatures\n", "text\n\n\u{2014} PeterNeumann !!!\n", "a\u{7}b\n\n"] {
        assert!(Note::parse(bad.as_bytes()).is_err(), "{bad:?} parsed");
    }
    // A key string whose ID does not match its name and key.
    let bad_key = s(v, "verifier_key").replace("c74f20a3", "c74f20a4");
    assert!(VerifierKey::parse(&bad_key).is_err());
}
