//! `evidence serve` as a test server: the real binary on a free loopback port, on a new store
//! with a token of each role, called over HTTP with ureq. Dropping it kills the process.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::{evidence, stderr};

/// A running service and its tokens.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data: PathBuf,
    pub reader: String,
    pub producer: String,
    pub admin: String,
    /// Log lines of the service, as they come.
    pub log: mpsc::Receiver<String>,
    agent: ureq::Agent,
    _dir: Option<tempfile::TempDir>,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Creates a ledger at `data` with a token of each role: (reader, producer, admin).
pub fn init_with_tokens(data: &Path) -> (String, String, String) {
    init_with_tokens_as(data, "api.test/ledger")
}

/// Creates a ledger for `origin` at `data` with a token of each role: (reader, producer,
/// admin).
pub fn init_with_tokens_as(data: &Path, origin: &str) -> (String, String, String) {
    let out = evidence().arg("--data-dir").arg(data).args(["init", "--origin", origin]).output().unwrap();
    assert!(out.status.success(), "init: {}", stderr(&out));
    let token = |name: &str, role: &str| {
        let out = evidence()
            .arg("--data-dir")
            .arg(data)
            .args(["token", "create", "--name", name, "--role", role])
            .output()
            .unwrap();
        assert!(out.status.success(), "token create: {}", stderr(&out));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1, "the token alone on stdout: {text:?}");
        text.trim().to_string()
    };
    (token("dashboards", "reader"), token("ci", "producer"), token("ops", "admin"))
}

impl Server {
    /// A new store with tokens, served with `args` added.
    pub fn start(args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("ledger");
        let (reader, producer, admin) = init_with_tokens(&data);
        let mut server = Server::on(&data, args, (reader, producer, admin));
        server._dir = Some(dir);
        server
    }

    /// Serves the existing store at `data` with `args` added.
    pub fn on(data: &Path, args: &[&str], (reader, producer, admin): (String, String, String)) -> Server {
        let mut child = evidence()
            .arg("--data-dir")
            .arg(data)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info,sled=warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        let lines = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut url = None;
        while url.is_none() {
            let line = log
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("serve printed no address within 30 s: {:?}", child.try_wait()));
            if let Some(at) = line.find("url=") {
                url = Some(line[at + 4..].split_whitespace().next().unwrap().to_string());
            }
        }
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Server { child, url: url.unwrap(), data: data.to_path_buf(), reader, producer, admin, log, agent, _dir: None }
    }

    fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut response = response.expect("the server answers");
        let status = response.status().as_u16();
        let headers: Vec<(String, String)> =
            response.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
        let content_type =
            headers.iter().find(|(k, _)| k == "content-type").map(|(_, v)| v.clone()).unwrap_or_default();
        let body = response.body_mut().with_config().limit(256 << 20).read_to_string().unwrap();
        Answer { status, content_type, headers, body }
    }

    /// GET `path` with `token` (none if empty).
    pub fn get(&self, path: &str, token: &str) -> Answer {
        let mut request = self.agent.get(format!("{}{path}", self.url));
        if !token.is_empty() {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Server::answer(request.call())
    }

    /// POST `body` as `content_type` to `path` with `token` (none if empty).
    pub fn post(&self, path: &str, token: &str, content_type: &str, body: &[u8]) -> Answer {
        let mut request = self.agent.post(format!("{}{path}", self.url)).header("Content-Type", content_type);
        if !token.is_empty() {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        Server::answer(request.send(body))
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        super::wait_exit(&mut self.child, Duration::from_secs(60), "serve stops on SIGTERM")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
