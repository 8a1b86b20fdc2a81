//! Tampering with a stopped store of 10,000 entries: every kind of change is caught by
//! `evidence-verify`, each with its own message naming the entry or checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{copy_dir, stdout, verify_store};
use evidence_ingest::{Batch, Origin, Record, Sink, Verdict};
use evidence_ledger::store::WriteBatch;
use evidence_ledger::{CheckpointPolicy, Log, SledStorage, Storage};
use evidence_schemas::sample::sample_event;
use evidence_schemas::Validator;
use evidence_verifier::entry::{encode, event_digest, EntryRef};
use evidence_verifier::layout::{
    checkpoint_key, encode_segment, key_number, segment_key, segment_records, unpack_segment, ENTRIES_FILE,
    FRAME_HEADER, LOG_DIR,
};
use evidence_verifier::merkle::RootBuilder;
use evidence_verifier::note::Note;
use evidence_verifier::store::Frames;
use evidence_verifier::{Checkpoint, SignerKey};

const ORIGIN: &str = "tamper.example/ledger";

fn signer() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [9u8; 32]).unwrap()
}

fn mallory() -> SignerKey {
    SignerKey::from_seed(ORIGIN, [66u8; 32]).unwrap()
}

fn append(dir: &Path, range: std::ops::Range<u64>, variant: &str) {
    let v = Validator::default();
    let policy = CheckpointPolicy { every_entries: 2500, interval: Duration::from_secs(3600) };
    let mut log = Log::open(SledStorage::open(&dir.join(LOG_DIR)).unwrap(), vec![signer()], policy).unwrap();
    let ids: Vec<u64> = range.collect();
    for chunk in ids.chunks(1000) {
        let records = chunk
            .iter()
            .map(|i| {
                let raw = sample_event(*i).replace("evt-", variant);
                Record {
                    origin: Origin::File { path: "events.ndjson".into(), line: i + 1 },
                    verdict: Verdict::Valid(Box::new(v.validate(raw.as_bytes()).unwrap())),
                }
            })
            .collect();
        log.append(&Batch { records, positions: vec![] }).unwrap();
    }
    log.checkpoint_now().unwrap();
}

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    /// The store after 5,000 entries (a snapshot taken then).
    at_5000: PathBuf,
    /// The full store of 10,000 entries.
    full: PathBuf,
    key: String,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let full = root.join("full");
        append(&full, 0..5000, "evt-");
        let at_5000 = root.join("at-5000");
        copy_dir(&full, &at_5000);
        append(&full, 5000..10_000, "evt-");
        Fixture { _tmp: tmp, root, at_5000, full, key: signer().verifier().to_string() }
    }

    /// A copy of the full store, changed by `edit` through its storage: what an attacker with
    /// write access to the store can do without breaking the store itself.
    fn tampered(&self, name: &str, edit: impl FnOnce(&SledStorage)) -> PathBuf {
        let dir = self.root.join(name);
        copy_dir(&self.full, &dir);
        let db = SledStorage::open(&dir.join(LOG_DIR)).unwrap();
        edit(&db);
        dir
    }

    fn checkpoint_file(&self, store: &Path, size: u64, name: &str) -> PathBuf {
        let db = SledStorage::open(&store.join(LOG_DIR)).unwrap();
        let note = db.get(&checkpoint_key(size)).unwrap().expect("checkpoint exists");
        let path = self.root.join(name);
        std::fs::write(&path, note).unwrap();
        path
    }
}

/// Runs the verifier on `dir` and checks it fails with a message containing `expected`.
fn caught(dir: &Path, key: &str, trusted: Option<&Path>, expected: &str) {
    let out = verify_store(dir, key, trusted);
    let text = stdout(&out);
    println!("{}: {}", dir.file_name().unwrap().to_string_lossy(), text.trim());
    assert_eq!(out.status.code(), Some(1), "{text}{}", common::stderr(&out));
    assert!(text.starts_with("FAILED: ") && text.contains(expected), "expected {expected:?} in {text:?}");
}

