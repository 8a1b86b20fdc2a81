//! The `evidence` command line: what a user can type, as clap types. Nothing here acts.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use evidence_ledger::ledger::{IngestOptions, LedgerDir};
use evidence_ledger::query::ArtifactName;
use evidence_ledger::service::tokens::Role;
use evidence_ledger::service::ServeArgs;
use evidence_ledger::CheckpointPolicy;
use evidence_schemas::Limits;

#[derive(Parser, Debug)]
#[command(name = "evidence", version, about = "The Evidence Ledger: a tamper-evident record of AI delivery.")]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) store: StoreArgs,
    /// Ask the running `evidence serve` at this URL instead of opening the store (status,
    /// query, alerts, checkpoint, proof, consistency, gate, policy publish, ingest, export); the token
    /// comes from EVIDENCE_TOKEN.
    #[arg(long, env = "EVIDENCE_SERVER", global = true)]
    pub(crate) server: Option<String>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Args, Debug, Clone)]
pub(crate) struct StoreArgs {
    /// The ledger's data directory.
    #[arg(long, env = "EVIDENCE_DATA_DIR", default_value = "evidence-data", global = true)]
    pub(crate) data_dir: PathBuf,
    /// The checkpoint signer key file, which appending needs and reading does not (default:
    /// <data-dir>.key, beside the data directory, never inside it).
    #[arg(long = "signer-key", env = "EVIDENCE_SIGNER_KEY", global = true)]
    pub(crate) signer_key: Option<PathBuf>,
}

#[derive(Args, Debug, Clone, Copy)]
pub(crate) struct CheckpointArgs {
    /// Cut a checkpoint after this many new entries.
    #[arg(long, env = "EVIDENCE_CHECKPOINT_EVERY", default_value_t = CheckpointPolicy::DEFAULT_EVERY)]
    pub(crate) checkpoint_every: u64,
    /// Cut a checkpoint when this many seconds have passed with new entries.
    #[arg(long, env = "EVIDENCE_CHECKPOINT_INTERVAL_SECS", default_value_t = CheckpointPolicy::DEFAULT_INTERVAL_SECS)]
    pub(crate) checkpoint_interval_secs: u64,
}

