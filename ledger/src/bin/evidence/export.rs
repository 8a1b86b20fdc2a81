//! `evidence export`: an evidence bundle written to a new directory or a `.tar.gz` file,
//! from the store (cutting a checkpoint first when entries are unsigned) or from a service
//! (`GET /v1/export`, which streams the archive).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use evidence_ledger::export::{self, BundleOut, DirOut, ExportOptions, Exported, TarGzOut};
use evidence_ledger::ledger::Access;
use evidence_ledger::CheckpointPolicy;
use evidence_verifier::checkpoint::Checkpoint;

use crate::cli::{ExportArgs, StoreArgs};
use crate::client::Client;
use crate::progress::Progress;

fn is_archive(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".tar.gz")
}

/// A temporary file beside `target` (which must not exist): a `.tar.gz` renamed into place by
/// [`finish_archive`], or a download unpacked from.
fn new_archive(target: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    anyhow::ensure!(!target.exists(), "{} exists already: export to a new path", target.display());
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    tempfile::Builder::new()
        .prefix(".export-")
        .tempfile_in(dir)
        .with_context(|| format!("Cannot write in {}", dir.display()))
}

fn finish_archive(file: tempfile::NamedTempFile, target: &Path) -> anyhow::Result<()> {
    file.as_file().sync_all()?;
    file.persist(target).with_context(|| format!("Cannot write {}", target.display()))?;
    Ok(())
}

fn read_since(path: &Option<PathBuf>) -> anyhow::Result<Option<String>> {
    path.as_ref()
        .map(|p| std::fs::read_to_string(p).with_context(|| format!("Cannot read the checkpoint {}", p.display())))
        .transpose()
}

fn print(exported: &Exported, out: &Path, json: bool) -> anyhow::Result<()> {
    if json {
        writeln!(crate::out(), "{}", serde_json::to_string(exported)?)?;
    } else {
        eprintln!(
            "Wrote {}: {} entries proven in the checkpoint of {} entries; answers: {}, alerts: {}. Check it with: \
             evidence-verify bundle {} --key <the log's verifier key>",
            out.display(),
            exported.entries,
            exported.size,
            exported.answers,
            exported.alerts,
            out.display()
        );
    }
    Ok(())
}

/// Exports from the store at `store`.
pub(crate) fn local(store: &StoreArgs, args: &ExportArgs) -> anyhow::Result<()> {
    let scope = args.params().scope(chrono::Utc::now())?;
    let since = read_since(&args.since_checkpoint)?;
    let dir = store.dir();
    let mut ledger = dir.open(Access::Read, CheckpointPolicy::default(), None)?;
    if ledger.log().size() > ledger.log().latest_size() {
        drop(ledger);
        ledger = dir.open(Access::Append, CheckpointPolicy::default(), None).context(
            "Entries are not yet in a signed checkpoint, and cutting one needs the signer key (--signer-key)",
        )?;
        ledger.checkpoint_now()?;
    }
    let options = ExportOptions { since, exported_at: chrono::Utc::now().to_rfc3339() };
    let log = ledger.log().at();
    let mut progress = Progress::on_stderr();
    let mut show = |done: u64, total: u64| progress.show_with(|_| bar(done, total));
    let exported = if is_archive(&args.out) {
        let file = new_archive(&args.out)?;
        let mut out = TarGzOut::new(std::io::BufWriter::new(file), chrono::Utc::now().timestamp() as u64);
        let exported = export::export(ledger.store(), &log, &scope, &options, &mut out, &mut show)?;
        let file = out.finish()?.into_inner().map_err(|e| e.into_error())?;
        finish_archive(file, &args.out)?;
        exported
    } else {
        let mut out = DirOut::create(&args.out)?;
        let exported = export::export(ledger.store(), &log, &scope, &options, &mut out, &mut show)?;
        out.finish().with_context(|| format!("Cannot write {}", args.out.display()))?;
        exported
    };
    progress.clear();
    print(&exported, &args.out, args.json)
}

fn bar(done: u64, total: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done * WIDTH).checked_div(total).unwrap_or(WIDTH) as usize;
    format!("[{}{}] {done}/{total} entries", "#".repeat(filled), ".".repeat(WIDTH as usize - filled))
}

/// Exports from the service `client` talks to.
pub(crate) fn remote(client: &Client, args: &ExportArgs) -> anyhow::Result<()> {
    let params = args.params();
    params.scope(chrono::Utc::now())?;
    let mut query: Vec<(&str, String)> = [
        ("from", &params.from),
        ("to", &params.to),
        ("artifact", &params.artifact),
        ("app", &params.app),
        ("env", &params.env),
        ("at", &params.at),
        ("alert", &params.alert),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k, v.clone()?)))
    .collect();
    if let Some(since) = read_since(&args.since_checkpoint)? {
        let size = Checkpoint::unverified(since.as_bytes())
            .context("The --since-checkpoint file is not a signed checkpoint")?
            .size;
        query.push(("since_size", size.to_string()));
    }
    let file = new_archive(&args.out)?;
    let mut writer = std::io::BufWriter::new(file);
    client.download("/v1/export", &query, &mut writer)?;
    let file = writer.into_inner().map_err(|e| e.into_error())?;
    if is_archive(&args.out) {
        finish_archive(file, &args.out)?;
    } else {
        unpack(file.path(), &args.out)?;
    }
    eprintln!(
        "Wrote {}. Check it with: evidence-verify bundle {} --key <the log's verifier key>",
        args.out.display(),
        args.out.display()
    );
    Ok(())
}

/// Writes the files of the archive at `archive` to a new directory `target`, read as
/// `evidence-verify` reads a bundle (a file that would land outside the bundle is refused).
fn unpack(archive: &Path, target: &Path) -> anyhow::Result<()> {
    let files = evidence_verifier::bundle_files::read_bundle(archive).context("The service's archive")?;
    let mut out = DirOut::create(target)?;
    for (path, bytes) in files {
        out.file(&path, &bytes)?;
    }
    out.finish().with_context(|| format!("Cannot write {}", target.display()))
}
