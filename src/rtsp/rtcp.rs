//! RTCP sender reports (RFC 3550 section 6.4.1) with the SDES CNAME every compound RTCP packet
//! carries: what lets a client map a track's RTP timestamps to wall-clock time (and so line
//! video up with audio).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// What a sender report says of one track.
#[derive(Debug, Clone, Copy)]
pub struct SenderState {
    /// The track's SSRC.
    pub ssrc: u32,
    /// The RTP timestamp that corresponds to `at`.
    pub rtp_timestamp: u32,
    /// Wall-clock time of the report.
    pub at: SystemTime,
    /// RTP packets sent so far.
    pub packets: u32,
    /// RTP payload bytes sent so far.
    pub octets: u32,
}

/// The 64-bit NTP timestamp of `at`.
fn ntp(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs() + NTP_UNIX_OFFSET;
    let fraction = (u64::from(since.subsec_nanos()) << 32) / 1_000_000_000;
    (seconds << 32) | fraction
}

/// A compound RTCP packet: a sender report without report blocks, then SDES with `cname`.
pub fn sender_report(state: &SenderState, cname: &str) -> Vec<u8> {
    let mut p = Vec::with_capacity(64);
    p.extend_from_slice(&[0x80, 200, 0, 6]);
    p.extend_from_slice(&state.ssrc.to_be_bytes());
    p.extend_from_slice(&ntp(state.at).to_be_bytes());
    p.extend_from_slice(&state.rtp_timestamp.to_be_bytes());
    p.extend_from_slice(&state.packets.to_be_bytes());
    p.extend_from_slice(&state.octets.to_be_bytes());
    // SDES: one chunk (SSRC, CNAME item, end), padded to 32 bits.
    let name = &cname.as_bytes()[..cname.len().min(255)];
    let mut chunk = state.ssrc.to_be_bytes().to_vec();
    chunk.extend_from_slice(&[1, name.len() as u8]);
    chunk.extend_from_slice(name);
    chunk.push(0);
    while !chunk.len().is_multiple_of(4) {
        chunk.push(0);
    }
    let words = (chunk.len() / 4) as u16;
    p.extend_from_slice(&[0x81, 202]);
    p.extend_from_slice(&words.to_be_bytes());
    p.extend_from_slice(&chunk);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_sender_report_is_laid_out_as_rfc_3550_says() {
        let at = UNIX_EPOCH + Duration::from_millis(1_500);
        let state = SenderState { ssrc: 0x0102_0304, rtp_timestamp: 90_000, at, packets: 7, octets: 700 };
        let p = sender_report(&state, "doorsim");
        assert_eq!(&p[..4], &[0x80, 200, 0, 6], "version 2, SR, 7 words");
        assert_eq!(&p[4..8], &[1, 2, 3, 4]);
        assert_eq!(u32::from_be_bytes([p[8], p[9], p[10], p[11]]) as u64, NTP_UNIX_OFFSET + 1);
        assert_eq!(u32::from_be_bytes([p[12], p[13], p[14], p[15]]), 1 << 31, "half a second");
        assert_eq!(u32::from_be_bytes([p[16], p[17], p[18], p[19]]), 90_000);
        assert_eq!(u32::from_be_bytes([p[20], p[21], p[22], p[23]]), 7);
        assert_eq!(u32::from_be_bytes([p[24], p[25], p[26], p[27]]), 700);
        let sdes = &p[28..];
        assert_eq!(&sdes[..2], &[0x81, 202]);
        assert_eq!(sdes.len() % 4, 0);
        assert_eq!(usize::from(u16::from_be_bytes([sdes[2], sdes[3]])) * 4 + 4, sdes.len());
        assert_eq!(&sdes[8..10], &[1, 7]);
        assert_eq!(&sdes[10..17], b"doorsim");
    }
}
