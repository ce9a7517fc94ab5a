//! How requests the device originates leave it: over the listening UDP socket, or on a TCP or
//! TLS connection opened for them whose answers flow back like any received message.

use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::tls::Tls;
use super::transport::{self, Inbound, Reply};
use crate::model::sip_account::Transport;

/// The device's way out.
#[derive(Debug, Clone)]
pub struct Network {
    /// The UDP socket of the running listeners (none while SIP is off).
    pub udp: Arc<Mutex<Option<Arc<UdpSocket>>>>,
    /// Where messages on connections the device opens go.
    pub inbound: mpsc::Sender<Inbound>,
    /// Stops those connections.
    pub shutdown: CancellationToken,
    /// TLS client sides.
    pub tls: Tls,
}

impl Network {
    /// A path to `hostport` (`host:port`, resolved now) over `transport`; TLS verifies the
    /// server when `verify` is set.
    pub async fn path(&self, transport: Transport, hostport: &str, verify: bool) -> Result<Reply, String> {
        let destination = tokio::net::lookup_host(hostport)
            .await
            .map_err(|e| format!("cannot resolve {hostport}: {e}"))?
            .next()
            .ok_or_else(|| format!("{hostport} resolves to nothing"))?;
        match transport {
            Transport::Udp => {
                let socket = self.udp.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                Ok(Reply::Udp { socket: socket.ok_or("SIP is not listening")?, to: destination })
            }
            Transport::Tcp => transport::connect(destination, None, self.inbound.clone(), self.shutdown.clone())
                .await
                .map_err(|e| format!("cannot connect to {destination}: {e}")),
            Transport::Tls => {
                let host = hostport.rsplit_once(':').map_or(hostport, |(h, _)| h);
                let name = Tls::server_name(host)?;
                let connector = if verify { self.tls.verifying.clone() } else { self.tls.trusting.clone() };
                transport::connect(destination, Some((connector, name)), self.inbound.clone(), self.shutdown.clone())
                    .await
                    .map_err(|e| format!("cannot connect with TLS to {destination}: {e}"))
            }
        }
    }
}
