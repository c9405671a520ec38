//! ward-smb against a real smbd (ward-smblab): roles, attribution, the nftables block and
//! ending one client's session. Root only (skips otherwise); every lab, table and mount is
//! removed on exit, also on failure.

use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ward_model::ProcId;
use ward_smb::{
    cut_off, end_client, smbd_role, tcp_peer, Attributor, AttributorConfig, Blocker, BlockerConfig,
    EndMethod, SambaTools, SmbdRole, Source,
};
use ward_smblab::{unavailable_reason, ClientProc, Lab, LabOptions, ScratchTmpfs, ShareSpec};

fn skip() -> bool {
    if let Some(why) = unavailable_reason() {
        println!("SKIP: Samba lab unavailable: {why}");
        return true;
    }
    if Command::new("nft").arg("--version").output().is_err() {
        println!("SKIP: nft not found");
        return true;
    }
    false
}

struct Setup {
    lab: Lab,
    _fs: ScratchTmpfs,
    share: std::path::PathBuf,
}

fn setup(clients: usize) -> Setup {
    let fs = ScratchTmpfs::new(32).unwrap();
    let share = fs.path().join("data");
    std::fs::create_dir(&share).unwrap();
    for i in 0..4 {
        std::fs::write(
            share.join(format!("doc-{i}.txt")),
            "Ward 4 rota\n".repeat(50),
        )
        .unwrap();
    }
    let lab = Lab::start(LabOptions::new(
        vec![ShareSpec::new("data", &share)],
        clients,
    ))
    .unwrap();
    Setup {
        lab,
        _fs: fs,
        share,
    }
}

fn ip_of(lab: &Lab, n: usize) -> IpAddr {
    IpAddr::V4(lab.clients()[n].ip)
}

/// Start an honest client in namespace `n` and wait until its session is up.
fn honest(lab: &Lab, n: usize, secs: f64) -> ClientProc {
    let p = lab
        .client(n)
        .spawn(
            "honest.py",
            &[
                "--seconds",
                &secs.to_string(),
                "--interval",
                "0.1",
                "--op-timeout",
                "2",
            ],
        )
        .unwrap();
    assert!(
        p.wait_for(Duration::from_secs(20), |v| v["type"] == "start"),
        "honest client {n} did not start: {:?}",
        p.lines()
    );
    p
}

/// The smbd child serving the client at `ip`.
fn child_for(lab: &Lab, ip: IpAddr) -> u32 {
    let t0 = Instant::now();
    loop {
        if let Some(p) = lab
            .smbd_children()
            .into_iter()
            .find(|p| tcp_peer(*p, &[445]) == Some(ip))
        {
            return p;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no smbd child for {ip}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn probe(lab: &Lab, n: usize) -> (bool, f64) {
    let out = lab
        .client(n)
        .run(
            "probe.py",
            &["--connect-timeout", "1.5", "--deadline-secs", "10"],
            Duration::from_secs(20),
        )
        .unwrap();
    let s = out
        .summary()
        .unwrap_or_else(|| panic!("probe: {}", out.stderr))
        .clone();
    (
        s["ok"].as_bool().unwrap_or(false),
        s["elapsed_ms"].as_f64().unwrap_or(0.0),
    )
}

fn proc_id(pid: u32) -> ProcId {
    ProcId {
        pid,
        start: ward_sys_start(pid),
    }
}

fn ward_sys_start(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &s[s.rfind(')').unwrap() + 1..];
    rest.split_whitespace().nth(19).unwrap().parse().unwrap()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'))
        .unwrap_or(false)
}

fn table_exists(name: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "inet", name])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn table_name(tag: &str) -> String {
    format!("ward_test_{}_{tag}", std::process::id())
}

#[test]
fn roles_of_real_smbd_processes() {
    if skip() {
        return;
    }
    let s = setup(1);
    let master = s.lab.smbd_pid().unwrap();
    assert_eq!(smbd_role(master), Some(SmbdRole::Master));
    let h = honest(&s.lab, 0, 3.0);
    let child = child_for(&s.lab, ip_of(&s.lab, 0));
    assert_eq!(smbd_role(child), Some(SmbdRole::Client));
    let helpers: Vec<(u32, String)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .map(|st| {
                    st[st.rfind(')').unwrap() + 1..]
                        .split_whitespace()
                        .nth(1)
                        .map(|pp| pp == master.to_string())
                        .unwrap_or(false)
                })
                .unwrap_or(false)
        })
        .filter(|p| *p != child)
        .map(|p| {
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            (p, comm.trim().to_string())
        })
        .collect();
    println!("smbd master {master}, client child {child}, helpers {helpers:?}");
    assert!(
        helpers.iter().any(|(_, c)| c == "smbd-notifyd"),
        "{helpers:?}"
    );
    assert!(helpers.iter().any(|(_, c)| c == "cleanupd"), "{helpers:?}");
    for (p, c) in &helpers {
        assert_eq!(smbd_role(*p), Some(SmbdRole::Helper), "{p} {c}");
    }
    assert_eq!(smbd_role(std::process::id()), None);
    assert!(ward_smb::client_pids().contains(&child));
    assert!(!ward_smb::client_pids().contains(&master));
    let out = h.wait(Duration::from_secs(20)).unwrap();
    assert_eq!(out.summary().unwrap()["failed"], 0);
}

