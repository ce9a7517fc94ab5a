//! SIP transports: UDP datagrams, and TCP and TLS streams (framed by Content-Length), on the
//! configured SIPPort and SIPTLSPort, plus the connections the device opens itself.
//!
//! A [`Path`] names where a message goes (transport and peer address), never a socket: the
//! [`Transports`] table looks up the current UDP socket or the open connection to that peer
//! when a message is sent. So a moved SIPPort or a restarted peer never leaves a stale socket
//! alive in a dialog or a registration. Each received message goes to the user agent with the
//! path to answer it on; a message that cannot be parsed is answered here (400/505) when it
//! carries a Via, and dropped otherwise.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::capture::{Capture, Carrier};
use tokio_util::task::TaskTracker;

use super::message::{error_response, frame, Framing, SipMessage, MAX_MESSAGE};
use crate::listener::next_admitted;

/// Messages waiting for the user agent; beyond this, UDP messages are dropped (the peer
/// retransmits) and TCP readers wait.
pub const INBOUND_QUEUE: usize = 1024;
/// Most TCP and TLS connections at once, accepted and opened together.
pub const MAX_CONNECTIONS: usize = 256;
/// Messages waiting to be written on one connection. The writer sends what is queued in one
/// write, so this is reached only when the peer stops reading; a message beyond it is dropped
/// with a warning, and the peer's transaction times out (no retransmission on a stream). Room
/// for a burst of several thousand calls a second on one connection (sipp's `-t t1`), at most
/// about 1 MiB per connection.
const OUTBOUND_QUEUE: usize = 2048;
/// A TLS handshake must finish within this time.
pub const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Which transport a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
    /// TLS over TCP.
    Tls,
}

impl Kind {
    /// The Via transport token.
    pub fn via(self) -> &'static str {
        match self {
            Kind::Udp => "UDP",
            Kind::Tcp => "TCP",
            Kind::Tls => "TLS",
        }
    }

    /// The `transport=` URI parameter value.
    pub fn param(self) -> &'static str {
        match self {
            Kind::Udp => "udp",
            Kind::Tcp => "tcp",
            Kind::Tls => "tls",
        }
    }

    /// Whether the transport is reliable (no retransmissions, RFC 3261 section 17).
    pub fn reliable(self) -> bool {
        self != Kind::Udp
    }
}

/// Where a message goes: a transport and the peer's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Path {
    /// The transport.
    pub kind: Kind,
    /// The peer (for UDP, its source address: symmetric response routing, as with `rport`).
    pub peer: SocketAddr,
}

/// Why a message could not be handed to the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    /// SIP is not listening (no UDP socket).
    #[error("SIP is not listening")]
    NotListening,
    /// No open connection to that peer.
    #[error("no connection to the peer")]
    NoConnection,
    /// The connection's queue is full or the datagram could not be sent.
    #[error("the transport refused the message")]
    Refused,
}

/// What sends messages on a path: the [`Transports`] table, or a recorder in unit tests.
pub trait Wire {
    /// Sends a serialized message on `path` without waiting.
    fn send_bytes(&self, path: &Path, bytes: &[u8]) -> Result<(), SendError>;

    /// Sends `message` on `path` without waiting.
    fn send(&self, path: &Path, message: &SipMessage) -> Result<(), SendError> {
        self.send_bytes(path, &message.to_bytes())
    }
}

/// The device's sockets: the current UDP socket and the open connections by peer.
#[derive(Debug, Default)]
pub struct Transports {
    /// The sending side of the running listeners' UDP socket (none while SIP is off). A
    /// non-blocking std socket on the same port as the receiving tokio one: a tokio socket's
    /// `try_send_to` refuses to send until the reactor has reported it writable, which drops
    /// the first messages after a (re)bind.
    udp: Mutex<Option<Arc<std::net::UdpSocket>>>,
    /// Open connections by peer; at most [`MAX_CONNECTIONS`] (one permit each).
    streams: Mutex<HashMap<(Kind, SocketAddr), Connection>>,
    /// Counts what is sent.
    metrics: crate::metrics::DeviceMetrics,
    /// Where messages sent and received are also written (`--pcap`), and the address shown
    /// for a socket bound to "any".
    capture: Option<(Arc<Capture>, std::net::IpAddr)>,
}

/// The queue into one connection's writer task.
type Writer = mpsc::Sender<Vec<u8>>;

