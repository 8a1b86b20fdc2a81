//! The commands run against a service (`--server`): the same arguments and the same output as
//! on a local store, the answers fetched from the API.

use std::io::{BufRead, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use evidence_ledger::governance::{policy, Alert};
use evidence_ledger::log::{ConsistencyProof, InclusionProof};
use evidence_ledger::query::{
    AppList, ArtifactHistory, ArtifactList, Decision, LiveAnswer, RequestsAnswer, TrainingAnswer, TrainingDecision,
};
use evidence_ledger::service::http::{IntakeAnswer, ItemOutcome, PolicyPublished};
use evidence_ledger::text::esc;

use crate::cli::{Command, GateCommand, PolicyCommand, QueryCommand};
use crate::client::Client;
use crate::progress::Progress;
use crate::report::{print_proof, print_status, StatusReport};
use crate::{out, print_alerts, print_checkpoint, print_json_or_text, print_published, print_state, request_args};

/// Whether `command` runs against a service when one is named; the others always run on the
/// local store (so that EVIDENCE_SERVER in the environment does not stop `evidence serve`).
pub(crate) fn handles(command: &Command) -> bool {
    matches!(
        command,
        Command::Status { .. }
            | Command::Checkpoint { .. }
            | Command::Proof { .. }
            | Command::Consistency { .. }
            | Command::Query { .. }
            | Command::Alerts { .. }
            | Command::Gate { .. }
            | Command::Policy { command: PolicyCommand::Publish { .. } }
            | Command::Ingest { .. }
            | Command::Export(_)
    )
}

/// Runs `command` against the service at `server`.
pub(crate) fn run(server: &str, command: Command) -> anyhow::Result<ExitCode> {
    let client = Client::new(server)?;
    match command {
        Command::Status { json } => {
            print_status(&client.get::<StatusReport>("/v1/status", &[])?.map_err(anyhow::Error::msg)?, json)?
        }
        Command::Checkpoint { cut: false, json } => print_checkpoint(&client.text("/v1/checkpoint")?, json)?,
        Command::Proof { seq, size, json, tlog_proof } => {
            let mut query = vec![("seq", seq.to_string())];
            query.extend(size.map(|s| ("size", s.to_string())));
            let proof: InclusionProof = client.get("/v1/proofs/inclusion", &query)?.map_err(anyhow::Error::msg)?;
            print_proof(&proof, json, tlog_proof)?;
        }
        Command::Consistency { from, to, json } => {
            let mut query = vec![("from", from.to_string())];
            query.extend(to.map(|t| ("to", t.to_string())));
            let proof: ConsistencyProof = client.get("/v1/proofs/consistency", &query)?.map_err(anyhow::Error::msg)?;
            print_json_or_text(&proof, json)?;
        }
        Command::Query { command } => query(&client, command)?,
        Command::Alerts { follow: true, from, json, .. } => follow(&client, from, json)?,
        Command::Alerts { since, rule, status, json, .. } => alerts(&client, since, rule, status, json)?,
        Command::Gate { command: GateCommand::Training { job, base, batches, json } } => {
            let body = serde_json::json!({ "job": job, "base": base.to_string(), "batches": batches });
            let decision: TrainingDecision =
                client.post("/v1/gates/training", "application/json", body.to_string().as_bytes())?;
            print_json_or_text(&decision, json)?;
            if decision.decision == Decision::Deny {
                return Ok(ExitCode::from(4));
            }
        }
        Command::Policy { command: PolicyCommand::Publish { file, json, actor } } => {
            let data = policy::read_file(&file)?;
            let mut body = serde_json::json!({ "policy": data });
            if let Some(actor) = actor.or_else(|| std::env::var("USER").ok()) {
                body["actor"] = actor.into();
            }
            let published: PolicyPublished =
                client.post("/v1/policy", "application/json", body.to_string().as_bytes())?;
            print_published(&published.version, published.seq, json)?;
        }
        Command::Ingest { file, batch_size, .. } => return ingest(&client, &file, batch_size),
        Command::Export(args) => crate::export::remote(&client, &args)?,
        Command::Checkpoint { cut: true, .. } => {
            anyhow::bail!(
                "`evidence checkpoint --cut` works on a local store only; the service cuts checkpoints itself."
            )
        }
        other => anyhow::bail!("`{}` works on a local store only; run it without --server.", name(&other)),
    }
    Ok(ExitCode::SUCCESS)
}

fn name(command: &Command) -> String {
    let debug = format!("{command:?}");
    let word = debug.split(|c: char| !c.is_alphanumeric()).next().unwrap_or("").to_lowercase();
    format!("evidence {word}")
}

fn query(client: &Client, command: QueryCommand) -> anyhow::Result<()> {
    match command {
        QueryCommand::State { app, env, at, json } => {
            let mut q = vec![("app", app), ("env", env)];
            q.extend(at.map(|t| ("at", t)));
            let answer: LiveAnswer = client.get("/v1/state", &q)?.map_err(anyhow::Error::msg)?;
            print_state(&answer, json)
        }
        QueryCommand::Artifact { artifact, json } => {
            let path =
                format!("/v1/artifacts/{}/{}/{}", artifact.kind.as_str(), enc(&artifact.name), enc(&artifact.version));
            let answer: ArtifactHistory = client.get(&path, &[])?.map_err(anyhow::Error::msg)?;
            print_json_or_text(&answer, json)
        }
        QueryCommand::Artifacts { kind, name, digest, json } => {
            let mut q = vec![("limit", "1000".to_string())];
            q.extend(kind.map(|k| ("kind", k)));
            q.extend(name.map(|n| ("name", n)));
            q.extend(digest.map(|d| ("digest", d)));
            let mut all = ArtifactList { artifacts: Vec::new(), next: None };
            loop {
                let page: ArtifactList = client.get("/v1/artifacts", &q)?.map_err(anyhow::Error::msg)?;
                all.artifacts.extend(page.artifacts);
                match page.next {
                    Some(next) => {
                        q.retain(|(k, _)| *k != "cursor");
                        q.push(("cursor", next));
                    }
                    None => break,
                }
            }
            print_json_or_text(&all, json)
        }
        QueryCommand::Apps { json } => {
            let apps: AppList = client.get("/v1/apps", &[])?.map_err(anyhow::Error::msg)?;
            print_json_or_text(&apps, json)
        }
        QueryCommand::Training { job, json } => {
            let answer: TrainingAnswer =
                client.get(&format!("/v1/training/{}", enc(&job)), &[])?.map_err(anyhow::Error::msg)?;
            print_json_or_text(&answer, json)
        }
        QueryCommand::Requests { json, .. } => {
            // Times are read here, so that every page asks about the same range.
            let args = request_args(&command)?;
            let q = &args.query;
            let mut params = vec![("from", q.from.to_rfc3339()), ("to", q.to.to_rfc3339())];
            params.extend(q.env.clone().map(|e| ("env", e)));
            params.extend(q.data_class.clone().map(|c| ("data_class", c)));
            params.extend(q.provider.clone().map(|p| ("provider", p)));
            if args.violations {
                params.extend([("violations", "true".to_string()), ("limit", "1000".to_string())]);
            }
            let mut all: RequestsAnswer = client.get("/v1/requests", &params)?.map_err(anyhow::Error::msg)?;
            while let Some(next) = all.next.take() {
                params.retain(|(k, _)| *k != "cursor");
                params.push(("cursor", next));
                let page: RequestsAnswer = client.get("/v1/requests", &params)?.map_err(anyhow::Error::msg)?;
                all.violations.get_or_insert_with(Vec::new).extend(page.violations.into_iter().flatten());
                all.next = page.next;
            }
            print_json_or_text(&all, json)
        }
    }
}

/// A path segment, percent-encoded.
fn enc(segment: &str) -> String {
    let mut out = String::new();
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Prints each alert change as the service streams it, until interrupted; reconnects (after
/// the last change printed) when the stream breaks.
fn follow(client: &Client, from: Option<u64>, json: bool) -> anyhow::Result<()> {
    let mut last: Option<String> = None;
    let query: Vec<(&str, String)> = from.map(|n| ("from", n.to_string())).into_iter().collect();
    loop {
        let resume = last.clone();
        let followed = client.events("/v1/alerts/stream", &query, resume.as_deref(), |id, _, data| {
            last = Some(id.to_string());
            if json {
                writeln!(out(), "{data}")?;
            } else {
                #[derive(serde::Deserialize)]
                struct Change {
                    number: u64,
                    activity: String,
                    alert: Alert,
                }
                let change: Change =
                    serde_json::from_str(data).context("The stream sent a change this client cannot read")?;
                writeln!(out(), "#{} {}: {}", change.number, change.activity, change.alert)?;
            }
            out().flush()?;
            Ok(())
        });
        match followed {
            Ok(()) => eprintln!("The service ended the stream; reconnecting."),
            Err(e) if last.is_none() => return Err(e),
            Err(e) => eprintln!("{e:#}; reconnecting."),
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

fn alerts(
    client: &Client,
    since: Option<String>,
    rule: Option<String>,
    status: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let mut base = vec![("limit", "1000".to_string())];
    base.extend(since.map(|s| ("since", s)));
    base.extend(rule.map(|r| ("rule", r)));
    base.extend(status.map(|s| ("status", s)));
    let mut cursor: Option<String> = None;
    let mut first = true;
    loop {
        let mut q = base.clone();
        q.extend(cursor.take().map(|c| ("cursor", c)));
        #[derive(serde::Deserialize)]
        struct Page {
            alerts: Vec<Alert>,
            next: Option<String>,
        }
        let page: Page = client.get("/v1/alerts", &q)?.map_err(anyhow::Error::msg)?;
        print_alerts(&page.alerts, json, first && page.next.is_none())?;
        first = false;
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(()),
        }
    }
}

/// Sends the file's lines in requests of `batch_size`, reporting each refused line with its
/// number as a local ingest does. Exit status 3 when any was quarantined.
fn ingest(client: &Client, file: &str, batch_size: usize) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("Cannot open {file}"))?))
    };
    let origin = if file == "-" { "stdin#".to_string() } else { format!("file:{file}#") };
    let (mut accepted, mut duplicates, mut quarantined) = (0u64, 0u64, 0u64);
    let mut progress = Progress::on_stderr();
    let mut batch: Vec<(u64, String)> = Vec::with_capacity(batch_size);
    let mut lines = reader.lines().enumerate().peekable();
    while lines.peek().is_some() {
        batch.clear();
        for (i, line) in lines.by_ref() {
            let line = line.with_context(|| format!("Cannot read {file}"))?;
            if !line.trim().is_empty() {
                batch.push((i as u64 + 1, line));
            }
            if batch.len() == batch_size {
                break;
            }
        }
        if batch.is_empty() {
            break;
        }
        let body: Vec<&str> = batch.iter().map(|(_, l)| l.as_str()).collect();
        let answer: IntakeAnswer =
            client.post_retrying("/v1/events", "application/x-ndjson", body.join("\n").as_bytes())?;
        for ((number, _), item) in batch.iter().zip(&answer.items) {
            match item {
                ItemOutcome::Accepted { .. } => accepted += 1,
                ItemOutcome::Duplicate { .. } => duplicates += 1,
                ItemOutcome::Rejected { errors, .. } => {
                    quarantined += 1;
                    for e in errors {
                        let at = if e.pointer.is_empty() { String::new() } else { format!("{}: ", e.pointer) };
                        progress.say(&esc(&format!("{origin}{number}: {at}{}", e.detail)).to_string());
                    }
                }
                ItemOutcome::Conflict { detail } => {
                    quarantined += 1;
                    progress.say(&esc(&format!("{origin}{number}: {detail}")).to_string());
                }
                ItemOutcome::Valid => {}
            }
        }
        progress.show(accepted, duplicates, quarantined);
    }
    progress.clear();
    writeln!(out(), "accepted {accepted}, duplicate {duplicates}, quarantined {quarantined}")?;
    Ok(if quarantined > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}
