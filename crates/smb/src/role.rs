//! Which smbd process is which: the master (accepts connections), a per-client child (serves
//! one connection), or a helper (smbd-notifyd, cleanupd, smbd-scavenger, ...).
//!
//! Observed on Samba 4.17 (`smbd --foreground`): every smbd process has the master's command
//! line and `/proc/PID/exe` → `/usr/sbin/smbd`; the helpers rename themselves (`comm`
//! `smbd-notifyd`, `cleanupd`); a per-client child keeps `comm` `smbd`, its parent is the
//! master, and after session setup it runs with the client user's uid (real and effective).

use std::path::Path;

/// The role of an smbd process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmbdRole {
    /// The listening parent: a boundary (its children are separate lineages).
    Master,
    /// A child serving one client connection: the lineage root for that client.
    Client,
    /// A housekeeping child (smbd-notifyd, cleanupd, smbd-scavenger, smbd-echo, ...).
    Helper,
}

/// Is this an smbd executable path (also after a package upgrade replaced the binary)?
pub(crate) fn is_smbd_exe(exe: &Path) -> bool {
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "smbd" || name == "smbd (deleted)"
}

fn exe_is_smbd(pid: u32) -> Option<bool> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| is_smbd_exe(&p))
}

/// Classify from the facts: `comm` of the process and whether its parent runs smbd.
pub fn classify(comm: &str, parent_is_smbd: bool) -> SmbdRole {
    // Newer Samba may set a title like "smbd[10.0.0.5]" on per-client children.
    let client_like = comm == "smbd" || comm.starts_with("smbd[") || comm.starts_with("smbd:");
    if !client_like {
        SmbdRole::Helper
    } else if parent_is_smbd {
        SmbdRole::Client
    } else {
        SmbdRole::Master
    }
}

/// The role of `pid` if it is an smbd process, from `/proc` (exe, comm, parent's exe).
/// `None` when it is not smbd or is gone.
pub fn smbd_role(pid: u32) -> Option<SmbdRole> {
    if !exe_is_smbd(pid)? {
        return None;
    }
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let ppid = ward_sys::procfs::stat(pid)?.ppid;
    let parent_is_smbd = ppid > 1 && exe_is_smbd(ppid).unwrap_or(false);
    Some(classify(comm.trim_end(), parent_is_smbd))
}

/// Every live per-client smbd child on this machine.
pub fn client_pids() -> Vec<u32> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut v: Vec<u32> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|p| smbd_role(*p) == Some(SmbdRole::Client))
        .collect();
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_observed_4_17_processes() {
        assert_eq!(classify("smbd", false), SmbdRole::Master);
        assert_eq!(classify("smbd", true), SmbdRole::Client);
        assert_eq!(classify("smbd[10.1.2.3]", true), SmbdRole::Client);
        assert_eq!(classify("smbd-notifyd", true), SmbdRole::Helper);
        assert_eq!(classify("cleanupd", true), SmbdRole::Helper);
        assert_eq!(classify("smbd-scavenger", true), SmbdRole::Helper);
    }

    #[test]
    fn exe_names() {
        assert!(is_smbd_exe(Path::new("/usr/sbin/smbd")));
        assert!(is_smbd_exe(Path::new("/usr/sbin/smbd (deleted)")));
        assert!(!is_smbd_exe(Path::new("/usr/sbin/nmbd")));
        assert!(!is_smbd_exe(Path::new("/tmp/smbd-fake")));
    }

    #[test]
    fn this_process_is_not_smbd() {
        assert_eq!(smbd_role(std::process::id()), None);
        assert_eq!(smbd_role(u32::MAX), None);
    }
}