/// One open connection: its writer's queue and its local address.
#[derive(Debug, Clone)]
struct Connection {
    writer: Writer,
    local: SocketAddr,
}

impl Wire for Transports {
    fn send_bytes(&self, path: &Path, bytes: &[u8]) -> Result<(), SendError> {
        let sent = self.send_on(path, bytes);
        if sent.is_ok() {
            self.metrics.sip_sent(bytes, path.kind.via());
            self.captured(path, bytes, false);
        }
        sent
    }
}

impl Transports {
    /// Sending sockets that count what they send into `metrics` and, with `capture`, write
    /// what they send and receive there (showing `address` for sockets bound to "any").
    pub fn new(metrics: crate::metrics::DeviceMetrics, capture: Option<(Arc<Capture>, std::net::IpAddr)>) -> Self {
        Self { metrics, capture, ..Self::default() }
    }

    /// Writes a message sent on (or `received` from) `path` to the capture, if there is one.
    fn captured(&self, path: &Path, bytes: &[u8], received: bool) {
        let Some((capture, address)) = &self.capture else { return };
        let local = match path.kind {
            Kind::Udp => lock(&self.udp).as_ref().and_then(|s| s.local_addr().ok()),
            kind => lock(&self.streams).get(&(kind, path.peer)).map(|c| c.local),
        };
        let Some(mut local) = local else { return };
        if local.ip().is_unspecified() {
            local.set_ip(*address);
        }
        let carrier = if path.kind == Kind::Udp { Carrier::Udp } else { Carrier::Tcp };
        let (from, to) = if received { (path.peer, local) } else { (local, path.peer) };
        capture.packet(carrier, from, to, bytes);
    }

    fn send_on(&self, path: &Path, bytes: &[u8]) -> Result<(), SendError> {
        match path.kind {
            Kind::Udp => {
                let socket = lock(&self.udp).clone().ok_or(SendError::NotListening)?;
                socket.send_to(bytes, path.peer).map(drop).map_err(|e| {
                    tracing::debug!(error = %e, peer = %path.peer, "SIP datagram not sent");
                    SendError::Refused
                })
            }
            kind => {
                let writer = lock(&self.streams)
                    .get(&(kind, path.peer))
                    .map(|c| c.writer.clone())
                    .ok_or(SendError::NoConnection)?;
                writer.try_send(bytes.to_vec()).map_err(|e| {
                    tracing::warn!(peer = %path.peer, error = %e, "SIP message not queued on its connection");
                    SendError::Refused
                })
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Transports {
    /// Puts the sending side of the listeners' UDP socket in place (or removes it).
    pub fn set_udp(&self, socket: Option<Arc<std::net::UdpSocket>>) {
        *lock(&self.udp) = socket;
    }

    /// Whether a connection to `peer` over `kind` is open.
    pub fn connected(&self, kind: Kind, peer: SocketAddr) -> bool {
        lock(&self.streams).get(&(kind, peer)).is_some_and(|c| !c.writer.is_closed())
    }
}

/// A message for the user agent.
#[derive(Debug)]
pub struct Inbound {
    /// The message.
    pub message: SipMessage,
    /// Where it came from, and how to answer.
    pub path: Path,
}

/// Answers what could not be parsed; returns the message when it parsed.
fn accept(raw: &[u8], path: &Path, transports: &Transports) -> Option<SipMessage> {
    transports.captured(path, raw, true);
    match SipMessage::parse(raw) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!(error = %e, "malformed SIP message");
            if let Some(response) = error_response(raw, &e) {
                let _ = transports.send(path, &response);
            }
            None
        }
    }
}

/// Receives datagrams on `socket` until `shutdown`.
pub async fn run_udp(
    socket: Arc<UdpSocket>,
    transports: Arc<Transports>,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    loop {
        let (n, from) = tokio::select! {
            () = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "SIP UDP receive failed");
                    continue;
                }
            },
        };
        let data = &buf[..n];
        if data.iter().all(|b| b.is_ascii_whitespace()) {
            continue; // keep-alive
        }
        let path = Path { kind: Kind::Udp, peer: from };
        if let Some(message) = accept(data, &path, &transports) {
            if inbound.try_send(Inbound { message, path }).is_err() {
                tracing::warn!("SIP inbound queue full, dropping a datagram");
            }
        }
    }
}

