//! One call's RTP: a UDP socket from RTPStartPort upward, a 400 Hz tone sent in the negotiated
//! G.711 codec at real-time pace (20 ms packets), received packets counted, RFC 4733
//! telephone-events decoded into the call's DTMF and sent on request, and symmetric RTP: once
//! the peer's packets arrive, media goes back to where they came from.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::RtpHeader;
use crate::calls::MediaCounters;
use crate::dtmf::rfc4733::{event_of, Decoder, TelephoneEvent};
use crate::dtmf::{CallDtmf, Method};
use crate::media::{tone_second_in, Codec};

/// Samples per 20 ms packet at 8 kHz.
const FRAME: usize = 160;
/// Ports tried for one call before it is refused (503).
const PORT_ATTEMPTS: u16 = 400;
/// Packets of one sent digit: 5 updates (100 ms) then 3 end packets.
const DIGIT_UPDATES: u16 = 5;
/// Digits waiting to be sent.
const DIGIT_QUEUE: usize = 64;

/// Where the next RTP port search starts. Each search begins after the port bound last, so with
/// calls ending roughly in the order they began it rarely meets a port in use: binding stays one
/// system call at a thousand concurrent calls and thousands of calls a second.
#[derive(Debug, Default)]
pub struct RtpPorts {
    /// The next port to try, as a count of even ports above the start port.
    next: u16,
}

impl RtpPorts {
    /// Binds an even RTP port of `start..=65534` on `ip`, trying at most [`PORT_ATTEMPTS`]
    /// (a local operation: it never waits on the network, so the SIP agent may call it).
    pub fn bind(&mut self, ip: IpAddr, start: u16) -> std::io::Result<UdpSocket> {
        let first = start & !1;
        let pairs = (u16::MAX - 1 - first) / 2 + 1;
        let mut last_error = None;
        for i in 0..PORT_ATTEMPTS.min(pairs) {
            let offset = (u32::from(self.next) + u32::from(i)) % u32::from(pairs);
            // offset < pairs, so the port is at most 65534.
            let port = first + (offset as u16) * 2;
            match std::net::UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(s) => {
                    self.next = ((offset + 1) % u32::from(pairs)) as u16;
                    s.set_nonblocking(true)?;
                    return UdpSocket::from_std(s);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| std::io::Error::other("no free RTP port")))
    }
}

/// What was agreed for a call's media.
#[derive(Debug, Clone, Copy)]
pub struct MediaPlan {
    /// Where the peer receives RTP.
    pub remote: SocketAddr,
    /// The audio codec and its payload type.
    pub codec: Codec,
    /// Payload type of the audio.
    pub payload_type: u8,
    /// Payload type of telephone-events, when negotiated.
    pub telephone_event: Option<u8>,
}

/// A running RTP session; dropping it stops the media.
#[derive(Debug)]
pub struct RtpSession {
    stop: CancellationToken,
    digits: mpsc::Sender<char>,
    /// Off while the peer holds the call (sendonly/inactive): the clock runs, nothing is sent.
    sending: Arc<AtomicBool>,
}

impl Drop for RtpSession {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RtpSession {
    /// Starts sending and receiving on `socket` as `plan` says, counting into `counters`;
    /// received telephone-events go to `dtmf`.
    pub fn start(
        socket: UdpSocket,
        plan: MediaPlan,
        counters: Arc<MediaCounters>,
        dtmf: Arc<Mutex<CallDtmf>>,
        tracker: &TaskTracker,
    ) -> Self {
        let stop = CancellationToken::new();
        let (digits, digit_rx) = mpsc::channel(DIGIT_QUEUE);
        let sending = Arc::new(AtomicBool::new(true));
        let media = Media { plan, counters, dtmf, sending: sending.clone() };
        tracker.spawn(run(socket, media, digit_rx, stop.clone()));
        Self { stop, digits, sending }
    }

    /// Sends media (true) or holds it (false), as the peer's latest offer asks.
    pub fn set_sending(&self, on: bool) {
        self.sending.store(on, Ordering::Relaxed);
    }

