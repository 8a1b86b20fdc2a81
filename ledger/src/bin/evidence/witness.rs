//! `evidence witness`: make a witness key, and serve `add-checkpoint` (the library's
//! `evidence_ledger::witness`) until SIGTERM or SIGINT.

use std::io::Write as _;
use std::sync::Arc;

use anyhow::Context as _;
use evidence_ledger::keys;
use evidence_ledger::witness::{router, Witness};
use evidence_verifier::cosignature::CosignerKey;
use evidence_verifier::VerifierKey;

use crate::cli::WitnessCommand;

pub(crate) fn run(command: WitnessCommand) -> anyhow::Result<()> {
    match command {
        WitnessCommand::Keygen { name, key } => {
            let mut seed = [0u8; 32];
            getrandom::getrandom(&mut seed).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let cosigner = CosignerKey::from_seed(&name, seed).map_err(anyhow::Error::msg)?;
            keys::write_secret(&key, &cosigner.to_key_string())?;
            eprintln!("Wrote the witness's private key to {} (mode 0600). Its witness key:", key.display());
            writeln!(std::io::stdout(), "{}", cosigner.witness_key())?;
            Ok(())
        }
        WitnessCommand::Serve { listen, key, logs, state } => serve(&listen, &key, &logs, &state),
    }
}

/// `ORIGIN=VERIFIER-KEY`: the key, whose name must be the origin.
fn log_key(spec: &str) -> anyhow::Result<VerifierKey> {
    let (origin, key) = spec.split_once('=').with_context(|| format!("--log {spec:?} is not ORIGIN=VERIFIER-KEY"))?;
    let key = VerifierKey::parse(key).map_err(|e| anyhow::anyhow!("--log {origin}: {e}"))?;
    anyhow::ensure!(key.name() == origin, "--log {origin}: the verifier key is named {:?}, not the origin", key.name());
    Ok(key)
}

fn serve(listen: &str, key: &std::path::Path, logs: &[String], state: &std::path::Path) -> anyhow::Result<()> {
    let cosigner =
        CosignerKey::parse(&keys::read_secret(key)?).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
    let logs = logs.iter().map(|l| log_key(l)).collect::<anyhow::Result<Vec<_>>>()?;
    let witness =
        Arc::new(Witness::open(cosigner, logs, state).with_context(|| format!("Cannot use {}", state.display()))?);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("Cannot listen on {listen}"))?;
        let addr = listener.local_addr()?;
        tracing::info!(message = "Witnessing.", addr = %addr, url = %format!("http://{addr}"));
        let stop = async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        axum::serve(listener, router(witness)).with_graceful_shutdown(stop).await?;
        Ok(())
    })
}
