//! State files (`--state`), which a user may edit by hand.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = doorsim::store::DeviceState::from_file(&value);
    }
});
