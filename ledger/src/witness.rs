//! A transparency-log witness (C2SP `tlog-witness`): it keeps, for each log it knows (an
//! origin and the verifier keys it trusts for it), the latest checkpoint it cosigned, and
//! cosigns a new checkpoint only when it is signed by the log and provably extends that one
//! (a consistency proof from the old size). It never cosigns two checkpoints of one log that
//! are inconsistent: checking the old size and persisting the new checkpoint happen under one
//! lock, and the new checkpoint is on disk (written to a temporary file, synced, renamed, the
//! directory synced) before the cosignature is returned.
//!
//! `add-checkpoint`'s refusals, with the spec's status codes: a body that is not a request
//! (400), an old size beyond the checkpoint's (400), an unknown origin (404), no valid
//! signature by a trusted key (403), an old size that is not the latest cosigned one (409,
//! with that size), the same size with another root (409), a consistency proof that does not
//! verify (422). [`router`] serves `POST /add-checkpoint` over HTTP (`evidence witness serve`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_verifier::checkpoint::Checkpoint;
use evidence_verifier::cosignature::CosignerKey;
use evidence_verifier::merkle::{verify_consistency, Hash};
use evidence_verifier::note::{Note, VerifierKey};
use evidence_verifier::tlog_proof::{hash_line, split_note, with_note};
use sha2::{Digest as _, Sha256};

/// Most consistency proof lines a request may carry.
const MAX_PROOF_LINES: usize = 63;

/// Why a checkpoint was not cosigned, with its HTTP status.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The body is not an add-checkpoint request, or the old size is beyond the checkpoint's.
    #[error("{0}")]
    BadRequest(String),
    /// The witness does not know the log.
    #[error("this witness does not witness the log {0:?}")]
    UnknownOrigin(String),
    /// No signature by a key the witness trusts for the log verifies.
    #[error("the checkpoint carries no valid signature by a key trusted for {0:?}")]
    Untrusted(String),
    /// The old size is not the size of the latest checkpoint cosigned.
    #[error("the latest checkpoint cosigned for this log has size {latest}, not {old}")]
    OldSizeMismatch {
        /// The size the request gave.
        old: u64,
        /// The latest cosigned size.
        latest: u64,
    },
    /// A checkpoint of the latest cosigned size with another root: a fork.
    #[error("a checkpoint of size {size} with another root than the one cosigned: the log forked")]
    Fork {
        /// The size.
        size: u64,
    },
    /// The consistency proof does not show the checkpoint extends the latest cosigned one.
    #[error("the consistency proof from {old} to {size} does not verify: {why}")]
    BadProof {
        /// The old size.
        old: u64,
        /// The new size.
        size: u64,
        /// Why.
        why: String,
    },
    /// The witness could not persist the checkpoint (it cosigned nothing).
    #[error("the witness cannot store the checkpoint: {0}")]
    Storage(String),
}

impl Refusal {
    /// The HTTP status the spec gives it.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::UnknownOrigin(_) => 404,
            Refusal::Untrusted(_) => 403,
            Refusal::OldSizeMismatch { .. } | Refusal::Fork { .. } => 409,
            Refusal::BadProof { .. } => 422,
            Refusal::Storage(_) => 500,
        }
    }
}

/// An add-checkpoint request body.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    /// The size of the previous checkpoint the client knows the witness cosigned.
    pub old: u64,
    /// The consistency proof from `old` to the checkpoint.
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: Vec<u8>,
}

impl Request {
    /// The body the client sends.
    pub fn encode(&self) -> Vec<u8> {
        with_note(format!("old {}\n", self.old), &self.proof, &self.checkpoint)
    }

    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self, Refusal> {
        let bad = |m: &str| Refusal::BadRequest(m.to_string());
        let (head, checkpoint) =
            split_note(body).ok_or_else(|| bad("no empty line (after UTF-8 lines) before the checkpoint"))?;
        let mut lines = head.split('\n');
        let old = lines.next().and_then(|l| l.strip_prefix("old ")).ok_or_else(|| bad("no old size line"))?;
        if old.is_empty() || !old.bytes().all(|b| b.is_ascii_digit()) || (old.len() > 1 && old.starts_with('0')) {
            return Err(bad("the old size is not a decimal without leading zeroes"));
        }
        let old = old.parse().map_err(|_| bad("the old size is out of range"))?;
        let proof = lines
            .map(|l| hash_line(l).ok_or_else(|| bad("a proof line is not 32 bytes of base64")))
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad("more than 63 consistency proof lines"));
        }
        Ok(Request { old, proof, checkpoint: checkpoint.to_vec() })
    }
}

/// The latest checkpoint cosigned for one log, as stored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Latest {
    origin: String,
    size: u64,
    root: String,
    /// The signed checkpoint note, as the log sent it.
    note: String,
}

/// A witness: its key, the logs it witnesses, and where it keeps their latest checkpoints.
#[derive(Debug)]
pub struct Witness {
    key: CosignerKey,
    logs: BTreeMap<String, Vec<VerifierKey>>,
    dir: PathBuf,
    /// Held from checking the old size to persisting the new checkpoint.
    lock: Mutex<()>,
}

impl Witness {
    /// A witness signing with `key`, trusting `logs` (each log's verifier keys, by origin),
    /// keeping its state in `dir` (made if missing).
    pub fn open(key: CosignerKey, logs: Vec<VerifierKey>, dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut by_origin: BTreeMap<String, Vec<VerifierKey>> = BTreeMap::new();
        for k in logs {
            by_origin.entry(k.name().to_string()).or_default().push(k);
        }
        Ok(Witness { key, logs: by_origin, dir: dir.to_path_buf(), lock: Mutex::new(()) })
    }

