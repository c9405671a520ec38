//! Client namespaces, veth pairs and their addresses (10.213.0.0/16, one /30 per client).

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::net::Ipv4Addr;
use std::process::Command;

use nix::fcntl::{Flock, FlockArg};

use crate::proc::{alive, run, sweep_smbd};
use crate::{io_err, ClientNs, Result};

/// Serialises address allocation between labs of all processes on this machine.
const LOCK: &str = "/run/ward-smblab.lock";

fn ip(args: &[&str]) -> Result<String> {
    run(Command::new("ip").args(args))
}

/// IPv4 addresses configured on the root namespace's interfaces.
fn used_addresses() -> BTreeSet<Ipv4Addr> {
    let out = ip(&["-o", "-4", "addr", "show"]).unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            it.find(|w| *w == "inet")?;
            it.next()?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// Create namespace `name` with a veth pair `<name>h` (root) / `<name>c` (inside), on the
/// first free /30 of 10.213.0.0/16: root side `.1`, client `.2` (within the /30).
pub(crate) fn create_client(name: &str) -> Result<ClientNs> {
    let lockf = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK)
        .map_err(io_err(format!("opening {LOCK}")))?;
    let _guard =
        Flock::lock(lockf, FlockArg::LockExclusive).map_err(|(_, e)| crate::Error::Io {
            what: format!("locking {LOCK}"),
            source: e.into(),
        })?;
    let used = used_addresses();
    let base = (0u32..(1 << 14))
        .map(|i| u32::from(Ipv4Addr::new(10, 213, 0, 0)) + i * 4)
        .find(|b| !used.contains(&Ipv4Addr::from(b + 1)) && !used.contains(&Ipv4Addr::from(b + 2)))
        .ok_or_else(|| crate::Error::Options("no free /30 left in 10.213.0.0/16".into()))?;
    let host = Ipv4Addr::from(base + 1);
    let cli = Ipv4Addr::from(base + 2);
    let (h, c) = (format!("{name}h"), format!("{name}c"));
    let made = ClientNs {
        netns: name.to_string(),
        host_if: h.clone(),
        ip: cli,
        server_ip: host,
    };
    ip(&["netns", "add", name])?;
    let setup = || -> Result<()> {
        ip(&[
            "link", "add", &h, "type", "veth", "peer", "name", &c, "netns", name,
        ])?;
        ip(&["addr", "add", &format!("{host}/30"), "dev", &h])?;
        ip(&["link", "set", &h, "up"])?;
        ip(&["-n", name, "addr", "add", &format!("{cli}/30"), "dev", &c])?;
        ip(&["-n", name, "link", "set", &c, "up"])?;
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(())
    };
    if let Err(e) = setup() {
        delete_client(&made);
        return Err(e);
    }
    Ok(made)
}

/// Delete the namespace (which destroys the veth pair) and the root end if it survived.
pub(crate) fn delete_client(c: &ClientNs) {
    let _ = ip(&["netns", "del", &c.netns]);
    let _ = ip(&["link", "del", &c.host_if]);
}

/// Does `pid` (smbd) listen on `port` on every one of `addrs`? Reads its netns' tcp table.
pub(crate) fn listening(pid: u32, addrs: &[Ipv4Addr], port: u16) -> bool {
    let Ok(tab) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return false;
    };
    let listen: BTreeSet<Ipv4Addr> = tab
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.get(3) != Some(&"0A") {
                return None;
            }
            let (a, p) = f.get(1)?.split_once(':')?;
            if u16::from_str_radix(p, 16).ok()? != port {
                return None;
            }
            Some(Ipv4Addr::from(u32::from_be(
                u32::from_str_radix(a, 16).ok()?,
            )))
        })
        .collect();
    addrs.iter().all(|a| listen.contains(a))
}

fn owner_of(name: &str) -> Option<u32> {
    name.strip_prefix("wl")?.split('-').next()?.parse().ok()
}

/// Remove what labs of dead processes left behind: their smbds, namespaces `wl<pid>-<k>`,
/// root-side veths `wl<pid>-<k>h` and temp dirs `ward-smblab-<pid>-*`. Only those names.
pub(crate) fn sweep_stale() {
    sweep_smbd();
    let stale = |n: &str| owner_of(n).map(|p| !alive(p)).unwrap_or(false);
    if let Ok(list) = ip(&["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if stale(ns) {
                let _ = ip(&["netns", "del", ns]);
            }
        }
    }
    if let Ok(list) = ip(&["-o", "link", "show"]) {
        for l in list.lines() {
            if let Some(n) = l
                .split(':')
                .nth(1)
                .map(|s| s.trim().split('@').next().unwrap_or(""))
            {
                if n.ends_with('h') && stale(n) {
                    let _ = ip(&["link", "del", n]);
                }
            }
        }
    }
    let tmp = std::env::temp_dir();
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let owner = n
                .strip_prefix("ward-smblab-")
                .and_then(|r| r.split('-').next()?.parse::<u32>().ok());
            if let Some(o) = owner {
                if !alive(o) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
}

/// Remote IPv4 addresses of the TCP sockets `pid` holds (from its fds and its netns' table).
pub(crate) fn peers(pid: u32) -> Vec<Ipv4Addr> {
    let inodes: BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let t = std::fs::read_link(e.path()).ok()?;
                    t.to_str()?
                        .strip_prefix("socket:[")?
                        .strip_suffix(']')?
                        .parse()
                        .ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let Ok(tab) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
        return Vec::new();
    };
    tab.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if !inodes.contains(&f.get(9)?.parse().ok()?) {
                return None;
            }
            let (a, _) = f.get(2)?.split_once(':')?;
            Some(Ipv4Addr::from(u32::from_be(
                u32::from_str_radix(a, 16).ok()?,
            )))
        })
        .filter(|a| !a.is_unspecified())
        .collect()
}
