//! RTP (RFC 3550): the fixed 12-byte header ([`RtpHeader`]), written and read by hand because it is a
//! dozen lines and the crates that do it (rtp-rs) are thinly maintained.

pub mod media_loop;
pub mod session;
pub mod srtp;

/// The fixed RTP header without CSRCs or extensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    /// Marker bit.
    pub marker: bool,
    /// Payload type (0..=127).
    pub payload_type: u8,
    /// Sequence number.
    pub sequence: u16,
    /// Media timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: u32,
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 12;

impl RtpHeader {
    /// The packet: this header followed by `payload`.
    pub fn packet(&self, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
        self.write(payload, &mut out);
        out
    }

    /// Writes the packet (this header followed by `payload`) into `out`, replacing what it held.
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) {
        out.clear();
        out.push(0x80); // version 2, no padding, no extension, no CSRC
        out.push((u8::from(self.marker) << 7) | (self.payload_type & 0x7F));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        out.extend_from_slice(payload);
    }

    /// Reads the header of `packet`; returns it with the payload (CSRCs and extension skipped).
    pub fn parse(packet: &[u8]) -> Option<(RtpHeader, &[u8])> {
        if packet.len() < HEADER_LEN || packet[0] >> 6 != 2 {
            return None;
        }
        let csrc = usize::from(packet[0] & 0x0F) * 4;
        let mut offset = HEADER_LEN + csrc;
        if packet[0] & 0x10 != 0 {
            let words = packet.get(offset + 2..offset + 4).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))?;
            offset += 4 + words * 4;
        }
        let mut end = packet.len();
        if packet[0] & 0x20 != 0 {
            end = end.checked_sub(usize::from(*packet.last()?))?;
        }
        let payload = packet.get(offset..end)?;
        let header = RtpHeader {
            marker: packet[1] & 0x80 != 0,
            payload_type: packet[1] & 0x7F,
            sequence: u16::from_be_bytes([packet[2], packet[3]]),
            timestamp: u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]),
            ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        };
        Some((header, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_then_read() {
        let h = RtpHeader { marker: true, payload_type: 98, sequence: 65535, timestamp: 90_000, ssrc: 0xDEADBEEF };
        let p = h.packet(b"<xml/>");
        assert_eq!(&p[..2], &[0x80, 0x80 | 98]);
        assert_eq!(RtpHeader::parse(&p), Some((h, &b"<xml/>"[..])));
    }

    #[test]
    fn malformed_packets_are_refused() {
        assert_eq!(RtpHeader::parse(&[0x80; 11]), None);
        assert_eq!(RtpHeader::parse(&[0x40; 12]), None, "version 1");
        let mut padded =
            RtpHeader { marker: false, payload_type: 0, sequence: 1, timestamp: 2, ssrc: 3 }.packet(&[1, 2]);
        padded[0] |= 0x20;
        padded.push(200); // padding longer than the packet
        assert_eq!(RtpHeader::parse(&padded), None);
    }
}
