//! SIP INFO DTMF bodies (RFC 2976) with any content type.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: (&str, &[u8])| {
    let _ = doorsim::dtmf::info::digit(input.0, input.1);
});
