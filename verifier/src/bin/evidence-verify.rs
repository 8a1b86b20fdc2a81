//! `evidence-verify`: checks Evidence Ledger evidence offline, trusting nothing but the
//! verifier keys it is given. Exit 0 when intact, 1 when something is wrong (with the first
//! failing entry or checkpoint, in a sentence), 2 when the input cannot be read.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use evidence_verifier::bundle::{self, Trust};
use evidence_verifier::bundle_files::read_bundle;
use evidence_verifier::cosignature::WitnessKey;
use evidence_verifier::store::{audit_dir, private_keys_in};
use evidence_verifier::{Checkpoint, VerifierKey};

#[derive(Parser, Debug)]
#[command(version, about = "Check Evidence Ledger evidence offline.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Full check of a stopped ledger data directory: every entry, the chain, the Merkle
    /// roots of every signed checkpoint, and (optionally) that it extends a trusted checkpoint.
    Store {
        /// The ledger data directory (the ledger's --data-dir).
        dir: PathBuf,
        /// A trusted verifier key, `<name>+<hex id>+<base64>`, or a file holding one.
        /// Repeat for rotated keys.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// A signed checkpoint saved earlier: the log must extend it (rollback and fork
        /// detection).
        #[arg(long)]
        trusted_checkpoint: Option<PathBuf>,
    },
    /// Check an export bundle (a directory or a .tar.gz) offline: its manifest, every
    /// event's digest, every inclusion proof against its checkpoint, the checkpoint's
    /// signature, the witness cosignatures asked for, the extension of a trusted checkpoint,
    /// and that every entry an answer or alert cites is in it and proven.
    Bundle {
        /// The bundle: a directory, or a .tar.gz archive.
        path: PathBuf,
        /// A trusted verifier key of the log, or a file holding one. Repeat for rotated keys.
        #[arg(long = "key", required = true)]
        keys: Vec<String>,
        /// A signed checkpoint saved earlier (say, last quarter's bundle's `checkpoint`): the
        /// bundle's must extend it.
        #[arg(long)]
        trusted_checkpoint: Option<PathBuf>,
        /// A witness's key (`<name>+<hex id>+<base64>`), or a file holding one. Repeat.
        #[arg(long = "witness-key")]
        witness_keys: Vec<String>,
        /// How many of the witnesses given must have cosigned the checkpoint (default: all).
        #[arg(long)]
        min_witnesses: Option<usize>,
    },
}

fn load_key(arg: &str) -> anyhow::Result<VerifierKey> {
    let (text, from_file) = match std::fs::read_to_string(arg) {
        Ok(contents) => (contents, true),
        Err(_) => (arg.to_string(), false),
    };
    // Never echo a private key: say what it is, and where it came from only if a file.
    if text.trim_start().starts_with("PRIVATE+KEY+") {
        let what = if from_file { format!("{arg} holds") } else { "--key was given".to_string() };
        anyhow::bail!(
            "{what} a private signer key, not a verifier key: keep it secret, and verify with the \
             verifier key `evidence keygen` and `evidence status` print"
        );
    }
    let shown = if from_file { arg.to_string() } else { format!("{arg:?}") };
    VerifierKey::parse(&text).with_context(|| format!("Cannot use verifier key {shown}"))
}

fn key_text(arg: &str) -> String {
    std::fs::read_to_string(arg).unwrap_or_else(|_| arg.to_string()).trim().to_string()
}

fn bundle_command(
    path: &Path,
    keys: &[String],
    trusted_checkpoint: Option<PathBuf>,
    witness_keys: &[String],
    min_witnesses: Option<usize>,
) -> anyhow::Result<bool> {
    let keys = keys.iter().map(|k| load_key(k)).collect::<anyhow::Result<Vec<_>>>()?;
    let witnesses = witness_keys
        .iter()
        .map(|k| WitnessKey::parse(&key_text(k)).with_context(|| format!("Cannot use witness key {k:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let min_witnesses = min_witnesses.unwrap_or(witnesses.len());
    anyhow::ensure!(
        min_witnesses <= witnesses.len(),
        "--min-witnesses {min_witnesses} asks for more witnesses than the {} --witness-key given",
        witnesses.len()
    );
    let trusted_checkpoint = match trusted_checkpoint {
        None => None,
        Some(p) => Some(std::fs::read(&p).with_context(|| format!("Cannot read {}", p.display()))?),
    };
    let files = read_bundle(path)?;
    let trust = Trust { keys, trusted_checkpoint, witnesses, min_witnesses };
    match bundle::verify(&files, &trust) {
        Ok(summary) => {
            println!("{summary}");
            Ok(true)
        }
        Err(failure) => {
            println!("FAILED: {failure}");
            Ok(false)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Bundle { path, keys, trusted_checkpoint, witness_keys, min_witnesses } => {
            bundle_command(&path, &keys, trusted_checkpoint, &witness_keys, min_witnesses)
        }
        Command::Store { dir, keys, trusted_checkpoint } => {
            let keys = keys.iter().map(|k| load_key(k)).collect::<anyhow::Result<Vec<_>>>()?;
            let trusted = match trusted_checkpoint {
                None => None,
                Some(path) => {
                    let note = std::fs::read(&path).with_context(|| format!("Cannot read {}", path.display()))?;
                    Some(
                        Checkpoint::open(&note, &keys, None)
                            .with_context(|| format!("The trusted checkpoint {} does not verify", path.display()))?,
                    )
                }
            };
            for key in private_keys_in(&dir, 2) {
                eprintln!(
                    "warning: {} holds a private signer key: whoever has this directory can sign checkpoints \
                     as the ledger. Keep the key out of the data directory (evidence init puts it beside it) \
                     and out of any copy handed over.",
                    key.display()
                );
            }
            // The storage engine may panic on a damaged directory: report it as unreadable.
            let audited = std::panic::catch_unwind(|| audit_dir(&dir, &keys, trusted)).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(anyhow::anyhow!("the ledger database in {} cannot be read: {what}", dir.display()))
            });
            match audited? {
                Ok(report) => {
                    println!("OK: the ledger at {} is intact.", dir.display());
                    println!("  entries:          {}", report.entries);
                    println!("  chain head:       {}", hex::encode(report.chain_head));
                    match &report.latest {
                        Some(cp) => println!(
                            "  checkpoints:      {} signed, latest at size {} for {} (root {})",
                            report.checkpoints,
                            cp.size,
                            cp.origin,
                            cp.root_base64()
                        ),
                        None => println!("  checkpoints:      none (the log is empty)"),
                    }
                    println!("  unsigned tail:    {} entries after the latest checkpoint", report.unsigned_tail);
                    if report.torn_tail > 0 {
                        println!(
                            "  torn write:       the last {} bytes of the entries file are not a whole frame: a write a crash cut short, never committed, left out (the ledger cuts them off when it next opens the store)",
                            report.torn_tail
                        );
                    }
                    if let Some(size) = report.extends_trusted {
                        println!("  extends the trusted checkpoint at size {size}");
                    }
                    Ok(true)
                }
                Err(failure) => {
                    println!("FAILED: {failure}");
                    Ok(false)
                }
            }
        }
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