/// Sets `key` to `value` in the store, or removes it.
fn put(db: &SledStorage, key: &[u8], value: Option<&[u8]>) {
    let mut wb = WriteBatch::default();
    match value {
        Some(v) => wb.put(key, v),
        None => wb.delete(key),
    }
    db.commit(wb).unwrap();
}

/// The segment holding entry `seq`: its first sequence number and its records.
fn segment_of(db: &SledStorage, seq: u64) -> (u64, Vec<Vec<u8>>) {
    let (k, v) = db.last_in(&segment_key(0), &segment_key(seq + 1)).unwrap().unwrap();
    let records = segment_records(&unpack_segment(&v).unwrap()).map(|r| r.unwrap().to_vec()).collect();
    (key_number(&k).unwrap(), records)
}

fn get(db: &SledStorage, seq: u64) -> Vec<u8> {
    let (first, records) = segment_of(db, seq);
    records[(seq - first) as usize].clone()
}

/// Rewrites the segment holding `seq` with `edit` applied to its records.
fn edit_segment(db: &SledStorage, seq: u64, edit: impl FnOnce(&mut Vec<Vec<u8>>, usize)) {
    let (first, mut records) = segment_of(db, seq);
    edit(&mut records, (seq - first) as usize);
    put(db, &segment_key(first), Some(&encode_segment(&records)));
}

/// Removes every entry from `seq` on.
fn truncate(db: &SledStorage, seq: u64) {
    edit_segment(db, seq, |records, at| records.truncate(at));
    let later: Vec<_> = db.range(&segment_key(seq + 1), &segment_key(u64::MAX)).map(|item| item.unwrap().0).collect();
    for key in later {
        put(db, &key, None);
    }
}

