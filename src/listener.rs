//! The accept step every TCP service of the device shares (HTTP, SIP over TCP/TLS, RTSP).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// The first pause after a failed accept, and the longest.
const ACCEPT_BACKOFF_FIRST: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The next connection on `listener`, or `None` once `shutdown` is cancelled. A failed accept
/// (for example the process is out of file descriptors) is logged under `service` and retried
/// after a pause that doubles up to a second, so one bad moment neither stops the service nor
/// spins a core.
pub async fn next_connection(
    listener: &TcpListener,
    shutdown: &CancellationToken,
    service: &str,
) -> Option<(TcpStream, SocketAddr)> {
    let mut pause = ACCEPT_BACKOFF_FIRST;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(connection) => return Some(connection),
                Err(e) => tracing::warn!(service, error = %e, "accept failed"),
            },
        }
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(pause) => pause = (pause * 2).min(ACCEPT_BACKOFF_MAX),
        }
    }
}

/// The next connection that gets one of `permits`, with the permit it holds; a connection
/// that arrives while all permits are taken is closed at once. `None` once `shutdown` is
/// cancelled.
pub async fn next_admitted(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
    shutdown: &CancellationToken,
    service: &str,
) -> Option<(TcpStream, SocketAddr, OwnedSemaphorePermit)> {
    loop {
        let (stream, peer) = next_connection(listener, shutdown, service).await?;
        match permits.clone().try_acquire_owned() {
            Ok(permit) => return Some((stream, peer, permit)),
            Err(_) => tracing::warn!(service, %peer, "connection limit reached, refusing one"),
        }
    }
}
