//! SIP transports: UDP datagrams, and TCP and TLS streams (framed by Content-Length), on the
//! configured SIPPort and SIPTLSPort. Each received message goes to the user agent with the path to answer it on; a message
//! that cannot be parsed is answered here (400/505) when it carries a Via, and dropped otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::message::{error_response, frame, Framing, SipMessage, MAX_MESSAGE};
use crate::listener::next_admitted;

/// Messages waiting for the user agent; beyond this, UDP messages are dropped (the peer
/// retransmits) and TCP readers wait.
pub const INBOUND_QUEUE: usize = 1024;
/// Most TCP connections at once.
const MAX_TCP: usize = 256;
/// Messages waiting to be written on one TCP connection.
const OUTBOUND_QUEUE: usize = 64;
/// A TLS handshake must finish within this time.
const HANDSHAKE: std::time::Duration = std::time::Duration::from_secs(10);

/// Which transport a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
}

/// Where to send messages back to a peer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A datagram to this address.
    Udp {
        /// The listening socket.
        socket: Arc<UdpSocket>,
        /// The peer's source address (symmetric response routing, as with `rport`).
        to: SocketAddr,
    },
    /// On the same stream connection (TCP or TLS).
    Stream(mpsc::Sender<Vec<u8>>, Kind),
}

impl Reply {
    /// Sends a message; a closed or full connection drops it (the peer retransmits or gives up).
    pub fn send(&self, message: &SipMessage) {
        let bytes = message.to_bytes();
        match self {
            Reply::Udp { socket, to } => {
                if let Err(e) = socket.try_send_to(&bytes, *to) {
                    tracing::debug!(error = %e, "SIP send failed");
                }
            }
            Reply::Stream(tx, _) => {
                if tx.try_send(bytes).is_err() {
                    tracing::debug!("SIP connection closed or congested");
                }
            }
        }
    }

    /// The transport kind.
    pub fn kind(&self) -> Kind {
        match self {
            Reply::Udp { .. } => Kind::Udp,
            Reply::Stream(_, kind) => *kind,
        }
    }
}

/// A message for the user agent.
#[derive(Debug)]
pub struct Inbound {
    /// The message.
    pub message: SipMessage,
    /// Where it came from.
    pub from: SocketAddr,
    /// How to answer.
    pub reply: Reply,
}

/// Answers what could not be parsed; returns the message when it parsed.
fn accept(raw: &[u8], reply: &Reply) -> Option<SipMessage> {
    match SipMessage::parse(raw) {
        Ok(m) => Some(m),
        Err(e) => {
            tracing::debug!(error = %e, "malformed SIP message");
            if let Some(response) = error_response(raw, &e) {
                reply.send(&response);
            }
            None
        }
    }
}

/// Receives datagrams on `socket` until `shutdown`.
pub async fn run_udp(socket: Arc<UdpSocket>, inbound: mpsc::Sender<Inbound>, shutdown: CancellationToken) {
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
        let reply = Reply::Udp { socket: socket.clone(), to: from };
        if let Some(message) = accept(data, &reply) {
            if inbound.try_send(Inbound { message, from, reply }).is_err() {
                tracing::warn!("SIP inbound queue full, dropping a datagram");
            }
        }
    }
}

/// Accepts TCP connections on `listener` until `shutdown`; with `tls`, each one is a TLS
/// connection.
pub async fn run_stream(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(MAX_TCP));
    loop {
        let Some((stream, from, permit)) = next_admitted(&listener, &permits, &shutdown, "SIP").await else {
            return;
        };
        let (inbound, shutdown, tls) = (inbound.clone(), shutdown.clone(), tls.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve(stream, Kind::Tcp, from, inbound, shutdown).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => serve(tls, Kind::Tls, from, inbound, shutdown).await,
                    Ok(Err(e)) => tracing::debug!(%from, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%from, "TLS handshake timed out"),
                },
            }
        });
    }
}

/// Opens a connection to `to` for requests the device sends (TLS when `tls` gives a connector
/// and the server name); what comes back on it goes to `inbound` like any received message.
pub async fn connect(
    to: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> std::io::Result<Reply> {
    let stream = TcpStream::connect(to).await?;
    Ok(match tls {
        None => start_stream(stream, Kind::Tcp, to, inbound, shutdown),
        Some((connector, name)) => {
            let tls = tokio::time::timeout(HANDSHAKE, connector.connect(name, stream))
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
            start_stream(tls, Kind::Tls, to, inbound, shutdown)
        }
    })
}

/// Starts reading a connection in the background; returns the way to write to it.
fn start_stream<S>(
    stream: S,
    kind: Kind,
    peer: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> Reply
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reply, reader) = split(stream, kind);
    tokio::spawn(read_stream(reader, peer, reply.clone(), inbound, shutdown));
    reply
}

/// Splits a connection: a writer task owns the write half and ends when the last [`Reply`]
/// clone (held by dialogs) is gone.
fn split<S>(stream: S, kind: Kind) -> (Reply, ReadHalf<S>)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(OUTBOUND_QUEUE);
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    (Reply::Stream(tx, kind), reader)
}

/// Serves one accepted connection.
async fn serve<S>(stream: S, kind: Kind, from: SocketAddr, inbound: mpsc::Sender<Inbound>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (reply, reader) = split(stream, kind);
    read_stream(reader, from, reply, inbound, shutdown).await;
}

/// Reads and frames one connection.
async fn read_stream<R>(
    mut reader: R,
    from: SocketAddr,
    reply: Reply,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) where
    R: AsyncRead + Unpin,
{
    let mut buf = BytesMut::with_capacity(4096);
    'read: loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            r = reader.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
        }
        loop {
            match frame(&buf) {
                Ok(Framing::Incomplete) => break,
                Ok(Framing::KeepAlive(n)) => buf.advance(n),
                Ok(Framing::Message(n)) => {
                    let raw = buf.split_to(n);
                    if let Some(message) = accept(&raw, &reply) {
                        if inbound.send(Inbound { message, from, reply: reply.clone() }).await.is_err() {
                            break 'read;
                        }
                    }
                }
                Err(e) => {
                    tracing::debug!(%from, error = %e, "unframeable SIP stream, closing");
                    if let Some(response) = error_response(&buf, &e) {
                        reply.send(&response);
                    }
                    break 'read;
                }
            }
        }
    }
}