#[test]
fn every_tampering_is_caught_with_its_own_message() {
    let f = Fixture::new();
    let key = f.key.clone();

    // Untouched, the store verifies.
    let out = verify_store(&f.full, &key, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("entries:          10000"), "{}", stdout(&out));

    // 1. A flipped byte in an event.
    let dir = f.tampered("flipped-event-byte", |db| {
        edit_segment(db, 1234, |records, at| {
            let n = records[at].len();
            records[at][n - 20] ^= 0x01;
        });
    });
    caught(&dir, &key, None, "entry 1234: its event digest does not match its event bytes");

    // 2. A changed chain hash.
    let dir = f.tampered("changed-chain-hash", |db| {
        edit_segment(db, 4321, |records, at| records[at][40] ^= 0x80);
    });
    caught(&dir, &key, None, "entry 4321: its chain hash does not follow from entry 4320");

    // 3. A deleted entry.
    let dir = f.tampered("deleted-entry", |db| {
        edit_segment(db, 777, |records, at| {
            records.remove(at);
        });
    });
    caught(&dir, &key, None, "entry 777 is missing: the next entry stored is entry 778");

    // 4. Two entries swapped.
    let dir = f.tampered("swapped-entries", |db| {
        edit_segment(db, 3000, |records, at| records.swap(at, at + 1));
    });
    caught(&dir, &key, None, "entry 3000: it holds entry 3001, and entry 3000 follows it: entries reordered");

    // 5. An inserted entry, by an attacker who renumbers everything after it and recomputes
    // every digest and chain hash: only the signed Merkle roots give it away.
    let dir = f.tampered("inserted-entry", |db| {
        let mut chain = *EntryRef::decode(&get(db, 5999)).unwrap().chain;
        let forged = sample_event(5_000_000).replace("evt-", "forged-");
        let mut records = vec![(forged.into_bytes(), "file:forged#1".to_string(), 0i64)];
        for seq in 6000..10_000 {
            let rec = get(db, seq);
            let e = EntryRef::decode(&rec).unwrap();
            records.push((e.event.to_vec(), e.origin.to_string(), e.received_micros));
        }
        let mut rewritten = Vec::new();
        for (offset, (event, origin, received)) in records.into_iter().enumerate() {
            let enc = encode(6000 + offset as u64, received, &origin, &event, &event_digest(&event), &chain);
            chain = enc.chain;
            rewritten.push(enc.record);
        }
        truncate(db, 6000);
        put(db, &segment_key(6000), Some(&encode_segment(&rewritten)));
    });
    caught(&dir, &key, None, "checkpoint at size 8000: its root");
    caught(&dir, &key, None, "does not match the root");

    // 6. The log truncated to 8,000 entries and its checkpoint re-signed by another key.
    let dir = f.tampered("truncated-resigned", |db| {
        truncate(db, 8000);
        let later: Vec<_> = db.range(&checkpoint_key(5001), &checkpoint_key(u64::MAX)).map(|i| i.unwrap().0).collect();
        for k in later {
            put(db, &k, None);
        }
        let mut tree = RootBuilder::new();
        for seq in 0..8000 {
            tree.push(EntryRef::decode(&get(db, seq)).unwrap().leaf_hash());
        }
        let cp = Checkpoint { origin: ORIGIN.into(), size: 8000, root: tree.root(), extensions: vec![] };
        put(db, &checkpoint_key(8000), Some(mallory().sign(&cp.to_string()).unwrap().as_bytes()));
    });
    caught(
        &dir,
        &key,
        None,
        "checkpoint at size 8000: not signed by any trusted key (signed by: tamper.example/ledger+",
    );

    // 6b. Truncated without touching the checkpoints.
    let dir = f.tampered("truncated", |db| {
        truncate(db, 9000);
    });
    caught(
        &dir,
        &key,
        None,
        "checkpoint at size 10000 covers more entries than the log holds (9000): the log was truncated",
    );

    // 7. A checkpoint with a wrong root, validly signed (a faulty or coerced signer).
    let dir = f.tampered("wrong-root", |db| {
        let cp = Checkpoint { origin: ORIGIN.into(), size: 5000, root: [7u8; 32], extensions: vec![] };
        put(db, &checkpoint_key(5000), Some(signer().sign(&cp.to_string()).unwrap().as_bytes()));
    });
    caught(
        &dir,
        &key,
        None,
        "checkpoint at size 5000: its root BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc= does not match the root",
    );

    // 7b. A checkpoint whose root was edited after signing.
    let dir = f.tampered("edited-checkpoint", |db| {
        let note = db.get(&checkpoint_key(5000)).unwrap().unwrap().to_vec();
        let mut note = Note::parse(&note).unwrap();
        let mut cp = Checkpoint::parse(&note.text).unwrap();
        cp.root[0] ^= 1;
        note.text = cp.to_string();
        put(db, &checkpoint_key(5000), Some(note.to_string().as_bytes()));
    });
    caught(&dir, &key, None, "checkpoint at size 5000: the signature by tamper.example/ledger+");

    // 8. A store rolled back behind a checkpoint the auditor saved: the snapshot at 5,000
    // verifies on its own, but not against the trusted checkpoint at 10,000.
    let trusted_10000 = f.checkpoint_file(&f.full, 10_000, "trusted-10000.note");
    assert_eq!(verify_store(&f.at_5000, &key, None).status.code(), Some(0));
    caught(
        &f.at_5000,
        &key,
        Some(&trusted_10000),
        "the log holds 5000 entries, fewer than the 10000 of the trusted checkpoint: it was rolled back",
    );

    // 9. A fork: a second store shares the first 5,000 entries, then diverges; it is
    // internally consistent and signed by the real key, and only the trusted checkpoint
    // from the first store shows it is not the same log.
    let fork = f.root.join("fork");
    copy_dir(&f.at_5000, &fork);
    append(&fork, 5000..10_000, "alt-");
    assert_eq!(verify_store(&fork, &key, None).status.code(), Some(0));
    caught(
        &fork,
        &key,
        Some(&trusted_10000),
        "the log is not an extension of the trusted checkpoint: at size 10000 its root is",
    );
    // ... while both agree at the common checkpoint.
    let trusted_5000 = f.checkpoint_file(&f.full, 5000, "trusted-5000.note");
    let out = verify_store(&fork, &key, Some(&trusted_5000));
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("extends the trusted checkpoint at size 5000"));

    // A wrong verifier key is not "intact".
    let out = verify_store(&f.full, &mallory().verifier().to_string(), None);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn unreadable_input_is_an_error_not_a_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let out = verify_store(tmp.path(), &signer().verifier().to_string(), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("is not a ledger data directory"), "{}", common::stderr(&out));
    let out = verify_store(tmp.path(), "not-a-key", None);
    assert_eq!(out.status.code(), Some(2));
}

