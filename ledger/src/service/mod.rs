//! The service: `evidence serve`. The HTTP API (intake, the audit questions, the log, proofs,
//! metrics) always; Kafka ingest when brokers are configured. One writer thread owns the
//! ledger (`writer`): every source appends through it, grouped into durable batches, and it
//! cuts checkpoints and forwards dead letters between rounds. Alerts are logged and counted
//! as they are raised. On SIGTERM or SIGINT: stop accepting, finish requests in flight (within
//! a grace period), store the Kafka batch in hand, flush, checkpoint, exit 0. It runs on any
//! [`Storage`], so it can be tested on the in-memory engine too.
//!
//! Files: `config` (flags, environment, file, defaults), `writer` (the one writer, group
//! commit), `http/` (the API), `tokens` (bearer tokens and roles), `dead_letters` (the
//! outbox of rejected messages), `siem/` (alerts to the SIEM: Kafka, syslog, HEC). This module
//! wires sources to the writer; nothing appends otherwise.

pub mod audit;
mod config;
mod dead_letters;
pub mod http;
mod pace;
pub mod siem;
pub mod tokens;
pub mod witnesses;
pub mod writer;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use evidence_ingest::intake::validation_threads;
use evidence_ingest::kafka::{self, position_name, KafkaSourceError, Positions};
use evidence_schemas::Validator;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rdkafka::producer::FutureProducer;
use rdkafka::ClientConfig;

pub use self::config::{ConfigError, HttpConfig, ServeArgs, ServeConfig, ANNOUNCE_FILE, DEFAULT_LISTEN};
pub use self::dead_letters::DeadLetterError;
use self::http::{Api, Validation};
use self::tokens::{TokenError, Tokens};
use self::writer::{WriterError, WriterSink};
use crate::governance::Alert;
use crate::ledger::Ledger;
use crate::log::{read_position, LogError};
use crate::store::Storage;

/// How long requests in flight may take to finish once a stop is asked for.
pub const GRACE: Duration = Duration::from_secs(10);

/// Why the service stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The async runtime could not start.
    #[error("cannot start the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The listen address could not be bound.
    #[error("Cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] http::TlsError),
    /// The tokens file could not be read.
    #[error(transparent)]
    Tokens(#[from] TokenError),
    /// The dead-letter producer could not be made.
    #[error("Cannot create the dead-letter producer: {0}")]
    Producer(#[from] rdkafka::error::KafkaError),
    /// Kafka ingest stopped.
    #[error("Kafka ingest stopped: {0}")]
    Kafka(#[from] KafkaSourceError<WriterError>),
    /// The final checkpoint could not be cut.
    #[error("the final checkpoint could not be cut: {0}")]
    Checkpoint(#[from] LogError),
    /// A SIEM sink could not start.
    #[error("Cannot start a SIEM sink: {0}")]
    Siem(#[from] siem::SinkError),
    /// The witness submitter could not start.
    #[error("Cannot start submitting to witnesses: {0}")]
    Witnesses(String),
    /// The writer thread panicked.
    #[error("the writer thread failed: {0}")]
    Writer(String),
    /// The threads that validate intake bodies could not start.
    #[error("cannot start the validation threads: {0}")]
    Validation(std::io::Error),
}

/// Logs and counts an alert as it is raised (the SIEM sinks read the stored alerts).
pub fn log_alert(alert: &Alert) {
    metrics::counter!("evidence_alerts_total", "rule" => alert.rule.to_string(), "status" => alert.status.name())
        .increment(1);
    tracing::warn!(
        message = "Alert raised.",
        id = %alert.id,
        rule = %alert.rule,
        severity = ?alert.severity,
        entries = ?alert.entries,
        explanation = %alert.explanation
    );
}

/// The process's Prometheus registry, installed as the `metrics` recorder on first use.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let seconds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
            let events = [1.0, 10.0, 100.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &seconds)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_events".into()), &events))
                .expect("bucket lists are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!(message = "Another metrics recorder is installed; /metrics shows none of the ledger's.");
            }
            handle
        })
        .clone()
}

fn dead_letter_producer(config: &ServeConfig) -> Result<Option<(FutureProducer, String)>, ServeError> {
    let (Some(topic), Some(kafka)) = (&config.dead_letter_topic, &config.kafka) else { return Ok(None) };
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &kafka.brokers).set("enable.idempotence", "true");
    for (k, v) in &kafka.settings {
        client.set(k, v);
    }
    Ok(Some((client.create()?, topic.clone())))
}

