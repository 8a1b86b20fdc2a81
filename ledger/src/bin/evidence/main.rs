//! `evidence`: the Evidence Ledger command line. It parses, calls the library, and prints;
//! library errors become one sentence a user can act on. Exit status 0 is success, 1 an
//! error, 3 an ingest that quarantined records, 4 a gate that denies.

mod cli;
mod client;
mod export;
mod progress;
mod remote;
mod report;
mod witness;

use std::io::{BufRead, IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use clap::Parser;
use evidence_ingest::file::LineSource;
use evidence_ledger::governance::{policy, Rule, Status as AlertStatus};
use evidence_ledger::ledger::{ingest, Access, IngestOptions, Ledger, Report};
use evidence_ledger::query::{self, Decision};
use evidence_ledger::text::esc;
use evidence_ledger::{keys, CheckpointPolicy, SledStorage};

use evidence_ledger::service::tokens::TokenFile;

/// mimalloc rather than the system's allocator: a profile of `evidence ingest` on gateway
/// traffic spent about a quarter of its CPU in glibc's malloc and free (per-event JSON values,
/// strings and sled's nodes, allocated on one thread and freed on another). Built without its
/// transparent huge pages (the workspace's `no_thp` feature): with them, every page it took
/// fresh from the system faulted in 2 MB zeroed at once, and peak memory was a fifth higher for
/// no speed (`evidence ingest` of 200,000 gateway requests 275 -> 222 MB, `serve` under HTTP
/// intake 300 -> 236 MB, at the same rates).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::cli::{Cli, Command, GateCommand, KeyCommand, PolicyCommand, QueryCommand, StoreArgs, TokenCommand};
use crate::report::{print_proof, print_status, StatusReport};

/// Standard output for what the command answers. A failed write keeps its kind (a closed pipe,
/// a full disk) and says where it happened.
struct Out(std::io::StdoutLock<'static>);

impl std::io::Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(|e| std::io::Error::new(e.kind(), format!("cannot write to standard output: {e}")))
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(|e| std::io::Error::new(e.kind(), format!("cannot write to standard output: {e}")))
    }
}

fn out() -> Out {
    Out(std::io::stdout().lock())
}

/// Whether `e` is standard output closed under us (`evidence alerts | head`).
fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe))
}

/// A time as people write it: RFC 3339 with an offset, `now`, or a span before now (`24h`).
fn parse_time(text: &str) -> anyhow::Result<chrono::DateTime<chrono::FixedOffset>> {
    Ok(evidence_ledger::when::parse_time(text, chrono::Utc::now())?)
}

fn print_json_or_text<T: serde::Serialize + std::fmt::Display>(answer: &T, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(out(), "{}", serde_json::to_string_pretty(answer)?)?;
    } else {
        write!(out(), "{answer}")?;
    }
    Ok(())
}

/// Opens the ledger for reading (no store is created).
fn open_reading(store: &StoreArgs) -> anyhow::Result<Ledger<SledStorage>> {
    Ok(store.dir().open(Access::Read, CheckpointPolicy::default(), None)?)
}