/// Hardening item 6: a damaged log stops appends, with a sentence naming the first bad entry,
/// as soon as any read meets the damage (and on open, for the tail it appends after); reads of
/// sound entries go on.
#[test]
fn a_damaged_entry_stops_appends_and_sound_reads_go_on() {
    use std::os::unix::fs::OpenOptionsExt as _;
    let f = Fixture::new();
    let key_file = f.root.join("signer.key");
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&key_file).unwrap();
    std::io::Write::write_all(&mut file, signer().to_key_string().as_bytes()).unwrap();
    let flip = |db: &SledStorage, seq: u64| {
        edit_segment(db, seq, |records, at| {
            let n = records[at].len();
            records[at][n - 20] ^= 0x01;
        })
    };
    let events = f.root.join("more.ndjson");
    std::fs::write(&events, (20_000..20_010).map(sample_event).collect::<Vec<_>>().join("\n")).unwrap();
    let evidence = |dir: &Path, args: &[&str]| {
        common::evidence().arg("--data-dir").arg(dir).arg("--signer-key").arg(&key_file).args(args).output().unwrap()
    };

    // Damage in the middle, under a signed checkpoint: nothing has read it yet.
    let dir = f.tampered("flipped-middle", |db| flip(db, 1234));
    let log =
        Log::open(SledStorage::open(&dir.join(LOG_DIR)).unwrap(), vec![signer()], CheckpointPolicy::default()).unwrap();
    assert!(log.damage().is_none());
    // A read meets it: the bad entry is named, the sound ones around it are read.
    let (mut sound, mut bad) = (0, Vec::new());
    for item in log.entries(0) {
        match item {
            Ok(_) => sound += 1,
            Err(e) => bad.push(e.to_string()),
        }
    }
    assert_eq!((sound, bad.len()), (9999, 1), "{bad:?}");
    assert_eq!(bad[0], "entry 1234 is damaged: its event bytes do not match their digest");
    // A scan that picks some entries (a re-judgement's) checks each it picks: the damaged one
    // is named when picked, and passed over, unread, when not.
    let scan = |keep: fn(&evidence_verifier::entry::EntryRef<'_>) -> bool| {
        let items: Vec<_> = log.entries_where(0, keep).collect();
        let bad: Vec<String> = items.iter().filter_map(|r| r.as_ref().err()).map(|e| e.to_string()).collect();
        (items.len() - bad.len(), bad)
    };
    assert_eq!(scan(|e| e.seq % 2 == 0), (4999, vec![bad[0].clone()]));
    assert_eq!(scan(|e| e.seq % 2 == 1), (5000, Vec::new()));
    assert!(log.inclusion_proof(5, None).is_ok(), "proofs of sound entries still work");
    drop(log);
    // From then on, in every process: appends refused with the entry named; reads go on.
    let out = evidence(&dir, &["ingest", "--file", events.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("appends are stopped: entry 1234 is damaged (its event bytes do not match their digest)"),
        "{err}"
    );
    let status = evidence(&dir, &["status", "--json"]);
    let s: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["entries"].as_u64(), Some(10_000));
    assert_eq!(s["damaged"], "entry 1234: its event bytes do not match their digest");
    assert!(evidence(&dir, &["proof", "--seq", "9000"]).status.success());
    // Rebuilding the views skips the entry with an alert of its own and goes on.
    let out = evidence(&dir, &["rebuild"]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    let alerts = evidence(&dir, &["alerts", "--rule", "ledger.unprojectable"]);
    assert!(
        stdout(&alerts).contains("Entry 1234 is in the log but the views could not apply it"),
        "{}",
        stdout(&alerts)
    );

    // Damage in the tail the log would append after: refused as soon as the store opens.
    let dir = f.tampered("flipped-tail", |db| flip(db, 9999));
    let out = evidence(&dir, &["ingest", "--file", events.to_str().unwrap()]);
    assert!(common::stderr(&out).contains("appends are stopped: entry 9999 is damaged"), "{}", common::stderr(&out));
    assert_eq!(evidence(&dir, &["status", "--json"]).status.code(), Some(0));

    // Repaired (the damaged bytes put back), the store appends again.
    let db = SledStorage::open(&dir.join(LOG_DIR)).unwrap();
    flip(&db, 9999);
    drop(db);
    let out = evidence(&dir, &["ingest", "--file", events.to_str().unwrap()]);
    assert!(out.status.success(), "{}", common::stderr(&out));
}

