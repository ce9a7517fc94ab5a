//! The Kubernetes manifests (`deploy/kubernetes/`): `kubernetes-validate --strict` (PyPI, in a
//! venv under `target/`) accepts them, and the StatefulSet's container command, run here as
//! the pod with ordinal 3 would run it (its own environment, with this machine's loopback
//! address, free ports and a temporary state directory in place of the pod's), starts the
//! slice of devices that ordinal owns and answers the probes' path.

mod common;

use std::process::{Command, Stdio};

use common::free_port;
use serde_json::Value;

const VALIDATOR: &str = "kubernetes-validate==1.37.0";
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

async fn python() -> std::path::PathBuf {
    tokio::task::spawn_blocking(|| common::python_venv("k8s-venv", &[VALIDATOR])).await.expect("venv")
}

#[tokio::test]
async fn kubernetes_validate_accepts_the_manifests() {
    let python = python().await;
    let kustomization = std::fs::read_to_string(format!("{DIR}/kustomization.yaml")).expect("kustomization");
    for manifest in ["service.yaml", "statefulset.yaml"] {
        assert!(kustomization.contains(&format!("- {manifest}")), "the kustomization lists {manifest}");
        let out = Command::new(python.with_file_name("kubernetes-validate"))
            .args(["--strict", &format!("{DIR}/{manifest}")])
            .output()
            .expect("kubernetes-validate");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success() && text.contains("passed"), "{manifest}: {text}");
    }
}

/// The literal value of variable `name` in the container's environment.
fn env_value(spec: &Value, name: &str) -> String {
    let env = spec["env"].as_array().expect("env");
    env.iter().find(|e| e["name"] == name).and_then(|e| e["value"].as_str()).expect(name).to_owned()
}

/// The StatefulSet's container: command and args, and its environment (literal values).
fn container(python: &std::path::Path) -> Value {
    let script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))['spec']['template']['spec']['containers'][0]))";
    let out = Command::new(python).args(["-c", script, &format!("{DIR}/statefulset.yaml")]).output().expect("python");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn the_pod_command_runs_the_slice_its_ordinal_owns() {
    let python = python().await;
    let spec = container(&python);
    let state = std::env::temp_dir().join(format!("doorsim-k8s-{}", std::process::id()));
    let manage = free_port();
    let step: u16 = env_value(&spec, "DOORSIM_PORT_STEP").parse().expect("the manifest's port step");
    // The pod's environment, with what only a cluster gives replaced: the pod's address, and
    // ports and a directory free on this machine; three doors a pod to keep it small.
    let replaced = [
        ("DOORS_PER_POD", "3".to_owned()),
        ("DOORSIM_BASE", "127.0.0.1".to_owned()),
        ("DOORSIM_HTTP_PORT", common::free_ports_apart(3, step).to_string()),
        ("DOORSIM_RTSP_PORT", common::free_ports_apart(3, step).to_string()),
        ("DOORSIM_SIP_PORT", common::free_ports_apart(3, step).to_string()),
        ("DOORSIM_MANAGE", format!("127.0.0.1:{manage}")),
        ("DOORSIM_STATE", state.display().to_string()),
    ];
    let mut pod = Command::new("bash");
    for e in spec["env"].as_array().expect("env") {
        let name = e["name"].as_str().expect("name");
        let value = replaced.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone());
        match (value, e["value"].as_str()) {
            (Some(v), _) => pod.env(name, v),
            (None, Some(v)) => pod.env(name, v),
            (None, None) => panic!("{name} comes from the cluster and is not replaced here"),
        };
    }
    let command: Vec<&str> = spec["command"].as_array().expect("command").iter().filter_map(Value::as_str).collect();
    assert_eq!(command[0], "bash");
    let args: Vec<&str> = spec["args"].as_array().expect("args").iter().filter_map(Value::as_str).collect();
    // The image has doorsim on its PATH; here it is this build's.
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_doorsim")).parent().expect("dir").to_owned();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let _pod = Killed(
        pod.args(&command[1..])
            .args(&args)
            .env("HOSTNAME", "doorsim-3")
            .env("PATH", path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("bash"),
    );
    let probe = format!("http://127.0.0.1:{manage}/emulator/v1/fleet");
    let mut fleet = Value::Null;
    common::wait_for("the slice answers the probes' path", async || match reqwest::get(&probe).await {
        Ok(r) if r.status() == 200 => {
            fleet = r.json().await.unwrap_or(Value::Null);
            true
        }
        _ => false,
    })
    .await;
    let indices: Vec<&Value> = fleet["Devices"].as_array().expect("devices").iter().map(|d| &d["Index"]).collect();
    assert_eq!(indices, [9, 10, 11], "ordinal 3 of three-door pods owns devices 9..11");
    assert!(state.join("device-9.json").exists(), "state kept per device index in the volume");
    let _ = std::fs::remove_dir_all(&state);
}

/// A process killed when the test ends, passed or not (bash `exec`s doorsim: one process).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
