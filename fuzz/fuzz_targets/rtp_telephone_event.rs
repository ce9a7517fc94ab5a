//! RTP packets and RFC 4733 telephone-events from any peer.
#![no_main]
use std::time::Instant;

libfuzzer_sys::fuzz_target!(|packets: Vec<Vec<u8>>| {
    let mut decoder = doorsim::dtmf::rfc4733::Decoder::new();
    let now = Instant::now();
    for p in &packets {
        if let Some((header, payload)) = doorsim::rtp::RtpHeader::parse(p) {
            let _ = decoder.packet(header.ssrc, header.timestamp, payload, now);
        }
    }
    let _ = decoder.poll(now);
});
