//! RTSP requests from any client.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = doorsim::rtsp::message::parse(data);
});