fn ingest_command(
    store: &StoreArgs,
    file: &str,
    options: IngestOptions,
    policy: CheckpointPolicy,
) -> anyhow::Result<ExitCode> {
    // `evidence ingest` keeps standard output for its summary line: alerts go to standard
    // error, beside the quarantine reports and the progress line (on a terminal).
    let progress = std::sync::Arc::new(std::sync::Mutex::new(progress::Progress::on_stderr()));
    let shown = std::sync::Arc::clone(&progress);
    let say = move |line: &str| shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner).say(line);
    let alert = say.clone();
    let mut ledger = store.dir().open(Access::Append, policy, Some(Box::new(move |a| alert(&format!("ALERT {a}")))))?;
    // Read on the thread that validates, while this one appends: the reader is sent there.
    let reader: Box<dyn BufRead + Send> = if file == "-" {
        Box::new(std::io::BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("Cannot open {file}"))?;
        Box::new(std::io::BufReader::with_capacity(1 << 20, f))
    };
    let source = if file == "-" { LineSource::Stdin } else { LineSource::File(file.to_string()) };
    let t = ingest(&mut ledger, reader, &source, options, |r| match r {
        Report::Problem(problem) => say(problem),
        Report::Progress(t) => progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner).show(
            t.accepted,
            t.duplicates,
            t.quarantined,
        ),
    })?;
    progress.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    writeln!(out(), "accepted {}, duplicate {}, quarantined {}", t.accepted, t.duplicates, t.quarantined)?;
    Ok(if t.quarantined > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

fn status_command(store: &StoreArgs, json: bool) -> anyhow::Result<()> {
    let log = store.dir().open_log(Access::Read, CheckpointPolicy::default())?;
    let sinks = evidence_ledger::service::siem::stored_status(log.store())?;
    print_status(&StatusReport { log: log.status(), sinks }, json)
}

fn init_command(store: &StoreArgs, origin: &str) -> anyhow::Result<()> {
    let dir = store.dir();
    let created = dir.init(origin)?;
    let key = created.key_path.display();
    let made = if created.new_key { "made now, mode 0600" } else { "an existing file" };
    eprintln!("Created a ledger at {} for origin {}.", dir.data_dir.display(), esc(origin));
    eprintln!("Its signer key is {key} ({made}): keep it secret and out of any copy of the store you hand over.");
    eprintln!("Publish its verifier key, which auditors verify checkpoints with:");
    writeln!(out(), "{}", created.verifier_key)?;
    Ok(())
}

fn rotate_command(
    store: &StoreArgs,
    new_key: &std::path::Path,
    reason: Option<&str>,
    actor: Option<String>,
) -> anyhow::Result<()> {
    let mut ledger = store.dir().open(Access::Append, CheckpointPolicy::default(), None)?;
    let key = if new_key.exists() {
        keys::read(new_key)?
    } else {
        let key = keys::generate(ledger.log().origin())?;
        keys::write_new(new_key, &key)?;
        key
    };
    let verifier = key.verifier();
    let actor = actor.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let rotated = ledger.rotate_key(key, &actor, &time, reason)?;
    eprintln!(
        "Rotated the signer key at entry {}; the checkpoint of size {} covering it carries both keys' signatures.",
        rotated.seq,
        ledger.log().latest_size()
    );
    eprintln!("From now on pass --signer-key {} to append. Publish the new verifier key:", new_key.display());
    writeln!(out(), "{verifier}")?;
    Ok(())
}

fn publish_command(store: &StoreArgs, file: &std::path::Path, actor: Option<String>, json: bool) -> anyhow::Result<()> {
    let mut ledger = store.dir().open(
        Access::Append,
        CheckpointPolicy::default(),
        Some(Box::new(|a| {
            let _ = writeln!(out(), "ALERT {a}");
        })),
    )?;
    let data = policy::read_file(file)?;
    let actor = actor.or_else(|| std::env::var("USER").ok()).unwrap_or_else(|| "unknown".into());
    let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let seq = ledger.publish_policy(&data, &actor, &time, &file.display().to_string())?;
    ledger.checkpoint_now()?;
    let version = ledger.views().state().policy().version.clone();
    print_published(&version, seq, json)
}

fn rebuild_command(store: &StoreArgs, json: bool) -> anyhow::Result<()> {
    let mut ledger = open_reading(store)?;
    let started = Instant::now();
    let entries = ledger.rebuild()?;
    let alerts = query::alerts(ledger.store(), None, None, None)?;
    let open = alerts.iter().filter(|a| a.status == AlertStatus::Open).count();
    let secs = started.elapsed().as_secs_f64();
    if json {
        let report = serde_json::json!({ "entries": entries, "seconds": secs, "alerts": alerts.len(), "open": open });
        writeln!(out(), "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        let n = alerts.len();
        writeln!(out(), "Rebuilt the views from {entries} entries in {secs:.1} s: {n} alert(s), {open} open.")?;
    }
    Ok(())
}

fn checkpoint_command(store: &StoreArgs, cut: bool, json: bool) -> anyhow::Result<()> {
    let access = if cut { Access::Append } else { Access::Read };
    let mut log = store.dir().open_log(access, CheckpointPolicy::default())?;
    if cut {
        log.checkpoint_now()?;
    }
    let size = log.latest_checkpoint().map(|c| c.size).context("The log has no checkpoint yet.")?;
    print_checkpoint(&log.checkpoint_note(size)?.context("The latest checkpoint is missing.")?, json)
}

/// What `policy publish` prints.
fn print_published(version: &str, seq: u64, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(out(), "{}", serde_json::to_string_pretty(&serde_json::json!({ "version": version, "seq": seq }))?)?;
    } else {
        let version = esc(version);
        writeln!(out(), "Published policy {version} as entry {seq}; it is in force from that entry on.")?;
    }
    Ok(())
}

/// What `checkpoint` prints: the signed note as it is, or its parts as JSON.
fn print_checkpoint(note: &str, json: bool) -> anyhow::Result<()> {
    if !json {
        write!(out(), "{note}")?;
        return Ok(());
    }
    let parsed = evidence_verifier::note::Note::parse(note.as_bytes()).context("The checkpoint note does not parse")?;
    let cp = evidence_verifier::Checkpoint::parse(&parsed.text).context("The checkpoint does not parse")?;
    use base64::Engine as _;
    let root = base64::engine::general_purpose::STANDARD.encode(cp.root);
    let answer = serde_json::json!({ "origin": cp.origin, "size": cp.size, "root": root, "note": note });
    writeln!(out(), "{}", serde_json::to_string_pretty(&answer)?)?;
    Ok(())
}

/// `evidence validate`: every line checked against the contract, no store.
fn validate_command(file: &str, json: bool) -> anyhow::Result<ExitCode> {
    let reader: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::io::BufReader::new(std::fs::File::open(file).with_context(|| format!("Cannot open {file}"))?))
    };
    let validator = evidence_schemas::Validator::default();
    let (mut valid, mut problems) = (0u64, Vec::new());
    let mut invalid = 0u64;
    for (i, line) in reader.split(b'\n').enumerate() {
        let mut line = line.with_context(|| format!("Cannot read {file}"))?;
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match validator.validate(&line) {
            Ok(_) => valid += 1,
            Err(rejection) => {
                invalid += 1;
                for p in rejection.problems() {
                    problems.push(serde_json::json!({ "line": i + 1, "pointer": p.pointer, "problem": p.message }));
                }
            }
        }
    }
    if json {
        let report = serde_json::json!({ "valid": valid, "invalid": invalid, "problems": problems });
        writeln!(out(), "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        for p in &problems {
            let at = p["pointer"].as_str().filter(|s| !s.is_empty()).map(|s| format!("{s}: ")).unwrap_or_default();
            let line = format!("{file}:{}: {at}{}", p["line"], p["problem"].as_str().unwrap_or(""));
            writeln!(out(), "{}", esc(&line))?;
        }
        writeln!(out(), "valid {valid}, invalid {invalid}")?;
    }
    Ok(if invalid > 0 { ExitCode::from(3) } else { ExitCode::SUCCESS })
}

