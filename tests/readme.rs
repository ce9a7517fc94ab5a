//! The README's curl lines work as pasted (against a doorsim on an ephemeral port instead of 8080).

mod common;

use std::process::Command;

use common::Doorsim;

#[tokio::test]
async fn readme_curl_lines_work_as_pasted() {
    let readme = include_str!("../README.md");
    // The Axis device's lines (the other brands' blocks are run against their own devices below).
    let axis_part = readme.split("## Other brands").next().unwrap_or(readme);
    let lines: Vec<&str> = axis_part.lines().filter(|l| l.starts_with("curl --anyauth -u root:pass ")).collect();
    assert!(lines.len() >= 9, "the quickstart lost its curl lines");
    let d = Doorsim::start(&[]);
    let host = d.base.trim_start_matches("http://").to_owned();
    for line in lines {
        let cmd = line.replace("127.0.0.1:8080", &host);
        let out = Command::new("sh")
            .args(["-c", &format!("{cmd} -s -S -w '\\n%{{http_code}}'")])
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sh");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{line}\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        let (body, status) = stdout.trim_end().rsplit_once('\n').unwrap_or(("", stdout.trim_end()));
        let expect_fault = line.contains("601");
        assert_eq!(status, if expect_fault { "400" } else { "200" }, "{line}\n{body}");
        assert_eq!(body.contains("Fault"), expect_fault, "{line}\n{body}");
        if expect_fault {
            let msg = body.lines().find(|l| l.contains("FaultMsg")).unwrap_or_default().trim();
            assert!(!msg.is_empty() && readme.contains(msg), "the README shows another fault than {body}");
        }
    }
}

#[tokio::test]
async fn the_readme_fleet_file_starts_a_site() {
    use std::io::{BufRead, BufReader};
    let readme = include_str!("../README.md");
    let sites = readme.split("## Sites and load tests").nth(1).expect("the Sites section");
    let toml = sites.split("```toml\n").nth(1).and_then(|b| b.split("```").next()).expect("a fleet file");
    let file = std::env::temp_dir().join(format!("doorsim-readme-site-{}.toml", std::process::id()));
    std::fs::write(&file, toml).expect("write");
    let (http, rtsp, manage) = (common::free_port(), common::free_port(), common::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["fleet", "--fleet-file", file.to_str().expect("path"), "--base", "127.71.0.1", "--log", "error"])
        .args(["--http-port", &http.to_string(), "--rtsp-port", &rtsp.to_string()])
        .args(["--manage", &format!("127.0.0.1:{manage}")])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("doorsim fleet");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|l| l.contains("Management"));
    std::thread::spawn(move || lines.for_each(drop));
    let fleet: serde_json::Value = match started {
        true => reqwest::get(format!("http://127.0.0.1:{manage}/emulator/v1/fleet"))
            .await
            .expect("fleet")
            .json()
            .await
            .expect("json"),
        false => serde_json::Value::Null,
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(file);
    let devices = fleet["Devices"].as_array().expect("the README's fleet file started");
    assert_eq!(devices.len(), 201);
    assert_eq!(
        (devices[200]["Address"].as_str(), devices[200]["Profile"].as_str()),
        (Some("127.1.9.1"), Some("I8116-E"))
    );
}

#[tokio::test]
async fn the_readme_vms_call_is_one_call_active_as_long_as_its_audio() {
    let readme = include_str!("../README.md");
    let block = readme.split("A VMS call, answered by streaming audio").nth(1).expect("the VMS block");
    let call = block.lines().find(|l| l.contains("axcall:Call\"")).expect("the Call line");
    let audio = block.split("```sh\n").nth(2).and_then(|b| b.split("```").next()).expect("the audio block");
    let audio: String = audio.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    let d = Doorsim::start(&[]);
    let host = d.base.trim_start_matches("http://").to_owned();
    let run = |cmd: &str| {
        let out = Command::new("sh")
            .args(["-c", &cmd.replace("127.0.0.1:8080", &host)])
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sh");
        assert!(out.status.success(), "{cmd}\n{}", String::from_utf8_lossy(&out.stderr));
    };
    run(call);
    let calls = d.ok("GetCallStatuses", serde_json::json!({})).await["CallStatus"].clone();
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "the VMS block makes one call: {calls}");
    let started = std::time::Instant::now();
    run(&audio);
    let took = started.elapsed();
    assert!(took >= std::time::Duration::from_millis(2900), "3 s of audio plays for 3 s (took {took:?})");
    // The call ends when the stream does, a moment after curl exits: wait for that event.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let events = loop {
        let events = d.request("GET", "/emulator/v1/events?topic=tnsaxis:Call/StateChange", None).await.json();
        let ended = events["Events"].as_array().is_some_and(|e| e.iter().any(|e| e["data"]["Reason"] == "Terminated"));
        if ended || std::time::Instant::now() >= deadline {
            break events;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let at = |reason: &str| {
        events["Events"]
            .as_array()
            .and_then(|e| e.iter().find(|e| e["data"]["Reason"] == reason))
            .and_then(|e| e["timestamp"].as_u64())
    };
    let (answered, ended) = (at("AcceptedByRemote").expect("answered"), at("Terminated").expect("ended"));
    let active = ended - answered;
    assert!((2900..6000).contains(&active), "Active for about 3 s: {active} ms");
    let calls = d.ok("GetCallStatuses", serde_json::json!({})).await["CallStatus"].clone();
    assert_eq!(calls.as_array().map(Vec::len), Some(1), "still one call: {calls}");
}

