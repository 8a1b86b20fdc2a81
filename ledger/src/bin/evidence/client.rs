//! `--server URL` (or `EVIDENCE_SERVER`): the commands that read or append ask a running
//! `evidence serve` over its API instead of opening the store, with the token in
//! `EVIDENCE_TOKEN`, and print what they print locally. An answer that is a problem document
//! becomes its sentence.

use std::time::Duration;

use anyhow::Context as _;
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
    pub(crate) fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(300)))
            .build()
            .into();
        let token = std::env::var("EVIDENCE_TOKEN").ok().filter(|t| !t.trim().is_empty());
        Client { base: base.trim_end_matches('/').to_string(), token, agent }
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
