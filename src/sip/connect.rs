//! Opening paths to peers for requests the device originates: name resolution, TCP connect and
//! the TLS hand-shake run in their own tasks with time limits and report back to the user agent
//! as a [`Connected`] message, so a dead or slow peer fails that one call or registration and
//! never stalls the agent.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::tls::Tls;
use super::transport::{Kind, Path, Streams, HANDSHAKE};

/// Name resolution must answer within this time.
const RESOLVE: Duration = Duration::from_secs(5);
/// A TCP connection must be accepted within this time (a full accept queue never answers).
const CONNECT: Duration = Duration::from_secs(5);

/// Where a request should go, before resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The transport.
    pub kind: Kind,
    /// A host name or IP address (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Verify the server's certificate (TLS).
    pub verify: bool,
}

/// Who asked for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// The outgoing call with this engine id.
    Call(String),
    /// The registration of this account.
    Register(String),
}

/// Why no path could be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectError {
    /// The name did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// The peer did not answer in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The connection or hand-shake failed.
    #[error("{0}")]
    Failed(String),
    /// Every connection slot is taken.
    #[error("too many SIP connections")]
    TooManyConnections,
}

/// The outcome of [`Connector::open`].
#[derive(Debug)]
pub struct Connected {
    /// Who asked.
    pub purpose: Purpose,
    /// The path, or why there is none.
    pub result: Result<Path, ConnectError>,
}

/// Opens paths in the background.
#[derive(Debug, Clone)]
pub struct Connector {
    /// The connection table new connections join.
    pub streams: Streams,
    /// TLS client sides.
    pub tls: Tls,
    /// Where outcomes go.
    pub results: mpsc::Sender<Connected>,
    /// Ends the connections.
    pub shutdown: CancellationToken,
}

impl Connector {
    /// A path usable at once, without waiting on the network: UDP to an IP address, or a
    /// connection already open to it.
    pub fn ready(&self, to: &Destination) -> Option<Path> {
        let ip: IpAddr = to.host.parse().ok()?;
        let path = Path { kind: to.kind, peer: SocketAddr::new(ip, to.port) };
        (to.kind == Kind::Udp || self.streams.transports.connected(to.kind, path.peer)).then_some(path)
    }

    /// Resolves `to` and, for TCP and TLS, connects, in a task of its own; the outcome comes back
    /// as a [`Connected`] for `purpose`.
    pub fn open(&self, purpose: Purpose, to: Destination) {
        let this = self.clone();
        self.streams.tracker.spawn(async move {
            let result = tokio::select! {
                r = this.path_to(&to) => r,
                () = this.shutdown.cancelled() => return,
            };
            // The agent takes every outcome; waiting here keeps the result, never drops it.
            let _ = this.results.send(Connected { purpose, result }).await;
        });
    }

    async fn path_to(&self, to: &Destination) -> Result<Path, ConnectError> {
        let peer = match to.host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, to.port),
            Err(_) => tokio::time::timeout(RESOLVE, tokio::net::lookup_host((to.host.as_str(), to.port)))
                .await
                .map_err(|_| ConnectError::Timeout("name resolution"))?
                .map_err(|e| ConnectError::Resolve(format!("{}: {e}", to.host)))?
                .next()
                .ok_or_else(|| ConnectError::Resolve(to.host.clone()))?,
        };
        let path = Path { kind: to.kind, peer };
        if to.kind == Kind::Udp || self.streams.transports.connected(to.kind, peer) {
            return Ok(path);
        }
        let permit = self.streams.permits.clone().try_acquire_owned().map_err(|_| ConnectError::TooManyConnections)?;
        let stream = tokio::time::timeout(CONNECT, TcpStream::connect(peer))
            .await
            .map_err(|_| ConnectError::Timeout("TCP connect"))?
            .map_err(|e| ConnectError::Failed(format!("cannot connect to {peer}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().map_err(|e| ConnectError::Failed(format!("connection to {peer}: {e}")))?;
        if to.kind == Kind::Tcp {
            self.streams.start(stream, Kind::Tcp, (local, peer), permit, self.shutdown.clone());
            return Ok(path);
        }
        let name = Tls::server_name(&to.host).map_err(|e| ConnectError::Failed(e.to_string()))?;
        let connector = if to.verify { self.tls.verifying.clone() } else { self.tls.trusting.clone() };
        let tls = tokio::time::timeout(HANDSHAKE, connector.connect(name, stream))
            .await
            .map_err(|_| ConnectError::Timeout("TLS hand-shake"))?
            .map_err(|e| ConnectError::Failed(format!("TLS with {peer}: {e}")))?;
        self.streams.start(tls, Kind::Tls, (local, peer), permit, self.shutdown.clone());
        Ok(path)
    }
}
