//! One call's RTP: a UDP socket from RTPStartPort upward, a 400 Hz tone sent in the negotiated
//! G.711 codec at real-time pace (20 ms packets), received packets counted, and symmetric RTP:
//! once the peer's packets arrive, media goes back to where they came from.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::RtpHeader;
use crate::calls::MediaCounters;
use crate::media::g711::{alaw_encode, ulaw_decode};
use crate::media::{tone_second, Codec};

/// Samples per 20 ms packet at 8 kHz.
const FRAME: usize = 160;
/// Ports tried from RTPStartPort upward.
const PORT_ATTEMPTS: u16 = 400;

/// Binds an even RTP port from `start` upward on `ip`.
pub async fn bind(ip: IpAddr, start: u16) -> std::io::Result<UdpSocket> {
    let first = start & !1;
    let mut last_error = None;
    for i in 0..PORT_ATTEMPTS {
        let Some(port) = first.checked_add(i * 2) else { break };
        match UdpSocket::bind(SocketAddr::new(ip, port)).await {
            Ok(s) => return Ok(s),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no free RTP port")))
}

/// A running RTP session; dropping it stops the media.
#[derive(Debug)]
pub struct RtpSession {
    stop: CancellationToken,
}

impl Drop for RtpSession {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RtpSession {
    /// Starts sending to `remote` and receiving on `socket`, counting into `counters`.
    pub fn start(
        socket: UdpSocket,
        remote: SocketAddr,
        codec: Codec,
        payload_type: u8,
        counters: Arc<MediaCounters>,
    ) -> Self {
        let stop = CancellationToken::new();
        tokio::spawn(run(socket, remote, codec, payload_type, counters, stop.clone()));
        Self { stop }
    }
}

async fn run(
    socket: UdpSocket,
    mut remote: SocketAddr,
    codec: Codec,
    payload_type: u8,
    counters: Arc<MediaCounters>,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut header = RtpHeader {
        marker: true,
        payload_type,
        sequence: rand::thread_rng().gen(),
        timestamp: rand::thread_rng().gen(),
        ssrc: rand::thread_rng().gen(),
    };
    let mut offset = 0usize;
    let mut buf = vec![0u8; 2048];
    let mut learned = false;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {
                let tone = tone_second();
                let frame: Vec<u8> = match codec {
                    Codec::Pcmu => tone.slice(offset..offset + FRAME).to_vec(),
                    Codec::Pcma => tone[offset..offset + FRAME].iter().map(|b| alaw_encode(ulaw_decode(*b))).collect(),
                };
                offset = (offset + FRAME) % tone.len();
                if socket.send_to(&header.packet(&frame), remote).await.is_ok() {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                header.marker = false;
                header.sequence = header.sequence.wrapping_add(1);
                header.timestamp = header.timestamp.wrapping_add(FRAME as u32);
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    if RtpHeader::parse(&buf[..n]).is_some() {
                        counters.received.fetch_add(1, Ordering::Relaxed);
                        if !learned {
                            // Symmetric RTP (RFC 4961): answer where the peer really sends from.
                            remote = from;
                            learned = true;
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "RTP receive failed"),
            },
        }
    }
}
