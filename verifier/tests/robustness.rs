//! Corrupt input never panics the verifier: every parser and the auditor answer with an error.

use evidence_verifier::entry::{encode, event_digest, EntryRef, GENESIS};
use evidence_verifier::layout::{encode_segment, segment_records};
use evidence_verifier::merkle::RootBuilder;
use evidence_verifier::note::Note;
use evidence_verifier::{Auditor, Checkpoint, SignerKey, VerifierKey};
use proptest::prelude::*;

fn signer() -> SignerKey {
    SignerKey::from_seed("robust.example/log", [5u8; 32]).unwrap()
}

/// A valid little log: entry records and a signed checkpoint over all of them.
fn log(n: u64) -> (Vec<Vec<u8>>, Vec<u8>) {
    let mut chain = GENESIS;
    let mut tree = RootBuilder::new();
    let mut records = Vec::new();
    for seq in 0..n {
        let event = format!("{{\"id\":\"e{seq}\",\"n\":{seq}}}");
        let enc =
            encode(seq, 1_700_000_000_000_000, "file:x#1", event.as_bytes(), &event_digest(event.as_bytes()), &chain);
        chain = enc.chain;
        tree.push(enc.leaf_hash);
        records.push(enc.record);
    }
    let cp = Checkpoint { origin: "robust.example/log".into(), size: n, root: tree.root(), extensions: vec![] };
    (records, signer().sign(&cp.to_string()).unwrap().into_bytes())
}

fn audit(records: &[Vec<u8>], note: &[u8], size: u64) -> Result<(), String> {
    let keys = [signer().verifier()];
    let mut a = Auditor::new(&keys, [(size, note.to_vec())], None).map_err(|e| e.to_string())?;
    for (i, r) in records.iter().enumerate() {
        a.entry(i as u64, r).map_err(|e| e.to_string())?;
    }
    a.finish().map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn the_fixture_log_is_valid() {
    let (records, note) = log(20);
    audit(&records, &note, 20).unwrap();
}

proptest! {
    #[test]
    fn parsers_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = Note::parse(&bytes);
        let _ = EntryRef::decode(&bytes);
        let _ = segment_records(&bytes).count();
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = Checkpoint::parse(text);
            let _ = VerifierKey::parse(text);
            let _ = SignerKey::parse(text);
        }
    }

    /// Any change of any byte of any entry or of the checkpoint is found, without a panic.
    #[test]
    fn any_flipped_byte_is_caught(which in 0usize..21, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut records, mut note) = log(20);
        let target = if which == 20 { &mut note } else { &mut records[which] };
        let i = at.index(target.len());
        target[i] ^= 1 << bit;
        prop_assert!(audit(&records, &note, 20).is_err());
    }

    /// Random garbage in place of entries is an error, not a panic.
    #[test]
    fn garbage_entries_are_errors(garbage in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 1..5)) {
        let (_, note) = log(3);
        prop_assert!(audit(&garbage, &note, 3).is_err());
    }

    /// Segments round-trip, and truncated segments are reported, not read past.
    #[test]
    fn segments_round_trip(records in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..10), cut in 1usize..8) {
        let seg = encode_segment(&records);
        let back: Vec<Vec<u8>> = segment_records(&seg).map(|r| r.unwrap().to_vec()).collect();
        prop_assert_eq!(&back, &records);
        // A cut inside a record is reported; a cut at a record boundary leaves a shorter valid
        // segment, which the audit catches as missing entries.
        let mut boundaries = vec![0usize];
        for r in &records {
            boundaries.push(boundaries.last().unwrap() + 4 + r.len());
        }
        if seg.len() > cut && !boundaries.contains(&(seg.len() - cut)) {
            let short = &seg[..seg.len() - cut];
            prop_assert!(segment_records(short).any(|r| r.is_err()));
        }
    }
}
