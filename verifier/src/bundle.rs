//! Evidence bundles (`evidence-ledger bundle v1`): what `evidence export` writes for an
//! auditor, and the offline check of one. The writer builds its files with the functions
//! here, so that writer and checker agree by construction. No I/O: the files come in as
//! a map of paths to bytes.
//!
//! | file | what |
//! | --- | --- |
//! | `manifest.json` | the format and the SHA-256 of every other file |
//! | `checkpoint` | the signed checkpoint every proof is against, with any witness cosignatures |
//! | `keys` | the log's verifier keys, one a line (a claim: the auditor brings their own) |
//! | `entries.ndjson` | one entry a line: its sequence number, receive time, origin, event digest, chain hash, and the canonical event bytes verbatim |
//! | `proofs/<seq>.tlog-proof` | the entry's C2SP tlog-proof against `checkpoint` |
//! | `since/checkpoint`, `since/consistency` | with `--since-checkpoint`: the earlier checkpoint and the consistency proof from it (one base64 hash a line) |
//! | `answers.json` | the scope, the answers to the audit questions and the alerts |
//! | `report.html` | the same for a person |
//!
//! Entries that are not in a bundle appear in it only as hashes inside the proofs. An answer
//! or alert cites an entry under any of the keys of [`CITING_KEYS`]; every entry cited must
//! be in the bundle and proven.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::checkpoint::Checkpoint;
use crate::cosignature::WitnessKey;
use crate::entry::{chain_next, encode_unchained, event_digest, EntryRef, GENESIS, LEAF_OFFSET};
use crate::merkle::{leaf_hash, verify_consistency, verify_inclusion, Hash};
use crate::note::{Note, VerifierKey};
use crate::tlog_proof::{hash_line, TlogProof};

/// The format named in every manifest.
pub const FORMAT: &str = "evidence-ledger bundle v1";
/// The manifest's path.
pub const MANIFEST: &str = "manifest.json";
/// The signed checkpoint's path.
pub const CHECKPOINT: &str = "checkpoint";
/// The verifier keys' path.
pub const KEYS: &str = "keys";
/// The entries' path.
pub const ENTRIES: &str = "entries.ndjson";
/// The answers' path.
pub const ANSWERS: &str = "answers.json";
/// The report's path.
pub const REPORT: &str = "report.html";
/// The earlier checkpoint's path.
pub const SINCE_CHECKPOINT: &str = "since/checkpoint";
/// The consistency proof's path.
pub const SINCE_PROOF: &str = "since/consistency";
/// The keys under which answers and alerts name the entries they rest on.
pub const CITING_KEYS: [&str; 8] =
    ["seq", "entries", "first_seq", "last_seq", "opened_by", "resolved_by", "first", "last"];

/// The path of entry `seq`'s proof.
pub fn proof_path(seq: u64) -> String {
    format!("proofs/{seq}.tlog-proof")
}

/// The manifest: the format, and every other file's SHA-256 in hex.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Path to SHA-256.
    pub files: BTreeMap<String, String>,
}

impl Manifest {
    /// An empty manifest of this format.
    pub fn new() -> Self {
        Manifest { format: FORMAT.into(), files: BTreeMap::new() }
    }

    /// Records a file.
    pub fn add(&mut self, path: &str, bytes: &[u8]) {
        self.files.insert(path.to_string(), hex::encode(Sha256::digest(bytes)));
    }

    /// The manifest's own bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).expect("a manifest serializes");
        out.push(b'\n');
        out
    }
}

/// An entry record as its line in `entries.ndjson` (with the newline).
pub fn entry_line(e: &EntryRef<'_>) -> String {
    let seq = e.seq;
    let mut line = String::with_capacity(e.leaf.len() + 200);
    let origin = serde_json::to_string(e.origin).expect("a string serializes");
    // Canonical JSON is UTF-8; were it not, the replaced bytes would fail the digest check.
    let event = String::from_utf8_lossy(e.event);
    let _ = writeln!(
        line,
        "{{\"seq\":{seq},\"received_micros\":{},\"origin\":{origin},\"digest\":\"{}\",\"chain\":\"{}\",\"event\":{event}}}",
        e.received_micros,
        hex::encode(e.digest),
        hex::encode(e.chain),
    );
    line
}

#[derive(Deserialize)]
struct Line<'a> {
    seq: u64,
    received_micros: i64,
    #[serde(borrow)]
    origin: std::borrow::Cow<'a, str>,
    digest: &'a str,
    chain: &'a str,
    #[serde(borrow)]
    event: &'a RawValue,
}

