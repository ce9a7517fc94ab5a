//! The README's curl lines work as pasted (against a doorsim on an ephemeral port instead of 8080).

mod common;

use std::process::Command;

use common::Doorsim;

#[tokio::test]
async fn readme_curl_lines_work_as_pasted() {
    let readme = include_str!("../README.md");
    let lines: Vec<&str> = readme.lines().filter(|l| l.starts_with("curl --anyauth -u root:pass ")).collect();
    assert!(lines.len() >= 9, "the quickstart lost its curl lines");
    let d = Doorsim::start(&[]);
    let host = d.base.trim_start_matches("http://").to_owned();
    for line in lines {
        let cmd = line.replace("127.0.0.1:8080", &host);
        let out = Command::new("sh").args(["-c", &format!("{cmd} -s -S -w '\\n%{{http_code}}'")]).output().expect("sh");
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
