//! Evidence bundles for auditors (`evidence export`, `GET /v1/export`): the entries of a
//! scope and every entry their answers and alerts cite, each with its C2SP tlog-proof
//! against the latest signed checkpoint, the checkpoint with its witness cosignatures, the
//! verifier keys, the answers as JSON, a report for people and a manifest. The format, and
//! its check, are `evidence_verifier::bundle`'s; this module only gathers and writes.
//!
//! Selective disclosure: a bundle holds the events in scope and those they cite, no other;
//! every other entry is in it only as hashes inside the proofs.
//!
//! Reads only, at a fixed size ([`LogAt`]): an export runs beside the writer. It owns
//! gathering (`scope.rs`), writing a directory or a `.tar.gz` (`out.rs`) and the report
//! (`report.rs`); it never appends, and the checkpoint it exports must already cover every
//! entry it cites (the caller cuts one first).

mod out;
mod report;
mod scope;

use std::collections::BTreeSet;

use evidence_verifier::bundle::{self, Manifest};
use evidence_verifier::checkpoint::Checkpoint;
use evidence_verifier::entry::EntryRef;
use serde_json::json;

pub use self::out::{BundleOut, DirOut, TarGzOut};
use self::report::EventRow;
pub use self::scope::{BadScope, Scope, ScopeParams};
use crate::log::{LogAt, LogError};
use crate::store::Storage;

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The log has no signed checkpoint yet.
    #[error("the log has no signed checkpoint yet: cut one (evidence checkpoint --cut) and export again")]
    NoCheckpoint,
    /// A cited entry is after the latest checkpoint.
    #[error("entry {seq} is after the latest checkpoint ({size} entries): cut a checkpoint and export again")]
    NotCheckpointed {
        /// The entry.
        seq: u64,
        /// The checkpoint's size.
        size: u64,
    },
    /// Nothing matches the scope.
    #[error("{0}")]
    NotFound(String),
    /// The earlier checkpoint is not one of this log's, or this log does not extend it.
    #[error("the checkpoint given with --since-checkpoint: {0}")]
    Since(String),
    /// Reading the log or the views.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Reading the views.
    #[error(transparent)]
    View(#[from] crate::governance::ViewError),
    /// The report could not be rendered.
    #[error("cannot render report.html: {0}")]
    Report(String),
    /// Writing the bundle.
    #[error("cannot write the bundle: {0}")]
    Write(#[from] std::io::Error),
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Exported {
    /// Entries in the bundle.
    pub entries: u64,
    /// The checkpoint's size.
    pub size: u64,
    /// Answers and alerts.
    pub answers: usize,
    /// Alerts.
    pub alerts: usize,
}

/// Options of an export beside its scope.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// The signed checkpoint of an earlier bundle: the bundle carries the consistency proof
    /// from it.
    pub since: Option<String>,
    /// When it was exported, as RFC 3339 (shown in the report).
    pub exported_at: String,
}

/// Writes the bundle of `scope` from `log` to `out`, calling `progress(done, total)` as
/// entries are written.
pub fn export<S: Storage>(
    store: &S,
    log: &LogAt<'_, S>,
    scope: &Scope,
    options: &ExportOptions,
    out: &mut dyn BundleOut,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Exported, ExportError> {
    let note = log.latest_note()?.ok_or(ExportError::NoCheckpoint)?;
    let checkpoint = Checkpoint::unverified(note.as_bytes())
        .map_err(|e| LogError::Damaged(format!("the latest checkpoint does not parse: {e}")))?;
    let gathered = scope.gather(store, log, checkpoint.size)?;
    let mut seqs: BTreeSet<u64> = gathered.in_scope.clone();
    for value in gathered.answers.iter().map(|(_, v)| v).chain(&gathered.alerts) {
        bundle::cited(value, &mut seqs);
    }
    if let Some(&seq) = seqs.range(checkpoint.size..).next() {
        return Err(ExportError::NotCheckpointed { seq, size: checkpoint.size });
    }
    let mut files = Manifested { out, manifest: Manifest::new() };
    files.file(bundle::CHECKPOINT, note.as_bytes())?;
    let keys: Vec<String> = log.verifier_keys()?.iter().map(|k| k.to_string()).collect();
    files.file(bundle::KEYS, keys.iter().map(|k| format!("{k}\n")).collect::<String>().as_bytes())?;
    if let Some(since) = &options.since {
        write_since(&mut files, log, since, checkpoint.size)?;
    }
    let events = write_entries(&mut files, log, &seqs, gathered.records, checkpoint.size, &note, progress)?;
    let answers = json!({
        "format": bundle::FORMAT,
        "scope": scope.describe(),
        "exported_at": options.exported_at,
        "checkpoint": { "origin": checkpoint.origin, "size": checkpoint.size, "root": checkpoint.root_base64() },
        "answers": gathered.answers.iter().map(|(q, a)| json!({ "question": q, "answer": a })).collect::<Vec<_>>(),
        "alerts": gathered.alerts,
    });
    let answers_text = serde_json::to_vec_pretty(&answers).expect("JSON serializes");
    files.file(bundle::ANSWERS, &answers_text)?;
    let report = report::render(&answers, &events, &keys, options.since.is_some())
        .map_err(|e| ExportError::Report(e.to_string()))?;
    files.file(bundle::REPORT, report.as_bytes())?;
    let manifest = files.manifest.encode();
    files.out.file(bundle::MANIFEST, &manifest)?;
    Ok(Exported {
        entries: seqs.len() as u64,
        size: checkpoint.size,
        answers: gathered.answers.len(),
        alerts: gathered.alerts.len(),
    })
}

/// Files written through, each recorded in the manifest.
struct Manifested<'a> {
    out: &'a mut dyn BundleOut,
    manifest: Manifest,
}

impl Manifested<'_> {
    fn file(&mut self, path: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.manifest.add(path, bytes);
        self.out.file(path, bytes)
    }
}