/// The frames of a store's entries file: each one's key, and where its value starts and ends.
fn frames(dir: &Path) -> Vec<(Vec<u8>, usize, usize)> {
    let bytes = std::fs::read(dir.join(LOG_DIR).join(ENTRIES_FILE)).unwrap();
    let mut frames = Frames::new(&bytes[..]).unwrap();
    let mut out = Vec::new();
    while let Some(frame) = frames.next_frame().unwrap() {
        let (start, len) = frame.value.map_or((frames.end(), 0), |(at, len)| (at, len));
        out.push((frame.key, start as usize, (start + u64::from(len)) as usize));
    }
    out
}

/// Edits a copy of the full store's entries file in place, as bytes.
fn edit_file(f: &Fixture, name: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let dir = f.root.join(name);
    copy_dir(&f.full, &dir);
    let path = dir.join(LOG_DIR).join(ENTRIES_FILE);
    let mut bytes = std::fs::read(&path).unwrap();
    edit(&mut bytes);
    std::fs::write(&path, bytes).unwrap();
    dir
}

#[test]
fn segments_are_stored_compressed_in_the_entries_file_and_a_store_from_before_it_still_verifies_and_grows() {
    let f = Fixture::new();
    let key = f.key.clone();
    // Every segment the ledger wrote is one zstd frame, several times smaller than its records,
    // in the entries file, where the verifier reads it; sled holds only its place.
    let store = SledStorage::open(&f.full.join(LOG_DIR)).unwrap();
    let (mut packed, mut plain) = (0usize, 0usize);
    let mut values = Vec::new();
    for item in store.range(b"c", b"f") {
        let (k, value) = item.unwrap();
        if k.len() != 9 || (k[0] != b'c' && k[0] != b'e') {
            continue;
        }
        if k[0] == b'e' {
            assert!(value.starts_with(&evidence_verifier::layout::ZSTD_MAGIC), "a segment is stored compressed");
            packed += value.len();
            plain += unpack_segment(&value).unwrap().len();
        }
        values.push((k.to_vec(), value.to_vec()));
    }
    drop(store);
    println!("segments: {plain} bytes of records stored in {packed}");
    assert!(plain > 3 * packed, "segments compress: {plain} bytes of records in {packed}");
    let in_file: Vec<_> = frames(&f.full).into_iter().filter(|(k, _, _)| k[0] != b'n').collect();
    assert_eq!(in_file.len(), values.len(), "every segment and checkpoint has one frame");
    let tiles = frames(&f.full).into_iter().filter(|(k, _, end)| k[0] == b'n' && *end > 0).count();
    let full_tiles: u64 = (0..14).map(|level| (10_000u64 >> level) / 64).sum();
    assert_eq!(tiles as u64, full_tiles, "every full Merkle tile, of every level, is in the file too");

    // A store written before the entries file, and before segments were compressed: every
    // segment plain, in sled. It verifies (from a copy of the database); the ledger moves its
    // values into an entries file when it opens it, and appends.
    let dir = f.root.join("before-the-file");
    copy_dir(&f.full, &dir);
    std::fs::remove_file(dir.join(LOG_DIR).join(ENTRIES_FILE)).unwrap();
    let db = sled::open(dir.join(LOG_DIR)).unwrap();
    let placed = db.get(segment_key(0)).unwrap().unwrap();
    assert!(placed.len() < 16 && placed[0] == 0xFF, "sled holds a segment's place, not the segment");
    for (k, v) in &values {
        let v = if k[0] == b'e' {
            let records: Vec<Vec<u8>> =
                segment_records(&unpack_segment(v).unwrap()).map(|r| r.unwrap().to_vec()).collect();
            encode_segment(&records)
        } else {
            v.clone()
        };
        db.insert(k, v).unwrap();
    }
    db.remove(b"mentriesend").unwrap();
    db.flush().unwrap();
    drop(db);
    let out = verify_store(&dir, &key, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    append(&dir, 10_000..11_000, "evt-");
    assert!(dir.join(LOG_DIR).join(ENTRIES_FILE).is_file(), "the open wrote the entries file");
    let entries_and_checkpoints = frames(&dir).into_iter().filter(|(k, _, _)| k[0] != b'n').count();
    assert_eq!(
        entries_and_checkpoints,
        values.len() + 32 + 1,
        "the old values, 1,000 entries in 32 segments, a checkpoint"
    );
    let out = verify_store(&dir, &key, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("entries:          11000"), "{}", stdout(&out));

    // A compressed segment cut short, or claiming more than a segment can hold, is named.
    let dir = f.tampered("cut-frame", |db| {
        let (k, v) = db.last_in(&segment_key(0), &segment_key(2001)).unwrap().unwrap();
        put(db, &k, Some(&v[..v.len() - 7]));
    });
    caught(&dir, &key, None, "cannot be read: compressed segment cannot be decompressed");
    let dir = f.tampered("huge-frame", |db| {
        let (k, _) = db.last_in(&segment_key(0), &segment_key(2001)).unwrap().unwrap();
        // A frame header (single segment, an 8-byte content size of 2^40) and an empty last block.
        let mut frame = evidence_verifier::layout::ZSTD_MAGIC.to_vec();
        frame.push(0xE0);
        frame.extend_from_slice(&(1u64 << 40).to_le_bytes());
        frame.extend_from_slice(&[0x01, 0x00, 0x00]);
        put(db, &k, Some(&frame));
    });
    caught(&dir, &key, None, "more than a segment can hold");
}

/// The verifier reads the entries file as it is: no copy of the store (it needs no temporary
/// space at all), edits of the file's bytes are caught, and the end of a write a crash cut
/// short is neither a finding nor kept.
#[test]
fn the_entries_file_is_audited_in_place() {
    let f = Fixture::new();
    let key = f.key.clone();
    let no_space = f.root.join("no-such-dir");
    let out = Command::new(common::evidence_verify())
        .env("TMPDIR", &no_space)
        .arg("store")
        .arg(&f.full)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), common::stderr(&out));
    assert!(stdout(&out).contains("entries:          10000"), "{}", stdout(&out));

    // A byte of a stored segment changed in the file.
    let segment = frames(&f.full)
        .into_iter()
        .filter(|(k, _, _)| k[0] == b'e' && key_number(k) <= Some(1234))
        .max_by_key(|(k, _, _)| key_number(k))
        .unwrap();
    // The first byte from the 20th on whose change changes what the segment holds: a flipped
    // bit the decompressor never reads (a padding bit, an unused table weight) leaves the
    // ledger intact, and the verifier rightly says so (one run in about ten, with the received
    // times the entries differ by).
    let stored = std::fs::read(f.full.join(LOG_DIR).join(ENTRIES_FILE)).unwrap()[segment.1..segment.2].to_vec();
    let held = unpack_segment(&stored).unwrap().into_owned();
    let at = (20..stored.len())
        .find(|&at| {
            let mut flipped = stored.clone();
            flipped[at] ^= 0x40;
            unpack_segment(&flipped).map_or(true, |changed| *changed != held[..])
        })
        .expect("some byte of a segment changes it");
    let dir = edit_file(&f, "flipped-file-byte", |bytes| bytes[segment.1 + at] ^= 0x40);
    caught(&dir, &key, None, "entry 12");

    // A frame's key changed into no key the ledger writes.
    let dir = edit_file(&f, "bad-frame-key", |bytes| bytes[segment.1 - FRAME_HEADER + 1] = b'x');
    caught(&dir, &key, None, &format!("the entries file is malformed at byte {}", segment.1 - FRAME_HEADER));

    // Half a frame at the end: a write a crash interrupted. The store verifies as it was, and
    // the next open cuts it off and appends after it.
    let dir = edit_file(&f, "torn-tail", |bytes| {
        let mut frame = Vec::new();
        evidence_verifier::layout::push_frame(&mut frame, &segment_key(10_000), Some(&[7u8; 3000]));
        bytes.extend_from_slice(&frame[..1500]);
    });
    let out = verify_store(&dir, &key, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("entries:          10000"), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("torn write:       the last 1500 bytes of the entries file are not a whole frame"),
        "{}",
        stdout(&out)
    );
    append(&dir, 10_000..10_100, "evt-");
    let out = verify_store(&dir, &key, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("entries:          10100"), "{}", stdout(&out));
    assert!(!stdout(&out).contains("torn write"), "the open cut it off: {}", stdout(&out));
}

