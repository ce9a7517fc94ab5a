//! SIP transports: UDP datagrams and TCP streams (framed by Content-Length) on the configured
//! SIPPort. Each received message goes to the user agent with the path to answer it on; a message
//! that cannot be parsed is answered here (400/505) when it carries a Via, and dropped otherwise.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;

use super::message::{error_response, frame, Framing, SipMessage, MAX_MESSAGE};

/// Messages waiting for the user agent; beyond this, UDP messages are dropped (the peer
/// retransmits) and TCP readers wait.
pub const INBOUND_QUEUE: usize = 1024;
/// Most TCP connections at once.
const MAX_TCP: usize = 256;
/// Messages waiting to be written on one TCP connection.
const OUTBOUND_QUEUE: usize = 64;

/// Which transport a message came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// UDP.
    Udp,
    /// TCP.
    Tcp,
}

impl Kind {
    /// The Via transport token.
    pub fn via(self) -> &'static str {
        match self {
            Kind::Udp => "UDP",
            Kind::Tcp => "TCP",
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
    /// On the same TCP connection.
    Tcp(mpsc::Sender<Vec<u8>>),
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
            Reply::Tcp(tx) => {
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
            Reply::Tcp(_) => Kind::Tcp,
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

/// Accepts TCP connections on `listener` until `shutdown`.
pub async fn run_tcp(listener: TcpListener, inbound: mpsc::Sender<Inbound>, shutdown: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_TCP));
    loop {
        let (stream, from) = tokio::select! {
            () = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(error = %e, "SIP TCP accept failed");
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%from, "too many SIP TCP connections");
            continue;
        };
        let (inbound, shutdown) = (inbound.clone(), shutdown.clone());
        tokio::spawn(async move {
            let _permit = permit;
            serve_tcp(stream, from, inbound, shutdown).await;
        });
    }
}

/// Opens a TCP connection to `to` for requests the device sends; what comes back on it goes to
/// `inbound` like any received message.
pub async fn connect_tcp(
    to: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> std::io::Result<Reply> {
    let stream = TcpStream::connect(to).await?;
    let (reply, reader) = split(stream);
    tokio::spawn(read_tcp(reader, to, reply.clone(), inbound, shutdown));
    Ok(reply)
}

/// Splits a connection: a writer task owns the write half and ends when the last [`Reply`]
/// clone (held by dialogs) is gone.
fn split(stream: TcpStream) -> (Reply, tokio::net::tcp::OwnedReadHalf) {
    let (reader, mut writer) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(OUTBOUND_QUEUE);
    tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    (Reply::Tcp(tx), reader)
}

/// Serves one accepted TCP connection.
pub async fn serve_tcp(
    stream: TcpStream,
    from: SocketAddr,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    let (reply, reader) = split(stream);
    read_tcp(reader, from, reply, inbound, shutdown).await;
}

/// Reads and frames one TCP connection.
async fn read_tcp(
    mut reader: tokio::net::tcp::OwnedReadHalf,
    from: SocketAddr,
    reply: Reply,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
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
