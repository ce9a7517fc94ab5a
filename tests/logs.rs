//! Logs people can read: at `info`, one line per call state change and one per SIP
//! transaction (its final answer), as text or, with `--log-format json`, as one JSON object per
//! line. A sipp call (Debian `sip-tester`, installed by scripts/test.sh) drives both kinds.

mod common;

use common::{sipp, wait_for, Doorsim};
use serde_json::{json, Value};

/// Runs one auto-answered sipp call against a device started with `format`, and returns its
/// log once the call's last state change is in it.
async fn log_of_one_call(format: &str) -> String {
    let path = std::env::temp_dir().join(format!("doorsim-log-{}-{format}.log", std::process::id()));
    let d = Doorsim::start_logging_to(&path, &["--log", "info", "--log-format", format, "--auto-answer", "0.1"]);
    let (port, _) = d.enable_sip(json!({})).await;
    let (ok, out) = sipp(port, "u1", &["-sn", "uac", "-d", "200"]).await;
    assert!(ok, "{out}");
    let read = || std::fs::read_to_string(&path).expect("log");
    wait_for("the Terminated state in the log", async || read().contains("Terminated")).await;
    let log = read();
    let _ = std::fs::remove_file(&path);
    log
}

#[tokio::test]
async fn json_lines_carry_each_call_state_and_each_sip_transaction() {
    let log = log_of_one_call("json").await;
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))).collect();
    let with = |message: &str| -> Vec<&Value> {
        lines.iter().filter(|l| l["fields"]["message"] == message).map(|l| &l["fields"]).collect()
    };
    let states: Vec<&str> = with("call state").iter().filter_map(|f| f["state"].as_str()).collect();
    assert_eq!(states, ["Calling", "Active", "Terminated"], "{log}");
    let transactions: Vec<(String, u64, String)> = with("SIP transaction")
        .iter()
        .map(|f| {
            let text = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
            (text("method"), f["status"].as_u64().unwrap_or_default(), text("side"))
        })
        .collect();
    for expected in [("INVITE", 200, "server"), ("BYE", 200, "server")] {
        let expected = (expected.0.to_owned(), expected.1, expected.2.to_owned());
        assert!(transactions.contains(&expected), "{expected:?} in {transactions:?}");
    }
    assert!(with("SIP transaction").iter().all(|f| f["transport"] == "UDP"), "{log}");
    assert!(lines.iter().all(|l| l["level"].is_string() && l["timestamp"].is_string()), "{log}");
}

#[tokio::test]
async fn text_lines_are_the_default() {
    let log = log_of_one_call("text").await;
    let state_lines: Vec<&str> = log.lines().filter(|l| l.contains("call state")).collect();
    assert_eq!(state_lines.len(), 3, "{log}");
    assert!(state_lines.iter().all(|l| l.contains("INFO") && serde_json::from_str::<Value>(l).is_err()), "{log}");
    assert!(log.lines().any(|l| l.contains("SIP transaction") && l.contains("method=\"INVITE\"")), "{log}");
}