fn policy_check_command(store: &StoreArgs, file: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let data = policy::read_file(file)?;
    let dir = store.dir();
    let in_force = if dir.exists() {
        dir.open(Access::Read, CheckpointPolicy::default(), None)?.views().state().policy().clone()
    } else {
        eprintln!("There is no ledger at {}: comparing with the default policy.", dir.data_dir.display());
        evidence_ledger::governance::model::PolicyInForce::default()
    };
    match policy::check(&data, &in_force.policy, &in_force.version) {
        Ok(report) => print_json_or_text(&report, json),
        Err(problems) => {
            let problems: Vec<String> = problems.iter().map(|p| esc(&p.to_string()).to_string()).collect();
            anyhow::bail!("{} is not a valid policy:\n  {}", file.display(), problems.join("\n  "))
        }
    }
}

/// An artifact kind by its name in the contract.
fn parse_kind(kind: &str) -> anyhow::Result<evidence_schemas::ArtifactKind> {
    serde_json::from_value(serde_json::Value::String(kind.to_string())).map_err(|_| {
        anyhow::anyhow!("{kind:?} is not an artifact kind (model, prompt, tool_schema, index, route, dataset, config)")
    })
}

/// Question 1's answer; an empty one says so.
fn print_state(answer: &query::LiveAnswer, json: bool) -> anyhow::Result<()> {
    if answer.artifacts.is_empty() && !json {
        writeln!(out(), "Nothing was deployed to {} in {} by {}.", esc(&answer.app), esc(&answer.env), answer.at)?;
        return Ok(());
    }
    print_json_or_text(answer, json)
}

