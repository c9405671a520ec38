//! The read-only reports: `ward incidents` (what was recorded, with restore status and
//! the SMB client blocks in force) and `ward replay` (the engine over a recorded trace).

use crate::trace::Trace;
use crate::AgentError as ExitError;
use std::path::Path;

/// `ward incidents`: list the incidents in `state_dir` (JSON lines with `json`).
pub fn incidents(state_dir: &Path, json: bool) -> Result<(), ExitError> {
    if !state_dir.join("ward.db").exists() {
        if json {
            return Ok(());
        }
        println!(
            "No incidents recorded in {} (no database yet).",
            state_dir.display()
        );
        return Ok(());
    }
    let store = ward_store::Store::open(state_dir).map_err(|e| ExitError::usage(e.to_string()))?;
    let list = store
        .list()
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    let blocks = store
        .blocks(chrono::Utc::now())
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    if json {
        for i in &list {
            println!("{}", serde_json::to_string(i).expect("incident serialises"));
        }
        for b in &blocks {
            let mut v = serde_json::to_value(b).expect("block serialises");
            v["type"] = "block".into();
            println!("{v}");
        }
        return Ok(());
    }
    print_blocks(&blocks);
    if list.is_empty() {
        println!("No incidents recorded in {}.", state_dir.display());
        return Ok(());
    }
    println!(
        "{:<28} {:<20} {:>7} {:>6} {:>9} {:<14} {:<8} PROGRAM / CLIENT",
        "ID", "DETECTED (UTC)", "PID", "FILES", "CONTAIN", "ACTION", "RESTORE"
    );
    for i in &list {
        println!(
            "{:<28} {:<20} {:>7} {:>6} {:>7.1}ms {:<14} {:<8} {}{}",
            i.id,
            i.detected_at.format("%Y-%m-%d %H:%M:%S"),
            i.pid,
            i.files_damaged,
            i.contain_ms,
            i.action.as_str(),
            i.restore.as_str(),
            if i.cmdline.is_empty() {
                i.exe.clone()
            } else {
                i.cmdline.join(" ")
            },
            i.client
                .as_ref()
                .map(|c| format!("  [SMB client {} user {} share {}]", c.ip, c.user, c.share))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn print_blocks(blocks: &[ward_model::Block]) {
    if blocks.is_empty() {
        return;
    }
    println!("SMB client blocks in force (lift with `ward unblock IP`):");
    for b in blocks {
        println!(
            "  {:<40} since {}  {}  (incident {})",
            b.ip,
            b.since.format("%Y-%m-%d %H:%M:%S"),
            match b.until {
                Some(u) => format!("until {}", u.format("%Y-%m-%d %H:%M:%S")),
                None => "until lifted".to_string(),
            },
            b.incident
        );
    }
    println!();
}

/// `ward replay`: run the engine over a recorded trace and print the verdicts.
pub fn replay(file: &Path, json: bool) -> Result<(), ExitError> {
    let trace = Trace::read(file).map_err(|e| ExitError::usage(e.to_string()))?;
    let verdicts = trace.replay();
    let n = trace.events.len();
    if json {
        for v in &verdicts {
            println!("{}", serde_json::to_string(v).expect("verdict serialises"));
        }
        return Ok(());
    }
    println!("{n} events, {} verdict(s)", verdicts.len());
    for v in &verdicts {
        println!(
            "  lineage root pid {} (culprit {}): {} file(s) damaged [{}] at t={:.3} ms",
            v.root.pid,
            v.culprit.pid,
            v.files_damaged.len(),
            v.indicators
                .iter()
                .map(|i| i.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            v.time as f64 / 1e6
        );
    }
    Ok(())
}

/// `ward unblock IP`: lift the block of an SMB client (in ward's nftables table, if ward
/// is running, and in the record of blocks in force, so a restart does not put it back).
pub fn unblock(state_dir: &Path, ip: &str, cfg: &crate::settings::Config) -> Result<(), ExitError> {
    let addr: std::net::IpAddr = ip.parse().map_err(|_| {
        ExitError::usage(format!(
            "{ip} is not an IP address; give the address `ward incidents` lists"
        ))
    })?;
    if !nix::unistd::geteuid().is_root() {
        return Err(ExitError::usage(
            "ward unblock must run as root (it changes nftables rules): run it with sudo",
        ));
    }
    let (recorded, lifted) = lift_block(state_dir, &cfg.smb.nft_table, addr)?;
    match (recorded, lifted) {
        (false, false) => println!("{addr} was not blocked."),
        _ => println!("{addr} is no longer blocked; it can connect to Samba again."),
    }
    Ok(())
}

/// Lift the block of `addr`: forget it in the store (a restart does not put it back) and
/// remove it from ward's nftables table `table` if one is in force (a running agent's).
/// Returns (it was recorded, it was lifted in nftables). Used by `ward unblock` and by the
/// console's lift-block action.
pub fn lift_block(
    state_dir: &Path,
    table: &str,
    addr: std::net::IpAddr,
) -> Result<(bool, bool), ExitError> {
    let store = ward_store::Store::open(state_dir).map_err(|e| ExitError::usage(e.to_string()))?;
    let recorded = store
        .remove_block(&addr.to_string())
        .map_err(|e| ExitError::runtime(e.to_string()))?;
    let lifted = match ward_smb::Blocker::attach(ward_smb::BlockerConfig {
        table: table.to_string(),
        ..Default::default()
    }) {
        Ok(b) => {
            b.unblock(addr).map_err(|e| {
                ExitError::runtime(format!("could not lift the block of {addr}: {e}"))
            })?;
            true
        }
        Err(e) => {
            tracing::debug!("no nftables table of ward's to change: {e}");
            false
        }
    };
    Ok((recorded, lifted))
}
