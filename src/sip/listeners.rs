//! The SIP listeners follow the configuration: UDP and TCP on SIPPort and TLS on SIPTLSPort
//! while SIPEnabled, stopped and re-bound when those change. After each change the agent is
//! told, so registrations follow the sockets.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::transport::{self, Streams};
use crate::store::Store;

/// Runs the listeners the configuration asks for until `shutdown`; sends `()` on `changed`
/// after every configuration change has been followed.
pub(super) async fn follow_configuration(
    address: IpAddr,
    tls: TlsAcceptor,
    store: Arc<Store>,
    streams: Streams,
    changed: mpsc::Sender<()>,
    shutdown: CancellationToken,
) {
    let mut changes = store.changes();
    let mut running: Option<Running> = None;
    loop {
        let (enabled, ports) = store.read(|s| {
            (s.sip_configuration.sip_enabled, (s.sip_configuration.sip_port, s.sip_configuration.sip_tls_port))
        });
        let wanted = enabled.then_some(ports);
        if running.as_ref().map(|r| r.ports) != wanted {
            if wanted.is_none() {
                store.set_sip_listener_problem(None);
            }
            if let Some(old) = running.take() {
                old.stop.cancel();
                streams.transports.set_udp(None);
                // The sockets close when their tasks end; wait, so a port can be bound again.
                for task in old.tasks {
                    let _ = task.await;
                }
            }
            if let Some((port, tls_port)) = wanted {
                let stop = shutdown.child_token();
                let at = (SocketAddr::new(address, port), SocketAddr::new(address, tls_port));
                match listen(at, tls.clone(), &streams, stop.clone()).await {
                    Ok(tasks) => {
                        tracing::info!(%address, port, tls_port, "SIP listening on UDP, TCP and TLS");
                        store.set_sip_listener_problem(None);
                        running = Some(Running { ports: (port, tls_port), stop, tasks });
                    }
                    Err(e) => {
                        tracing::error!(%address, port, tls_port, error = %e, "cannot listen for SIP");
                        let why = format!("cannot listen on SIPPort {port} / SIPTLSPort {tls_port} of {address}: {e}");
                        store.set_sip_listener_problem(Some(why));
                    }
                }
            }
        }
        let _ = changed.send(()).await;
        tokio::select! {
            () = shutdown.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
        }
    }
}

/// Listeners in place.
struct Running {
    ports: (u16, u16),
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

async fn listen(
    (at, tls_at): (SocketAddr, SocketAddr),
    tls: TlsAcceptor,
    streams: &Streams,
    stop: CancellationToken,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    let sender = std::net::UdpSocket::bind(at)?;
    sender.set_nonblocking(true)?;
    let udp = Arc::new(UdpSocket::from_std(sender.try_clone()?)?);
    let tcp = TcpListener::bind(at).await?;
    let tls_listener = TcpListener::bind(tls_at).await?;
    streams.transports.set_udp(Some(Arc::new(sender)));
    let (transports, inbound, tracker) = (streams.transports.clone(), streams.inbound.clone(), &streams.tracker);
    Ok(vec![
        tracker.spawn(transport::run_udp(udp, transports, inbound, stop.clone())),
        tracker.spawn(transport::run_stream(tcp, None, streams.clone(), stop.clone())),
        tracker.spawn(transport::run_stream(tls_listener, Some(tls), streams.clone(), stop)),
    ])
}