#[test]
fn attribution_names_ip_user_and_share() {
    if skip() {
        return;
    }
    let s = setup(2);
    let h0 = honest(&s.lab, 0, 4.0);
    let h1 = honest(&s.lab, 1, 4.0);
    let (ip0, ip1) = (ip_of(&s.lab, 0), ip_of(&s.lab, 1));
    let (c0, c1) = (child_for(&s.lab, ip0), child_for(&s.lab, ip1));
    let at = Attributor::new(AttributorConfig {
        tools: SambaTools::with_config(s.lab.conf_path()),
        ..AttributorConfig::default()
    });
    // The first lookup: immediate, from procfs (no tool run on this thread).
    let file = s.share.join("doc-1.txt");
    let t0 = Instant::now();
    let a = at.lookup(c0, Some(&file)).unwrap();
    let first = t0.elapsed();
    println!("first lookup (procfs only): {first:?} -> {a:?}");
    // No tool ran on this thread: Samba's word is not in yet (timing alone is no proof on a
    // loaded 2-core CI machine; ~3-5 ms idle, the two /proc/net/tcp reads dominate).
    assert!(first < Duration::from_millis(500), "{first:?}");
    assert_eq!(a.client.ip, ip0.to_string());
    let uid1 = nix::unistd::User::from_name("ward-smb1")
        .unwrap()
        .unwrap()
        .uid
        .as_raw();
    assert_eq!(a.uid, Some(uid1), "the child runs as the client's user");
    assert!(
        a.client.user.is_empty(),
        "no NSS lookup on the hot path: {a:?}"
    );
    assert_eq!(a.user_source, Source::Unknown);
    // Samba's word, off the hot path.
    let t0 = Instant::now();
    let a = at.wait_complete(c0, None, Duration::from_secs(10)).unwrap();
    println!("complete after {:?}: {a:?}", t0.elapsed());
    assert!(a.complete(), "{a:?} {:?}", at.last_error());
    assert_eq!(a.client.user, "ward-smb1");
    assert_eq!(a.user_source, Source::Samba);
    assert_eq!(a.client.share, "data");
    assert_eq!(a.share_source, Source::Samba);
    // The share also from the file's path alone (map from testparm).
    let a = at.lookup(c0, Some(&file)).unwrap();
    assert_eq!(a.client.share, "data");
    // Prefetched at fork time (as the agent can do from the proc connector): the first
    // lookup on the event path is then a cache hit.
    at.prefetch(proc_id(c1));
    std::thread::sleep(Duration::from_millis(1000));
    let t0 = Instant::now();
    let b = at.lookup_id(proc_id(c1), Some(&file)).unwrap();
    let hit = t0.elapsed();
    println!("first lookup after prefetch: {hit:?} -> {b:?}");
    assert_eq!(b.client.ip, ip1.to_string());
    assert!(hit < Duration::from_millis(100), "{hit:?}");
    // The second client is someone else.
    let b = at
        .wait_complete(c1, Some(&file), Duration::from_secs(10))
        .unwrap();
    assert_eq!(b.client.ip, ip1.to_string());
    assert_eq!(b.client.user, "ward-smb2");
    assert_eq!(at.pids_of(ip0), vec![c0]);
    // Cached lookups are cheap.
    let t0 = Instant::now();
    for _ in 0..1000 {
        at.lookup(c0, None).unwrap();
    }
    println!("cached lookup(pid): {:?} each", t0.elapsed() / 1000);
    let id = proc_id(c0);
    let t0 = Instant::now();
    for _ in 0..1000 {
        assert_eq!(at.lookup_id(id, Some(&file)).unwrap().client.share, "data");
    }
    let each = t0.elapsed() / 1000;
    println!("cached lookup_id(pid, start, path): {each:?} each");
    assert!(each < Duration::from_millis(1), "{each:?}");
    for h in [h0, h1] {
        let out = h.wait(Duration::from_secs(20)).unwrap();
        assert_eq!(out.summary().unwrap()["failed"], 0, "{:?}", out.lines);
    }
}