/// A batch appended unsettled (`evidence ingest`) is read back and checked after the flush
/// that settles it, and a checkpoint then reads back only what no flush checked: damage that
/// reached the store before that read is found there, stops appends, and is never signed.
#[test]
fn damage_to_an_unsettled_batch_is_found_when_it_settles_and_never_signed() {
    let tmp = tempfile::tempdir().unwrap();
    let v = Validator::default();
    let policy = CheckpointPolicy { every_entries: 1_000_000, interval: Duration::from_secs(3600) };
    let mut log = Log::open(SledStorage::open(&tmp.path().join(LOG_DIR)).unwrap(), vec![signer()], policy).unwrap();
    let batch = |range: std::ops::Range<u64>| Batch {
        records: range
            .map(|i| Record {
                origin: Origin::File { path: "events.ndjson".into(), line: i + 1 },
                verdict: Verdict::Valid(Box::new(v.validate(sample_event(i).as_bytes()).unwrap())),
            })
            .collect(),
        positions: vec![],
    };
    log.append_unsettled(&batch(0..100)).unwrap();
    log.settle().unwrap();
    log.append_unsettled(&batch(100..200)).unwrap();
    // Entry 150 is damaged in the store before its flush reads it back.
    edit_segment(log.store(), 150, |records, at| {
        let n = records[at].len();
        records[at][n - 20] ^= 0x01;
    });
    log.settle().unwrap();
    assert!(log.damage().is_none(), "the batch holding it is still being flushed");
    log.settle_all().unwrap();
    assert_eq!(log.damage().map(|(seq, _)| *seq), Some(150), "{:?}", log.damage());
    assert!(log.checkpoint_now().is_err(), "a checkpoint over entry 150 must not be signed");
    assert_eq!(log.checkpoints().count(), 0);
    let err = log.append_unsettled(&batch(200..210)).unwrap_err().to_string();
    assert!(err.contains("appends are stopped: entry 150 is damaged"), "{err}");
}