/// Every entry `value` cites: the numbers under [`CITING_KEYS`], at any depth.
pub fn cited(value: &Value, out: &mut BTreeSet<u64>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if CITING_KEYS.contains(&k.as_str()) {
                    match v {
                        Value::Number(n) => out.extend(n.as_u64()),
                        Value::Array(items) => out.extend(items.iter().filter_map(Value::as_u64)),
                        _ => {}
                    }
                }
                cited(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| cited(v, out)),
        _ => {}
    }
}

/// What the auditor brings.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    /// The log's verifier keys: the checkpoint must be signed by one.
    pub keys: Vec<VerifierKey>,
    /// A checkpoint saved earlier, which the bundle's must extend.
    pub trusted_checkpoint: Option<Vec<u8>>,
    /// Witnesses whose cosignatures count.
    pub witnesses: Vec<WitnessKey>,
    /// How many of them must have cosigned.
    pub min_witnesses: usize,
}

/// A bundle that checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Entries proven.
    pub entries: u64,
    /// Answers and alerts checked.
    pub answers: usize,
    /// Alerts among them.
    pub alerts: usize,
    /// Witnesses whose cosignature verified.
    pub witnesses: Vec<String>,
    /// The size of the trusted checkpoint extended, when one was given.
    pub extends: Option<u64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bundle OK: {} entries proven in checkpoint {} of {} entries (root {}); the {} answers and {} alerts cite only them",
            self.entries,
            self.checkpoint.origin,
            self.checkpoint.size,
            self.checkpoint.root_base64(),
            self.answers,
            self.alerts
        )?;
        if !self.witnesses.is_empty() {
            write!(f, "; cosigned by {}", self.witnesses.join(", "))?;
        }
        if let Some(size) = self.extends {
            write!(f, "; extends the trusted checkpoint of {size} entries")?;
        }
        Ok(())
    }
}

/// The first thing wrong with a bundle, in a sentence.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BundleError(pub String);

macro_rules! fail {
    ($($t:tt)*) => { return Err(BundleError(format!($($t)*))) };
}

fn file<'a>(files: &'a BTreeMap<String, Vec<u8>>, path: &str) -> Result<&'a [u8], BundleError> {
    match files.get(path) {
        Some(b) => Ok(b),
        None => fail!("the bundle has no {path}"),
    }
}

/// Checks a bundle's files against what the auditor trusts: the manifest, every event's
/// digest, every inclusion proof against the checkpoint, the checkpoint's signature, the
/// cosignatures asked for, the extension of the trusted checkpoint, and that every entry an
/// answer or alert cites is in the bundle and proven.
///
/// The manifest is checked on a second thread beside the rest; its failure is reported first.
pub fn verify(files: &BTreeMap<String, Vec<u8>>, trust: &Trust) -> Result<Summary, BundleError> {
    std::thread::scope(|s| {
        let manifest = s.spawn(|| check_manifest(files));
        let rest = verify_contents(files, trust);
        manifest.join().unwrap_or_else(|_| Err(BundleError("the manifest check failed".into())))?;
        rest
    })
}

fn verify_contents(files: &BTreeMap<String, Vec<u8>>, trust: &Trust) -> Result<Summary, BundleError> {
    let note_bytes = file(files, CHECKPOINT)?;
    let note = Note::parse(note_bytes).map_err(|e| BundleError(format!("the checkpoint is not a signed note: {e}")))?;
    let checkpoint = Checkpoint::open(note_bytes, &trust.keys, None).map_err(|e| {
        BundleError(format!("the checkpoint is not signed by the verifier key given (or is not a checkpoint): {e}"))
    })?;
    let witnesses = check_witnesses(&note, trust)?;
    let extends = check_since(files, &checkpoint, trust)?;
    let proven = check_entries(files, note_bytes, &checkpoint)?;
    let (answers, alerts) = check_citations(files, &proven)?;
    Ok(Summary { entries: proven.len() as u64, checkpoint, answers, alerts, witnesses, extends })
}

fn check_manifest(files: &BTreeMap<String, Vec<u8>>) -> Result<(), BundleError> {
    let manifest: Manifest = serde_json::from_slice(file(files, MANIFEST)?)
        .map_err(|e| BundleError(format!("{MANIFEST} is not a manifest: {e}")))?;
    if manifest.format != FORMAT {
        fail!("{MANIFEST} names format {:?}, not {FORMAT:?}", manifest.format);
    }
    for (path, bytes) in files.iter().filter(|(p, _)| *p != MANIFEST) {
        let Some(want) = manifest.files.get(path) else { fail!("{path} is in the bundle but not in its manifest") };
        let got = hex::encode(Sha256::digest(bytes));
        if &got != want {
            fail!("{path} does not match the manifest: its SHA-256 is {got}, the manifest says {want}");
        }
    }
    if let Some(path) = manifest.files.keys().find(|p| !files.contains_key(*p)) {
        fail!("{path} is in the manifest but missing from the bundle");
    }
    Ok(())
}

