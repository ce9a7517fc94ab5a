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