/// Completes on SIGTERM or SIGINT. Should the SIGTERM handler not install, that is logged and
/// SIGINT alone stops the service.
async fn shutdown() {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let mut term = match term {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(message = "Cannot handle SIGTERM; only SIGINT stops the service.", %error);
            let _ = tokio::signal::ctrl_c().await;
            return tracing::info!(message = "SIGINT: stopping.");
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(message = "SIGTERM: stopping."),
        _ = tokio::signal::ctrl_c() => tracing::info!(message = "SIGINT: stopping."),
    }
}

/// The writer's upkeep between rounds: checkpoints when due, dead letters when configured.
fn upkeep<S: Storage>(dead_letters: Option<(FutureProducer, String)>) -> writer::Upkeep<S> {
    let runtime = tokio::runtime::Handle::current();
    Box::new(move |ledger: &mut Ledger<S>| {
        if let Err(error) = ledger.maybe_checkpoint() {
            tracing::error!(message = "Failed to cut a checkpoint.", %error);
        }
        if let Some((producer, topic)) = &dead_letters {
            if let Err(error) = dead_letters::forward(ledger, producer, topic, &runtime) {
                tracing::warn!(message = "Failed to forward dead letters; will retry.", %error);
            }
        }
    })
}

/// Waits for the writer thread to hand the ledger back.
async fn join<S: Storage>(
    thread: std::thread::JoinHandle<Result<Ledger<S>, LogError>>,
) -> Result<Ledger<S>, ServeError> {
    let joined =
        tokio::task::spawn_blocking(move || thread.join()).await.map_err(|e| ServeError::Writer(e.to_string()))?;
    Ok(joined.map_err(|_| ServeError::Writer("it panicked".into()))??)
}

/// How a running service is named to other commands on the same data directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Announcement {
    /// The service's process id.
    pub pid: u32,
    /// Its API's base URL.
    pub url: String,
}

/// Writes the service's process id and URL to `path` (best effort: a failure is logged).
fn announce<'p>(path: Option<&'p std::path::Path>, url: &str) -> Option<&'p std::path::Path> {
    let path = path?;
    let text = serde_json::to_string(&Announcement { pid: std::process::id(), url: url.to_string() })
        .expect("an announcement serializes");
    match std::fs::write(path, text) {
        Ok(()) => Some(path),
        Err(error) => {
            tracing::warn!(message = "Cannot write where the service listens; other commands will not be able to say.", path = %path.display(), %error);
            None
        }
    }
}

/// The running service a data directory names, if its file is there and readable.
pub fn announced(data_dir: &std::path::Path) -> Option<Announcement> {
    serde_json::from_slice(&std::fs::read(data_dir.join(ANNOUNCE_FILE)).ok()?).ok()
}

/// Binds the API's address, names the service in the data directory, and serves until
/// `stopped`. Returns the server's task and the file naming it.
async fn start_http<S: Storage>(
    config: &ServeConfig,
    api: Api<S>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(tokio::task::JoinHandle<()>, Option<std::path::PathBuf>), ServeError> {
    let tls = config.http.tls.as_ref().map(http::acceptor).transpose()?;
    let listen = config.http.listen;
    let listener =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen { addr: listen, source })?;
    let addr = listener.local_addr()?;
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    tracing::info!(message = "Listening.", addr = %addr, url = %url);
    let announced = announce(config.announce.as_deref(), &url).map(std::path::Path::to_path_buf);
    let limits = config.http.limits.clone();
    let server =
        tokio::spawn(
            async move { http::serve(listener, http::router(Arc::new(api)), &limits, tls, stopped, GRACE).await },
        );
    Ok((server, announced))
}

/// The service's tokens; a warning when there are none.
fn tokens(config: &ServeConfig) -> Result<Tokens, TokenError> {
    let tokens = Tokens::open(config.tokens.clone())?;
    if tokens.count() == 0 {
        let path = config.tokens.path().display();
        tracing::warn!(message = "No tokens: every route but /healthz and /readyz refuses; create one with `evidence token create`.", file = %path);
    }
    Ok(tokens)
}

/// Completes when `stop` does, or when the writer ends on its own (a failure): the service
/// cannot go on without it.
async fn until_writer_ends<S: Storage>(stop: impl std::future::Future<Output = ()>, writer: writer::WriterHandle<S>) {
    let ended = async {
        while !writer.finished() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        () = stop => {}
        () = ended => tracing::error!(message = "The writer stopped; stopping the service."),
    }
}