    /// Queues DTMF digits to send as RFC 4733 events; false when none was negotiated or the
    /// queue is full.
    pub fn send_digits(&self, digits: &str) -> bool {
        digits.chars().all(|d| self.digits.try_send(d).is_ok())
    }
}

/// What one session's task works with.
struct Media {
    plan: MediaPlan,
    counters: Arc<MediaCounters>,
    dtmf: Arc<Mutex<CallDtmf>>,
    sending: Arc<AtomicBool>,
}

async fn run(socket: UdpSocket, media: Media, mut digits: mpsc::Receiver<char>, stop: CancellationToken) {
    let Media { plan, counters, dtmf, sending } = media;
    let mut remote = plan.remote;
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut header = {
        let mut rng = rand::thread_rng();
        RtpHeader {
            marker: true,
            payload_type: plan.payload_type,
            sequence: rng.gen(),
            timestamp: rng.gen(),
            ssrc: rng.gen(),
        }
    };
    let mut offset = 0usize;
    let mut buf = vec![0u8; 2048];
    let mut learned = false;
    let mut decoder = Decoder::new();
    // Telephone-event packets still to send: (payload, marker, same timestamp as the event).
    let mut outgoing: VecDeque<(TelephoneEvent, bool)> = VecDeque::new();
    let mut event_timestamp = 0u32;
    let report = |digit: char| {
        dtmf.lock().unwrap_or_else(std::sync::PoisonError::into_inner).digit(digit, Method::Rfc2833, Instant::now())
    };
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            Some(digit) = digits.recv(), if outgoing.is_empty() && plan.telephone_event.is_some() => {
                if let Some(event) = event_of(digit) {
                    event_timestamp = header.timestamp;
                    for i in 1..=DIGIT_UPDATES {
                        outgoing.push_back((TelephoneEvent { event, end: false, volume: 10, duration: i * FRAME as u16 }, i == 1));
                    }
                    for _ in 0..3 {
                        outgoing.push_back((TelephoneEvent { event, end: true, volume: 10, duration: (DIGIT_UPDATES + 1) * FRAME as u16 }, false));
                    }
                }
            }
            _ = ticks.tick() => {
                let packet = match (outgoing.pop_front(), plan.telephone_event) {
                    (Some((event, marker)), Some(pt)) => {
                        let h = RtpHeader { marker, payload_type: pt, timestamp: event_timestamp, ..header };
                        h.packet(&event.to_bytes())
                    }
                    _ => {
                        let tone = tone_second_in(plan.codec);
                        let p = header.packet(&tone[offset..offset + FRAME]);
                        offset = (offset + FRAME) % tone.len();
                        header.marker = false;
                        p
                    }
                };
                if sending.load(Ordering::Relaxed) && socket.send_to(&packet, remote).await.is_ok() {
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                }
                header.sequence = header.sequence.wrapping_add(1);
                header.timestamp = header.timestamp.wrapping_add(FRAME as u32);
                if let Some(digit) = decoder.poll(Instant::now()) {
                    report(digit);
                }
            }
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, from)) => {
                    let Some((h, payload)) = RtpHeader::parse(&buf[..n]) else { continue };
                    counters.received.fetch_add(1, Ordering::Relaxed);
                    if !learned {
                        // Symmetric RTP (RFC 4961): answer where the peer really sends from.
                        remote = from;
                        learned = true;
                    }
                    if Some(h.payload_type) == plan.telephone_event {
                        for digit in decoder.packet(h.ssrc, h.timestamp, payload, Instant::now()) {
                            report(digit);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "RTP receive failed"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_call_gets_the_next_free_even_port_and_the_search_wraps() {
        let ip = IpAddr::from([127, 0, 0, 1]);
        let mut ports = RtpPorts::default();
        // Near the top of the range: three even ports exist above 65528.
        let port = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or_default();
        let taken = std::net::UdpSocket::bind((ip, 65530));
        let a = ports.bind(ip, 65528).expect("a port");
        let b = ports.bind(ip, 65528).expect("another port");
        assert_eq!(port(&a) % 2, 0);
        assert_ne!(port(&a), port(&b), "the search starts after the last port bound");
        if taken.is_ok() {
            assert!(port(&a) != 65530 && port(&b) != 65530, "a port in use is skipped");
        }
        drop(a);
        // Past 65534 the search wraps to the start of the range.
        let c = ports.bind(ip, 65528).expect("a port after wrapping");
        assert!((65528..=65534).contains(&port(&c)) && port(&c) != port(&b));
    }
}
