//! The PROTOS c07-sip robustness suite (4527 INVITE cases from the University of Oulu, in
//! `../shared/corpus/protos-c07-sip`) sent by its runner over UDP and TCP (all cases) and TLS
//! (the first 300: a TLS handshake per case makes the whole set take minutes); the device must
//! still answer after every case. Without the corpus the test says so and passes.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Doorsim;
use serde_json::json;

#[tokio::test]
async fn protos_c07_sip_never_silences_the_device() {
    let runner = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/protos-c07-sip/run_protos.py");
    if !runner.exists() {
        eprintln!("SKIPPED: {} not found (the corpus is only beside the project's CI checkout)", runner.display());
        return;
    }
    let d = Doorsim::start(&[]);
    let (port, tls) = d.enable_sip(json!({})).await;
    for (transport, port, last) in [("udp", port, 4526), ("tcp", port, 4526), ("tls", tls, 299)] {
        let runner = runner.clone();
        let out = tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .arg(runner)
                .args(["--port", &port.to_string(), "--transport", transport, "--last", &last.to_string()])
                .output()
        })
        .await
        .expect("thread")
        .expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && stdout.trim_end().ends_with(", 0 failed"), "{transport}: {stdout}");
    }
    // Bounded after 9000 INVITEs: 16 ringing at most, 256 ended calls kept.
    let calls = d.state().await["Calls"].as_array().map_or(0, Vec::len);
    assert!(calls <= 16 + 256, "{calls} calls retained");
    d.ok("GetServiceCapabilities", json!({})).await;
}