/// Where connections report and how many may be open; shared by the listeners and the
/// connector.
#[derive(Debug, Clone)]
pub struct Streams {
    /// The table connections register in.
    pub transports: Arc<Transports>,
    /// Where received messages go.
    pub inbound: mpsc::Sender<Inbound>,
    /// One permit per open connection.
    pub permits: Arc<Semaphore>,
    /// The device's tasks.
    pub tracker: TaskTracker,
}

impl Streams {
    /// A stream table over `transports` reporting to `inbound`.
    pub fn new(transports: Arc<Transports>, inbound: mpsc::Sender<Inbound>, tracker: TaskTracker) -> Streams {
        Streams { transports, inbound, permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)), tracker }
    }

    /// Registers an open connection from `local` to `peer` and reads it in the background until
    /// it closes or `shutdown`; it leaves the table when it ends. A connection already open to
    /// the same peer is replaced.
    pub fn start<S>(
        &self,
        stream: S,
        kind: Kind,
        (local, peer): (SocketAddr, SocketAddr),
        permit: OwnedSemaphorePermit,
        shutdown: CancellationToken,
    ) where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (reader, mut writer) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(OUTBOUND_QUEUE);
        let closed = CancellationToken::new();
        let writer_closed = closed.clone();
        self.tracker.spawn(async move {
            // Messages queued meanwhile go out in the same write: one system call for a burst.
            let mut batch = Vec::with_capacity(READ_CHUNK);
            while let Some(bytes) = rx.recv().await {
                batch.extend_from_slice(&bytes);
                while batch.len() < READ_CHUNK {
                    let Ok(more) = rx.try_recv() else { break };
                    batch.extend_from_slice(&more);
                }
                if writer.write_all(&batch).await.is_err() {
                    break;
                }
                batch.clear();
            }
            writer_closed.cancel();
        });
        lock(&self.transports.streams).insert((kind, peer), Connection { writer: tx.clone(), local });
        let this = self.clone();
        self.tracker.spawn(async move {
            let _permit = permit;
            let path = Path { kind, peer };
            tokio::select! {
                () = read_stream(reader, path, &this) => {}
                () = closed.cancelled() => {}
                () = shutdown.cancelled() => {}
            }
            let mut table = lock(&this.transports.streams);
            if table.get(&(kind, peer)).is_some_and(|c| c.writer.same_channel(&tx)) {
                table.remove(&(kind, peer));
            }
        });
    }
}

/// Accepts TCP connections on `listener` until `shutdown`; with `tls`, each one is a TLS
/// connection.
pub async fn run_stream(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    streams: Streams,
    shutdown: CancellationToken,
) {
    loop {
        let Some((stream, from, permit)) = next_admitted(&listener, &streams.permits, &shutdown, "SIP").await else {
            return;
        };
        let Ok(local) = stream.local_addr() else { continue };
        match tls.clone() {
            None => streams.start(stream, Kind::Tcp, (local, from), permit, shutdown.clone()),
            Some(acceptor) => {
                let (streams, shutdown) = (streams.clone(), shutdown.clone());
                streams.tracker.clone().spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => streams.start(tls, Kind::Tls, (local, from), permit, shutdown),
                        Ok(Err(e)) => tracing::debug!(%from, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%from, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}

/// What one read from a SIP connection may take.
const READ_CHUNK: usize = 16 * 1024;

/// Reads and frames one connection.
async fn read_stream<R>(mut reader: R, path: Path, streams: &Streams)
where
    R: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    loop {
        // Room for a full read: `split_to` leaves only the tail's capacity, and a full
        // BytesMut grows by 64 bytes a read. `reserve` takes the buffer back once the messages
        // split off it are gone.
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        match reader.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        loop {
            match frame(&buf) {
                Ok(Framing::Incomplete) => break,
                Ok(Framing::KeepAlive(n)) => buf.advance(n),
                Ok(Framing::Message(n)) => {
                    let raw = buf.split_to(n);
                    if let Some(message) = accept(&raw, &path, &streams.transports) {
                        if streams.inbound.send(Inbound { message, path }).await.is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %path.peer, error = %e, "unframeable SIP stream, closing");
                    if let Some(response) = error_response(&buf, &e) {
                        let _ = streams.transports.send(&path, &response);
                    }
                    return;
                }
            }
        }
    }
}
