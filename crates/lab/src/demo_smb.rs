//! `ward demo --smb`: the hospital's own scenario on one machine, shown live.
//!
//! A scratch ext4 share with a realistic corpus is served by a real smbd (its own config,
//! bound to a veth address); `ward protect` guards it; an honest client writes and reads
//! handover notes from one network namespace while an infected "workstation" in another
//! encrypts the share over SMB. ward cuts off that client only (its smbd process frozen,
//! its address blocked, its session ended), restores every file, and the honest client
//! keeps working. Everything (namespaces, smbd, nftables table, filesystem) is removed at
//! the end, also on Ctrl-C.

use crate::driver::Ward;
use std::time::Duration;
use ward_agent::AgentError as ExitError;
use ward_smblab::{Lab, LabOptions, ShareSpec};

fn step(s: &str) {
    println!("==> {s}");
}

/// Run the SMB demo.
pub fn run() -> Result<(), ExitError> {
    if !nix::unistd::geteuid().is_root() {
        return Err(ExitError::usage(
            "ward demo --smb needs root (scratch filesystem, fanotify, network namespaces, \
             nftables): run `sudo ward demo --smb`",
        ));
    }
    if let Some(why) = ward_smblab::unavailable_reason() {
        return Err(ExitError::usage(format!(
            "the Samba demo cannot run here: {why}; run scripts/setup-smb.sh (as root) first"
        )));
    }
    let exe = std::env::current_exe().map_err(|e| ExitError::runtime(e.to_string()))?;
    step("Creating a scratch ext4 filesystem with a hospital-share corpus (removed at the end)");
    let crate::demo::DemoShare {
        fs,
        share,
        state,
        files,
        before,
    } = crate::demo::DemoShare::create()?;
    println!("    {files} files in {}", share.display());

    step("Starting Samba (share \\\\server\\data) and two client namespaces");
    let mut lab = Lab::start(LabOptions::new(vec![ShareSpec::new("data", &share)], 2))
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    let (attacker_ns, honest_ns) = (lab.clients()[0].clone(), lab.clients()[1].clone());
    println!(
        "    smbd on {}; infected workstation {} (user {}); nurse's PC {} (user {})",
        attacker_ns.server_ip,
        attacker_ns.ip,
        lab.users()[0].name,
        honest_ns.ip,
        lab.users()[1].name
    );

    step("Starting ward protect on the share");
    let table = format!("ward_demo{}", std::process::id());
    let cfg = state.parent().expect("parent").join("demo-smb.toml");
    std::fs::create_dir_all(&state).map_err(|e| ExitError::runtime(e.to_string()))?;
    std::fs::write(
        &cfg,
        format!(
            "[smb]\nsmb_conf = {:?}\nnft_table = {:?}\n",
            lab.conf_path().display().to_string(),
            table
        ),
    )
    .map_err(|e| ExitError::runtime(e.to_string()))?;
    let mut ward = Ward::start(
        &exe,
        &state,
        &[share.as_path()],
        &["--config", cfg.to_str().unwrap_or_default()],
        Duration::from_secs(30),
    )
    .map_err(ExitError::runtime)?;

    step("The nurse's PC writes and reads a handover note every 0.1 s");
    let nurse = lab.users()[1].clone();
    let honest = lab
        .client(1)
        .as_user(&nurse)
        .spawn("honest.py", &["--seconds", "10", "--interval", "0.1"])
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    std::thread::sleep(Duration::from_millis(800));

    step("The infected workstation starts encrypting the share over SMB (and keeps trying to reconnect)");
    let attack = lab
        .client(0)
        .run(
            "attacker.py",
            &[
                "--mode",
                "new-then-delete",
                "--note",
                "--reconnect-secs",
                "3",
            ],
            Duration::from_secs(120),
        )
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    let inc = ward.wait_for("incident", Duration::from_secs(10));
    match &inc {
        Some(i) => {
            println!();
            println!("    INCIDENT {}", i["id"].as_str().unwrap_or("?"));
            println!(
                "    client       {} (user {}, share {})",
                i["client"]["ip"].as_str().unwrap_or("?"),
                i["client"]["user"].as_str().unwrap_or("?"),
                i["client"]["share"].as_str().unwrap_or("?")
            );
            println!(
                "    served by    smbd pid {}; action: {}",
                i["pid"],
                i["action"].as_str().unwrap_or("?")
            );
            println!(
                "    damage       {} file(s) before the cut-off, contained {:.1} ms after the first damaging write [{}]",
                i["files_damaged"],
                i["contain_ms"].as_f64().unwrap_or(0.0),
                i["indicators"]
                    .as_array()
                    .map(|v| v
                        .iter()
                        .filter_map(|x| x.as_str())
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            );
        }
        None => println!("    no incident: {}", ward.log()),
    }
    if let Some(s) = attack.summary() {
        println!(
            "    attacker     damaged {} file(s), then cut off; reconnect attempts: {}, got back in: {}",
            s["damaged"], s["reconnect_attempts"], s["reconnected"]
        );
    }
    let restored = match &inc {
        Some(i) => {
            let id = i["id"].clone();
            let mut r = None;
            for _ in 0..12 {
                if let Some(x) = ward.of_type("restored").into_iter().find(|r| r["id"] == id) {
                    r = Some(x.clone());
                    break;
                }
                ward.wait_for("restored", Duration::from_secs(5));
            }
            r
        }
        None => None,
    };
    if let Some(r) = &restored {
        println!(
            "    recovery     {} restored, {} quarantined (ransom notes, encrypted copies), {} lost",
            r["files_restored"], r["files_quarantined"], r["files_lost"]
        );
    }
    let after = crate::manifest_hashes(&share).map_err(|e| ExitError::runtime(e.to_string()))?;
    let differing = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .count();
    println!(
        "    check        {} of {} files byte-identical to before the attack",
        before.len() - differing,
        before.len()
    );
    let h = honest
        .wait(Duration::from_secs(60))
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    if let Some(hs) = h.summary() {
        println!(
            "    nurse's PC   {} operations, {} failed (before, during and after the attack)",
            hs["ops"], hs["failed"]
        );
    }
    println!();
    step("Stopping ward and removing Samba, namespaces and the scratch filesystem");
    let _ = ward.stop(Duration::from_secs(20));
    lab.stop();
    drop(fs);
    println!("done.");
    if inc.is_none() || differing > 0 {
        return Err(ExitError::runtime(
            "the demo did not go as expected (see above)",
        ));
    }
    Ok(())
}
