//! kamailio (Debian `kamailio`, installed by scripts/test.sh) as a loopback registrar for tests.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running kamailio in a process group of its own (it forks helpers); the whole group is
/// stopped on drop.
pub(crate) struct Kamailio(Child);

impl Drop for Kamailio {
    fn drop(&mut self) {
        let group = format!("-{}", self.0.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.0.wait();
    }
}

impl Kamailio {
    /// Checks and starts kamailio with `template`, LISTEN and PASSWORD substituted, on UDP `port`
    /// of 127.0.0.1.
    pub(crate) fn start(template: &str, port: u16, password: &str) -> Kamailio {
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
}

/// Whether kamailio running `tests/kamailio/fleet.cfg` on UDP `port` holds `user` in its
/// location table (its OPTIONS answer is 200 then, 404 otherwise).
pub(crate) async fn holds(port: u16, user: &str) -> bool {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    let me = socket.local_addr().expect("addr").port();
    let options = format!(
        "OPTIONS sip:{user}@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKholds{me}\r\n\
         From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:{user}@127.0.0.1>\r\nCall-ID: holds-{me}-{user}\r\n\
         CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), ("127.0.0.1", port)).await.expect("send");
    let mut buf = [0u8; 2048];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await.expect("answer").expect("recv");
    buf[..n].starts_with(b"SIP/2.0 200")
}
