//! SIP messages and stream framing from any peer, and the typed headers the agent reads.
#![no_main]
use doorsim::sip::headers::{CSeq, NameAddr, Via};
use doorsim::sip::message::{frame, SipMessage};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = frame(data);
    if let Ok(m) = SipMessage::parse(data) {
        for (_, value) in &m.headers {
            let _ = (Via::parse(value), NameAddr::parse_list(value), CSeq::parse(value));
        }
        let _ = m.to_bytes();
    }
});
