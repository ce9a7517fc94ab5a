//! RFC 4733 (formerly 2833) telephone-event decoding, sans I/O: RTP payloads in, one digit per
//! event out.
//!
//! An event is keyed by (SSRC, RTP timestamp). Its digit is reported once: at its first end
//! packet (the two retransmitted end packets and any late duplicate are ignored), when a newer
//! timestamp starts while it is still open (its end was lost), or when it stays open longer than
//! [`OPEN_EVENT_LIMIT`] with no packets. Packets of events already reported, or older than the
//! newest event, are ignored, so reordering and loss give one digit per key press.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// An event with no packet for this long is closed (its end packets were all lost).
pub const OPEN_EVENT_LIMIT: Duration = Duration::from_secs(2);
/// Reported events remembered to ignore their late packets.
const REMEMBERED: usize = 32;

/// A DTMF digit: `0-9`, `*`, `#`, `A-D`.
pub fn digit_of(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + event - 12)),
        _ => None,
    }
}

/// The telephone-event code of a digit.
pub fn event_of(digit: char) -> Option<u8> {
    match digit {
        '0'..='9' => Some(digit as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(digit as u8 - b'A' + 12),
        _ => None,
    }
}

/// One telephone-event payload (RFC 4733 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    /// Event code.
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume (0..=63, -dBm0).
    pub volume: u8,
    /// Duration in timestamp units.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first four bytes of a payload.
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        let b = payload.get(..4)?;
        Some(TelephoneEvent {
            event: b[0],
            end: b[1] & 0x80 != 0,
            volume: b[1] & 0x3F,
            duration: u16::from_be_bytes([b[2], b[3]]),
        })
    }

    /// Writes the payload.
    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, (u8::from(self.end) << 7) | (self.volume & 0x3F), d[0], d[1]]
    }
}

#[derive(Debug, Clone, Copy)]
struct Open {
    ssrc: u32,
    timestamp: u32,
    digit: Option<char>,
    last_packet: Instant,
}

/// The decoder of one call's RTP.
#[derive(Debug, Default)]
pub struct Decoder {
    open: Option<Open>,
    reported: VecDeque<(u32, u32)>,
}

/// Whether timestamp `a` is after `b`, with wrap-around (RFC 3550 serial arithmetic).
fn after(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

impl Decoder {
    /// A decoder with nothing seen.
    pub fn new() -> Self {
        Self::default()
    }

    fn report(&mut self, open: Open) -> Option<char> {
        if self.reported.len() == REMEMBERED {
            self.reported.pop_front();
        }
        self.reported.push_back((open.ssrc, open.timestamp));
        open.digit
    }

    /// Feeds one telephone-event packet; returns the digits it completes (at most two: the
    /// previous event closed by a newer one, and this one if it ends at once).
    pub fn packet(&mut self, ssrc: u32, timestamp: u32, payload: &[u8], now: Instant) -> Vec<char> {
        let Some(event) = TelephoneEvent::parse(payload) else { return Vec::new() };
        let mut out = Vec::new();
        if self.reported.contains(&(ssrc, timestamp)) {
            return out; // a retransmitted end, or a late packet of a reported event
        }
        match self.open {
            Some(open) if open.ssrc == ssrc && open.timestamp == timestamp => {}
            Some(open) if open.ssrc == ssrc && !after(timestamp, open.timestamp) => return out, // older than the current event
            Some(open) => {
                // A new event while the previous one is still open: its end was lost.
                self.open = None;
                out.extend(self.report(open));
            }
            None => {
                if self.reported.iter().any(|(s, t)| *s == ssrc && !after(timestamp, *t)) {
                    return out; // older than an event already reported
                }
            }
        }
        let open = self.open.get_or_insert(Open { ssrc, timestamp, digit: digit_of(event.event), last_packet: now });
        open.last_packet = now;
        if event.end {
            let open = *open;
            self.open = None;
            out.extend(self.report(open));
        }
        out
    }

    /// When [`Decoder::poll`] would close the open event, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.open.map(|open| open.last_packet + OPEN_EVENT_LIMIT)
    }

    /// Closes an event that has had no packets for [`OPEN_EVENT_LIMIT`]; returns its digit.
    pub fn poll(&mut self, now: Instant) -> Option<char> {
        let open = self.open?;
        if now.duration_since(open.last_packet) >= OPEN_EVENT_LIMIT {
            self.open = None;
            return self.report(open);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent { event, end, volume: 10, duration }.to_bytes()
    }

    /// The packets of one key press: `n` updates then three end packets, as senders do.
    fn press(event: u8, ts: u32, n: u16) -> Vec<(u32, [u8; 4])> {
        let mut p: Vec<_> = (1..=n).map(|i| (ts, payload(event, false, i * 160))).collect();
        p.extend((0..3).map(|_| (ts, payload(event, true, (n + 1) * 160))));
        p
    }

    fn feed(d: &mut Decoder, packets: &[(u32, [u8; 4])]) -> String {
        let now = Instant::now();
        packets.iter().flat_map(|(ts, p)| d.packet(7, *ts, p, now)).collect()
    }

    #[test]
    fn end_repeats_give_one_digit() {
        let mut d = Decoder::new();
        assert_eq!(feed(&mut d, &press(5, 1000, 4)), "5");
    }

    #[test]
    fn a_sequence_and_two_quick_identical_digits() {
        let mut d = Decoder::new();
        let mut packets = Vec::new();
        for (i, ev) in [1, 1, 2, 11].iter().enumerate() {
            packets.extend(press(*ev, 1000 + i as u32 * 1600, 3));
        }
        assert_eq!(feed(&mut d, &packets), "112#");
    }

    #[test]
    fn lost_end_packets_are_closed_by_the_next_event_or_a_timeout() {
        let mut d = Decoder::new();
        let now = Instant::now();
        assert!(d.packet(7, 100, &payload(3, false, 160), now).is_empty());
        // The next digit starts: 3 is reported.
        assert_eq!(d.packet(7, 2000, &payload(4, false, 160), now), vec!['3']);
        // 4 never ends: closed after the limit.
        assert_eq!(d.poll(now + Duration::from_millis(100)), None);
        assert_eq!(d.poll(now + OPEN_EVENT_LIMIT), Some('4'));
    }

    #[test]
    fn long_press_and_reordering() {
        let mut d = Decoder::new();
        let mut packets = press(9, 5000, 40); // two seconds held
        packets.swap(3, 7);
        let end = packets.len() - 2;
        packets.swap(end, 10); // an end packet overtakes updates
        assert_eq!(feed(&mut d, &packets), "9");
        // A late update of the reported event changes nothing.
        assert!(d.packet(7, 5000, &payload(9, false, 800), Instant::now()).is_empty());
        // Nor does an older event arriving very late.
        assert!(d.packet(7, 4000, &payload(1, true, 800), Instant::now()).is_empty());
    }

    #[test]
    fn unknown_events_and_short_payloads_are_ignored() {
        let mut d = Decoder::new();
        assert_eq!(feed(&mut d, &press(16, 10, 2)), "");
        assert!(d.packet(7, 20, &[1, 2], Instant::now()).is_empty());
        assert_eq!(digit_of(15), Some('D'));
        assert_eq!(event_of('*'), Some(10));
        assert_eq!(event_of('x'), None);
    }

    #[test]
    fn timestamps_wrap_around() {
        let mut d = Decoder::new();
        let mut packets = press(1, u32::MAX - 100, 2);
        packets.extend(press(2, 200, 2));
        assert_eq!(feed(&mut d, &packets), "12");
    }
}
