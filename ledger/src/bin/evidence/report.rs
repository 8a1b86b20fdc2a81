//! What `status` and `proof` print, locally and from a service: a log's status with the SIEM
//! sinks' delivery, and an inclusion proof as a table, JSON or a C2SP tlog-proof file.

use std::io::Write as _;

use evidence_ledger::service::siem::SinkStatus;
use evidence_ledger::text::esc;

use crate::{out, print_json_or_text};

/// A log's status with the SIEM sinks' delivery, as `/v1/status` has it too.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct StatusReport {
    #[serde(flatten)]
    pub(crate) log: evidence_ledger::Status,
    #[serde(default)]
    pub(crate) sinks: Vec<SinkStatus>,
}

/// Prints an inclusion proof as a table, JSON, or a C2SP tlog-proof file.
pub(crate) fn print_proof(proof: &evidence_ledger::log::InclusionProof, json: bool, tlog: bool) -> anyhow::Result<()> {
    if tlog {
        out().write_all(&proof.tlog_proof().encode())?;
        return Ok(());
    }
    print_json_or_text(proof, json)
}

/// Prints a log's status, as a table or JSON.
pub(crate) fn print_status(report: &StatusReport, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(out(), "{}", serde_json::to_string_pretty(&report)?)?;
        return Ok(());
    }
    let status = &report.log;
    writeln!(out(), "origin:           {}", status.origin)?;
    writeln!(out(), "entries:          {}", status.entries)?;
    writeln!(out(), "duplicates:       {}", status.duplicates)?;
    writeln!(out(), "quarantined:      {} ({} conflicts)", status.quarantined, status.conflicts)?;
    writeln!(out(), "checkpoint size:  {}", status.checkpoint_size)?;
    writeln!(out(), "root:             {}", status.root)?;
    for key in &status.verifier_keys {
        writeln!(out(), "verifier key:     {key}")?;
    }
    for (source, skipped) in &status.skipped_offsets {
        writeln!(out(), "skipped offsets:  {skipped} at {} (records lost before the ledger read them)", esc(source))?;
    }
    if let Some(failure) = &status.checkpoint_failure {
        writeln!(out(), "checkpoint error: {failure}")?;
    }
    for sink in &report.sinks {
        let last = sink.last_delivery.as_deref().map_or(String::new(), |t| format!(", last delivery {t}"));
        writeln!(
            out(),
            "SIEM sink:        {}: {} behind (at change {}){last}",
            esc(&sink.name),
            sink.lag,
            sink.cursor
        )?;
        if let (true, Some(error)) = (sink.failing, &sink.last_error) {
            let at = sink.last_error_at.as_deref().unwrap_or("");
            writeln!(out(), "  failing since:  {at}: {}", esc(error))?;
        }
    }
    Ok(())
}