/// The `sh` blocks of the README's "Other brands" section, each run as pasted (after its
/// `doorsim --profile P ...` line, which the test replaces with a device of that profile on free
/// ports): every command succeeds and no answer is an error of the brand's API. A `grpcurl` line
/// runs only where grpcurl is installed (tests/suprema.rs covers that service with grpcio).
#[tokio::test]
async fn the_readme_brand_examples_work_as_pasted() {
    let readme = include_str!("../README.md");
    let section = readme.split("## Other brands").nth(1).and_then(|s| s.split("\n## ").next()).expect("the section");
    let blocks: Vec<&str> = section.split("```sh\n").skip(1).filter_map(|b| b.split("```").next()).collect();
    assert_eq!(blocks.len(), 4, "a block per brand");
    let has_grpcurl = Command::new("grpcurl").arg("-version").output().is_ok();
    for block in blocks {
        let start = block.lines().next().expect("the doorsim line");
        let profile = start.split_whitespace().skip_while(|w| *w != "--profile").nth(1).expect("--profile");
        let sip = common::free_sip_ports();
        let grpc = common::free_port();
        let d = Doorsim::start(&[
            "--profile",
            profile,
            "--sip-port",
            &sip.to_string(),
            "--grpc",
            &format!("127.0.0.1:{grpc}"),
        ]);
        let host = d.base.trim_start_matches("http://").to_owned();
        let script: Vec<String> = block
            .lines()
            .skip(1)
            .filter(|l| has_grpcurl || !l.starts_with("grpcurl"))
            .map(|l| l.replace("127.0.0.1:8080", &host).replace("127.0.0.1:4000", &format!("127.0.0.1:{grpc}")))
            .collect();
        let dir = std::env::temp_dir().join(format!("doorsim-readme-{}-{profile}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let out = Command::new("sh")
            .args(["-ec", &script.join("\n")])
            .current_dir(&dir)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .output()
            .expect("sh");
        let _ = std::fs::remove_dir_all(&dir);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{profile}: {block}\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(!stdout.contains("\"success\":false") && !stdout.contains("\"error\""), "{profile}: {stdout}");
        assert!(script.is_empty() || !stdout.trim().is_empty(), "{profile}: the block printed its answers");
    }
}

#[tokio::test]
async fn readme_rtsp_lines_work_as_pasted() {
    let readme = include_str!("../README.md");
    let lines: Vec<&str> = readme.lines().filter(|l| l.starts_with("ffprobe ") || l.starts_with("ffmpeg ")).collect();
    assert_eq!(lines.len(), 2, "the quickstart's RTSP lines");
    let d = Doorsim::start(&[]);
    let dir = std::env::temp_dir().join(format!("doorsim-readme-rtsp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut printed = String::new();
    for line in lines {
        let (cmd, dir) = (line.replace("127.0.0.1:8554", &d.rtsp), dir.clone());
        let out = tokio::task::spawn_blocking(move || Command::new("sh").args(["-c", &cmd]).current_dir(&dir).output())
            .await
            .expect("thread")
            .expect("sh");
        assert!(out.status.success(), "{line}\n{}", String::from_utf8_lossy(&out.stderr));
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(printed.lines().collect::<Vec<_>>(), ["codec_name=h264", "codec_name=pcm_mulaw"]);
    let png = std::fs::metadata(dir.join("door.png")).map(|m| m.len()).unwrap_or(0);
    assert!(png > 1000, "ffmpeg wrote a picture ({png} bytes)");
    let _ = std::fs::remove_dir_all(&dir);
}
