//! The syslog sink: each alert change as an RFC 5424 message, framed by octet counting
//! (RFC 6587, `LEN SP MSG`), over TCP or TLS (RFC 5425). The structured data element
//! `alert@32473` carries the alert's id, rule, severity, status, the change, the policy
//! version and the proving entries; MSG is the explanation. A batch counts as delivered once
//! it is written and flushed and the connection is still open a moment later (syslog has no
//! acknowledgement: a server that closed the connection has not read what was written into
//! it). A broken connection is dropped and made again on the next attempt.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};

use super::Deliver;
use crate::governance::outbox::{Activity, Change};
use crate::governance::Severity;
use crate::service::ConfigError;

/// The SD-ID of the element every message carries (32473 is the enterprise number RFC 5612
/// sets aside for examples and documentation).
pub(crate) const SD_ID: &str = "alert@32473";

/// How long a connection attempt, a write or the liveness check may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How long the connection must stay open after a batch for it to count as received.
const SETTLE: Duration = Duration::from_millis(50);

/// Where the syslog server is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyslogTarget {
    /// Over TLS (RFC 5425).
    pub tls: bool,
    /// Its host.
    pub host: String,
    /// Its port.
    pub port: u16,
}

impl SyslogTarget {
    /// `tcp://HOST:PORT` or `tls://HOST:PORT`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Siem(format!("--siem-syslog {url:?} is not tcp://HOST:PORT or tls://HOST:PORT"));
        let (tls, rest) = if let Some(rest) = url.strip_prefix("tcp://") {
            (false, rest)
        } else if let Some(rest) = url.strip_prefix("tls://") {
            (true, rest)
        } else {
            return Err(bad());
        };
        let (host, port) = rest.trim_end_matches('/').rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port.parse().map_err(|_| bad())?;
        if host.is_empty() {
            return Err(bad());
        }
        Ok(SyslogTarget { tls, host: host.to_string(), port })
    }

    /// Its URL.
    pub fn url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{}://{host}:{}", if self.tls { "tls" } else { "tcp" }, self.port)
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(bytes).and_then(|()| s.flush()),
            Stream::Tls(s) => s.write_all(bytes).and_then(|()| s.flush()),
        }
    }

    /// Whether the server has closed the connection (it never sends on it).
    fn closed(&mut self, wait: Duration) -> bool {
        let tcp = self.tcp();
        if tcp.set_read_timeout(Some(wait)).is_err() {
            return true;
        }
        let mut byte = [0u8; 1];
        let read = match self {
            Stream::Plain(s) => s.read(&mut byte),
            Stream::Tls(s) => s.read(&mut byte),
        };
        match read {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    }
}

/// The syslog sink.
pub(crate) struct Syslog {
    target: SyslogTarget,
    ca_cert: Option<PathBuf>,
    stream: Option<Stream>,
    host: String,
}

impl Syslog {
    pub(crate) fn new(target: SyslogTarget, ca_cert: Option<PathBuf>) -> Self {
        Syslog { target, ca_cert, stream: None, host: hostname() }
    }

    fn connect(&self) -> Result<Stream, String> {
        let t = &self.target;
        let addr = (t.host.as_str(), t.port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {}: {e}", t.url()))?
            .next()
            .ok_or_else(|| format!("{} resolves to no address", t.url()))?;
        let tcp =
            TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| format!("cannot connect to {}: {e}", t.url()))?;
        tcp.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        if !t.tls {
            return Ok(Stream::Plain(tcp));
        }
        let certs = crate::trust::certificates(self.ca_cert.as_deref(), "--siem-ca-cert")?;
        let config = Arc::new(crate::trust::client_config(certs)?);
        let name = rustls::pki_types::ServerName::try_from(t.host.clone())
            .map_err(|e| format!("{} is not a server name: {e}", t.host))?;
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| e.to_string())?;
        let mut stream = rustls::StreamOwned::new(conn, tcp);
        tcp_handshake(&mut stream).map_err(|e| format!("TLS with {} failed: {e}", t.url()))?;
        Ok(Stream::Tls(Box::new(stream)))
    }
}

/// Completes a TLS handshake now, so that a refused certificate is the error it is.
fn tcp_handshake(s: &mut rustls::StreamOwned<rustls::ClientConnection, TcpStream>) -> std::io::Result<()> {
    s.sock.set_read_timeout(Some(TIMEOUT))?;
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(())
}

