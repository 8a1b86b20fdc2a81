//! `evidence demo`: the example scenarios ingested into a temporary embedded store, alerts
//! printed as they fire, the audit questions answered for the seed case, the retraining gate
//! asked, and the store verified offline. It writes to `out` (alerts, as they fire, to
//! standard output): it is for a person at a terminal.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use evidence_ingest::file::LineSource;

use crate::examples::{BAD_LINES, SCENARIOS};
use crate::governance::ViewError;
use crate::ledger::{ingest, Access, IngestError, IngestOptions, Ledger, LedgerDir, OpenError, Report};
use crate::log::{CheckpointPolicy, LogError, SelfAuditError};
use crate::query::{self, ArtifactName};
use crate::store::SledStorage;

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The temporary directory could not be made.
    #[error("cannot make the demo's directory: {0}")]
    Dir(std::io::Error),
    /// The output could not be written.
    #[error("the demo stopped")]
    Output(#[from] std::io::Error),
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// An example could not be ingested.
    #[error(transparent)]
    Ingest(#[from] IngestError),
    /// A question could not be answered.
    #[error(transparent)]
    Views(#[from] ViewError),
    /// A list could not be read.
    #[error(transparent)]
    Page(#[from] query::PageError),
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The offline check failed.
    #[error(transparent)]
    Audit(#[from] SelfAuditError),
    /// An answer the examples guarantee is missing: the examples changed.
    #[error("the examples no longer hold {0}")]
    Missing(&'static str),
}

/// Runs the demo (see the module docs).
pub fn run(out: &mut dyn Write, keep: Option<&std::path::Path>) -> Result<(), DemoError> {
    let started = Instant::now();
    // A temporary store goes when the demo ends, however it ends (a closed pipe, a full disk).
    let (dir, _temporary) = match keep {
        Some(dir) => (kept_dir(dir).map_err(DemoError::Dir)?, None),
        None => {
            let temporary = tempfile::Builder::new().prefix("evidence-demo-").tempdir().map_err(DemoError::Dir)?;
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    // The signer key beside the store, never inside it: the store is what one hands over.
    let at = LedgerDir { data_dir: dir.join("store"), signer_key: Some(dir.join("checkpoint.key")) };
    at.init("demo.evidence-ledger.local/examples")?;
    let mut ledger = at.open(
        Access::Append,
        CheckpointPolicy::default(),
        Some(Box::new(|a| {
            let _ = writeln!(std::io::stdout(), "ALERT {a}");
        })),
    )?;
    let kind = if keep.is_some() { "an embedded store kept" } else { "a temporary embedded store" };
    writeln!(out, "== Evidence Ledger demo, on {kind} at {}", at.data_dir.display())?;
    writeln!(out, "   Each scenario of examples/scenarios is ingested in turn; alerts print as they fire.")?;
    for (name, text) in SCENARIOS {
        writeln!(out, "\n-- {name} ({} events)", text.lines().count())?;
        ingest_example(out, &mut ledger, &format!("examples/scenarios/{name}.ndjson"), text)?;
    }
    writeln!(out, "\n== Bad input is quarantined with a precise reason, never dropped (examples/bad-lines.ndjson)")?;
    ingest_example(out, &mut ledger, "examples/bad-lines.ndjson", BAD_LINES)?;
    writeln!(out, "\n== Feeding the seed scenario again adds nothing (idempotent ingest)")?;
    ingest_example(out, &mut ledger, "examples/scenarios/seed-support-assistant.ndjson", SCENARIOS[0].1)?;
    answer_questions(out, &ledger)?;
    verify(out, &ledger)?;
    drop(ledger);
    if keep.is_some() {
        let data = at.data_dir.display();
        writeln!(
            out,
            "\nThe store is kept at {data} (its key beside it); run the commands above with --data-dir {data}."
        )?;
    }
    writeln!(out, "\nDone in {:.1} s.", started.elapsed().as_secs_f64())?;
    Ok(())
}

/// Ingests one embedded example file and prints its counts.
fn ingest_example(
    out: &mut dyn Write,
    ledger: &mut Ledger<SledStorage>,
    path: &str,
    text: &str,
) -> Result<(), DemoError> {
    let source = LineSource::File(path.into());
    let t = ingest(ledger, text.as_bytes(), &source, IngestOptions::default(), |r| {
        if let Report::Problem(problem) = r {
            eprintln!("{problem}");
        }
    })?;
    writeln!(out, "   accepted {}, duplicate {}, quarantined {}", t.accepted, t.duplicates, t.quarantined)?;
    Ok(())
}

fn answer_questions(out: &mut dyn Write, ledger: &Ledger<SledStorage>) -> Result<(), DemoError> {
    let store = ledger.store();
    writeln!(out, "\n== Audit question 1: what was live in support-assistant in prod on 2026-04-09 at noon?")?;
    writeln!(out, "$ evidence query state --app support-assistant --env prod --at 2026-04-09T12:00:00Z")?;
    let noon = chrono::DateTime::parse_from_rfc3339("2026-04-09T12:00:00Z").expect("a valid time");
    let answer = query::state(store, "support-assistant", "prod", noon)?
        .ok_or(DemoError::Missing("the seed scenario's deploy of support-assistant to prod"))?;
    write!(out, "{answer}")?;
    writeln!(out, "\n== Audit question 2: the history of the edited prompt")?;
    writeln!(out, "$ evidence query artifact prompt/support-assistant-system@8")?;
    let name: ArtifactName = "prompt/support-assistant-system@8".parse().expect("a valid name");
    write!(out, "{}", query::artifact(store, &name)?.ok_or(DemoError::Missing("the seed scenario's prompt"))?)?;
    writeln!(
        out,
        "\n== Audit question 3: which requests went where in April 2026, and which broke the approved routes?"
    )?;
    writeln!(out, "$ evidence query requests --from 2026-04-01T00:00:00Z --to 2026-05-01T00:00:00Z --violations")?;
    let april = |day: &str| chrono::DateTime::parse_from_rfc3339(day).expect("a valid time");
    let (from, to) = (april("2026-04-01T00:00:00Z"), april("2026-05-01T00:00:00Z"));
    let q = query::RequestQuery { from, to, env: None, data_class: None, provider: None };
    write!(out, "{}", query::requests(store, &q, Some(&query::ViolationPage { cursor: None, limit: 20 }))?)?;
    writeln!(out, "\n== Audit question 4: which feedback fed the retraining job, and was it vetted?")?;
    writeln!(out, "$ evidence query training --job ft-support-2026-04-10")?;
    let training = query::training(store, "ft-support-2026-04-10")?;
    write!(out, "{}", training.ok_or(DemoError::Missing("the seed scenario's training job"))?)?;
    writeln!(out, "\n== The retraining gate, asked before the next job")?;
    writeln!(out, "$ evidence gate training --job ft-next --base model/support-assistant-base@3.1.0 --batches fb-support-w14,fb-support-w15")?;
    let base: ArtifactName = "model/support-assistant-base@3.1.0".parse().expect("a valid name");
    let batches = ["fb-support-w14".to_string(), "fb-support-w15".to_string()];
    write!(out, "{}", query::training_gate(store, "ft-next", &base, &batches)?)?;
    writeln!(out, "\n== Audit question 5: every alert of the seed case")?;
    let alerts = query::alerts(store, None, None, None)?;
    writeln!(out, "$ evidence alerts --json   (the seed case's, of {} in all)", alerts.len())?;
    let seed = |a: &&crate::governance::Alert| {
        a.app.as_deref() == Some("support-assistant") || a.explanation.contains("support-assistant")
    };
    for alert in alerts.iter().filter(seed) {
        writeln!(out, "{}", serde_json::to_string(alert).expect("alerts serialize"))?;
    }
    Ok(())
}

fn verify(out: &mut dyn Write, ledger: &Ledger<SledStorage>) -> Result<(), DemoError> {
    writeln!(out, "\n== The signed checkpoint (C2SP tlog-checkpoint in a signed note)")?;
    let log = ledger.log();
    write!(out, "{}", log.checkpoint_note(log.size())?.unwrap_or_default())?;
    writeln!(out, "\n== Offline verification of the whole store")?;
    let report = log.audit()?;
    writeln!(
        out,
        "OK: {} entries, chain and Merkle root match {} signed checkpoint(s); root {}",
        report.entries,
        report.checkpoints,
        B64.encode(report.root)
    )?;
    Ok(())
}

/// `--keep DIR`: a new directory (an existing one with anything in it is refused, so that a
/// demo never mixes into a real store).
fn kept_dir(dir: &std::path::Path) -> std::io::Result<PathBuf> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} is not empty; --keep needs a new or empty directory", dir.display()),
        ));
    }
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}