fn write_since<S: Storage>(
    files: &mut Manifested<'_>,
    log: &LogAt<'_, S>,
    since: &str,
    size: u64,
) -> Result<(), ExportError> {
    let proof = match log.extends(since)? {
        crate::log::Extension::Yes { proof } => proof,
        crate::log::Extension::No { reason } => return Err(ExportError::Since(reason)),
    };
    if proof.size2 != size {
        return Err(ExportError::Since(format!(
            "the log's latest checkpoint moved to {} while exporting",
            proof.size2
        )));
    }
    files.file(bundle::SINCE_CHECKPOINT, since.as_bytes())?;
    files.file(bundle::SINCE_PROOF, bundle::consistency_file(&proof.proof).as_bytes())?;
    Ok(())
}

/// Writes `entries.ndjson` and a proof per entry; returns the events for the report.
fn write_entries<S: Storage>(
    files: &mut Manifested<'_>,
    log: &LogAt<'_, S>,
    seqs: &BTreeSet<u64>,
    mut read: std::collections::BTreeMap<u64, Vec<u8>>,
    size: u64,
    note: &str,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<EventRow>, ExportError> {
    let total = seqs.len() as u64;
    let mut lines = String::new();
    let mut rows = Vec::with_capacity(seqs.len());
    let mut paths = log.inclusion_paths(size)?;
    let unread: BTreeSet<u64> = seqs.iter().filter(|s| !read.contains_key(s)).copied().collect();
    let mut reading = log.records(&unread);
    for (done, &seq) in seqs.iter().enumerate() {
        let record = match read.remove(&seq) {
            Some(record) => record,
            None => match reading.next() {
                Some((s, record)) if s == seq => record?,
                _ => return Err(LogError::Damaged(format!("entry {seq} could not be read")).into()),
            },
        };
        let entry = EntryRef::decode(&record).map_err(|e| LogError::BadEntry { seq, problem: e.to_string() })?;
        lines.push_str(&bundle::entry_line(&entry));
        let proof = evidence_verifier::tlog_proof::TlogProof {
            extra: None,
            index: seq,
            path: paths.path(seq)?,
            checkpoint: note.as_bytes().to_vec(),
        };
        files.file(&bundle::proof_path(seq), &proof.encode())?;
        rows.push(report::row(seq, entry.event, report::shown(done, seqs.len())));
        if done % 1024 == 0 {
            progress(done as u64, total);
        }
    }
    progress(total, total);
    files.file(bundle::ENTRIES, lines.as_bytes())?;
    Ok(rows)
}
