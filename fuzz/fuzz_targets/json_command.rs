//! The JSON request format (a POST body from any client).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = doorsim::vapix::format::json::decode(data);
});