fn check_witnesses(note: &Note, trust: &Trust) -> Result<Vec<String>, BundleError> {
    let mut ok = Vec::new();
    let mut missing = Vec::new();
    for w in &trust.witnesses {
        match w.cosigned(note) {
            Ok(Some(_)) => ok.push(w.name().to_string()),
            Ok(None) => missing.push(format!("{} has not cosigned it", w.name())),
            Err(e) => missing.push(format!("{}'s cosignature does not verify ({e})", w.name())),
        }
    }
    if ok.len() < trust.min_witnesses {
        fail!(
            "the checkpoint has {} of the {} witness cosignatures required: {}",
            ok.len(),
            trust.min_witnesses,
            missing.join("; ")
        );
    }
    Ok(ok)
}

fn check_since(
    files: &BTreeMap<String, Vec<u8>>,
    checkpoint: &Checkpoint,
    trust: &Trust,
) -> Result<Option<u64>, BundleError> {
    let since = match files.get(SINCE_CHECKPOINT) {
        None => None,
        Some(note) => {
            let old = Checkpoint::open(note, &trust.keys, Some(&checkpoint.origin)).map_err(|e| {
                BundleError(format!("{SINCE_CHECKPOINT} is not a checkpoint signed by the key given: {e}"))
            })?;
            let text = std::str::from_utf8(file(files, SINCE_PROOF)?)
                .map_err(|_| BundleError(format!("{SINCE_PROOF} is not text")))?;
            let proof = text
                .lines()
                .map(|l| hash_line(l).ok_or_else(|| BundleError(format!("{SINCE_PROOF}: {l:?} is not a base64 hash"))))
                .collect::<Result<Vec<_>, _>>()?;
            Some((old, proof))
        }
    };
    if let Some((old, proof)) = &since {
        verify_consistency(old.size, checkpoint.size, proof, &old.root, &checkpoint.root).map_err(|e| {
            BundleError(format!(
                "the checkpoint of {} entries does not extend the earlier checkpoint of {} entries in {SINCE_CHECKPOINT}: {e}",
                checkpoint.size, old.size
            ))
        })?;
    }
    let Some(trusted) = &trust.trusted_checkpoint else { return Ok(None) };
    let trusted = Checkpoint::open(trusted, &trust.keys, Some(&checkpoint.origin))
        .map_err(|e| BundleError(format!("the trusted checkpoint is not signed by the key given: {e}")))?;
    let not = |why: String| {
        BundleError(format!(
            "the bundle's checkpoint of {} entries does not extend the trusted checkpoint of {} entries: {why}",
            checkpoint.size, trusted.size
        ))
    };
    if trusted.size > checkpoint.size {
        return Err(not("it is older".into()));
    }
    if trusted.size == checkpoint.size {
        return match trusted.root == checkpoint.root {
            true => Ok(Some(trusted.size)),
            false => Err(not("same size, another root: the log was forked or rewritten".into())),
        };
    }
    match &since {
        Some((old, _)) if old.size == trusted.size && old.root == trusted.root => Ok(Some(trusted.size)),
        Some((old, _)) if old.size == trusted.size => {
            Err(not(format!("{SINCE_CHECKPOINT} has another root at that size: the log was forked or rewritten")))
        }
        _ => Err(not(
            "the bundle holds no consistency proof from that size (export it with --since-checkpoint naming the trusted checkpoint)".into()
        )),
    }
}

