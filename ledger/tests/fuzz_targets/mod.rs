//! The bodies of the fuzz targets, shared by the stable, time-bounded run in CI
//! (`ledger/tests/fuzz.rs`) and the coverage-guided cargo-fuzz targets (`ledger/fuzz/`). Each
//! takes arbitrary bytes and must not panic; where a parser accepts its input, the body also
//! checks what must then hold (a round trip, an independent count).
#![allow(dead_code, unreachable_pub)]

use std::sync::OnceLock;

use evidence_ingest::file::{ingest_lines, LineSource};
use evidence_ingest::{Batch, BatchReport, Intake, Outcome, Sink, Verdict};
use evidence_schemas::{parse_validated, Validator};
use evidence_verifier::entry::EntryRef;
use evidence_verifier::layout::{segment_records, unpack_segment, CHECKPOINT, ENTRY};
use evidence_verifier::note::{Note, SignerKey, VerifierKey};
use evidence_verifier::Checkpoint;

fn validator() -> &'static Validator {
    static V: OnceLock<Validator> = OnceLock::new();
    V.get_or_init(Validator::default)
}

/// The signer of the store target's seeds: the fuzzer starts from a log that audits clean.
pub fn store_signer() -> SignerKey {
    SignerKey::from_seed("fuzz.example/log", [5u8; 32]).unwrap()
}

/// The validator: any bytes as one event. An accepted event's canonical bytes are accepted
/// again with the same digest, and read back (as the views read them) to the same event.
pub fn validator_target(data: &[u8]) {
    let Ok(valid) = validator().validate(data) else { return };
    let again = validator().validate(&valid.canonical).expect("canonical bytes of an accepted event are accepted");
    assert_eq!(again.canonical, valid.canonical, "canonical form is stable");
    assert_eq!(again.digest, valid.digest);
    let read = parse_validated(&valid.canonical).expect("an accepted event reads back from its canonical bytes");
    assert_eq!(read, *valid.event);
}

/// Accepts every valid record, quarantines every rejected one.
#[derive(Default)]
struct CountingSink {
    accepted: u64,
    quarantined: u64,
}

impl Sink for CountingSink {
    type Error = std::convert::Infallible;
    fn append(&mut self, batch: &Batch) -> Result<BatchReport, Self::Error> {
        let outcomes = batch
            .records
            .iter()
            .map(|r| match &r.verdict {
                Verdict::Valid(_) => {
                    self.accepted += 1;
                    Outcome::Accepted { seq: self.accepted - 1 }
                }
                Verdict::Rejected { rejection, .. } => {
                    self.quarantined += 1;
                    Outcome::Quarantined { reason: rejection.to_string() }
                }
            })
            .collect();
        Ok(BatchReport { outcomes })
    }
}

