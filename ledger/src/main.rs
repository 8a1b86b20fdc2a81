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
use evidence_ingest::{Intake, Outcome, Verdict};
use evidence_ledger::{keys, CheckpointPolicy, Log, SledStorage};
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
    /// Run the quickstart on a temporary store: ingest the examples, show quarantine, sign a
    /// checkpoint, prove an entry and verify the whole store offline.
    Demo,
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

struct IngestSummary {
    totals: evidence_ingest::Totals,
    checkpoint: Option<String>,
}

fn ingest(
    log: &mut Log<SledStorage>,
    reader: impl BufRead,
    source: &LineSource,
    batch_size: usize,
    max_event_bytes: usize,
) -> anyhow::Result<IngestSummary> {
    let validator = Validator::new(Limits { max_event_bytes, ..Limits::default() });
    let mut intake = Intake::new(&validator, batch_size);
    ingest_lines(reader, source, &mut intake, log, max_event_bytes, |record, outcome| {
        if let (Outcome::Quarantined { .. }, Verdict::Rejected { rejection, .. }) = (outcome, &record.verdict) {
            for problem in rejection.problems() {
                eprintln!("{}: {problem}", record.origin);
            }
        } else if let Outcome::Quarantined { reason } = outcome {
            eprintln!("{}: {reason}", record.origin);
        }
    })?;
    let checkpoint = log.checkpoint_now()?;
    Ok(IngestSummary { totals: intake.totals(), checkpoint })
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

const EXAMPLE: &str = include_str!("../../examples/quickstart.ndjson");

fn demo() -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = tempfile_dir()?;
    let args =
        StoreArgs { data_dir: dir.clone(), signer_key: None, origin: "demo.evidence-ledger.local/quickstart".into() };
    let mut log = open_log(&args, true, CheckpointPolicy::default())?;
    println!("== Evidence Ledger quickstart, on a temporary store at {}", dir.display());
    println!("\n== Ingesting examples/quickstart.ndjson (bad lines are quarantined, never dropped)");
    let summary =
        ingest(&mut log, EXAMPLE.as_bytes(), &LineSource::File("examples/quickstart.ndjson".into()), 1000, 256 * 1024)?;
    let t = summary.totals;
    println!("accepted {}, duplicate {}, quarantined {}", t.accepted, t.duplicates, t.quarantined);
    println!("\n== Ingesting the same file again: idempotent");
    let again =
        ingest(&mut log, EXAMPLE.as_bytes(), &LineSource::File("examples/quickstart.ndjson".into()), 1000, 256 * 1024)?;
    let t = again.totals;
    println!("accepted {}, duplicate {}, quarantined {}", t.accepted, t.duplicates, t.quarantined);
    println!("\n== Status");
    print_status(&log, false)?;
    println!("\n== The signed checkpoint (C2SP tlog-checkpoint in a signed note)");
    print!("{}", summary.checkpoint.or(log.checkpoint_note(log.size())?).unwrap_or_default());
    let last = log.size().saturating_sub(1);
    println!("\n== Inclusion proof of entry {last}");
    println!("{}", serde_json::to_string_pretty(&proof_json(&log, last, None)?)?);
    println!("\n== Offline verification of the whole store");
    let report = audit(&log)?;
    println!(
        "OK: {} entries, chain and Merkle root match {} signed checkpoint(s); root {}",
        report.entries,
        report.checkpoints,
        B64.encode(report.root)
    );
    drop(log);
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
            let mut log = open_log(&cli.store, true, checkpoints.policy())?;
            let summary = if file == "-" {
                ingest(&mut log, std::io::stdin().lock(), &LineSource::Stdin, batch_size, max_event_bytes)?
            } else {
                let f = std::fs::File::open(&file).with_context(|| format!("Cannot open {file}"))?;
                let reader = std::io::BufReader::with_capacity(1 << 20, f);
                ingest(&mut log, reader, &LineSource::File(file.clone()), batch_size, max_event_bytes)?
            };
            let t = summary.totals;
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
            let log = open_log(&cli.store, true, config.checkpoints)?;
            evidence_ledger::serve::run(log, config)?;
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
