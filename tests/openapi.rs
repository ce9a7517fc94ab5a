//! The control API's OpenAPI 3.1 document (`openapi/control.json`, served at
//! `/emulator/v1/openapi.json`): it is valid (`openapi-spec-validator`), it names exactly the
//! operations the router has (so neither can drift from the other), and `schemathesis` run
//! against a live device finds no response outside the document and no 5xx. Both tools come
//! from PyPI into a venv under `target/` (needs `python3` with `venv`).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::Doorsim;
use serde_json::Value;

const TOOLS: [&str; 2] = ["schemathesis==4.32.5", "openapi-spec-validator==0.9.0"];
const DOCUMENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/control.json");

fn document() -> Value {
    serde_json::from_str(&std::fs::read_to_string(DOCUMENT).expect("document")).expect("JSON")
}

async fn tools() -> std::path::PathBuf {
    tokio::task::spawn_blocking(|| common::python_venv("openapi-venv", &TOOLS)).await.expect("venv")
}

#[tokio::test]
async fn the_device_serves_the_repository_document() {
    let d = Doorsim::start(&[]);
    assert_eq!(d.request("GET", "/emulator/v1/openapi.json", None).await.json(), document());
}

#[test]
fn the_document_names_exactly_the_routed_operations() {
    let doc = document();
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object().expect("operations").keys().map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routed: BTreeSet<(String, String)> =
        doorsim::control::OPERATIONS.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    assert_eq!(documented, routed);
}

#[tokio::test]
async fn openapi_spec_validator_accepts_the_document() {
    let python = tools().await;
    let out = Command::new(python).args(["-m", "openapi_spec_validator", DOCUMENT]).output().expect("validator");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn schemathesis_finds_nothing_outside_the_document_and_no_server_error() {
    let python = tools().await;
    let d = Doorsim::start(&[]);
    let mut run = Command::new(python.with_file_name("st"));
    run.args(["run", DOCUMENT, "--url", &d.base, "--auth", "root:pass", "--checks", "all"])
        // A fixed seed and example count: the same requests every run.
        .args(["--max-examples", "30", "--seed", "1", "--generation-database", "none", "--no-color"])
        .current_dir(std::env::temp_dir());
    let out = tokio::task::spawn_blocking(move || run.output()).await.expect("thread").expect("schemathesis");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("13/13"), "every operation was selected: {text}");
}
