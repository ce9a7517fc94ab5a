//! One call's RTP: a UDP socket from RTPStartPort upward, a 400 Hz tone sent in the negotiated
//! G.711 codec at real-time pace (20 ms packets, on the process's media loop), received packets counted, RFC 4733
//! telephone-events decoded into the call's DTMF and sent on request, and symmetric RTP: once
//! the peer's packets arrive, media goes back to where they came from.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use rand::Rng;

use super::media_loop::{Joining, MediaLoop};
use super::srtp::{self, MasterKey, Opener, Protector};
use super::RtpHeader;
use crate::calls::MediaCounters;
use crate::dtmf::rfc4733::{event_of, Decoder, TelephoneEvent};
use crate::dtmf::{CallDtmf, Method};
use crate::media::{g711, tone_second_in, Codec};

/// Samples per 20 ms packet at 8 kHz.
pub(super) const FRAME: usize = 160;
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
                    return Ok(s);
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
    /// SRTP keys (ours, the peer's) when the call's media is encrypted.
    pub srtp: Option<(MasterKey, MasterKey)>,
}

/// A running RTP session; dropping it stops the media.
#[derive(Debug)]
pub struct RtpSession {
    /// The sending side, which the [`MediaLoop`] drives.
    outbound: Arc<Outbound>,
}

impl Drop for RtpSession {
    fn drop(&mut self) {
        self.outbound.stopped.store(true, Ordering::Relaxed);
    }
}

impl RtpSession {
    /// Hands `socket` to the process's [`MediaLoop`], which sends and receives on it as `plan`
    /// says, counting into `counters`; received telephone-events go to `dtmf`.
    pub fn start(
        socket: std::net::UdpSocket,
        plan: MediaPlan,
        counters: Arc<MediaCounters>,
        dtmf: Arc<Mutex<CallDtmf>>,
    ) -> Self {
        let (protector, opener) = match plan.srtp.map(|(local, remote)| srtp::keyed(&local, &remote)) {
            Some(Ok((p, o))) => (Some(p), Some(o)),
            Some(Err(e)) => {
                // Never plain RTP on a call agreed to be encrypted: it stays silent instead.
                tracing::error!(error = %e, "cannot key SRTP; the call's media stays off");
                return Self { outbound: Arc::new(Outbound::silent(counters)) };
            }
            None => (None, None),
        };
        let outbound = Arc::new(Outbound {
            sender: Mutex::new(Sender::new(&plan, protector)),
            stopped: AtomicBool::new(false),
            counters: counters.clone(),
        });
        let inbound = Inbound {
            counters,
            dtmf,
            telephone_event: plan.telephone_event,
            audio: (plan.codec, plan.payload_type),
            opener,
            decoder: Decoder::new(),
            learned: false,
            runtime: tokio::runtime::Handle::try_current().ok(),
        };
        match MediaLoop::get() {
            Some(media) => {
                let socket = mio::net::UdpSocket::from_std(socket);
                media.join(Joining { socket, outbound: outbound.clone(), inbound });
            }
            None => tracing::warn!("no media loop: the call has no RTP"),
        }
        Self { outbound }
    }

    /// Sends media (true) or holds it (false), as the peer's latest offer asks.
    pub fn set_sending(&self, on: bool) {
        self.outbound.sender().sending = on;
    }

    /// Queues DTMF digits to send as RFC 4733 events; false (and none queued) when
    /// telephone-events were not negotiated or the queue has no room for them all.
    pub fn send_digits(&self, digits: &str) -> bool {
        let mut sender = self.outbound.sender();
        let count = digits.chars().count();
        if sender.telephone_event.is_none() || sender.digits.len() + count > DIGIT_QUEUE {
            return false;
        }
        sender.digits.extend(digits.chars());
        true
    }
}

/// One session's sending side: shared by the session (hold, digits, stop) and the loop.
#[derive(Debug)]
pub(super) struct Outbound {
    sender: Mutex<Sender>,
    /// Set when the session ends: the loop drops it at its next slot.
    stopped: AtomicBool,
    counters: Arc<MediaCounters>,
}

impl Outbound {
    /// A sending side that never sends (media that could not be set up).
    fn silent(counters: Arc<MediaCounters>) -> Self {
        let plan = MediaPlan {
            remote: SocketAddr::from(([0, 0, 0, 0], 0)),
            codec: Codec::Pcmu,
            payload_type: 0,
            telephone_event: None,
            srtp: None,
        };
        let mut sender = Sender::new(&plan, None);
        sender.sending = false;
        Self { sender: Mutex::new(sender), stopped: AtomicBool::new(true), counters }
    }

    fn sender(&self) -> std::sync::MutexGuard<'_, Sender> {
        self.sender.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the session has ended.
    pub(super) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Sends this period's packet (tone or telephone-event) on `socket`, built in `packet`.
    /// Never blocks: a packet the socket cannot take at once is lost, as on a real link.
    pub(super) fn send_next(&self, socket: &mio::net::UdpSocket, packet: &mut Vec<u8>) {
        let mut sender = self.sender();
        let Some(remote) = sender.next_packet(packet) else { return };
        drop(sender);
        if socket.send_to(packet, remote).is_ok() {
            self.counters.count_sent(packet.len());
            if let Some(tap) = &self.counters.tap {
                tap.sent(remote, packet);
            }
        }
    }
}

