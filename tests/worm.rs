//! Worm fan-out, end to end: `ward protect` running, a process (started by the test, in a
//! network namespace of the test's own) connects to TCP 445 on many addresses; ward must
//! report an `smb-fanout` incident naming that process and stop it before it reaches 20
//! addresses. A backup job talking to one server 30 times stays quiet. Root only.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;
use ward_lab::scratchfs::FsKind;

/// A network namespace whose loopback device holds 10.214.K.1..=40 and a listener on
/// port 445 of every address; deleted on drop (the listener dies with it).
struct Net {
    name: String,
    prefix: String,
    listener: std::process::Child,
}

impl Net {
    fn new(k: u8) -> Net {
        let name = format!("wardworm{}k{k}", std::process::id());
        let prefix = format!("10.214.{k}");
        let ip = |args: &[&str]| {
            let st = Command::new("ip").args(args).status().expect("ip");
            assert!(st.success(), "ip {args:?}");
        };
        ip(&["netns", "add", &name]);
        let mut net = Net {
            name: name.clone(),
            prefix: prefix.clone(),
            listener: Command::new("true").spawn().unwrap(),
        };
        ip(&["-n", &name, "link", "set", "lo", "up"]);
        // On the namespace's own loopback device (no dummy module needed); the addresses
        // are not loopback addresses, so they count as other hosts.
        for i in 1..=40 {
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{prefix}.{i}/32"),
                "dev",
                "lo",
            ]);
        }
        let _ = net.listener.wait();
        net.listener = Command::new("ip")
            .args(["netns", "exec", &name, "python3", "-c"])
            .arg(LISTENER)
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        net
    }

    /// Run `python3 -c CODE ARGS` in the namespace; its stdout lines.
    fn run(&self, code: &str, args: &[&str]) -> (std::process::ExitStatus, Vec<String>) {
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "timeout", "60", "python3", "-c", code,
            ])
            .args(args)
            .output()
            .unwrap();
        let lines = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect();
        (out.status, lines)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = self.listener.kill();
        let _ = self.listener.wait();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

const LISTENER: &str = r#"
import socket, select
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 445)); s.listen(512)
while True:
    c, _ = s.accept(); c.close()
"#;

/// Connect to PREFIX.1..=N on 445, 50 ms apart; print each address reached.
const WORM: &str = r#"
import socket, sys, time
prefix, n = sys.argv[1], int(sys.argv[2])
for i in range(1, n + 1):
    try:
        c = socket.create_connection((f"{prefix}.{i}", 445), timeout=1)
        c.close()
        print(f"{prefix}.{i}", flush=True)
    except OSError as e:
        print(f"error {e}", flush=True)
    time.sleep(0.05)
"#;

/// Connect to one address N times.
const BACKUP: &str = r#"
import socket, sys, time
addr, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    c = socket.create_connection((addr, 445), timeout=1)
    c.sendall(b"backup chunk"); c.close()
    print(addr, flush=True)
    time.sleep(0.02)
"#;

fn available() -> bool {
    common::root_or_skip()
}

#[test]
fn worm_sweep_is_contained_before_20_addresses() {
    if !available() {
        return;
    }
    let lab = common::Lab::new(FsKind::Ext4, 150);
    let mut ward = lab.protect();
    let ready = ward.of_type("ready")[0].clone();
    assert_eq!(ready["protections"]["smb_fanout"], true, "{ready}");
    let net = Net::new(1);
    let (_, lines) = net.run(WORM, &[&net.prefix, "40"]);
    let reached = lines.iter().filter(|l| l.starts_with(&net.prefix)).count();
    let inc = ward
        .wait_for("incident", Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no incident; worm reached {reached}: {}", ward.log()));
    assert!(
        inc["indicators"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "smb-fanout"),
        "{inc}"
    );
    assert!(inc["exe"].as_str().unwrap().contains("python"), "{inc}");
    assert!(
        reached < 20,
        "the worm reached {reached} addresses: {lines:?}"
    );
    assert!(reached >= 9, "contained too early?: {lines:?}");
    eprintln!(
        "MEASURED worm: reached {reached} addresses before it was stopped; contain_ms {}",
        inc["contain_ms"]
    );
    assert!(lab.damaged().is_empty());
}

#[test]
fn backup_job_talking_to_one_server_is_quiet() {
    if !available() {
        return;
    }
    let lab = common::Lab::new(FsKind::Ext4, 150);
    let mut ward = lab.protect();
    let net = Net::new(2);
    let (st, lines) = net.run(BACKUP, &[&format!("{}.7", net.prefix), "30"]);
    assert!(st.success(), "{lines:?}");
    assert_eq!(lines.len(), 30);
    ward.drain(Duration::from_secs(2));
    // The connection monitor sees the whole host: a worm test running beside this one is
    // (rightly) convicted by this ward too; only the backup job matters here.
    let ours: Vec<_> = ward
        .of_type("incident")
        .into_iter()
        .filter(|i| i["cmdline"].to_string().contains("backup chunk"))
        .collect();
    assert!(ours.is_empty(), "{ours:?}");
}