impl CheckpointArgs {
    pub(crate) fn policy(self) -> CheckpointPolicy {
        CheckpointPolicy::new(Some(self.checkpoint_every), Some(self.checkpoint_interval_secs))
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Create a new, empty ledger at --data-dir (a new or empty directory), signed by the key
    /// at --signer-key (made now if the file does not exist); print the verifier key to publish.
    Init {
        /// The log's origin: a unique name, such as "ledger.example.com/prod". It names every
        /// checkpoint, and the key.
        #[arg(long, env = "EVIDENCE_ORIGIN")]
        origin: String,
    },
    /// Write a new checkpoint signer key file (mode 0600) and print its verifier key.
    Keygen {
        /// The log's origin: a unique name, such as "ledger.example.com/prod".
        #[arg(long)]
        origin: String,
        /// Where to write the key (default: the --signer-key path, or <data-dir>.key).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The store's checkpoint signer key.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Validate NDJSON events (one per line) and append them; bad lines are quarantined and
    /// reported with their line numbers. Exit status 3 when any line was quarantined.
    Ingest {
        /// The NDJSON file, or "-" for standard input.
        #[arg(long)]
        file: String,
        /// Events per durable batch (1 to 100000).
        #[arg(long, default_value_t = IngestOptions::DEFAULT_BATCH_SIZE,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=IngestOptions::MAX_BATCH_SIZE as u64))]
        batch_size: usize,
        /// Largest accepted event in bytes (at most 16 MiB).
        #[arg(long, default_value_t = Limits::default().max_event_bytes,
              value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=IngestOptions::MAX_EVENT_BYTES as u64))]
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
        /// Print JSON: the origin, size, root and the note.
        #[arg(long)]
        json: bool,
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
        /// Print the proof as a C2SP tlog-proof file (c2sp.org/tlog-proof@v1: the entry's
        /// index, its inclusion path and the signed checkpoint), which offline checkers read.
        #[arg(long, conflicts_with = "json")]
        tlog_proof: bool,
    },
    /// Print the consistency proof between two checkpointed tree sizes: it shows that the
    /// larger tree extends the smaller one.
    Consistency {
        /// The earlier tree size.
        #[arg(long)]
        from: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// The later tree size (default: the latest checkpoint).
        #[arg(long)]
        to: Option<u64>,
    },
    /// Run the evidence service until SIGTERM or SIGINT: the HTTP API (intake, audit questions,
    /// proofs, metrics) on --listen, and Kafka ingest when brokers are configured; checkpoints
    /// are cut as it goes and rejected Kafka messages forwarded to a dead-letter topic.
    Serve(Box<ServeArgs>),
    /// A transparency-log witness (C2SP tlog-witness): cosigns the checkpoints of the logs it
    /// knows when they extend the last one it cosigned.
    Witness {
        #[command(subcommand)]
        command: WitnessCommand,
    },
    /// Bearer tokens for the HTTP API: each has a name and a role (reader, producer, admin).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Publish a governance policy: append a `registry.policy` event from a TOML or JSON file
    /// (`version = "..."` and a `[policy]` table; see `evidence_ledger::governance::policy`).
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
    /// List alerts in the order they were opened (`--json`: one JSON object a line). An alert
    /// is open, or resolved by evidence dated before its violation that arrived later.
    Alerts {
        /// Only alerts about entries whose event time is at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only this rule (e.g. gate.skipped).
        #[arg(long)]
        rule: Option<String>,
        /// Only alerts with this status: open or resolved.
        #[arg(long)]
        status: Option<String>,
        /// One JSON object a line.
        #[arg(long)]
        json: bool,
        /// Watch a running service (--server): print each alert change (create, update,
        /// close) as it happens, until interrupted.
        #[arg(long, conflicts_with_all = ["since", "rule", "status"])]
        follow: bool,
        /// With --follow: start at change N of the outbox (0: every change since the ledger
        /// began) instead of now.
        #[arg(long, requires = "follow", value_name = "N")]
        from: Option<u64>,
    },
    /// Write an evidence bundle for auditors: the entries of one scope and every entry their
    /// answers and alerts cite, each with its C2SP tlog-proof against the latest signed
    /// checkpoint, the verifier keys, the answers as JSON, report.html and a manifest. Check
    /// it with `evidence-verify bundle`. Cuts a checkpoint first when entries are unsigned.
    Export(ExportArgs),
    /// Drop every view and alert and derive them again from the log.
    Rebuild {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the demo on a temporary store: ingest the example scenarios, print alerts as they
    /// fire, answer the audit questions for the seed case, sign a checkpoint and verify the
    /// store offline.
    Demo {
        /// Keep the demo's store (and its key, beside it) in this new directory, so that the
        /// commands it prints can be run again on it.
        #[arg(long)]
        keep: Option<PathBuf>,
    },
    /// Check NDJSON events against the contract without a store: every problem with its line
    /// and JSON pointer. Exit status 0 when all are valid, 3 when any is not.
    Validate {
        /// The NDJSON file, or "-" for standard input.
        file: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a completion script for a shell: bash, zsh, fish, elvish or powershell.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum KeyCommand {
    /// Hand checkpoint signing over to a new key: append a `ledger.key` entry naming it, cut a
    /// checkpoint covering that entry signed by both keys, and sign with the new key from then
    /// on (pass it as --signer-key afterwards). Needs the current key as --signer-key.
    Rotate {
        /// The new key file: used if it exists, made (mode 0600) with the store's origin if not.
        #[arg(long)]
        new_key: PathBuf,
        /// Why, recorded in the log.
        #[arg(long)]
        reason: Option<String>,
        /// Who rotates (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum PolicyCommand {
    /// Append the policy in FILE as a `registry.policy` event; it is in force from that entry on.
    Publish {
        /// A `.toml` or `.json` policy file.
        file: PathBuf,
        /// Print JSON: the version and its entry.
        #[arg(long)]
        json: bool,
        /// Who publishes it (default: $USER).
        #[arg(long)]
        actor: Option<String>,
    },
    /// Print the policy in force (JSON).
    Show {
        /// Print JSON (the only form; accepted for symmetry with the other commands).
        #[arg(long)]
        json: bool,
    },
    /// Validate a policy file without publishing it: print the policy it would put in force
    /// (controls it leaves out keep the default's value) and what it changes against the
    /// policy in force at --data-dir (or the default, where there is no ledger). Exit status
    /// 0 when valid, 1 with every problem when not.
    Check {
        /// A `.toml` or `.json` policy file.
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum TokenCommand {
    /// Create a token and print it, alone on the first line of standard output, once: only
    /// its hash is stored.
    Create {
        /// Its name, which logs and quarantine records show (letters, digits, '-', '_', '.').
        #[arg(long)]
        name: String,
        /// What it may do: reader (every GET), producer (POST /v1/events) or admin (everything).
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List the tokens: name, role, creation time (never the token).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: a running service refuses it from its next request.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum WitnessCommand {
    /// Make a witness key: the private key to a new file (mode 0600), the witness key, which
    /// logs and auditors check cosignatures with, to standard output.
    Keygen {
        /// The witness's name (a schema-less URL, e.g. witness.example.com/w1).
        #[arg(long)]
        name: String,
        /// Where to write the private key.
        #[arg(long)]
        key: std::path::PathBuf,
    },
    /// Serve `POST /add-checkpoint` (C2SP tlog-witness) until SIGTERM or SIGINT.
    Serve {
        /// Where to listen, HOST:PORT (port 0 picks a free one, logged).
        #[arg(long, default_value = "127.0.0.1:8800")]
        listen: String,
        /// The witness's private key file (from `evidence witness keygen`).
        #[arg(long)]
        key: std::path::PathBuf,
        /// A log it witnesses: ORIGIN=VERIFIER-KEY (repeatable; the key's name is the origin).
        #[arg(long = "log", value_name = "ORIGIN=VERIFIER-KEY", required = true)]
        logs: Vec<String>,
        /// Where it keeps the latest checkpoint it cosigned of each log.
        #[arg(long)]
        state: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum GateCommand {
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
pub(crate) enum QueryCommand {
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
    /// The artifacts the ledger knows, to ask `query artifact` about.
    Artifacts {
        /// One kind (model, prompt, tool_schema, index, route, dataset, config).
        #[arg(long)]
        kind: Option<String>,
        /// Names starting with this.
        #[arg(long)]
        name: Option<String>,
        /// Versions with this digest.
        #[arg(long)]
        digest: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Every app and env the ledger saw a deploy to, with what is live in each now.
    Apps {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Which gateway requests went to which providers, by env and data class, in a time
    /// range, and how many broke the approved routes (`--violations` lists them).
    Requests {
        /// Requests dated at or after this: RFC 3339 with an offset, or a span before now
        /// such as 720h (counted from the start of its minute).
        #[arg(long)]
        from: String,
        /// Requests dated before this (default: now; counted to the end of its minute).
        #[arg(long)]
        to: Option<String>,
        /// Only this env.
        #[arg(long)]
        env: Option<String>,
        /// Only this data class.
        #[arg(long)]
        data_class: Option<String>,
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
        /// List the requests that broke the approved routes.
        #[arg(long)]
        violations: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// What `query requests` asks, its times read.
pub(crate) struct RequestArgs {
    /// The query.
    pub query: evidence_ledger::query::RequestQuery,
    /// Whether to list the violations.
    pub violations: bool,
}

impl StoreArgs {
    /// The ledger directory these flags name.
    pub(crate) fn dir(&self) -> LedgerDir {
        LedgerDir { data_dir: self.data_dir.clone(), signer_key: self.signer_key.clone() }
    }
}

/// `evidence export`: where, and exactly one scope.
#[derive(Args, Debug, Clone)]
pub(crate) struct ExportArgs {
    /// Where to write: a new directory, or a file ending in .tar.gz.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Entries dated at or after this time (with --to): RFC 3339, `now` or a span (`24h`).
    #[arg(long, requires = "to")]
    pub(crate) from: Option<String>,
    /// Entries dated before this time (with --from).
    #[arg(long, requires = "from")]
    pub(crate) to: Option<String>,
    /// One artifact's history and alerts: KIND/NAME@VERSION.
    #[arg(long)]
    pub(crate) artifact: Option<String>,
    /// What was live in this app (with --env and --at) and its alerts.
    #[arg(long, requires = "env")]
    pub(crate) app: Option<String>,
    /// The app's env.
    #[arg(long, requires = "app")]
    pub(crate) env: Option<String>,
    /// With --app: when (default now).
    #[arg(long, requires = "app")]
    pub(crate) at: Option<String>,
    /// One alert and its evidence, by id.
    #[arg(long)]
    pub(crate) alert: Option<String>,
    /// The checkpoint file of an earlier bundle: this bundle carries the consistency proof
    /// from it, so that an auditor can check the log was only appended to since.
    #[arg(long)]
    pub(crate) since_checkpoint: Option<PathBuf>,
    /// Print what was written as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

impl ExportArgs {
    /// The scope flags as the API names them.
    pub(crate) fn params(&self) -> evidence_ledger::export::ScopeParams {
        evidence_ledger::export::ScopeParams {
            from: self.from.clone(),
            to: self.to.clone(),
            artifact: self.artifact.clone(),
            app: self.app.clone(),
            env: self.env.clone(),
            at: self.at.clone(),
            alert: self.alert.clone(),
        }
    }
}
