//! Third-party material: the 253 requests of the Astralborn API tester (happy, wrong types,
//! 5000-character strings, injections, `-Infinity`), from `../shared/corpus/`, sent by its own
//! runner. Needs the corpus beside the checkout; a user's clone has none, and then this test
//! says so and passes without running.
//!
//! The payloads enable SIP and add accounts whose registrars are host names ("INVALID"), which
//! a device resolves: so the device and the runner run in a network namespace of their own with
//! only loopback (`unshare -n`, as root), and nothing leaves the machine.

use std::path::Path;
use std::process::Command;

const RUNNER: &str = "../shared/corpus/astralborn-api-tester/run_payloads.py";

#[test]
fn astralborn_payloads_get_clean_answers_and_the_device_stays_up() {
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join(RUNNER);
    if !runner.exists() {
        eprintln!("SKIPPED: {RUNNER} not found (the corpus is only beside the project's CI checkout)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("doorsim-astralborn-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let script = format!(
        r#"ip link set lo up
"{doorsim}" --http 127.0.0.1:8080 --rtsp 127.0.0.1:8554 --log warn > "{dir}/device.log" 2>&1 &
pid=$!
for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/ && break; sleep 0.1; done
python3 "{runner}" --base http://127.0.0.1:8080 --user root:pass --log "{dir}/log.tsv" > "{dir}/out.txt" 2>&1
rc=$?
curl -s --anyauth -u root:pass http://127.0.0.1:8080/emulator/v1/state > "{dir}/state.json"
kill $pid
wait $pid
exit $rc"#,
        doorsim = env!("CARGO_BIN_EXE_doorsim"),
        dir = dir.display(),
        runner = runner.display()
    );
    let status = Command::new("unshare").args(["-n", "sh", "-c", &script]).status().expect("unshare (util-linux)");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    let (out, rows, state) = (read("out.txt"), read("log.tsv"), read("state.json"));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "{out}");
    assert!(out.trim_end().ends_with(", 0 failed"), "{out}");

    // Stronger than the runner's "< 500": in the device's own form (axcall mode) every answer is
    // a result (200) or a fault (400); the other forms hit paths a device does not have (404).
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
    let state: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
    assert!(state["Store"]["SIPAccounts"].as_object().is_some_and(|m| !m.is_empty()));
}
