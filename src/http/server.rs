//! The accept loop: one task per connection, a bound on open connections, and a clean stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::listener::next_admitted;
use crate::reply::Body;
use crate::request_target::LenientTarget;

/// What answers the requests of a server: a device's [`super::App`], or a fleet's management
/// face.
pub trait Handler: Send + Sync + 'static {
    /// Answers one request that arrived on `local`.
    fn handle(
        &self,
        req: Request<Incoming>,
        local: SocketAddr,
    ) -> impl std::future::Future<Output = Response<Body>> + Send;

    /// The whole HTTP response to a request head that cannot be parsed (`target` as far as it
    /// was read): a 400 with a body saying why, unless a face has its own format.
    fn malformed(_target: &str, why: &str) -> Vec<u8> {
        let body = serde_json::json!({ "Error": why }).to_string();
        raw_response("400 Bad Request", "application/json", &body)
    }
}

/// A complete HTTP/1.1 response that closes the connection, as bytes.
pub fn raw_response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Most connections served at once. A connection beyond this is accepted and closed at once, so
/// the listen backlog never fills: with a thousand clients trickling their headers (each held
/// at most [`HEADER_READ_TIMEOUT`]), there is still room for the others.
pub const MAX_CONNECTIONS: usize = 4096;

/// A client must finish sending a request's headers within this time, so idle or trickling
/// connections cannot hold the connection permits.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has for its TLS hand-shake on the HTTPS port.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` is cancelled; open connections finish their
/// current request and close. With `tls`, every connection is HTTPS.
pub async fn run<H: Handler>(
    listener: TcpListener,
    app: Arc<H>,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Some((stream, peer, permit)) = next_admitted(&listener, &permits, &shutdown, "HTTP").await else {
            return;
        };
        let local = stream.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let (app, shutdown, tls) = (app.clone(), shutdown.clone(), tls.clone());
        tracker.spawn(async move {
            let _permit = permit;
            let result = match tls {
                None => serve(stream, app, local, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve(tls, app, local, shutdown).await,
                    Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS hand-shake failed"),
                    Err(_) => return tracing::debug!(%peer, "TLS hand-shake timed out"),
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Serves one connection (plain or TLS) until it closes, or finishes its request and closes
/// once `shutdown` is cancelled.
async fn serve<H, S>(io: S, app: Arc<H>, local: SocketAddr, shutdown: CancellationToken) -> Result<(), hyper::Error>
where
    H: Handler,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Every request's future holds the app. A handle of the connection's own is cloned per
    // request, so the count that changes is this connection's, not the one every core shares.
    let app = Arc::new(app);
    let service = service_fn(move |req| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(app.handle(req, local).await) }
    });
    // The head deadline is the connection wrapper's (one timer per connection), not hyper's
    // `header_read_timeout` (a timer armed and disarmed per request).
    let io = LenientTarget::new(io, H::malformed).with_head_timeout(HEADER_READ_TIMEOUT);
    let conn = http1::Builder::new().serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    // The select polls the cancellation on every wake-up of the connection, and a pending
    // `cancelled()` locks its token's waiter list each time: a token of its own keeps that
    // lock out of the other connections' way.
    let shutdown = shutdown.child_token();
    tokio::select! {
        r = conn.as_mut() => r,
        () = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}
