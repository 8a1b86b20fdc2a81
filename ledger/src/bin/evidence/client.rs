//! `--server URL` (or `EVIDENCE_SERVER`): the commands that read or append ask a running
//! `evidence serve` over its API instead of opening the store, with the token in
//! `EVIDENCE_TOKEN`, and print what they print locally. An answer that is a problem document
//! becomes its sentence.
//!
//! An `https://` server is reached over TLS (rustls with ring, as the server): its certificate
//! must chain to a certificate in `EVIDENCE_CA_CERT` (a PEM file, for a private CA or a
//! self-signed server), or else to the system's trust store (the PEM bundle of Debian, RHEL
//! or Alpine).

use std::time::Duration;

use anyhow::Context as _;
use evidence_ledger::trust;
use serde::de::DeserializeOwned;

/// A client of one service.
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

/// An answer: its status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Client {
    /// A client of the service at `base`, with the token from `EVIDENCE_TOKEN`.
    pub(crate) fn new(base: &str) -> anyhow::Result<Self> {
        let mut config =
            ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(300)));
        if base.starts_with("https://") {
            let named = std::env::var_os("EVIDENCE_CA_CERT").filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
            let certs = trust::certificates(named.as_deref(), "EVIDENCE_CA_CERT").map_err(anyhow::Error::msg)?;
            config = config.tls_config(trust::ureq_tls(&certs));
        }
        let token = std::env::var("EVIDENCE_TOKEN").ok().filter(|t| !t.trim().is_empty());
        Ok(Client { base: base.trim_end_matches('/').to_string(), token, agent: config.build().into() })
    }

    fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, String)],
        body: Option<(&str, &[u8])>,
    ) -> anyhow::Result<Answer> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {}", t.trim()));
        let response = match body {
            None => {
                let mut request = self.agent.get(&url);
                for (k, v) in query {
                    request = request.query(*k, v);
                }
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.call()
            }
            Some((content_type, bytes)) => {
                let mut request = self.agent.post(&url).header("Content-Type", content_type);
                for (k, v) in query {
                    request = request.query(*k, v);
                }
                if let Some(auth) = &auth {
                    request = request.header("Authorization", auth);
                }
                request.send(bytes)
            }
        };
        let mut response =
            response.with_context(|| format!("Cannot reach the ledger service at {} ({method} {path})", self.base))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .with_context(|| format!("Cannot read the answer to {method} {path}"))?;
        Ok(Answer { status, body })
    }

    /// The problem an error answer holds, as an error of one sentence.
    fn problem(&self, answer: &Answer) -> anyhow::Error {
        let detail = serde_json::from_str::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|p| p["detail"].as_str().map(str::to_string))
            .unwrap_or_else(|| answer.body.trim().to_string());
        let hint = match answer.status {
            401 => " (set EVIDENCE_TOKEN to a token from `evidence token create`)",
            _ => "",
        };
        anyhow::anyhow!("The ledger service answered {}: {detail}{hint}", answer.status)
    }

    /// GET `path` as `T`; `None` on 404 (the problem's sentence goes to `missing`).
    pub(crate) fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<Result<T, String>> {
        let answer = self.send("GET", path, query, None)?;
        match answer.status {
            200 => Ok(Ok(serde_json::from_str(&answer.body)
                .with_context(|| format!("The answer to GET {path} is not what this client reads"))?)),
            404 => Ok(Err(self.problem(&answer).to_string())),
            _ => Err(self.problem(&answer)),
        }
    }

    /// GET `path` as text.
    pub(crate) fn text(&self, path: &str) -> anyhow::Result<String> {
        let answer = self.send("GET", path, &[], None)?;
        if answer.status == 200 {
            Ok(answer.body)
        } else {
            Err(self.problem(&answer))
        }
    }

    /// POST `body` as `content_type` to `path`; the answer as `T` when its status is 2xx.
    pub(crate) fn post<T: DeserializeOwned>(&self, path: &str, content_type: &str, body: &[u8]) -> anyhow::Result<T> {
        let answer = self.send("POST", path, &[], Some((content_type, body)))?;
        if (200..300).contains(&answer.status) {
            Ok(serde_json::from_str(&answer.body)
                .with_context(|| format!("The answer to POST {path} is not what this client reads"))?)
        } else {
            Err(self.problem(&answer))
        }
    }

    /// Reads the server-sent events of GET `path` (after event `last`, when given), calling
    /// `each(id, event, data)` for each, until the stream ends. No timeout: a stream may stay
    /// quiet for long.
    pub(crate) fn events(
        &self,
        path: &str,
        query: &[(&str, String)],
        last: Option<&str>,
        mut each: impl FnMut(&str, &str, &str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        use std::io::BufRead as _;
        let mut headers = vec![("Accept", "text/event-stream")];
        headers.extend(last.map(|l| ("Last-Event-ID", l)));
        let reader = std::io::BufReader::new(self.stream(path, query, &headers)?);
        let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
        for line in reader.lines() {
            let line = line.with_context(|| format!("The stream of GET {path} broke"))?;
            if line.is_empty() {
                if !data.is_empty() {
                    each(&id, &event, &data)?;
                }
                (event, data) = (String::new(), String::new());
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => id = value.to_string(),
                "event" => event = value.to_string(),
                "data" => {
                    if !data.is_empty() {
                        data.push('\n');
                    }
                    data.push_str(value);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Copies the body of GET `path` to `to`, however long it takes; returns its length.
    pub(crate) fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
        to: &mut dyn std::io::Write,
    ) -> anyhow::Result<u64> {
        let mut body = self.stream(path, query, &[])?;
        std::io::copy(&mut body, to).with_context(|| format!("The answer to GET {path} broke off"))
    }

    /// The body of GET `path` as it arrives, with no timeout; a problem when not 200.
    fn stream(
        &self,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&str, &str)],
    ) -> anyhow::Result<impl std::io::Read + 'static> {
        let url = format!("{}{path}", self.base);
        let mut request = self.agent.get(&url);
        for (k, v) in query {
            request = request.query(*k, v);
        }
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        if let Some(token) = &self.token {
            request = request.header("Authorization", &format!("Bearer {}", token.trim()));
        }
        let response = request.config().timeout_global(None).build().call();
        let response =
            response.with_context(|| format!("Cannot reach the ledger service at {} (GET {path})", self.base))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.into_body().read_to_string().unwrap_or_default();
            return Err(self.problem(&Answer { status, body }));
        }
        Ok(response.into_body().into_reader())
    }

    /// POST with retries while the service answers 503 (its queue full), honouring
    /// `Retry-After` up to 30 tries.
    pub(crate) fn post_retrying<T: DeserializeOwned>(
        &self,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> anyhow::Result<T> {
        for _ in 0..30 {
            let answer = self.send("POST", path, &[], Some((content_type, body)))?;
            match answer.status {
                200..=299 => {
                    return serde_json::from_str(&answer.body)
                        .with_context(|| format!("The answer to POST {path} is not what this client reads"));
                }
                503 => std::thread::sleep(Duration::from_secs(1)),
                _ => return Err(self.problem(&answer)),
            }
        }
        anyhow::bail!("The ledger service at {} stayed busy (503) for 30 tries of POST {path}", self.base)
    }
}
