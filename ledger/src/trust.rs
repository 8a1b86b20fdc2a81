//! Which certificates a TLS peer's must chain to: a PEM file the user names (a private CA, or
//! a self-signed peer), or else the system's trust store. Shared by the CLI's client of a
//! service and by the SIEM sinks (a `tls://` syslog server, an `https://` collector).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;

/// Where the system keeps its trusted certificates, one PEM bundle each (Debian and Ubuntu,
/// RHEL and Fedora, Alpine and others).
pub const SYSTEM_ROOTS: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// The trusted certificates: `named`'s (`what` says where it was named, for the error), or
/// the system's. An error is a sentence.
pub fn certificates(named: Option<&Path>, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let (path, what): (PathBuf, &str) = match named {
        Some(p) => (p.to_path_buf(), what),
        None => match SYSTEM_ROOTS.iter().map(Path::new).find(|p| p.exists()) {
            Some(p) => (p.to_path_buf(), "the system's trust store"),
            None => {
                return Err(format!(
                    "No trusted certificates to check the peer's with: set {what} to a PEM file of them"
                ))
            }
        },
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| format!("Cannot read {what}, {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{what}, {}, holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// A rustls client configuration (ring) trusting `certs`.
pub fn client_config(certs: Vec<CertificateDer<'static>>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    let (_, refused) = roots.add_parsable_certificates(certs);
    if roots.is_empty() {
        return Err(format!("none of the {refused} trusted certificates could be parsed"));
    }
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| e.to_string())
}

/// ureq's TLS configuration (rustls with ring) trusting `certs`.
pub fn ureq_tls(certs: &[CertificateDer<'static>]) -> ureq::tls::TlsConfig {
    let certs: Vec<ureq::tls::Certificate<'static>> =
        certs.iter().map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()).collect();
    ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .build()
}