#[test]
fn block_cuts_one_client_off_and_unblock_and_expiry_let_it_back() {
    if skip() {
        return;
    }
    let s = setup(2);
    let (ip0, ip1) = (ip_of(&s.lab, 0), ip_of(&s.lab, 1));
    let table = table_name("block");
    // A table left by a killed ward (simulated by leaking a Blocker) is replaced.
    let stale = Blocker::new(BlockerConfig {
        table: table.clone(),
        ..BlockerConfig::default()
    })
    .unwrap();
    stale.block(ip1, None).unwrap();
    std::mem::forget(stale);
    let mut b = Blocker::new(BlockerConfig {
        table: table.clone(),
        ..BlockerConfig::default()
    })
    .unwrap();
    assert!(b.list().unwrap().is_empty(), "stale table replaced");

    // Client 1 works throughout; client 0 holds a session when the block lands.
    let other = honest(&s.lab, 1, 9.0);
    let victim = honest(&s.lab, 0, 4.0);
    std::thread::sleep(Duration::from_millis(500));
    let t0 = Instant::now();
    b.block(ip0, None).unwrap();
    let block_latency = t0.elapsed();
    b.block(ip0, None).unwrap(); // idempotent
    println!("nft block: {block_latency:?}");
    let list = b.list().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].ip, ip0);
    assert_eq!(list[0].remaining, None);

    // The established session is cut too: its next operation hangs and fails.
    let v = victim.wait(Duration::from_secs(30)).unwrap();
    let failed = v
        .summary()
        .map(|s| s["failed"].as_u64().unwrap_or(0))
        .unwrap_or(1);
    assert!(
        failed >= 1,
        "established session kept working: {:?}",
        v.lines
    );
    // A new connection fails within the probe's bound.
    let (ok, ms) = probe(&s.lab, 0);
    println!("blocked probe: ok={ok} after {ms:.0} ms");
    assert!(!ok);
    assert!(ms < 5000.0, "{ms}");

    // IPv6, and IPv4-mapped IPv6 stored as the IPv4 address.
    // (Set elements only: no traffic goes to these documentation addresses.)
    let v6: IpAddr = "2001:db8::5".parse().unwrap();
    b.block(v6, Some(Duration::from_secs(60))).unwrap();
    let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
    b.block(mapped, None).unwrap();
    let l = b.list().unwrap();
    assert!(
        l.iter().any(|x| x.ip == v6 && x.remaining.is_some()),
        "{l:?}"
    );
    let plain: IpAddr = "192.0.2.7".parse().unwrap();
    assert!(l.iter().any(|x| x.ip == plain), "{l:?}");
    b.unblock(v6).unwrap();
    b.unblock(mapped).unwrap();
    assert_eq!(b.list().unwrap().len(), 1);

    // Another process (`ward unblock`) attaches to the running table; its drop keeps it.
    {
        let other_proc = Blocker::attach(BlockerConfig {
            table: table.clone(),
            ..BlockerConfig::default()
        })
        .unwrap();
        assert!(other_proc.list().unwrap().iter().any(|x| x.ip == ip0));
        other_proc.unblock(ip0).unwrap();
    }
    assert!(table_exists(&table), "an attached blocker leaves the table");
    assert!(Blocker::attach(BlockerConfig {
        table: "ward_no_such_table".into(),
        ..BlockerConfig::default()
    })
    .is_err());
    b.unblock(ip0).unwrap(); // idempotent
    assert!(b.list().unwrap().is_empty());
    let (ok, _) = probe(&s.lab, 0);
    assert!(ok, "unblocked client gets back in");

    // Expiry.
    b.block(ip0, Some(Duration::from_secs(2))).unwrap();
    let l = b.list().unwrap();
    assert!(l[0].remaining.unwrap() <= Duration::from_secs(2), "{l:?}");
    let (ok, _) = probe(&s.lab, 0);
    assert!(!ok, "blocked until expiry");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(b.list().unwrap().is_empty(), "expired");
    let (ok, _) = probe(&s.lab, 0);
    assert!(ok, "back in after expiry");

    let out = other.wait(Duration::from_secs(30)).unwrap();
    let sum = out.summary().unwrap();
    assert_eq!(sum["failed"], 0, "the other client failed: {:?}", out.lines);
    assert!(sum["ops"].as_u64().unwrap() > 40, "{sum}");

    b.teardown().unwrap();
    assert!(!table_exists(&table), "table removed");
    b.teardown().unwrap();
    assert!(b.block(ip0, None).is_err(), "a torn-down blocker refuses");
    // Drop also removes it.
    {
        let _b2 = Blocker::new(BlockerConfig {
            table: table.clone(),
            ..BlockerConfig::default()
        })
        .unwrap();
        assert!(table_exists(&table));
    }
    assert!(!table_exists(&table));
}

