//! `evidence`: the Evidence Ledger command line. Library errors become one sentence a user can
//! act on; exit status 0 is success, 1 an error, 3 an ingest that quarantined records.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use clap::{Args, Parser, Subcommand};
use evidence_ingest::file::{ingest_lines, LineSource};
use evidence_ingest::Sink as _;
use evidence_ingest::{Intake, Outcome, Verdict};
use evidence_ledger::query::{self, ArtifactName};
use evidence_ledger::{keys, Alert, CheckpointPolicy, Ledger, Log, SledStorage};
use evidence_schemas::{Limits, Validator};
use evidence_verifier::layout::LOG_DIR;
use evidence_verifier::Auditor;

#[derive(Parser, Debug)]
#[command(name = "evidence", version, about = "The Evidence Ledger: a tamper-evident record of AI delivery.")]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct StoreArgs {
    /// The ledger's data directory.
    #[arg(long, env = "EVIDENCE_DATA_DIR", default_value = "evidence-data", global = true)]
    data_dir: PathBuf,
    /// The checkpoint signer key file (default: <data-dir>/checkpoint.key, created with a new
    /// store).
    #[arg(long = "signer-key", env = "EVIDENCE_SIGNER_KEY", global = true)]
    signer_key: Option<PathBuf>,
    /// The log's origin, used when a new store creates its own signer key.
    #[arg(long, env = "EVIDENCE_ORIGIN", default_value = "evidence-ledger.local/main", global = true)]
    origin: String,
}

#[derive(Args, Debug, Clone, Copy)]
struct CheckpointArgs {
    /// Cut a checkpoint after this many new entries.
    #[arg(long, env = "EVIDENCE_CHECKPOINT_EVERY", default_value_t = 10_000)]
    checkpoint_every: u64,
    /// Cut a checkpoint when this many seconds have passed with new entries.
    #[arg(long, env = "EVIDENCE_CHECKPOINT_INTERVAL_SECS", default_value_t = 10)]
    checkpoint_interval_secs: u64,
}