impl Deliver for Syslog {
    fn deliver(&mut self, origin: &str, changes: &[Change]) -> Result<(), String> {
        let mut bytes = Vec::new();
        let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        for change in changes {
            let message = message(origin, change, &now, &self.host);
            bytes.extend_from_slice(format!("{} ", message.len()).as_bytes());
            bytes.extend_from_slice(&message);
        }
        if let Some(stream) = self.stream.as_mut() {
            if stream.closed(Duration::from_millis(1)) {
                self.stream = None;
            }
        }
        let stream = match self.stream.as_mut() {
            Some(s) => s,
            None => self.stream.insert(self.connect()?),
        };
        let url = self.target.url();
        let sent = stream.write_all(&bytes).map_err(|e| format!("cannot write to {url}: {e}"));
        let sent =
            sent.and_then(
                |()| {
                    if stream.closed(SETTLE) {
                        Err(format!("{url} closed the connection"))
                    } else {
                        Ok(())
                    }
                },
            );
        if sent.is_err() {
            self.stream = None;
        }
        sent
    }
}

/// The syslog severity of an alert change: a resolution is a notice; otherwise the alert's
/// severity (critical 2, high 3, medium 4, low 5).
fn severity(change: &Change) -> u8 {
    if change.activity == Activity::Close {
        return 5;
    }
    match change.alert.severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
    }
}

/// Facility 13, log audit.
const FACILITY: u8 = 13;

/// An SD-PARAM value with `"`, `\` and `]` escaped (RFC 5424, 6.3.3).
fn sd_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '"' | '\\' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The RFC 5424 message of `change` in the log named `origin`, stamped `now`, from `host`.
pub(crate) fn message(origin: &str, change: &Change, now: &str, host: &str) -> Vec<u8> {
    let a = &change.alert;
    let entries: Vec<String> = a.entries.iter().map(u64::to_string).collect();
    let mut params: Vec<(&str, String)> = vec![
        ("id", a.id.clone()),
        ("rule", a.rule.name().to_string()),
        ("severity", a.severity.name().to_string()),
        ("status", if change.activity == Activity::Close { "resolved" } else { "open" }.to_string()),
        ("activity", change.activity.name().to_string()),
        ("change", change.number.to_string()),
        ("policy", a.policy_version.clone()),
        ("entries", entries.join(" ")),
        ("seq", a.seq.to_string()),
        ("time", a.time.to_rfc3339()),
        ("origin", origin.to_string()),
    ];
    params.extend(a.app.iter().map(|v| ("app", v.clone())));
    params.extend(a.env.iter().map(|v| ("env", v.clone())));
    params.extend(a.artifact.iter().map(|v| ("artifact", v.clone())));
    params.extend(a.route.iter().map(|v| ("route", v.clone())));
    params.extend(a.resolved_by.iter().map(|v| ("resolved_by", v.to_string())));
    params.extend(a.fold.iter().map(|f| ("occurrences", f.occurrences.to_string())));
    let sd: String = params.iter().map(|(k, v)| format!(" {k}=\"{}\"", sd_value(v))).collect();
    let pri = FACILITY * 8 + severity(change);
    let head = format!(
        "<{pri}>1 {now} {host} evidence {} alert.{} [{SD_ID}{sd}] ",
        std::process::id(),
        change.activity.name()
    );
    let mut out = head.into_bytes();
    out.extend_from_slice("\u{feff}".as_bytes());
    out.extend_from_slice(a.explanation.as_bytes());
    out
}

/// This machine's name as RFC 5424's HOSTNAME allows it (printable ASCII, no space), or `-`.
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let name: String = name.trim().chars().filter(|c| c.is_ascii_graphic()).take(255).collect();
    if name.is_empty() {
        "-".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_tcp_or_tls_with_a_host_and_port() {
        let t = SyslogTarget::parse("tls://siem.example:6514").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.port), (true, "siem.example", 6514));
        assert_eq!(t.url(), "tls://siem.example:6514");
        let t = SyslogTarget::parse("tcp://[::1]:514").unwrap();
        assert_eq!((t.tls, t.host.as_str(), t.url()), (false, "::1", "tcp://[::1]:514".to_string()));
        for bad in ["udp://h:514", "tcp://h", "tcp://:514", "tcp://h:99999", "h:514"] {
            assert!(SyslogTarget::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn structured_data_values_escape_quote_backslash_and_bracket() {
        assert_eq!(sd_value(r#"a"b\c]d"#), r#"a\"b\\c\]d"#);
        assert_eq!(sd_value("plain [x]"), r"plain [x\]");
    }
}
