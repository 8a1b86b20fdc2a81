//! A tansu broker for the tests: on a free loopback port, from an empty temporary directory,
//! its topics in a libsql file there, so that it can be stopped and started again with what it
//! held. A missing broker binary fails the test: run `ops/broker install`.

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use super::stderr;

pub fn tansu() -> PathBuf {
    let on_path = Command::new("sh").args(["-c", "command -v tansu"]).output().ok().filter(|o| o.status.success());
    let path = match on_path {
        Some(o) => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        None => PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo/bin/tansu"),
    };
    assert!(path.exists(), "the tansu broker is not installed: run ops/broker install");
    path
}

/// A tansu broker on a free 127.0.0.1 port, storing its topics in a libsql file in its own
/// temporary directory, killed on drop.
pub struct Broker {
    pub addr: String,
    pub child: Child,
    pub dir: tempfile::TempDir,
    engine: String,
}

impl Broker {
    pub fn start(topics: &[(&str, u32)]) -> Broker {
        Broker::start_on("sqlite://tansu.db", topics)
    }

    /// A broker on another storage engine (`memory://tansu/` to show what it loses).
    pub fn start_on(engine: &str, topics: &[(&str, u32)]) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{port}");
        let child = Broker::spawn(&addr, engine, dir.path());
        let broker = Broker { addr, child, dir, engine: engine.to_string() };
        for (topic, partitions) in topics {
            broker.create_topic(topic, *partitions);
        }
        broker
    }

    fn spawn(addr: &str, engine: &str, dir: &std::path::Path) -> Child {
        let url = format!("tcp://{addr}");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("broker.log")).unwrap();
        let child = Command::new(tansu())
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", engine])
            .current_dir(dir)
            // The group coordinator's decisions (joins, leaders, missed heartbeats), shown
            // when a test fails.
            .env(
                "RUST_LOG",
                std::env::var("BROKER_LOG").unwrap_or_else(|_| "warn,tansu_broker::coordinator=info".into()),
            )
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "the broker did not listen within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    /// Kills the broker (its topics stay in its directory).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and directory, with what it held.
    pub fn restart(&mut self) {
        self.child = Broker::spawn(&self.addr, &self.engine, self.dir.path());
    }

    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let out = Command::new(tansu())
            .args(["topic", "create", topic, "--broker", &format!("tcp://{}", self.addr)])
            .args(["--partitions", &partitions.to_string()])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "cannot create topic {topic}: {}", stderr(&out));
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([sig, &self.child.id().to_string()]).status().unwrap().success();
        assert!(ok, "kill {sig} failed");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A failing test shows what the broker saw last.
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!("--- the broker's last {} log lines ---", lines.len().min(200));
            for line in &lines[lines.len().saturating_sub(200)..] {
                eprintln!("broker: {line}");
            }
        }
    }
}