/// What the sending side keeps between ticks.
#[derive(Debug)]
struct Sender {
    /// Where the peer receives: the SDP's address until its packets show where it really is.
    remote: SocketAddr,
    header: RtpHeader,
    codec: Codec,
    telephone_event: Option<u8>,
    /// Where the next tone slice starts.
    offset: usize,
    /// Off while the peer holds the call (sendonly/inactive): the clock runs, nothing is sent.
    sending: bool,
    /// Digits waiting to be sent.
    digits: VecDeque<char>,
    /// Telephone-event packets of the digit being sent: (payload, marker).
    outgoing: VecDeque<(TelephoneEvent, bool)>,
    /// The timestamp every packet of the digit being sent carries.
    event_timestamp: u32,
    /// Encrypts every packet when the call is encrypted.
    protector: Option<Protector>,
}

impl Sender {
    fn new(plan: &MediaPlan, protector: Option<Protector>) -> Self {
        let mut rng = rand::thread_rng();
        Self {
            remote: plan.remote,
            header: RtpHeader {
                marker: true,
                payload_type: plan.payload_type,
                sequence: rng.gen(),
                timestamp: rng.gen(),
                ssrc: rng.gen(),
            },
            codec: plan.codec,
            telephone_event: plan.telephone_event,
            offset: 0,
            sending: true,
            digits: VecDeque::new(),
            outgoing: VecDeque::new(),
            event_timestamp: 0,
            protector,
        }
    }

    /// Writes this tick's packet into `packet` and moves the stream on by one frame; returns
    /// where to send it, or None while on hold.
    fn next_packet(&mut self, packet: &mut Vec<u8>) -> Option<SocketAddr> {
        if self.outgoing.is_empty() {
            if let Some(event) = self.digits.pop_front().and_then(event_of) {
                self.event_timestamp = self.header.timestamp;
                for i in 1..=DIGIT_UPDATES {
                    let update = TelephoneEvent { event, end: false, volume: 10, duration: i * FRAME as u16 };
                    self.outgoing.push_back((update, i == 1));
                }
                let length = (DIGIT_UPDATES + 1) * FRAME as u16;
                for _ in 0..3 {
                    self.outgoing.push_back((TelephoneEvent { event, end: true, volume: 10, duration: length }, false));
                }
            }
        }
        match (self.outgoing.pop_front(), self.telephone_event) {
            (Some((event, marker)), Some(payload_type)) => {
                let h = RtpHeader { marker, payload_type, timestamp: self.event_timestamp, ..self.header };
                h.write(&event.to_bytes(), packet);
            }
            _ => {
                let tone = tone_second_in(self.codec);
                self.header.write(&tone[self.offset..self.offset + FRAME], packet);
                self.offset = (self.offset + FRAME) % tone.len();
                self.header.marker = false;
            }
        }
        self.header.sequence = self.header.sequence.wrapping_add(1);
        self.header.timestamp = self.header.timestamp.wrapping_add(FRAME as u32);
        if !self.sending {
            return None;
        }
        if let Some(protector) = self.protector.as_mut() {
            let protected = protector.protect(packet)?;
            packet.clear();
            packet.extend_from_slice(&protected);
        }
        Some(self.remote)
    }
}

/// One session's receiving side, owned by the loop: counts packets, learns where the peer
/// really sends from, decodes telephone-events.
pub(super) struct Inbound {
    counters: Arc<MediaCounters>,
    dtmf: Arc<Mutex<CallDtmf>>,
    telephone_event: Option<u8>,
    /// The audio codec and its payload type.
    audio: (Codec, u8),
    /// Checks and decrypts SRTP when the call is encrypted.
    opener: Option<Opener>,
    decoder: Decoder,
    /// Whether the peer's source address has been seen.
    learned: bool,
    /// The device's runtime: a digit may start door timers there.
    runtime: Option<tokio::runtime::Handle>,
}

impl Inbound {
    /// One received datagram from `from`.
    pub(super) fn packet(&mut self, data: &[u8], from: SocketAddr, outbound: &Outbound) {
        if let Some(tap) = &self.counters.tap {
            tap.received(from, data);
        }
        let opened;
        let data = match self.opener.as_mut() {
            Some(opener) => match opener.open(data) {
                Some(plain) => {
                    opened = plain;
                    &opened[..]
                }
                None => return, // forged, replayed or plain: not the peer's media
            },
            None => data,
        };
        let Some((h, payload)) = RtpHeader::parse(data) else { return };
        self.counters.count_received(data.len());
        if !self.learned {
            // Symmetric RTP (RFC 4961): answer where the peer really sends from.
            outbound.sender().remote = from;
            self.learned = true;
        }
        if h.payload_type == self.audio.1 {
            self.hand_on_speech(payload);
        } else if Some(h.payload_type) == self.telephone_event {
            for digit in self.decoder.packet(h.ssrc, h.timestamp, payload, Instant::now()) {
                self.report(digit);
            }
        }
    }

    /// Hands the far end's audio on to whoever listens (RTSP audio), as µ-law.
    fn hand_on_speech(&self, payload: &[u8]) {
        let Some(speech) = self.counters.speech.as_ref().filter(|s| s.receiver_count() > 0) else { return };
        let ulaw: Bytes = match self.audio.0 {
            Codec::Pcmu => Bytes::copy_from_slice(payload),
            Codec::Pcma => payload.iter().map(|b| g711::ulaw_encode(g711::alaw_decode(*b))).collect(),
        };
        let _ = speech.send(ulaw);
    }

    /// Closes an event whose end never came, once it has been open too long.
    pub(super) fn poll(&mut self, now: Instant) {
        if let Some(digit) = self.decoder.poll(now) {
            self.report(digit);
        }
    }

    fn report(&self, digit: char) {
        let _runtime = self.runtime.as_ref().map(tokio::runtime::Handle::enter);
        self.dtmf.lock().unwrap_or_else(PoisonError::into_inner).digit(digit, Method::Rfc2833, Instant::now());
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