    fn path(&self, origin: &str) -> PathBuf {
        self.dir.join(format!("{}.json", hex::encode(&Sha256::digest(origin.as_bytes())[..16])))
    }

    /// The latest checkpoint cosigned for `origin`: its size and root.
    pub fn latest(&self, origin: &str) -> Result<Option<(u64, Hash)>, Refusal> {
        let path = self.path(origin);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Refusal::Storage(format!("{}: {e}", path.display()))),
        };
        let latest: Latest =
            serde_json::from_slice(&text).map_err(|e| Refusal::Storage(format!("{}: {e}", path.display())))?;
        let root = B64.decode(&latest.root).ok().and_then(|r| Hash::try_from(r).ok());
        let root = root.ok_or_else(|| Refusal::Storage(format!("{}: the root is not a hash", path.display())))?;
        Ok(Some((latest.size, root)))
    }

    /// Stores `latest` durably: a temporary file synced, renamed over the old one, the
    /// directory synced.
    fn persist(&self, latest: &Latest) -> Result<(), Refusal> {
        let fail = |e: std::io::Error| Refusal::Storage(e.to_string());
        let path = self.path(&latest.origin);
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(fail)?;
        tmp.write_all(&serde_json::to_vec(latest).expect("a checkpoint record serializes")).map_err(fail)?;
        tmp.as_file().sync_all().map_err(fail)?;
        tmp.persist(&path).map_err(|e| fail(e.error))?;
        std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(fail)
    }

    /// Handles an add-checkpoint request at POSIX time `now`: the cosignature line(s) to
    /// answer with, or the refusal.
    pub fn add_checkpoint(&self, body: &[u8], now: u64) -> Result<String, Refusal> {
        let request = Request::parse(body)?;
        let note = Note::parse(&request.checkpoint).map_err(|e| Refusal::BadRequest(format!("the checkpoint: {e}")))?;
        let checkpoint =
            Checkpoint::parse(&note.text).map_err(|e| Refusal::BadRequest(format!("the checkpoint: {e}")))?;
        let origin = checkpoint.origin.clone();
        let trusted = self.logs.get(&origin).ok_or_else(|| Refusal::UnknownOrigin(origin.clone()))?;
        note.verify(trusted).map_err(|_| Refusal::Untrusted(origin.clone()))?;
        if request.old > checkpoint.size {
            return Err(Refusal::BadRequest(format!(
                "the old size {} is beyond the checkpoint's {}",
                request.old, checkpoint.size
            )));
        }
        let _held = self.lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let latest = self.latest(&origin)?;
        let (latest_size, latest_root) = latest.map_or((0, None), |(s, r)| (s, Some(r)));
        if request.old != latest_size {
            return Err(Refusal::OldSizeMismatch { old: request.old, latest: latest_size });
        }
        match latest_root {
            Some(root) if request.old == checkpoint.size && root != checkpoint.root => {
                return Err(Refusal::Fork { size: checkpoint.size })
            }
            Some(_) if request.old == checkpoint.size => {}
            Some(root) => verify_consistency(request.old, checkpoint.size, &request.proof, &root, &checkpoint.root)
                .map_err(|e| Refusal::BadProof { old: request.old, size: checkpoint.size, why: e.to_string() })?,
            None if !request.proof.is_empty() => {
                return Err(Refusal::BadProof {
                    old: 0,
                    size: checkpoint.size,
                    why: "a proof from size 0 must be empty".into(),
                })
            }
            None => {}
        }
        let record = Latest {
            origin,
            size: checkpoint.size,
            root: checkpoint.root_base64(),
            note: String::from_utf8_lossy(&request.checkpoint).into_owned(),
        };
        self.persist(&record)?;
        let line = self.key.cosign(&note.text, now).map_err(|e| Refusal::BadRequest(e.to_string()))?;
        let mut blob = line.id.to_be_bytes().to_vec();
        blob.extend_from_slice(&line.signature);
        Ok(format!("\u{2014} {} {}\n", line.name, B64.encode(blob)))
    }
}

/// The witness's HTTP API: `POST /add-checkpoint`. A cosignature is answered 200 with its
/// signature line; an old size mismatch 409 with the latest size (`text/x.tlog.size`); any
/// other refusal its status with a sentence.
pub fn router(witness: std::sync::Arc<Witness>) -> axum::Router {
    axum::Router::new().route("/add-checkpoint", axum::routing::post(add)).with_state(witness)
}

async fn add(
    axum::extract::State(witness): axum::extract::State<std::sync::Arc<Witness>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse as _;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let done = tokio::task::spawn_blocking(move || witness.add_checkpoint(&body, now)).await;
    let text = |status: u16, kind: &'static str, body: String| {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, [(header::CONTENT_TYPE, kind)], body).into_response()
    };
    match done {
        Ok(Ok(lines)) => text(200, "text/plain; charset=utf-8", lines),
        Ok(Err(Refusal::OldSizeMismatch { latest, .. })) => text(409, "text/x.tlog.size", format!("{latest}\n")),
        Ok(Err(refusal)) => {
            tracing::info!(message = "Refused a checkpoint.", status = refusal.status(), %refusal);
            text(refusal.status(), "text/plain; charset=utf-8", format!("{refusal}\n"))
        }
        Err(e) => text(500, "text/plain; charset=utf-8", format!("the witness failed: {e}\n")),
    }
}
