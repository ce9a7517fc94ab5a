//! State files (`--state`), which a user may edit by hand: every section's reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = doorsim::store::DeviceState::from_file(&value);
        let _ = doorsim::io::read_port_settings(&value, 4);
        let _ = doorsim::actions::read_bindings(&value);
    }
});
