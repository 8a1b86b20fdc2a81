//! Shared helpers for the ledger's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod broker;
pub mod server;
pub mod siem;
pub mod stream;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The `evidence-verify` binary, built (or confirmed up to date) once per test binary.
pub fn evidence_verify() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "evidence-verifier", "--bin", "evidence-verify"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "cannot build evidence-verify");
        let exe = std::env::current_exe().unwrap();
        // target/<profile>/deps/<test> -> target/<profile>/evidence-verify
        let bin = exe.parent().unwrap().parent().unwrap().join("evidence-verify");
        assert!(bin.exists(), "{} not found", bin.display());
        bin
    })
}

/// Runs `evidence-verify store DIR --key KEY [--trusted-checkpoint FILE]`.
pub fn verify_store(dir: &Path, key: &str, trusted: Option<&Path>) -> Output {
    let mut cmd = Command::new(evidence_verify());
    cmd.arg("store").arg(dir).arg("--key").arg(key);
    if let Some(t) = trusted {
        cmd.arg("--trusted-checkpoint").arg(t);
    }
    cmd.output().expect("evidence-verify runs")
}

/// The `evidence` binary.
pub fn evidence() -> Command {
    Command::new(env!("CARGO_BIN_EXE_evidence"))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), target).unwrap();
        }
    }
}

/// Waits for `child` to exit, failing with `what` if it takes longer than `limit` (the child
/// is killed then).
pub fn wait_exit(child: &mut std::process::Child, limit: std::time::Duration, what: &str) -> std::process::ExitStatus {
    wait_within(child, limit).unwrap_or_else(|| panic!("{what} within {limit:?}"))
}

/// The child's exit status, or `None` (and the child killed) if it runs past `limit`.
fn wait_within(child: &mut std::process::Child, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `cmd` to its end as `Command::output` does, but fails (killing it) if it takes longer
/// than `limit`: a command that hangs fails its test instead of stopping the suite.
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let mut child = cmd
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("the command runs");
    let Some(status) = wait_within(&mut child, limit) else {
        panic!(
            "{cmd:?} did not end within {limit:?}; it printed: {}",
            String::from_utf8_lossy(&std::fs::read(&err).unwrap_or_default())
        );
    };
    Output { status, stdout: std::fs::read(&out).unwrap(), stderr: std::fs::read(&err).unwrap() }
}

/// `evidence status --json` of a stopped ledger.
pub fn status(data: &Path) -> serde_json::Value {
    let out = evidence().arg("--data-dir").arg(data).args(["status", "--json"]).output().unwrap();
    assert!(out.status.success(), "status failed: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `evidence --data-dir DATA init --origin ORIGIN` (the key goes beside DATA, as `DATA.key`);
/// returns the verifier key it prints.
pub fn init(data: &Path, origin: &str) -> String {
    let out = evidence().arg("--data-dir").arg(data).args(["init", "--origin", origin]).output().unwrap();
    assert!(out.status.success(), "init failed: {}", stderr(&out));
    stdout(&out).trim().to_string()
}

/// A new ledger made with `evidence init` in a temporary directory: the store at `<tmp>/data`,
/// its key beside it at `<tmp>/data.key`; both removed on drop.
pub struct Store {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    /// The verifier key `init` printed.
    pub verifier_key: String,
}

impl Store {
    pub fn new(origin: &str) -> Store {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        let verifier_key = init(&data, origin);
        Store { _tmp: tmp, data, verifier_key }
    }

    pub fn path(&self) -> &Path {
        &self.data
    }
}

/// Files under `dir` holding a private signer key.
pub fn private_keys_in(dir: &Path) -> Vec<PathBuf> {
    evidence_verifier::store::private_keys_in(dir, 8)
}

/// xorshift64*: a deterministic generator, reproducible from the seed a test prints.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The test suite's Python, from the virtualenv `.venv` at the workspace root with the
/// independent clients of `ops/requirements-test.txt` (made here if it is missing or lacks
/// one; a failed install fails the test).
pub fn test_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    let imports =
        "import kafka, requests, openapi_spec_validator, ocsf_json_schema, syslog_rfc5424_parser, cryptography, selenium";
    let ready =
        python.exists() && Command::new(&python).args(["-c", imports]).status().map(|s| s.success()).unwrap_or(false);
    if !ready {
        let ok = Command::new("python3").arg("-m").arg("venv").arg(&venv).status().unwrap().success();
        assert!(ok, "cannot create {}", venv.display());
        let requirements = root.join("ops/requirements-test.txt");
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "-q", "-r"])
            .arg(&requirements)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot install {}", requirements.display());
    }
    python
}

/// A private CA and a certificate for 127.0.0.1 it signed, made with openssl in `dir`, as an
/// operator would have them: (the CA's certificate, the server's certificate, its key).
pub fn private_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("ca.pem"), dir.join("ca-key.pem"));
    let (cert, key, csr) = (dir.join("cert.pem"), dir.join("key.pem"), dir.join("cert.csr"));
    let ext = dir.join("ext.cnf");
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    let openssl = |args: &[&str]| {
        let made = Command::new("openssl").args(args).output().unwrap();
        assert!(made.status.success(), "openssl {args:?}: {}", stderr(&made));
    };
    let [ca_s, ca_key_s, cert_s, key_s, csr_s, ext_s] =
        [&ca, &ca_key, &cert, &key, &csr, &ext].map(|p| p.to_str().unwrap());
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1";
    let ec: Vec<&str> = ec.split(' ').collect();
    openssl(&[&["req", "-x509", "-subj", "/CN=test CA", "-keyout", ca_key_s, "-out", ca_s][..], &ec].concat());
    openssl(&[&["req", "-subj", "/CN=localhost", "-keyout", key_s, "-out", csr_s][..], &ec[..5]].concat());
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        csr_s,
        "-CA",
        ca_s,
        "-CAkey",
        ca_key_s,
        "-CAcreateserial",
        "-extfile",
        ext_s,
        "-out",
        cert_s,
    ]);
    (ca, cert, key)
}
