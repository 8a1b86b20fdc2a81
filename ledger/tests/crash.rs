//! Crash safety (a `harness = false` test): `evidence ingest` of 200,000 events is killed with
//! SIGKILL at random moments, at least 20 times, and restarted each time on the same input.
//! After every kill the store opens cleanly and never shrinks; at the end every event is in
//! the log exactly once and `evidence-verify` passes. The `(source, id)` index is written
//! behind the entries, so a kill usually leaves it short of them: the restarted ingest must
//! rebuild it from the entries before it can tell the events it already stored from new ones.
//! The first to open the store after a kill does that: here `evidence status`, which logs the
//! rebuild; the test reports how many kills left one to do. (About one kill in five does:
//! sled has usually written the index batch out before the kill, if not flushed it, and a
//! killed process loses only what it had not written. The rebuild itself is tested
//! deterministically in `tests/log.rs`.)
//!
//! `CRASH_SEED=<n>` replays a run; `CRASH_ROUNDS` and `CRASH_EVENTS` change its size.

mod common;

use std::collections::HashSet;
use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{evidence, status, stderr, stdout, verify_store, Rng};
use evidence_schemas::sample::sample_event;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// `evidence status --json` on a store a kill has just left, and the index rebuild it logged
/// on opening the store, if any (`from=<n> to=<n>`).
fn status_after_kill(data: &std::path::Path) -> (serde_json::Value, Option<String>) {
    const REBUILT: &str = "Index caught up from the entries.";
    let out = evidence()
        .arg("--data-dir")
        .arg(data)
        .args(["status", "--json"])
        .env("RUST_LOG", "evidence_ledger=info")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "status failed: {}", stderr(&out));
    let log = stderr(&out);
    let rebuilt = log.lines().find_map(|l| l.find(REBUILT).map(|at| l[at + REBUILT.len()..].trim().to_string()));
    (serde_json::from_slice(&out.stdout).unwrap(), rebuilt)
}

fn main() {
    let events = env_or("CRASH_EVENTS", 200_000);
    let rounds = env_or("CRASH_ROUNDS", 20);
    let seed = env_or(
        "CRASH_SEED",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1,
    );
    println!("crash test: {events} events, {rounds} SIGKILL rounds, CRASH_SEED={seed}");
    let mut rng = Rng(seed);

    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("events.ndjson");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for i in 0..events {
        writeln!(f, "{}", sample_event(i)).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let data = tmp.path().join("data");
    common::init(&data, "crash.example/ledger");

    let ingest = |log: bool| {
        let mut cmd = evidence();
        cmd.arg("--data-dir")
            .arg(&data)
            .args(["ingest", "--file"])
            .arg(&input)
            .args(["--checkpoint-every", "25000"])
            .env("RUST_LOG", "evidence_ledger=debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(if log { Stdio::piped() } else { Stdio::null() });
        cmd
    };

    let started = Instant::now();
    let mut last_entries = 0u64;
    let mut kills = 0;
    let mut rebuilds = 0u64;
    // Appends per millisecond, learnt as rounds go, so that the kills spread over the stream.
    let mut rate = 10.0f64;
    while kills < rounds {
        let mut child = ingest(true).spawn().unwrap();
        // Wait until the restarted ingest is past the events it already stored and appends
        // again (its log says so after each committed batch), then kill it at a random moment.
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("Batch committed.") && !line.contains("accepted=0 ") {
                    let _ = tx.send(());
                }
            }
        });
        let appending = rx.recv_timeout(Duration::from_secs(300)).is_ok();
        // Each round gets a share of what is left, and waits up to that share's time: on
        // average half of it, so that a round faster than the rate learnt so far cannot end
        // the stream before the last kill.
        let left = (events - last_entries) as f64 / (rounds - kills + 1) as f64;
        let window = ((left / rate) as u64).clamp(20, 2000);
        let delay = Duration::from_millis(rng.next() % window);
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        if !finished {
            assert!(appending, "ingest neither appended nor finished within 300 s");
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        reader.join().unwrap();
        let (s, rebuilt) = status_after_kill(&data);
        let entries = s["entries"].as_u64().unwrap();
        println!(
            "round {}: {} {:>4} ms after appends resumed: {entries} entries, checkpoint at {}{}",
            kills,
            if finished { "finished" } else { "killed" },
            delay.as_millis(),
            s["checkpoint_size"],
            rebuilt.as_ref().map(|r| format!("; index rebuilt on open ({r})")).unwrap_or_default()
        );
        rebuilds += u64::from(rebuilt.is_some());
        assert!(entries >= last_entries, "the log shrank from {last_entries} to {entries}");
        if delay.as_millis() > 100 {
            rate = (entries - last_entries) as f64 / delay.as_millis() as f64;
        }
        last_entries = entries;
        if finished {
            break;
        }
    }
    assert_eq!(kills, rounds, "the stream ended before {rounds} kills (CRASH_SEED={seed})");

    // Run to the end.
    let mut child = ingest(false).spawn().unwrap();
    let exit = common::wait_exit(&mut child, Duration::from_secs(600), "the final ingest did not finish");
    assert!(exit.success(), "final ingest failed: {exit}");

    let s = status(&data);
    assert_eq!(s["entries"].as_u64(), Some(events), "{s}");
    assert_eq!(s["quarantined"].as_u64(), Some(0), "{s}");
    assert_eq!(s["checkpoint_size"].as_u64(), Some(events), "{s}");

    // Every event exactly once: read the entries back and count the ids.
    let db = evidence_ledger::SledStorage::open(&data.join(evidence_verifier::layout::LOG_DIR)).unwrap();
    let mut ids = HashSet::new();
    let mut count = 0u64;
    for item in evidence_ledger::Storage::range(
        &db,
        &[evidence_verifier::layout::ENTRY],
        &[evidence_verifier::layout::ENTRY + 1],
    ) {
        let (_, segment) = item.unwrap();
        let segment = evidence_verifier::layout::unpack_segment(&segment).unwrap();
        for rec in evidence_verifier::layout::segment_records(&segment) {
            let e = evidence_verifier::entry::EntryRef::decode(rec.unwrap()).unwrap();
            let v: serde_json::Value = serde_json::from_slice(e.event).unwrap();
            ids.insert(v["id"].as_str().unwrap().to_string());
            count += 1;
        }
    }
    drop(db);
    assert_eq!((count, ids.len() as u64), (events, events), "entries and distinct ids");

    let key = s["verifier_keys"][0].as_str().unwrap();
    let out = verify_store(&data, key, None);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    print!("{}", stdout(&out));
    println!(
        "crash test passed: {kills} kills ({rebuilds} left the index to rebuild), {events} events each exactly once, verify OK, in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