/// Checks every entry against its digest and its proof; returns the entries proven.
fn check_entries(
    files: &BTreeMap<String, Vec<u8>>,
    note_bytes: &[u8],
    checkpoint: &Checkpoint,
) -> Result<BTreeSet<u64>, BundleError> {
    let mut proven = BTreeSet::new();
    let mut prev: Option<(u64, Hash)> = None;
    let entries = file(files, ENTRIES)?;
    for (n, line) in entries.split(|&b| b == b'\n').enumerate().filter(|(_, l)| !l.is_empty()) {
        let line: Line<'_> = serde_json::from_slice(line)
            .map_err(|e| BundleError(format!("{ENTRIES} line {}: not an entry: {e}", n + 1)))?;
        let seq = line.seq;
        let event = line.event.get().as_bytes();
        let digest = event_digest(event);
        if hex_hash(line.digest) != Some(digest) {
            fail!("entry {seq}: its event's bytes do not match its digest: the event was changed");
        }
        let record = encode_unchained(seq, line.received_micros, &line.origin, event, &digest);
        let leaf_bytes = &record[LEAF_OFFSET..];
        let leaf = leaf_hash(leaf_bytes);
        // The chain links neighbours: checked wherever the bundle holds the entry before.
        let chain = hex_hash(line.chain)
            .ok_or_else(|| BundleError(format!("entry {seq}: its chain is not 32 bytes of hex")))?;
        let prev_chain = if seq == 0 { Some(GENESIS) } else { prev.filter(|(s, _)| *s + 1 == seq).map(|(_, c)| c) };
        if prev_chain.is_some_and(|p| chain_next(&p, leaf_bytes) != chain) {
            match seq {
                0 => fail!("entry 0: its chain hash is not the first of a chain: the entry was changed"),
                _ => {
                    fail!("entry {seq}: its chain hash does not follow from entry {}'s: an entry was changed", seq - 1)
                }
            }
        }
        prev = Some((seq, chain));
        if !proven.insert(seq) {
            fail!("entry {seq} is in {ENTRIES} twice");
        }
        if seq >= checkpoint.size {
            fail!("entry {seq} is beyond the checkpoint of {} entries", checkpoint.size);
        }
        let path = proof_path(seq);
        let proof =
            TlogProof::parse(file(files, &path).map_err(|_| BundleError(format!("entry {seq} has no proof {path}")))?)
                .map_err(|e| BundleError(format!("{path}: {e}")))?;
        if proof.index != seq {
            fail!("{path} proves entry {}, not {seq}", proof.index);
        }
        if proof.checkpoint != note_bytes {
            let size = Checkpoint::unverified(&proof.checkpoint)
                .ok()
                .map_or("an unreadable checkpoint".to_string(), |c| format!("a checkpoint of {} entries", c.size));
            fail!(
                "{path} is against {size}, not the bundle's checkpoint of {} entries (a proof from another tree)",
                checkpoint.size
            );
        }
        verify_inclusion(seq, checkpoint.size, &leaf, &proof.path, &checkpoint.root).map_err(|e| {
            BundleError(format!(
                "entry {seq} is not in the checkpoint's tree ({path}): {e}: the entry or its proof was changed"
            ))
        })?;
    }
    if let Some(extra) = files
        .keys()
        .filter_map(|p| p.strip_prefix("proofs/")?.strip_suffix(".tlog-proof")?.parse::<u64>().ok())
        .find(|s| !proven.contains(s))
    {
        fail!("{} proves entry {extra}, which {ENTRIES} does not hold", proof_path(extra));
    }
    Ok(proven)
}

fn hex_hash(text: &str) -> Option<Hash> {
    hex::decode(text).ok()?.try_into().ok()
}

fn check_citations(files: &BTreeMap<String, Vec<u8>>, proven: &BTreeSet<u64>) -> Result<(usize, usize), BundleError> {
    let answers: Value = serde_json::from_slice(file(files, ANSWERS)?)
        .map_err(|e| BundleError(format!("{ANSWERS} is not JSON: {e}")))?;
    let list = |key: &str| answers.get(key).and_then(Value::as_array).cloned().unwrap_or_default();
    let (items, alerts) = (list("answers"), list("alerts"));
    let named = items
        .iter()
        .map(|a| (format!("the answer to {}", a.get("question").and_then(Value::as_str).unwrap_or("?")), a))
        .chain(alerts.iter().map(|a| (format!("alert {}", a.get("id").and_then(Value::as_str).unwrap_or("?")), a)));
    for (name, value) in named {
        let mut cites = BTreeSet::new();
        cited(value, &mut cites);
        if let Some(missing) = cites.iter().find(|s| !proven.contains(s)) {
            fail!("{name} cites entry {missing}, which the bundle does not hold");
        }
    }
    Ok((items.len(), alerts.len()))
}

/// The consistency proof file's text.
pub fn consistency_file(proof: &[Hash]) -> String {
    proof
        .iter()
        .map(|h| format!("{}\n", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, h)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::encode;

    #[test]
    fn an_entry_line_holds_the_event_verbatim_and_citations_are_found_at_any_depth() {
        let event = br#"{"a":"\u0000 \"event\":","b":[1,2]}"#;
        let record = encode(7, -5, "file:x\"y#3", event, &event_digest(event), &GENESIS).record;
        let line = entry_line(&EntryRef::decode(&record).unwrap());
        let parsed: Line<'_> = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!((parsed.seq, parsed.received_micros, &*parsed.origin), (7, -5, "file:x\"y#3"));
        assert_eq!(parsed.event.get().as_bytes(), event);
        let answer = serde_json::json!({"x": {"seq": 3, "entries": [4, 5]}, "y": [{"first": 9, "other": 10}]});
        let mut cites = BTreeSet::new();
        cited(&answer, &mut cites);
        assert_eq!(cites.into_iter().collect::<Vec<_>>(), vec![3, 4, 5, 9]);
    }
}
