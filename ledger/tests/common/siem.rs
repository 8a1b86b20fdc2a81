//! The SIEM receivers the tests deliver to: Debian's rsyslog, started with a config of its own
//! on a loopback port and writing every message it receives to a file, and a collector in
//! Splunk HEC's shape (token check, HEC's success and error bodies) written here. Both can be
//! stopped and started again on the same port. `read` has the independent Python checker
//! (`tests/py/siem_receivers.py`) read and check what every receiver got.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// rsyslogd, from Debian's package.
fn rsyslogd() -> PathBuf {
    let path = ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"].iter().map(PathBuf::from).find(|p| p.exists());
    path.expect("rsyslog is not installed: run ops/test, which installs Debian's rsyslog")
}

/// rsyslog receiving on a loopback TCP port (octet-counted or LF-framed RFC 5424), writing
/// each message JSON-escaped on a line of `out`.
pub struct Rsyslog {
    pub port: u16,
    pub out: PathBuf,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Over TLS (RFC 5425, rsyslog's gtls driver): the CA, certificate and key files.
    tls: Option<(PathBuf, PathBuf, PathBuf)>,
}

impl Rsyslog {
    /// Starts it on a port the system picks.
    pub fn start() -> Rsyslog {
        Rsyslog::start_with(None)
    }

    /// Starts it receiving over TLS only, with the certificate `cert` (signed by `ca`) and its
    /// `key`.
    pub fn start_tls(ca: &Path, cert: &Path, key: &Path) -> Rsyslog {
        Rsyslog::start_with(Some((ca.to_path_buf(), cert.to_path_buf(), key.to_path_buf())))
    }

