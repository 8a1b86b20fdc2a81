//! The accept loop: HTTP/1.1 connections served by hyper with the axum router, at most
//! `max_connections` at once (the next one gets a 503 problem and is closed), each closed when
//! its client takes longer than `header_timeout` to send a request's headers (slow or idle
//! clients cannot hold connections). On stop, no new connection is accepted, connections in
//! flight finish their current request (idle ones are closed), all within `grace`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use super::HttpLimits;

/// Where the server listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Listening {
    /// The bound address (the real port when 0 was asked for).
    pub addr: SocketAddr,
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `stop` completes, then
/// drains within `grace`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpLimits,
    tls: Option<TlsAcceptor>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tracing::warn!(message = "Failed to accept a connection.", %error);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics::counter!("evidence_http_connections_refused_total").increment(1);
            if tls.is_none() {
                tokio::spawn(refuse(stream, limits.max_connections));
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = tower::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let (http, watcher, tls, handshake) = (http.clone(), graceful.watcher(), tls.clone(), limits.header_timeout);
        metrics::gauge!("evidence_http_connections").increment(1.0);
        tokio::spawn(async move {
            let service = TowerToHyperService::new(service);
            let served = match tls {
                None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                // The handshake is bounded like the headers are.
                Some(tls) => match tokio::time::timeout(handshake, tls.accept(stream)).await {
                    Ok(Ok(stream)) => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                    Ok(Err(_)) | Err(_) => {
                        metrics::counter!("evidence_http_tls_handshakes_failed_total").increment(1);
                        Ok(())
                    }
                },
            };
            // A connection ends by the client, a timeout or an error: all are the client's.
            if let Err(error) = served {
                if error.is_timeout() {
                    metrics::counter!("evidence_http_connections_timed_out_total").increment(1);
                }
            }
            metrics::gauge!("evidence_http_connections").decrement(1.0);
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            message = "Requests still in flight after the grace period; stopping anyway.",
            grace_s = grace.as_secs()
        );
    }
}

/// Answers a connection over the cap with a 503 problem and closes it.
async fn refuse(mut stream: TcpStream, cap: usize) {
    let body = serde_json::to_string(&super::Problem::unavailable(
        format!("The ledger holds its limit of {cap} open connections; retry in a second."),
        1,
    ))
    .expect("a problem serializes");
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}
