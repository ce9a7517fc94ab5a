//! The simplified key-value request format (a query string from any client).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &str| {
    let _ = doorsim::vapix::format::simple::decode(data);
});