impl CheckpointArgs {
    fn policy(self) -> CheckpointPolicy {
        CheckpointPolicy {
            every_entries: self.checkpoint_every.max(1),
            interval: Duration::from_secs(self.checkpoint_interval_secs),
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Write a new checkpoint signer key file (mode 0600) and print its verifier key.
    Keygen {
        /// The log's origin: a unique name, such as "ledger.example.com/prod".
        #[arg(long)]
        origin: String,
        /// Where to write the key (default: the --signer-key path, or <data-dir>/checkpoint.key).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Validate NDJSON events (one per line) and append them; bad lines are quarantined and
    /// reported with their line numbers. Exit status 3 when any line was quarantined.
    Ingest {
        /// The NDJSON file, or "-" for standard input.
        #[arg(long)]
        file: String,
        /// Events per durable batch.
        #[arg(long, default_value_t = 1000)]
        batch_size: usize,
        /// Largest accepted event in bytes.
        #[arg(long, default_value_t = 256 * 1024)]
        max_event_bytes: usize,
        #[command(flatten)]
        checkpoints: CheckpointArgs,
    },
    /// Show the log's counts and latest checkpoint.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the latest signed checkpoint (a C2SP signed note).
    Checkpoint {
        /// Cut a checkpoint of everything appended so far first.
        #[arg(long)]
        cut: bool,
    },
    /// Print the inclusion proof of an entry against a signed checkpoint.
    Proof {
        /// The entry's sequence number.
        #[arg(long)]
        seq: u64,
        /// The checkpoint's tree size (default: the latest checkpoint).
        #[arg(long)]
        size: Option<u64>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the consistency proof between two checkpointed tree sizes: it shows that the
    /// larger tree extends the smaller one.
    Consistency {
        /// The earlier tree size.
        #[arg(long)]
        from: u64,
        /// The later tree size (default: the latest checkpoint).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Consume events from Kafka into the log until SIGTERM or SIGINT, cutting checkpoints and
    /// forwarding rejected messages to a dead-letter topic.
    Serve(Box<evidence_ledger::serve::ServeArgs>),
    /// Publish a governance policy: append a `registry.policy` event from a TOML or JSON file
    /// (`version = "..."` and a `[policy]` table; see `evidence_ledger::policy`).
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Ask a gate before acting. Exit status 0 on allow, 4 on deny.
    Gate {
        #[command(subcommand)]
        command: GateCommand,
    },
    /// Answer an audit question from the views.
    Query {
        #[command(subcommand)]
        command: QueryCommand,
    },
    /// List alerts, oldest first (`--json`: one JSON object a line).
    Alerts {
        /// Only alerts raised by entries whose event time is at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only this rule (e.g. gate.skipped).
        #[arg(long)]
        rule: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
    },
    /// Drop every view and alert and derive them again from the log.
    Rebuild,
    /// Run the demo on a temporary store: ingest the example scenarios, print alerts as they
    /// fire, answer the audit questions for the seed case, sign a checkpoint and verify the
    /// store offline.
    Demo,
}

#[derive(Subcommand, Debug)]
enum PolicyCommand {
    /// Append the policy in FILE as a `registry.policy` event; it is in force from that entry on.
    Publish {
        /// A `.toml` or `.json` policy file.
        file: PathBuf,
        /// Who publishes it (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Print the policy in force.
    Show,
}

#[derive(Subcommand, Debug)]
enum GateCommand {
    /// May this training job use these feedback batches on this base artifact?
    Training {
        /// The job's id.
        #[arg(long)]
        job: String,
        /// The base artifact, KIND/NAME@VERSION.
        #[arg(long)]
        base: ArtifactName,
        /// Feedback batches, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        batches: Vec<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
enum QueryCommand {
    /// What was live in an app in an env at a time, with deployments, approvals, gates and
    /// signatures.
    State {
        /// The app.
        #[arg(long)]
        app: String,
        /// The env.
        #[arg(long)]
        env: String,
        /// RFC 3339 time (default: now).
        #[arg(long)]
        at: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The full history of one artifact, KIND/NAME@VERSION.
    Artifact {
        /// The artifact.
        artifact: ArtifactName,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Which feedback batches fed a training job, and whether they were vetted.
    Training {
        /// The job's id.
        #[arg(long)]
        job: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn key_path(args: &StoreArgs) -> PathBuf {
    args.signer_key.clone().unwrap_or_else(|| args.data_dir.join("checkpoint.key"))
}

/// Opens the ledger. With `create`, a missing store is created, with its own key if none.
fn open_log(args: &StoreArgs, create: bool, policy: CheckpointPolicy) -> anyhow::Result<Log<SledStorage>> {
    let log_dir = args.data_dir.join(LOG_DIR);
    if !create && !log_dir.join("conf").exists() {
        anyhow::bail!("There is no ledger at {} (set --data-dir or EVIDENCE_DATA_DIR).", args.data_dir.display());
    }
    let path = key_path(args);
    let signer = if path.exists() {
        keys::read(&path)?
    } else if create && args.signer_key.is_none() {
        let key = keys::generate(&args.origin)?;
        keys::write_new(&path, &key)?;
        tracing::info!(
            message = "Generated a checkpoint signer key for the new store.",
            path = %path.display(),
            verifier_key = %key.verifier()
        );
        key
    } else {
        anyhow::bail!("The signer key file {} does not exist (create one with `evidence keygen`).", path.display());
    };
    let store = SledStorage::open(&log_dir).with_context(|| {
        format!("Cannot open the ledger at {} (is another evidence process using it?)", log_dir.display())
    })?;
    Log::open(store, vec![signer], policy)
        .with_context(|| format!("Cannot open the ledger at {}", args.data_dir.display()))
}

/// Opens the ledger with its views caught up; alerts raised on the way go to `on_alert`.
fn open_ledger(
    args: &StoreArgs,
    create: bool,
    policy: CheckpointPolicy,
    on_alert: Option<evidence_ledger::ledger::AlertHook>,
) -> anyhow::Result<Ledger<SledStorage>> {
    let log = open_log(args, create, policy)?;
    Ledger::open_with(log, on_alert).context("Cannot bring the views up to date")
}

fn print_alert(alert: &Alert) {
    println!("ALERT {alert}");
}

/// `evidence ingest` keeps standard output for its summary line: alerts go to standard error,
/// beside the quarantine reports.
fn report_alert(alert: &Alert) {
    eprintln!("ALERT {alert}");
}

fn parse_time(text: &str) -> anyhow::Result<chrono::DateTime<chrono::FixedOffset>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("{text:?} is not an RFC 3339 time such as 2026-04-03T10:15:00Z"))
}

fn print_json_or_text<T: serde::Serialize + std::fmt::Display>(answer: &T, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(answer)?);
    } else {
        print!("{answer}");
    }
    Ok(())
}

/// Appends the policy in `file` as a `registry.policy` event.
fn publish_policy(
    ledger: &mut Ledger<SledStorage>,
    file: &std::path::Path,
    actor: Option<String>,
) -> anyhow::Result<u64> {
    let data = evidence_ledger::policy::read_file(file)?;
    if let Some(earlier) = query::policy_versions(ledger.log().store())?.into_iter().find(|p| p.version == data.version)
    {
        anyhow::bail!("policy version {} was already published as entry {}", data.version, earlier.cite.seq);
    }
    let actor = actor.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
    let event = serde_json::json!({
        "specversion": "1.0",
        "id": format!("policy-{}", data.version),
        "source": "evidence/cli/policy",
        "type": "registry.policy",
        "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "actor": actor,
        "data": data,
    });
    let valid = Validator::default().validate(event.to_string().as_bytes()).map_err(|rejection| {
        let problems: Vec<String> = rejection.problems().iter().map(ToString::to_string).collect();
        anyhow::anyhow!("{} is not a valid policy: {}", file.display(), problems.join("; "))
    })?;
    let batch = evidence_ingest::Batch {
        records: vec![evidence_ingest::Record {
            origin: evidence_ingest::Origin::File { path: file.display().to_string(), line: 1 },
            verdict: Verdict::Valid(Box::new(valid)),
        }],
        positions: Vec::new(),
    };
    match ledger.append(&batch)?.outcomes.first() {
        Some(Outcome::Accepted { seq }) => Ok(*seq),
        Some(Outcome::Duplicate { seq }) => {
            anyhow::bail!("policy version {} was already published as entry {seq}", data.version)
        }
        Some(Outcome::Quarantined { reason }) => anyhow::bail!("the policy event was quarantined: {reason}"),
        None => anyhow::bail!("the ledger answered nothing for the policy event"),
    }
}

fn ingest(
    ledger: &mut Ledger<SledStorage>,
    reader: impl BufRead,
    source: &LineSource,
    batch_size: usize,
    max_event_bytes: usize,
) -> anyhow::Result<evidence_ingest::Totals> {
    let validator = Validator::new(Limits { max_event_bytes, ..Limits::default() });
    let mut intake = Intake::new(&validator, batch_size);
    ingest_lines(reader, source, &mut intake, ledger, max_event_bytes, |record, outcome| {
        if let (Outcome::Quarantined { .. }, Verdict::Rejected { rejection, .. }) = (outcome, &record.verdict) {
            for problem in rejection.problems() {
                eprintln!("{}: {problem}", record.origin);
            }
        } else if let Outcome::Quarantined { reason } = outcome {
            eprintln!("{}: {reason}", record.origin);
        }
    })?;
    ledger.log_mut().checkpoint_now()?;
    Ok(intake.totals())
}

fn print_status(log: &Log<SledStorage>, json: bool) -> anyhow::Result<()> {
    let status = log.status();
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("origin:           {}", status.origin);
        println!("entries:          {}", status.entries);
        println!("duplicates:       {}", status.duplicates);
        println!("quarantined:      {} ({} conflicts)", status.quarantined, status.conflicts);
        println!("checkpoint size:  {}", status.checkpoint_size);
        println!("root:             {}", status.root);
        for key in &status.verifier_keys {
            println!("verifier key:     {key}");
        }
    }
    Ok(())
}

fn proof_json(log: &Log<SledStorage>, seq: u64, size: Option<u64>) -> anyhow::Result<serde_json::Value> {
    let p = log.inclusion_proof(seq, size)?;
    Ok(serde_json::json!({
        "seq": p.seq,
        "tree_size": p.tree_size,
        "leaf_hash": B64.encode(p.leaf_hash),
        "proof": p.proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
        "checkpoint": p.checkpoint,
    }))
}

/// Audits the log's own store with the verifier's [`Auditor`].
fn audit(log: &Log<SledStorage>) -> anyhow::Result<evidence_verifier::AuditReport> {
    let checkpoints = log.checkpoints().collect::<Result<Vec<_>, _>>()?;
    let mut auditor = Auditor::new(&log.verifier_keys(), checkpoints, None)?;
    for item in log.entries(0) {
        let (seq, record) = item?;
        auditor.entry(seq, &record)?;
    }
    Ok(auditor.finish()?)
}

/// The example scenarios, in the order the demo ingests them (see `examples/README.md`).
const SCENARIOS: [(&str, &str); 13] = [
    ("seed-support-assistant", include_str!("../../examples/scenarios/seed-support-assistant.ndjson")),
    ("clean-release", include_str!("../../examples/scenarios/clean-release.ndjson")),
    ("gate-skipped", include_str!("../../examples/scenarios/gate-skipped.ndjson")),
    ("gate-failed", include_str!("../../examples/scenarios/gate-failed.ndjson")),
    ("approval-missing", include_str!("../../examples/scenarios/approval-missing.ndjson")),
    ("approval-self", include_str!("../../examples/scenarios/approval-self.ndjson")),
    ("artifact-substituted", include_str!("../../examples/scenarios/artifact-substituted.ndjson")),
    ("artifact-unsigned", include_str!("../../examples/scenarios/artifact-unsigned.ndjson")),
    ("artifact-unsafe-format", include_str!("../../examples/scenarios/artifact-unsafe-format.ndjson")),
    ("routing-unapproved", include_str!("../../examples/scenarios/routing-unapproved.ndjson")),
    ("prompt-ungated", include_str!("../../examples/scenarios/prompt-ungated.ndjson")),
    ("feedback-unvetted", include_str!("../../examples/scenarios/feedback-unvetted.ndjson")),
    ("drift-behavior", include_str!("../../examples/scenarios/drift-behavior.ndjson")),
];

const BAD_LINES: &str = include_str!("../../examples/bad-lines.ndjson");

/// Ingests one embedded example file and prints its counts.
fn demo_ingest(ledger: &mut Ledger<SledStorage>, path: &str, text: &str) -> anyhow::Result<()> {
    let t = ingest(ledger, text.as_bytes(), &LineSource::File(path.into()), 1000, 256 * 1024)?;
    println!("   accepted {}, duplicate {}, quarantined {}", t.accepted, t.duplicates, t.quarantined);
    Ok(())
}

fn demo() -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile_dir()?;
    let args =
        StoreArgs { data_dir: dir.clone(), signer_key: None, origin: "demo.evidence-ledger.local/examples".into() };
    let mut ledger = open_ledger(&args, true, CheckpointPolicy::default(), Some(Box::new(print_alert)))?;
    println!("== Evidence Ledger demo, on a temporary embedded store at {}", dir.display());
    println!("   Each scenario of examples/scenarios is ingested in turn; alerts print as they fire.");
    for (name, text) in SCENARIOS {
        println!("\n-- {name} ({} events)", text.lines().count());
        demo_ingest(&mut ledger, &format!("examples/scenarios/{name}.ndjson"), text)?;
    }
    println!("\n== Bad input is quarantined with a precise reason, never dropped (examples/bad-lines.ndjson)");
    demo_ingest(&mut ledger, "examples/bad-lines.ndjson", BAD_LINES)?;
    println!("\n== Feeding the seed scenario again adds nothing (idempotent ingest)");
    demo_ingest(&mut ledger, "examples/scenarios/seed-support-assistant.ndjson", SCENARIOS[0].1)?;

    let store = ledger.log().store();
    println!("\n== Audit question 1: what was live in support-assistant in prod on 2026-04-09 at noon?");
    println!("$ evidence query state --app support-assistant --env prod --at 2026-04-09T12:00:00Z");
    let answer = query::state(store, "support-assistant", "prod", parse_time("2026-04-09T12:00:00Z")?)?
        .context("the seed scenario deploys support-assistant to prod")?;
    print!("{answer}");
    println!("\n== Audit question 2: the history of the edited prompt");
    println!("$ evidence query artifact prompt/support-assistant-system@8");
    let name: ArtifactName = "prompt/support-assistant-system@8".parse().map_err(anyhow::Error::msg)?;
    print!("{}", query::artifact(store, &name)?.context("the seed scenario registers the prompt")?);
    println!("\n== Audit question 4: which feedback fed the retraining job, and was it vetted?");
    println!("$ evidence query training --job ft-support-2026-04-10");
    print!("{}", query::training(store, "ft-support-2026-04-10")?.context("the seed scenario trains")?);
    println!("\n== The retraining gate, asked before the next job");
    println!("$ evidence gate training --job ft-next --base model/support-assistant-base@3.1.0 --batches fb-support-w14,fb-support-w15");
    let base: ArtifactName = "model/support-assistant-base@3.1.0".parse().map_err(anyhow::Error::msg)?;
    let batches = ["fb-support-w14".to_string(), "fb-support-w15".to_string()];
    print!("{}", query::training_gate(store, "ft-next", &base, &batches)?);
    println!("\n== Audit question 5: every alert of the seed case");
    let alerts = query::alerts(store, None, None)?;
    println!("$ evidence alerts --json   (the seed case's, of {} in all)", alerts.len());
    for alert in alerts
        .iter()
        .filter(|a| a.app.as_deref() == Some("support-assistant") || a.explanation.contains("support-assistant"))
    {
        println!("{}", serde_json::to_string(alert)?);
    }

    println!("\n== The signed checkpoint (C2SP tlog-checkpoint in a signed note)");
    let size = ledger.log().size();
    print!("{}", ledger.log().checkpoint_note(size)?.unwrap_or_default());
    println!("\n== Offline verification of the whole store");
    let report = audit(ledger.log())?;
    println!(
        "OK: {} entries, chain and Merkle root match {} signed checkpoint(s); root {}",
        report.entries,
        report.checkpoints,
        B64.encode(report.root)
    );
    drop(ledger);
    std::fs::remove_dir_all(&dir).ok();
    println!("\nDone in {:.1} s.", started.elapsed().as_secs_f64());
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("evidence-demo-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Keygen { origin, out } => {
            let out = out.unwrap_or_else(|| key_path(&cli.store));
            let key = keys::generate(&origin)?;
            keys::write_new(&out, &key)?;
            eprintln!("Wrote the signer key to {} (mode 0600). Its verifier key:", out.display());
            println!("{}", key.verifier());
        }
        Command::Ingest { file, batch_size, max_event_bytes, checkpoints } => {
            let mut log = open_ledger(&cli.store, true, checkpoints.policy(), Some(Box::new(report_alert)))?;
            let summary = if file == "-" {
                ingest(&mut log, std::io::stdin().lock(), &LineSource::Stdin, batch_size, max_event_bytes)?
            } else {
                let f = std::fs::File::open(&file).with_context(|| format!("Cannot open {file}"))?;
                let reader = std::io::BufReader::with_capacity(1 << 20, f);
                ingest(&mut log, reader, &LineSource::File(file.clone()), batch_size, max_event_bytes)?
            };
            let t = summary;
            println!("accepted {}, duplicate {}, quarantined {}", t.accepted, t.duplicates, t.quarantined);
            if t.quarantined > 0 {
                return Ok(ExitCode::from(3));
            }
        }
        Command::Status { json } => print_status(&open_log(&cli.store, false, CheckpointPolicy::default())?, json)?,
        Command::Checkpoint { cut } => {
            let mut log = open_log(&cli.store, false, CheckpointPolicy::default())?;
            if cut {
                log.checkpoint_now()?;
            }
            let size = log.latest_checkpoint().map(|c| c.size).context("The log has no checkpoint yet.")?;
            print!("{}", log.checkpoint_note(size)?.context("The latest checkpoint is missing.")?);
        }
        Command::Proof { seq, size, json } => {
            let log = open_log(&cli.store, false, CheckpointPolicy::default())?;
            let proof = proof_json(&log, seq, size)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&proof)?);
            } else {
                println!("entry {} in the tree of {} entries", proof["seq"], proof["tree_size"]);
                println!("leaf hash: {}", proof["leaf_hash"].as_str().unwrap_or_default());
                for h in proof["proof"].as_array().into_iter().flatten() {
                    println!("  {}", h.as_str().unwrap_or_default());
                }
                print!("{}", proof["checkpoint"].as_str().unwrap_or_default());
            }
        }
        Command::Consistency { from, to } => {
            let log = open_log(&cli.store, false, CheckpointPolicy::default())?;
            let to = to.or(log.latest_checkpoint().map(|c| c.size)).context("The log has no checkpoint yet.")?;
            let note = |size| -> anyhow::Result<String> {
                log.checkpoint_note(size)?.with_context(|| format!("There is no checkpoint at tree size {size}."))
            };
            let proof = log.consistency_proof(from, to)?;
            let out = serde_json::json!({
                "size1": from,
                "size2": to,
                "proof": proof.iter().map(|h| B64.encode(h)).collect::<Vec<_>>(),
                "checkpoint1": note(from)?,
                "checkpoint2": note(to)?,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Serve(args) => {
            let config = args.resolve()?;
            let ledger =
                open_ledger(&cli.store, true, config.checkpoints, Some(Box::new(evidence_ledger::serve::log_alert)))?;
            evidence_ledger::serve::run(ledger, config)?;
        }
        Command::Policy { command: PolicyCommand::Publish { file, actor } } => {
            let mut ledger = open_ledger(&cli.store, true, CheckpointPolicy::default(), Some(Box::new(print_alert)))?;
            let seq = publish_policy(&mut ledger, &file, actor)?;
            ledger.log_mut().checkpoint_now()?;
            let policy = ledger.views().state().policy();
            println!("Published policy {} as entry {seq}; it is in force from that entry on.", policy.version);
        }
        Command::Policy { command: PolicyCommand::Show } => {
            let ledger = open_ledger(&cli.store, false, CheckpointPolicy::default(), None)?;
            println!("{}", serde_json::to_string_pretty(ledger.views().state().policy())?);
        }
        Command::Gate { command: GateCommand::Training { job, base, batches, json } } => {
            let ledger = open_ledger(&cli.store, false, CheckpointPolicy::default(), None)?;
            let decision = query::training_gate(ledger.log().store(), &job, &base, &batches)?;
            print_json_or_text(&decision, json)?;
            if decision.decision != "allow" {
                return Ok(ExitCode::from(4));
            }
        }
        Command::Query { command } => {
            let ledger = open_ledger(&cli.store, false, CheckpointPolicy::default(), None)?;
            let store = ledger.log().store();
            match command {
                QueryCommand::State { app, env, at, json } => {
                    let at = match at {
                        Some(t) => parse_time(&t)?,
                        None => chrono::Utc::now().fixed_offset(),
                    };
                    let answer = query::state(store, &app, &env, at)?
                        .with_context(|| format!("Nothing was deployed to {app} in {env} by {}.", at.to_rfc3339()))?;
                    print_json_or_text(&answer, json)?;
                }
                QueryCommand::Artifact { artifact, json } => {
                    let answer = query::artifact(store, &artifact)?
                        .with_context(|| format!("The ledger has no record of {artifact}."))?;
                    print_json_or_text(&answer, json)?;
                }
                QueryCommand::Training { job, json } => {
                    let answer = query::training(store, &job)?
                        .with_context(|| format!("The ledger has no training job {job}."))?;
                    print_json_or_text(&answer, json)?;
                }
            }
        }
        Command::Alerts { since, rule, json } => {
            if let Some(rule) = &rule {
                rule.parse::<evidence_ledger::rules::Rule>().map_err(anyhow::Error::msg)?;
            }
            let since = since.as_deref().map(parse_time).transpose()?;
            let ledger = open_ledger(&cli.store, false, CheckpointPolicy::default(), None)?;
            for alert in query::alerts(ledger.log().store(), since, rule.as_deref())? {
                if json {
                    println!("{}", serde_json::to_string(&alert)?);
                } else {
                    println!("{alert}");
                }
            }
        }
        Command::Rebuild => {
            let mut ledger = open_ledger(&cli.store, false, CheckpointPolicy::default(), None)?;
            let started = Instant::now();
            let entries = ledger.rebuild()?;
            let alerts = query::alerts(ledger.log().store(), None, None)?.len();
            println!(
                "Rebuilt the views from {entries} entries in {:.1} s: {alerts} alert(s).",
                started.elapsed().as_secs_f64()
            );
        }
        Command::Demo => demo()?,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sled=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