fn query_command(store: &StoreArgs, command: QueryCommand) -> anyhow::Result<()> {
    let ledger = open_reading(store)?;
    let store = ledger.store();
    match command {
        QueryCommand::State { app, env, at, json } => {
            let at = match at {
                Some(t) => parse_time(&t)?,
                None => chrono::Utc::now().fixed_offset(),
            };
            let answer =
                query::state(store, &app, &env, at)?.unwrap_or_else(|| query::LiveAnswer::empty(&app, &env, at));
            print_state(&answer, json)
        }
        QueryCommand::Artifact { artifact, json } => {
            let answer = query::artifact(store, &artifact)?
                .with_context(|| format!("The ledger has no record of {artifact}."))?;
            print_json_or_text(&answer, json)
        }
        QueryCommand::Artifacts { kind, name, digest, json } => {
            let kind = kind.as_deref().map(parse_kind).transpose()?;
            let search = query::ArtifactSearch { kind, name, digest };
            let list = query::artifacts(store, &search, None, usize::MAX)?;
            print_json_or_text(&list, json)
        }
        QueryCommand::Apps { json } => {
            print_json_or_text(&query::apps(store, chrono::Utc::now().timestamp_micros())?, json)
        }
        QueryCommand::Training { job, json } => {
            let answer =
                query::training(store, &job)?.with_context(|| format!("The ledger has no training job {job}."))?;
            print_json_or_text(&answer, json)
        }
        QueryCommand::Requests { json, .. } => {
            let args = request_args(&command)?;
            let page = args.violations.then_some(query::ViolationPage { cursor: None, limit: usize::MAX });
            print_json_or_text(&query::requests(store, &args.query, page.as_ref())?, json)
        }
    }
}

/// The question `query requests` asks, its times read against this machine's clock.
fn request_args(command: &QueryCommand) -> anyhow::Result<cli::RequestArgs> {
    let QueryCommand::Requests { from, to, env, data_class, provider, violations, .. } = command else {
        anyhow::bail!("not a requests query")
    };
    let from = parse_time(from)?;
    let to = match to {
        Some(t) => parse_time(t)?,
        None => chrono::Utc::now().fixed_offset(),
    };
    anyhow::ensure!(from <= to, "--to ({}) is before --from ({})", to.to_rfc3339(), from.to_rfc3339());
    let query =
        query::RequestQuery { from, to, env: env.clone(), data_class: data_class.clone(), provider: provider.clone() };
    Ok(cli::RequestArgs { query, violations: *violations })
}

/// What `evidence alerts` selects.
struct AlertFilter {
    since: Option<String>,
    rule: Option<String>,
    status: Option<String>,
}