/// Kafka ingest running: it hands the sink back with its progress when it ends.
type KafkaTask<S> = tokio::task::JoinHandle<Result<(WriterSink<S>, kafka::Progress), KafkaSourceError<WriterError>>>;

/// Starts Kafka ingest through the writer, resuming each partition at the position the store
/// holds, until `stopped`.
fn spawn_kafka<S: Storage>(
    kafka: evidence_ingest::kafka::KafkaConfig,
    store: &Arc<S>,
    validation: &Validation,
    writer: &writer::WriterHandle<S>,
    stopped: impl std::future::Future<Output = ()> + Send + 'static,
) -> KafkaTask<S> {
    let store = Arc::clone(store);
    let positions: Positions =
        Arc::new(move |topic, partition| read_position(&*store, &position_name(topic, partition)).ok().flatten());
    let sink = WriterSink(writer.clone());
    tokio::spawn(kafka::run(kafka, validation.clone(), sink, positions, stopped))
}

/// Runs the service until SIGTERM or SIGINT.
pub fn run<S: Storage>(ledger: Ledger<S>, config: ServeConfig) -> Result<(), ServeError> {
    run_until(ledger, config, shutdown()).map(drop)
}

/// Runs the service until `stop` completes, then finishes the requests in flight and the
/// batch in hand, cuts a checkpoint and returns the ledger.
pub fn run_until<S: Storage>(
    ledger: Ledger<S>,
    config: ServeConfig,
    stop: impl std::future::Future<Output = ()>,
) -> Result<Ledger<S>, ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let store = ledger.log().shared_store();
        let sinks = siem::Sinks::start(&store, ledger.log().origin(), &config.siem)?;
        let upkeep = upkeep(dead_letter_producer(&config)?);
        let (writer, thread) = writer::spawn(ledger, config.http.limits.queue, upkeep);
        let submitter =
            witnesses::start(Arc::clone(&store), writer.clone(), &config.witnesses).map_err(ServeError::Witnesses)?;
        let auditing = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (last_audit, auditor) =
            audit::spawn(Arc::clone(&store), writer.clone(), config.self_audit_every, Arc::clone(&auditing));
        // The threads that validate what HTTP intake and the Kafka source receive: one a core
        // but one, so that the writer and the readers always find a core free.
        let validation =
            Validation::start(Arc::new(Validator::default()), validation_threads()).map_err(ServeError::Validation)?;
        let (stopping, stopped) = tokio::sync::watch::channel(false);
        let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move { drop(rx.wait_for(|s| *s).await) };
        let api = Api {
            writer: writer.clone(),
            store: Arc::clone(&store),
            tokens: Arc::new(tokens(&config)?),
            validation: validation.clone(),
            limits: config.http.limits.clone(),
            metrics: metrics_handle(),
            metrics_open: config.http.metrics_open,
            audit: last_audit,
            sinks: sinks.health(),
            stopped: stopped.clone(),
        };
        let (server, announced) = start_http(&config, api, wait(stopped.clone())).await?;
        let kafka =
            config.kafka.clone().map(|kafka| spawn_kafka(kafka, &store, &validation, &writer, wait(stopped.clone())));
        let stop = until_writer_ends(stop, writer.clone());
        tokio::pin!(stop);
        let kafka_result = match kafka {
            None => {
                (&mut stop).await;
                None
            }
            Some(mut task) => tokio::select! {
                () = &mut stop => {
                    let _ = stopping.send(true);
                    Some(task.await)
                }
                done = &mut task => Some(done),
            },
        };
        let _ = stopping.send(true);
        let _ = server.await;
        writer.stop().await;
        let _ = tokio::task::spawn_blocking(move || sinks.stop()).await;
        if let Some(submitter) = submitter {
            let _ = tokio::task::spawn_blocking(move || submitter.stop()).await;
        }
        auditing.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = tokio::task::spawn_blocking(move || auditor.join()).await;
        let ledger = join(thread).await?;
        if let Some(path) = announced {
            let _ = std::fs::remove_file(path);
        }
        let progress = match kafka_result {
            Some(done) => Some(done.map_err(|e| ServeError::Writer(e.to_string()))??.1),
            None => None,
        };
        tracing::info!(
            message = "Stopped cleanly.",
            entries = ledger.log().size(),
            kafka_accepted = progress.as_ref().map_or(0, |p| p.totals.accepted),
            kafka_quarantined = progress.as_ref().map_or(0, |p| p.totals.quarantined)
        );
        Ok(ledger)
    })
}
