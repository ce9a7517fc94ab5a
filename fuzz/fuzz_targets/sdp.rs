//! Session descriptions in offers and answers from any peer.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &str| {
    let _ = doorsim::sip::sdp::parse(data);
});