#[test]
fn end_client_ends_only_that_client_even_when_frozen() {
    if skip() {
        return;
    }
    let s = setup(2);
    let (ip0, ip1) = (ip_of(&s.lab, 0), ip_of(&s.lab, 1));
    let other = honest(&s.lab, 1, 8.0);
    let victim = honest(&s.lab, 0, 8.0);
    let (c0, c1) = (child_for(&s.lab, ip0), child_for(&s.lab, ip1));
    let tools = SambaTools::with_config(s.lab.conf_path());

    // A pid that does not serve ip0 is refused, never signalled.
    let r = end_client(&tools, ip0, &[proc_id(c1)], Duration::from_secs(3)).unwrap();
    assert_eq!(r.refused, vec![c1]);
    assert!(alive(c1));
    // (kill-client-ip ip0 went out with it: client 0 was ended too.) Let it reconnect.
    let t0 = Instant::now();
    let c0 = loop {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(p) = s
            .lab
            .smbd_children()
            .into_iter()
            .find(|p| tcp_peer(*p, &[445]) == Some(ip0) && *p != c0)
        {
            // A reconnect attempt's child can be short-lived (it exited before the test
            // stopped it, once, under load): take one that is still serving a moment later.
            std::thread::sleep(Duration::from_millis(200));
            if alive(p) && tcp_peer(p, &[445]) == Some(ip0) {
                break p;
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(8),
            "client 0 did not reconnect"
        );
    };

    // Freeze client 0's child (what ward does first), then end the session.
    kill(Pid::from_raw(c0 as i32), Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let r = end_client(&tools, ip0, &[proc_id(c0)], Duration::from_secs(4)).unwrap();
    println!("end_client (frozen child): {r:?}");
    assert_eq!(r.method, EndMethod::SmbControl, "{r:?}");
    assert_eq!(r.ended, vec![c0]);
    assert!(r.still_running.is_empty());
    assert!(!alive(c0));
    assert!(alive(c1), "the other client's smbd child lives");
    assert!(alive(s.lab.smbd_pid().unwrap()), "the master lives");

    let out = other.wait(Duration::from_secs(30)).unwrap();
    assert_eq!(out.summary().unwrap()["failed"], 0, "{:?}", out.lines);
    drop(victim);
}

#[test]
fn end_client_falls_back_to_sigterm_without_smbcontrol() {
    if skip() {
        return;
    }
    let s = setup(2);
    let ip0 = ip_of(&s.lab, 0);
    let other = honest(&s.lab, 1, 5.0);
    let victim = honest(&s.lab, 0, 6.0);
    let c0 = child_for(&s.lab, ip0);
    let c1 = child_for(&s.lab, ip_of(&s.lab, 1));
    let tools = SambaTools {
        smbcontrol: "/nonexistent/smbcontrol".into(),
        ..SambaTools::with_config(s.lab.conf_path())
    };
    kill(Pid::from_raw(c0 as i32), Signal::SIGSTOP).unwrap();
    let r = end_client(&tools, ip0, &[proc_id(c0)], Duration::from_secs(4)).unwrap();
    println!("end_client (SIGTERM): {r:?}");
    assert_eq!(r.method, EndMethod::Sigterm);
    assert!(r.elapsed < Duration::from_secs(1), "{r:?}");
    assert!(r
        .smbcontrol_error
        .unwrap()
        .contains("/nonexistent/smbcontrol"));
    assert_eq!(r.ended, vec![c0]);
    // SIGTERM of a per-client child ends only it (the master's SIGTERM handler signals its
    // whole process group; a child's does not).
    assert!(alive(s.lab.smbd_pid().unwrap()));
    assert!(alive(c1));
    let out = other.wait(Duration::from_secs(30)).unwrap();
    assert_eq!(out.summary().unwrap()["failed"], 0, "{:?}", out.lines);
    drop(victim);
}

/// ward's SMB response without the engine: when the attacker's first damaging write is seen,
/// cut_off (freeze, block, end session). The attacker stays out although it keeps trying to
/// reconnect with its saved credentials; the honest client never fails; unblock lets the
/// address back in.
#[test]
fn cut_off_stops_an_encrypting_client_and_keeps_it_out() {
    if skip() {
        return;
    }
    let fs = ScratchTmpfs::new(32).unwrap();
    let share = fs.path().join("data");
    std::fs::create_dir(&share).unwrap();
    for i in 0..60 {
        std::fs::write(
            share.join(format!("letter-{i:02}.txt")),
            format!("Dear Dr Jones,\nre patient {i}.\n").repeat(40),
        )
        .unwrap();
    }
    let lab = Lab::start(LabOptions::new(vec![ShareSpec::new("data", &share)], 2)).unwrap();
    let ip0 = ip_of(&lab, 0);
    let mut blocker = Blocker::new(BlockerConfig {
        table: table_name("cutoff"),
        ..BlockerConfig::default()
    })
    .unwrap();
    let tools = SambaTools::with_config(lab.conf_path());
    let other = honest(&lab, 1, 10.0);
    let attacker = lab
        .client(0)
        .spawn(
            "attacker.py",
            &[
                "--mode",
                "inplace",
                "--delay",
                "0.05",
                "--reconnect-secs",
                "4",
                "--connect-timeout",
                "1",
                "--request-timeout",
                "3",
                "--deadline-secs",
                "40",
            ],
        )
        .unwrap();
    assert!(
        attacker.wait_for(Duration::from_secs(20), |v| v["type"] == "damaged"),
        "attacker never damaged a file: {:?}",
        attacker.lines()
    );
    let seen = std::time::SystemTime::now();
    let child = lab.wait_smbd_child_of(0, Duration::from_secs(2)).unwrap();
    let c = cut_off(
        &blocker,
        &tools,
        ip0,
        &[proc_id(child)],
        None,
        Duration::from_secs(4),
    )
    .unwrap();
    let done = std::time::SystemTime::now();
    println!("cut_off: {c:?}");
    assert_eq!(c.frozen, vec![child]);
    assert_eq!(c.end.ended, vec![child]);
    let out = attacker.wait(Duration::from_secs(60)).unwrap();
    let s = out
        .summary()
        .unwrap_or_else(|| panic!("{}", out.stderr))
        .clone();
    println!("attacker: {s}");
    let first_ns = s["first_damage_ns"].as_u64().unwrap();
    let first = std::time::UNIX_EPOCH + Duration::from_nanos(first_ns);
    println!(
        "first damaging write -> seen by the test {:?} -> cut off {:?}; files damaged {}",
        seen.duration_since(first).unwrap_or_default(),
        done.duration_since(first).unwrap_or_default(),
        s["damaged"]
    );
    assert_eq!(s["cut_off"], true, "{:?}", out.lines);
    assert_eq!(
        s["reconnected"], false,
        "the block must hold: {:?}",
        out.lines
    );
    assert!(s["reconnect_attempts"].as_u64().unwrap() >= 1);
    assert!(s["damaged"].as_u64().unwrap() <= 5, "{s}");
    assert!(s["left_undamaged"].as_u64().unwrap() >= 50, "{s}");
    let h = other.wait(Duration::from_secs(30)).unwrap();
    assert_eq!(h.summary().unwrap()["failed"], 0, "{:?}", h.lines);
    // Lifted: back in.
    blocker.unblock(ip0).unwrap();
    assert!(probe(&lab, 0).0);
    blocker.teardown().unwrap();
}

/// The lab cleans up after a panicking test too.
#[test]
fn lab_is_removed_when_a_test_panics() {
    if skip() {
        return;
    }
    let names = std::sync::Mutex::new(Vec::new());
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let s = setup(1);
        names
            .lock()
            .unwrap()
            .extend(s.lab.clients().iter().map(|c| c.netns.clone()));
        panic!("deliberate");
    }));
    assert!(r.is_err());
    let ns = String::from_utf8(
        Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let names = names.into_inner().unwrap();
    assert!(!names.is_empty());
    for n in names {
        assert!(!ns.contains(&n), "{n} left after a panic");
    }
}

