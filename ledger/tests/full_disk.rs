//! Hardening item 3: a full disk. The store lives on a small tmpfs this test mounts (it needs
//! root or CAP_SYS_ADMIN, as the test harness has; without it the test fails, saying so). An
//! ingest runs the disk full; while it is still full every reading command answers (from a
//! temporary copy) and leaves nothing behind that stops the next open; once space is freed,
//! every accepted entry is there, the rest of the input goes in, and the store verifies.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{evidence, stderr, stdout};

/// A tmpfs mounted for the test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).output();
        let out = out.expect("mount runs");
        assert!(
            out.status.success(),
            "cannot mount a tmpfs at {} (the full-disk test needs root or CAP_SYS_ADMIN): {}",
            dir.display(),
            stderr(&out)
        );
        Tmpfs { dir: dir.to_path_buf() }
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.dir).output().unwrap();
        assert!(out.status.success(), "cannot resize the tmpfs: {}", stderr(&out));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

fn entries(data: &Path) -> u64 {
    common::status(data)["entries"].as_u64().unwrap()
}

#[test]
fn a_full_disk_loses_nothing_and_every_reader_still_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&tmp.path().join("disk"), "12m");
    let data = disk.dir.join("data");
    let key = tmp.path().join("ledger.key");
    // Each command ends within a minute, or the test fails: a full disk must not hang one.
    let run = |args: &[&str]| {
        let mut cmd = evidence();
        cmd.arg("--data-dir").arg(&data).arg("--signer-key").arg(&key).args(args);
        common::output_within(&mut cmd, Duration::from_secs(60))
    };
    let vkey = stdout(&run(&["init", "--origin", "disk.example/ledger"])).trim().to_string();
    let total = 60_000u64;
    let events = tmp.path().join("events.ndjson");
    let lines: Vec<String> = (0..total).map(evidence_schemas::sample::sample_event).collect();
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();

    // The disk fills during the ingest: one sentence, status 1.
    let out = run(&["ingest", "--file", events.to_str().unwrap(), "--checkpoint-every", "2000"]);
    assert_eq!(out.status.code(), Some(1), "the disk never filled: {}", stdout(&out));
    assert!(stderr(&out).contains("No space left on device (os error 28)"), "{}", stderr(&out));

    // Still full: every reader answers, again and again, and the verifier too.
    let mut stored = None;
    for round in 0..3 {
        let s = run(&["status", "--json"]);
        assert!(s.status.success(), "round {round}: {}", stderr(&s));
        let n = serde_json::from_slice::<serde_json::Value>(&s.stdout).unwrap()["entries"].as_u64().unwrap();
        assert!(n > 0 && n < total, "round {round}: {n} entries");
        assert_eq!(*stored.get_or_insert(n), n, "round {round}: the count moved");
        for args in [&["alerts"][..], &["checkpoint"], &["proof", "--seq", "1"]] {
            let out = run(args);
            assert!(out.status.success(), "round {round} {args:?}: {}", stderr(&out));
        }
        let v = common::verify_store(&data, &vkey, None);
        assert_eq!(v.status.code(), Some(0), "round {round}: {}{}", stdout(&v), stderr(&v));
    }
    let stored_first = stored.unwrap();
    // Appending while full still fails with the sentence. It may first fit a batch into what
    // the failed one left free (the first ingest stops without sled's closing flush); what
    // it stored is durable and counted, and nothing is lost.
    let out = run(&["ingest", "--file", events.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("No space left on device (os error 28)"), "{}", stderr(&out));
    let s = run(&["status", "--json"]);
    assert!(s.status.success(), "{}", stderr(&s));
    let stored = serde_json::from_slice::<serde_json::Value>(&s.stdout).unwrap()["entries"].as_u64().unwrap();
    assert!(stored >= stored_first, "{stored} entries after the second ingest, {stored_first} before");

    // Space freed: everything accepted is there, the rest goes in, nothing twice.
    disk.resize("200m");
    assert_eq!(entries(&data), stored);
    let out = run(&["ingest", "--file", events.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), format!("accepted {}, duplicate {stored}, quarantined 0", total - stored));
    assert_eq!(entries(&data), total);
    let v = common::verify_store(&data, &vkey, None);
    assert_eq!(v.status.code(), Some(0), "{}{}", stdout(&v), stderr(&v));
}
