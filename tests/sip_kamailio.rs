//! Registration against kamailio (Debian `kamailio`, installed by scripts/test.sh) as a
//! loopback registrar with digest auth: the device registers (Status 200), fails with a wrong
//! password (401 in StatusText) and recovers when it is corrected.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{free_port, Doorsim};
use serde_json::{json, Value};

/// A running kamailio in a process group of its own (it forks helpers); the whole group is
/// stopped on drop.
struct Kamailio(Child);

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

fn kamailio(port: u16, password: &str) -> Kamailio {
    let template = include_str!("kamailio/registrar.cfg");
    let config = template.replace("LISTEN", &format!("udp:127.0.0.1:{port}")).replace("PASSWORD", password);
    let path = std::env::temp_dir().join(format!("doorsim-kamailio-{}-{port}.cfg", std::process::id()));
    std::fs::write(&path, config).expect("write config");
    let check = Command::new("kamailio")
        .arg("-f")
        .arg(&path)
        .arg("-c")
        .output()
        .expect("kamailio (Debian package) must be installed");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let child = Command::new("kamailio")
        .arg("-f")
        .arg(&path)
        .args(["-DD", "-E", "-Y", std::env::temp_dir().to_str().expect("tmp")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start kamailio");
    std::thread::sleep(Duration::from_millis(500));
    Kamailio(child)
}

async fn status_of(d: &Doorsim, id: &str, want: u64) -> Value {
    let mut s = Value::Null;
    for _ in 0..60 {
        s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": id})).await["SIPAccountStatus"].clone();
        if s["Status"] == want {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("status never became {want}: {s}");
}

#[tokio::test]
async fn registers_fails_with_a_wrong_password_and_recovers() {
    let registrar = free_port();
    let _kamailio = kamailio(registrar, "secure");
    let d = Doorsim::start(&[]);
    d.ok(
        "SetSIPConfiguration",
        json!({"SIPConfiguration": {"SIPEnabled": true, "SIPPort": free_port(), "SIPTLSPort": free_port()}}),
    )
    .await;
    let account = |password: &str| {
        json!({"SIPAccount": {"Id": "pbx", "UserId": "6001", "Password": password,
            "Registrar": format!("127.0.0.1:{registrar}"), "PublicDomain": "127.0.0.1"}})
    };
    d.ok("SetSIPAccount", account("secure")).await;
    let s = status_of(&d, "pbx", 200).await;
    assert_eq!(
        (s["StatusText"].as_str(), s["RegURI"].as_str()),
        (Some("OK"), Some(format!("127.0.0.1:{registrar}").as_str()))
    );
    assert_eq!(s["SIPURI"], "sip:6001@127.0.0.1");

    d.ok("SetSIPAccount", account("wrong")).await;
    let s = status_of(&d, "pbx", 401).await;
    assert!(s["StatusText"].as_str().is_some_and(|t| t.contains("Unauthorized")), "{s}");

    d.ok("SetSIPAccount", account("secure")).await;
    status_of(&d, "pbx", 200).await;

    // SIP off: every account says so.
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": false}})).await;
    let s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "pbx"})).await["SIPAccountStatus"].clone();
    assert_eq!((s["Status"].as_u64(), s["StatusText"].as_str()), (Some(0), Some("SIP disabled")));
}