    fn start_with(tls: Option<(PathBuf, PathBuf, PathBuf)>) -> Rsyslog {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("received.log");
        let mut r = Rsyslog { port: 0, out, dir, child: None, tls };
        r.spawn();
        r
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        std::fs::create_dir_all(d.join("work")).unwrap();
        let port_file = d.join("port");
        let _ = std::fs::remove_file(&port_file);
        let (files, driver) = match &self.tls {
            None => (String::new(), String::new()),
            Some((ca, cert, key)) => (
                format!(
                    r#" defaultNetstreamDriverCAFile="{}" defaultNetstreamDriverCertFile="{}" defaultNetstreamDriverKeyFile="{}""#,
                    ca.display(),
                    cert.display(),
                    key.display()
                ),
                r#" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon""#.to_string(),
            ),
        };
        let conf = format!(
            r#"global(workDirectory="{work}" maxMessageSize="64k" parser.escapeControlCharactersOnReceive="off"{files})
module(load="imtcp" maxSessions="100")
template(name="line" type="string" string="%rawmsg:::json%\n")
ruleset(name="harness") {{
  action(type="omfile" file="{out}" template="line" asyncWriting="off" flushOnTXEnd="on")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" listenPortFileName="{port_file}" ruleset="harness"{driver})
"#,
            work = d.join("work").display(),
            out = self.out.display(),
            port = self.port,
            port_file = port_file.display(),
        );
        std::fs::write(d.join("rsyslog.conf"), conf).unwrap();
        let err = std::fs::OpenOptions::new().create(true).append(true).open(d.join("rsyslogd.err")).unwrap();
        let mut child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(d.join("rsyslog.conf"))
            .arg("-i")
            .arg(d.join("rsyslogd.pid"))
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // rsyslog names the port it bound only when it picked it (port 0); on the port it
            // had before, it is ready when it accepts a connection.
            let bound = if self.port == 0 {
                std::fs::read_to_string(&port_file).ok().and_then(|p| p.trim().parse::<u16>().ok())
            } else {
                TcpStream::connect(("127.0.0.1", self.port)).ok().map(|_| self.port)
            };
            if let Some(port) = bound {
                self.port = port;
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let err = std::fs::read_to_string(d.join("rsyslogd.err")).unwrap_or_default();
                panic!("rsyslogd exited ({status}) before listening: {err}");
            }
            assert!(Instant::now() < deadline, "rsyslogd did not listen within 20 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child = Some(child);
    }

    /// Its URL for `--siem-syslog`.
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", if self.tls.is_some() { "tls" } else { "tcp" }, self.port)
    }

    /// Stops it (SIGTERM: it writes what it has received, then exits).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
            super::wait_exit(&mut child, Duration::from_secs(20), "rsyslogd stops on SIGTERM");
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.spawn();
    }

    /// The messages it wrote, one a line.
    pub fn lines(&self) -> usize {
        std::fs::read_to_string(&self.out).map_or(0, |t| t.lines().count())
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A collector in Splunk HEC's shape on a loopback port: `POST /services/collector/event`
/// with `Authorization: Splunk <token>`, a body of concatenated event objects each with an
/// `event`. Answers as HEC does: 200 `{"text":"Success","code":0}`; 401 code 2 (no token) or
/// 403 code 4 (invalid token); 400 code 6 (invalid data format); 503 code 9 (busy), for the
/// next `busy` requests when told. Appends each event object accepted as a line of `out`.
pub struct Collector {
    pub port: u16,
    pub out: PathBuf,
    pub token: String,
    /// Requests still to be answered 503.
    pub busy: Arc<AtomicU32>,
    /// Requests refused, by status.
    pub refused: Arc<Mutex<Vec<u16>>>,
    _dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Collector {
    pub fn start(token: &str) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Collector {
            port: 0,
            out: dir.path().join("hec.ndjson"),
            token: token.to_string(),
            busy: Arc::new(AtomicU32::new(0)),
            refused: Arc::new(Mutex::new(Vec::new())),
            _dir: dir,
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).unwrap();
        self.port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        self.stop = Arc::new(AtomicBool::new(false));
        let (stop, out, token, busy, refused) =
            (self.stop.clone(), self.out.clone(), self.token.clone(), self.busy.clone(), self.refused.clone());
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let status = answer(conn, &out, &token, &busy);
                        if status != 200 {
                            refused.lock().unwrap().push(status);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
    }

    /// Its URL for `--siem-hec`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops listening: connections are refused until [`Collector::restart`].
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }

    /// Listens again on the same port.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one request from `conn`, answers it, and returns the status.
fn answer(conn: TcpStream, out: &Path, token: &str, busy: &AtomicU32) -> u16 {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    let mut headers = Vec::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return 0;
    }
    let request = line.trim().to_string();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    let complete = reader.read_exact(&mut body).is_ok();
    let (status, text, code) = if !request.starts_with("POST /services/collector/event ") {
        (404, "Not found", 404)
    } else if header("authorization").is_none() {
        (401, "Token is required", 2)
    } else if header("authorization").as_deref() != Some(&format!("Splunk {token}")) {
        (403, "Invalid token", 4)
    } else if busy.load(Ordering::SeqCst) > 0 {
        busy.fetch_sub(1, Ordering::SeqCst);
        (503, "Server is busy", 9)
    } else {
        let events: Result<Vec<Value>, _> = serde_json::Deserializer::from_slice(&body).into_iter::<Value>().collect();
        match events {
            Ok(events) if complete && !events.is_empty() && events.iter().all(|e| e["event"].is_object()) => {
                let mut file = std::fs::OpenOptions::new().create(true).append(true).open(out).unwrap();
                for e in events {
                    writeln!(file, "{e}").unwrap();
                }
                file.flush().unwrap();
                (200, "Success", 0)
            }
            _ => (400, "Invalid data format", 6),
        }
    };
    let body = serde_json::json!({ "text": text, "code": code }).to_string();
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        503 => "Service Unavailable",
        _ => "Not Found",
    };
    let mut conn = conn;
    let _ = write!(
        conn,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = conn.flush();
    status
}

/// What one receiver got, in the order it got it: (log, alert id, activity, status, change
/// number, rule) per change.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Received {
    pub log: String,
    pub id: String,
    pub activity: String,
    pub status: String,
    pub change: u64,
    pub rule: String,
}

/// What every receiver got, as the independent checker read it.
#[derive(Debug, serde::Deserialize)]
pub struct Deliveries {
    #[serde(default)]
    pub kafka: Vec<Received>,
    #[serde(default)]
    pub hec: Vec<Received>,
    #[serde(default)]
    pub syslog: Vec<Received>,
    pub errors: Vec<String>,
}

impl Deliveries {
    /// Every receiver's list, by name.
    pub fn receivers(&self) -> [(&'static str, &Vec<Received>); 3] {
        [("kafka", &self.kafka), ("hec", &self.hec), ("syslog", &self.syslog)]
    }
}

/// Has `tests/py/siem_receivers.py` read the Kafka topic (on `broker`), the collector's and
/// rsyslog's files, and check every document and message.
pub fn read(kafka: Option<(&str, &str)>, collector: Option<&Collector>, syslog: Option<&Rsyslog>) -> Deliveries {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/py/siem_receivers.py");
    let mut cmd = Command::new(super::test_python());
    cmd.arg(script);
    if let Some((broker, topic)) = kafka {
        cmd.args(["--kafka", broker, topic]);
    }
    if let Some(c) = collector {
        if !c.out.exists() {
            std::fs::write(&c.out, "").unwrap();
        }
        cmd.arg("--hec").arg(&c.out);
    }
    if let Some(r) = syslog {
        if !r.out.exists() {
            std::fs::write(&r.out, "").unwrap();
        }
        cmd.arg("--syslog").arg(&r.out);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "the SIEM checker failed: {}", super::stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("the checker's output is not JSON ({e})"))
}