fn alerts_command(store: &StoreArgs, filter: AlertFilter, json: bool) -> anyhow::Result<()> {
    let rule = filter.rule.as_deref().map(str::parse::<Rule>).transpose()?;
    let status = filter.status.as_deref().map(str::parse::<AlertStatus>).transpose().map_err(anyhow::Error::msg)?;
    let since = filter.since.as_deref().map(parse_time).transpose()?;
    let ledger = open_reading(store)?;
    print_alerts(&query::alerts(ledger.store(), since, rule, status)?, json, true)
}

/// Prints alerts, one a line (`--json`: one JSON object a line); `last` says whether no more
/// follow, so that an empty answer says so ("No alerts.") in text.
fn print_alerts(alerts: &[evidence_ledger::Alert], json: bool, empty_says_so: bool) -> anyhow::Result<()> {
    for alert in alerts {
        if json {
            writeln!(out(), "{}", serde_json::to_string(alert)?)?;
        } else {
            writeln!(out(), "{alert}")?;
        }
    }
    if alerts.is_empty() && empty_says_so && !json {
        writeln!(out(), "No alerts.")?;
    }
    Ok(())
}

fn token_command(store: &StoreArgs, command: TokenCommand) -> anyhow::Result<()> {
    let dir = store.dir();
    if !dir.exists() {
        return Err(evidence_ledger::ledger::OpenError::NotALedger { path: dir.data_dir.clone() }.into());
    }
    let file = TokenFile::of(&dir.data_dir);
    match command {
        TokenCommand::Create { name, role } => {
            let token = file.create(&name, role)?;
            writeln!(out(), "{token}")?;
            eprintln!(
                "Created the {role} token {name:?}. It is shown this once; only its hash is kept in {}.",
                file.path().display()
            );
        }
        TokenCommand::List { json } => {
            let tokens = file.list()?;
            if json {
                writeln!(out(), "{}", serde_json::to_string_pretty(&tokens)?)?;
            } else if tokens.is_empty() {
                writeln!(out(), "No tokens.")?;
            } else {
                for t in tokens {
                    writeln!(out(), "{:<24} {:<9} created {}", t.name, t.role, t.created)?;
                }
            }
        }
        TokenCommand::Revoke { name } => {
            let gone = file.revoke(&name)?;
            writeln!(out(), "Revoked the {} token {:?}.", gone.role, gone.name)?;
        }
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Some(server) = cli.server.as_deref().filter(|_| remote::handles(&cli.command)) {
        return remote::run(server, cli.command);
    }
    let store = &cli.store;
    match cli.command {
        Command::Init { origin } => init_command(store, &origin)?,
        Command::Key { command: KeyCommand::Rotate { new_key, reason, actor } } => {
            rotate_command(store, &new_key, reason.as_deref(), actor)?
        }
        Command::Keygen { origin, out: path } => {
            let path = path.unwrap_or_else(|| store.dir().key_path());
            let key = keys::generate(&origin)?;
            keys::write_new(&path, &key)?;
            eprintln!("Wrote the signer key to {} (mode 0600). Its verifier key:", path.display());
            writeln!(out(), "{}", key.verifier())?;
        }
        Command::Ingest { file, batch_size, max_event_bytes, checkpoints } => {
            return ingest_command(store, &file, IngestOptions { batch_size, max_event_bytes }, checkpoints.policy());
        }
        Command::Status { json } => status_command(store, json)?,
        Command::Checkpoint { cut, json } => checkpoint_command(store, cut, json)?,
        Command::Proof { seq, size, json, tlog_proof } => {
            let proof = store.dir().open_log(Access::Read, CheckpointPolicy::default())?.inclusion_proof(seq, size)?;
            print_proof(&proof, json, tlog_proof)?;
        }
        Command::Consistency { from, to, json } => {
            let proof = store.dir().open_log(Access::Read, CheckpointPolicy::default())?.consistency(from, to)?;
            print_json_or_text(&proof, json)?;
        }
        Command::Serve(args) => {
            let config = args.resolve(&store.data_dir)?;
            let log_alert = Some(Box::new(evidence_ledger::service::log_alert) as _);
            let ledger = store.dir().open(Access::Append, config.checkpoints, log_alert)?;
            evidence_ledger::service::run(ledger, config)?;
        }
        Command::Token { command } => token_command(store, command)?,
        Command::Export(args) => export::local(store, &args)?,
        Command::Witness { command } => witness::run(command)?,
        Command::Policy { command: PolicyCommand::Publish { file, json, actor } } => {
            publish_command(store, &file, actor, json)?
        }
        Command::Policy { command: PolicyCommand::Check { file, json } } => policy_check_command(store, &file, json)?,
        Command::Policy { command: PolicyCommand::Show { json: _ } } => {
            writeln!(out(), "{}", serde_json::to_string_pretty(open_reading(store)?.views().state().policy())?)?;
        }
        Command::Gate { command: GateCommand::Training { job, base, batches, json } } => {
            let decision = query::training_gate(open_reading(store)?.store(), &job, &base, &batches)?;
            print_json_or_text(&decision, json)?;
            if decision.decision == Decision::Deny {
                return Ok(ExitCode::from(4));
            }
        }
        Command::Query { command } => query_command(store, command)?,
        Command::Alerts { follow: true, .. } => anyhow::bail!(
            "--follow watches a running service: name it with --server URL or EVIDENCE_SERVER (the service's data \
             directory names its URL in {})",
            evidence_ledger::service::ANNOUNCE_FILE
        ),
        Command::Alerts { since, rule, status, json, .. } => {
            alerts_command(store, AlertFilter { since, rule, status }, json)?
        }
        Command::Rebuild { json } => rebuild_command(store, json)?,
        Command::Demo { keep } => evidence_ledger::demo::run(&mut out(), keep.as_deref())?,
        Command::Validate { file, json } => return validate_command(&file, json),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "evidence", &mut out());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The error and its causes in one line, leaving out a cause whose words the line already
/// holds (most errors name their cause in their own message).
fn sentence(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if !line.contains(&cause) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&cause);
        }
    }
    line
}

