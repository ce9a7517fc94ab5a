//! Third-party material: the 253 requests of the Astralborn API tester (happy, wrong types,
//! 5000-character strings, injections, `-Infinity`), from `../shared/corpus/`, sent by its own
//! runner. Needs the corpus beside the checkout; a user's clone has none, and then this test
//! says so and passes without running.

mod common;

use std::path::Path;
use std::process::Command;

use common::Doorsim;

const RUNNER: &str = "../shared/corpus/astralborn-api-tester/run_payloads.py";

#[tokio::test]
async fn astralborn_payloads_get_clean_answers_and_the_device_stays_up() {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join(RUNNER);
    if !runner.exists() {
        eprintln!("SKIPPED: {RUNNER} not found (the corpus is only beside the project's CI checkout)");
        return;
    }
    let d = Doorsim::start(&[]);
    let log = std::env::temp_dir().join(format!("doorsim-astralborn-{}.tsv", std::process::id()));
    let base = d.base.clone();
    let log_arg = log.to_string_lossy().into_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(runner)
            .args(["--base", &base, "--user", "root:pass", "--log", &log_arg])
            .output()
            .expect("run python3")
    })
    .await
    .expect("runner thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.trim_end().ends_with(", 0 failed"), "{stdout}");

    // Stronger than the runner's "< 500": in the device's own form (axcall mode) every answer is
    // a result (200) or a fault (400); the other forms hit paths a device does not have (404).
    let rows = std::fs::read_to_string(&log).expect("runner log");
    let _ = std::fs::remove_file(&log);
    let mut checked = 0;
    for row in rows.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let (name, status) = (cols[0], cols[2]);
        if name.starts_with("axcall/") {
            assert!(status == "200" || status == "400", "{row}");
            checked += 1;
        } else {
            assert!(matches!(status, "200" | "400" | "404"), "{row}");
        }
    }
    assert!(checked > 50, "only {checked} axcall cases ran");
    // And nothing the payloads did broke the store's invariants: it still answers and reads back.
    let state = d.state().await;
    assert!(state["Store"]["SIPAccounts"].as_object().is_some_and(|m| !m.is_empty()));
}