/// `exposures` reads the real testparm output: a share without `veto files` for the vault is
/// reported with the fix; with it, clients can neither list nor open the vault.
#[test]
fn vault_is_hidden_only_by_veto_files() {
    if skip() {
        return;
    }
    let fs = ScratchTmpfs::new(16).unwrap();
    let (hidden, open) = (fs.path().join("hidden"), fs.path().join("open"));
    for d in [&hidden, &open] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("rota.csv"), "a,b\n").unwrap();
    }
    let mut vetoed = ShareSpec::new("hidden", &hidden);
    vetoed.extra.push("veto files = /.ward-vault/".into());
    let lab = Lab::start(LabOptions::new(
        vec![vetoed, ShareSpec::new("open", &open)],
        1,
    ))
    .unwrap();
    let vaults: Vec<std::path::PathBuf> = [&hidden, &open]
        .iter()
        .map(|d| {
            let v = d.join(".ward-vault");
            std::fs::create_dir(&v).unwrap();
            std::fs::write(v.join("copy-1"), "vault copy").unwrap();
            v
        })
        .collect();
    let tools = SambaTools::with_config(lab.conf_path());
    let ex = ward_smb::exposures(&tools.share_configs().unwrap(), &vaults);
    assert_eq!(ex.len(), 1, "{ex:?}");
    assert_eq!(ex[0].share, "open");
    assert_eq!(ex[0].fix, "veto files = /.ward-vault/");

    let look = |share: &str| {
        let out = lab
            .client(0)
            .on_share(share)
            .run(
                "probe.py",
                &["--open", ".ward-vault/copy-1"],
                Duration::from_secs(30),
            )
            .unwrap();
        out.summary().unwrap().clone()
    };
    let h = look("hidden");
    assert_eq!(h["ok"], true, "{h}");
    assert_eq!(h["names"], serde_json::json!(["rota.csv"]), "{h}");
    assert_eq!(h["opened"], false, "{h}");
    let o = look("open");
    assert!(
        o["names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == ".ward-vault"),
        "without veto the vault is listed: {o}"
    );
}