/// When `e` is the store's lock held by a running `evidence serve`, how to ask it instead.
fn held_by_service(data_dir: &std::path::Path, e: &anyhow::Error) -> Option<String> {
    let locked = e.chain().any(|c| {
        c.downcast_ref::<evidence_ledger::store::StorageError>()
            .is_some_and(|s| s.kind == evidence_ledger::store::StorageErrorKind::Locked)
    });
    // The file names the service; the lock file names who holds the store now. A service that
    // crashed left its file behind, and another process may hold the store: say nothing then.
    let lock = data_dir.join(evidence_verifier::layout::LOG_DIR).join(evidence_ledger::store::LOCK_FILE);
    let holder: Option<u32> = std::fs::read_to_string(lock).ok().and_then(|t| t.trim().parse().ok());
    let service = evidence_ledger::service::announced(data_dir).filter(|s| locked && holder == Some(s.pid))?;
    Some(format!(
        "`evidence serve` (process {}) holds this ledger and answers at {}: run the command with --server {} (or EVIDENCE_SERVER={}) and a token in EVIDENCE_TOKEN.",
        service.pid, service.url, service.url, service.url
    ))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sled=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into a file or a pipe.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let data_dir = cli.store.data_dir.clone();
    match run(cli).and_then(|code| out().flush().map(|()| code).map_err(anyhow::Error::from)) {
        Ok(code) => code,
        // The reader went away: stop quietly, with the status a shell gives a command that a
        // closed pipe stopped (128 + SIGPIPE).
        Err(e) if closed_pipe(&e) => ExitCode::from(141),
        Err(e) => {
            eprintln!("error: {}", sentence(&e));
            if let Some(hint) = held_by_service(&data_dir, &e) {
                eprintln!("{hint}");
            }
            ExitCode::from(1)
        }
    }
}