/// The NDJSON reader: any bytes as a file (the first byte picks the line size limit). Every
/// line that is not blank becomes exactly one record, counted independently here.
pub fn ndjson_target(data: &[u8]) {
    let Some((&pick, body)) = data.split_first() else { return };
    let cap = [8usize, 64, 4096, 256 * 1024][pick as usize % 4];
    let mut lines: Vec<&[u8]> = body.split(|b| *b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    let expected = lines
        .iter()
        .filter(|l| {
            let l = if l.len() <= cap { l.strip_suffix(b"\r").unwrap_or(l) } else { l };
            l.len() > cap || !l.iter().all(u8::is_ascii_whitespace)
        })
        .count() as u64;
    let mut intake = Intake::new(validator(), 7);
    let mut sink = CountingSink::default();
    let mut reported = 0u64;
    let reader = std::io::BufReader::with_capacity(16, body);
    ingest_lines(reader, &LineSource::Stdin, &mut intake, &mut sink, cap, |_, _| reported += 1).unwrap();
    assert_eq!(reported, expected, "one record per non-blank line");
    assert_eq!(sink.accepted + sink.quarantined, expected);
}

/// The verifier's entry parser and segment framing: any bytes as a record and as a segment.
pub fn entry_target(data: &[u8]) {
    if let Ok(e) = EntryRef::decode(data) {
        assert_eq!(e.leaf, &data[65..]);
        assert_eq!(e.leaf.len(), 18 + e.origin.len() + e.event.len());
        assert_eq!(e.seq.to_be_bytes(), e.leaf[..8]);
        let _ = e.leaf_hash();
    }
    // A stored value that claims to be compressed decompresses into something framed as
    // records or is refused, without a panic and within its stated size.
    if let Ok(std::borrow::Cow::Owned(plain)) = unpack_segment(data) {
        assert!(plain.len() as u64 <= evidence_verifier::layout::MAX_SEGMENT_BYTES);
        segment_records(&plain).for_each(drop);
    }
    let mut framed = 0usize;
    for record in segment_records(data) {
        match record {
            Ok(r) => framed += 4 + r.len(),
            Err(e) => {
                assert_eq!(e.offset, framed, "the error is where framing stopped");
                return;
            }
        }
    }
    assert_eq!(framed, data.len(), "a segment that frames is all records");
}

/// The verifier's signed-note, checkpoint and key parsers: any bytes. What parses prints back
/// to something that parses the same.
pub fn note_target(data: &[u8]) {
    if let Ok(note) = Note::parse(data) {
        let again = Note::parse(note.to_string().as_bytes()).expect("a parsed note prints back parseable");
        assert_eq!(again, note);
        let _ = note.verify(&[store_signer().verifier()]);
        if let Ok(cp) = Checkpoint::parse(&note.text) {
            assert_eq!(Checkpoint::parse(&cp.to_string()).expect("a checkpoint prints back parseable"), cp);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(Checkpoint::parse(&cp.to_string()).expect("a checkpoint prints back parseable"), cp);
        }
        let _ = VerifierKey::parse(text);
        let _ = SignerKey::parse(text);
    }
}

/// Encodes store records for [`store_target`]: per record a kind byte (even: checkpoint,
/// odd: segment), the key's number (u64 BE), the value's length (u16 BE) and the value.
pub fn encode_store(checkpoints: &[(u64, Vec<u8>)], segments: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (kind, records) in [(0u8, checkpoints), (1u8, segments)] {
        for (number, value) in records {
            out.push(kind);
            out.extend_from_slice(&number.to_be_bytes());
            out.extend_from_slice(&(value.len().min(u16::MAX as usize) as u16).to_be_bytes());
            out.extend_from_slice(&value[..value.len().min(u16::MAX as usize)]);
        }
    }
    out
}

/// The verifier's store adapter (`evidence_verifier::store::audit_records`): any bytes as the
/// records of a store under audit (see [`encode_store`]). The audit answers; it never panics.
pub fn store_target(data: &[u8]) {
    let (mut checkpoints, mut segments) = (Vec::new(), Vec::new());
    let mut rest = data;
    while rest.len() >= 11 {
        let kind = rest[0];
        let number: [u8; 8] = rest[1..9].try_into().unwrap();
        let len = (u16::from_be_bytes([rest[9], rest[10]]) as usize).min(rest.len() - 11);
        let value = rest[11..11 + len].to_vec();
        rest = &rest[11 + len..];
        let (prefix, list) =
            if kind.is_multiple_of(2) { (CHECKPOINT, &mut checkpoints) } else { (ENTRY, &mut segments) };
        let mut key = vec![prefix];
        key.extend_from_slice(&number);
        list.push((key, value));
    }
    // The store yields keys in order, each once.
    for list in [&mut checkpoints, &mut segments] {
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list.dedup_by(|a, b| a.0 == b.0);
    }
    let keys = [store_signer().verifier()];
    let _ = evidence_verifier::store::audit_records(
        &keys,
        None,
        checkpoints.into_iter().map(Ok),
        segments.into_iter().map(Ok),
    );
}

/// An entries file (`evidence_verifier::layout::ENTRIES_FILE`) holding `checkpoints` and
/// `segments`, as the ledger writes it.
pub fn encode_entries_file(checkpoints: &[(u64, Vec<u8>)], segments: &[(u64, Vec<u8>)]) -> Vec<u8> {
    use evidence_verifier::layout::{checkpoint_key, push_frame, segment_key, ENTRIES_MAGIC};
    let mut out = ENTRIES_MAGIC.to_vec();
    for (size, note) in checkpoints {
        push_frame(&mut out, &checkpoint_key(*size), Some(note));
    }
    for (first, segment) in segments {
        push_frame(&mut out, &segment_key(*first), Some(segment));
    }
    out
}

/// The verifier's reading of an entries file (`evidence_verifier::store::audit_entries`): any
/// bytes as the file of a store under audit. The audit answers; it never panics.
pub fn entries_file_target(data: &[u8]) {
    let keys = [store_signer().verifier()];
    let _ = evidence_verifier::store::audit_entries(data, &keys, None);
}
