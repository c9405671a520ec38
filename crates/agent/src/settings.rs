//! The agent's settings (`--config FILE`, TOML), and what each component gets from them.
//!
//! ```toml
//! # Damaged pre-existing files in one process lineage that make an incident (default 3).
//! damage_threshold = 3
//! # Place decoy files in each protected directory (default true).
//! decoys = true
//! # Programs whose children are independent lineages (never blamed as a whole).
//! boundary_programs = ["sshd", "cron", "systemd", "smbd", "containerd-shim"]
//! # Kill the lineage after freezing it (default true). false = leave it frozen for forensics.
//! kill = true
//! # Keep the content of files before untrusted processes change them, and restore them
//! # after an incident (default true).
//! vault = true
//! # Vault budget for copies in MiB (0 = 10% of the filesystem) and retention in hours.
//! vault_max_mib = 0
//! vault_retention_hours = 24
//! # Larger files are not copied on filesystems without reflink (ext4); 0 copies none.
//! vault_max_file_mib = 1024
//! # Programs trusted not to need preservation (their writes are still analysed).
//! trusted_programs = ["dpkg", "apt", "apt-get", "rpm", "dnf", "yum", "unattended-upgrade"]
//! # Processes running at least this long before they open a file are trusted too, as long
//! # as their lineage shows no suspicious behaviour. Off (0) by default: a Samba session
//! # process (smbd) serving one client can live for days, and that client is exactly who
//! # must not be trusted. Enable only where no such long-lived per-client server runs.
//! trust_after_secs = 0
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings of `ward protect` (see the module doc for each key).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Damaged pre-existing files in one lineage that make an incident.
    pub damage_threshold: usize,
    /// Place decoy files.
    pub decoys: bool,
    /// Programs whose children are independent lineages.
    pub boundary_programs: Vec<String>,
    /// Kill after freezing (false: leave frozen).
    pub kill: bool,
    /// Keep pre-damage copies and restore them.
    pub vault: bool,
    /// Vault budget in MiB (0: 10% of the filesystem).
    pub vault_max_mib: u64,
    /// Vault retention in hours.
    pub vault_retention_hours: u64,
    /// Largest file copied on filesystems without reflink, in MiB.
    pub vault_max_file_mib: u64,
    /// Programs spared preservation while their lineage shows no evidence.
    pub trusted_programs: Vec<String>,
    /// Processes older than this are trusted (0: off).
    pub trust_after_secs: u64,
    /// Watch outbound SMB connections (worm fan-out).
    pub worm: bool,
    /// Distinct addresses on 445/139 within the window that make an `smb-fanout` incident.
    pub fanout_threshold: usize,
    /// Window of the fan-out rule, in seconds.
    pub fanout_window_secs: u64,
    /// Attribute damage done through Samba to the client, and cut off that client.
    pub smb: bool,
    /// The smb.conf Samba's tools should read (default: the system's).
    pub smb_conf: Option<PathBuf>,
    /// How long a cut-off client stays blocked, in minutes (0: until `ward unblock`).
    pub client_block_minutes: u64,
    /// ward's nftables table (inet family).
    pub nft_table: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            damage_threshold: 3,
            decoys: true,
            boundary_programs: [
                "systemd",
                "init",
                "sshd",
                "cron",
                "crond",
                "atd",
                "smbd",
                "containerd-shim",
                "runc",
                "tmux: server",
                "screen",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            kill: true,
            vault: true,
            vault_max_mib: 0,
            vault_retention_hours: 24,
            vault_max_file_mib: 1024,
            trusted_programs: [
                "dpkg",
                "apt",
                "apt-get",
                "rpm",
                "dnf",
                "yum",
                "unattended-upgrade",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
            trust_after_secs: 0,
            worm: true,
            fanout_threshold: 10,
            fanout_window_secs: 30,
            smb: true,
            smb_conf: None,
            client_block_minutes: 0,
            nft_table: "ward".into(),
        }
    }
}

impl Config {
    /// The engine's settings, with the decoys placed.
    pub fn engine_config(&self, decoys: &[PathBuf]) -> ward_engine::Config {
        ward_engine::Config {
            damage_threshold: self.damage_threshold,
            fanout_threshold: self.fanout_threshold,
            fanout_window_ns: self.fanout_window_secs * 1_000_000_000,
            decoys: decoys
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            ..Default::default()
        }
    }

    /// The vault's limits.
    pub fn vault_limits(&self) -> ward_vault::Limits {
        ward_vault::Limits {
            max_bytes: self.vault_max_mib << 20,
            retention: Duration::from_secs(self.vault_retention_hours * 3600),
            max_file_bytes: self.vault_max_file_mib << 20,
            ..Default::default()
        }
    }

    /// How long client blocks last (`None`: until lifted).
    pub fn block_ttl(&self) -> Option<Duration> {
        (self.client_block_minutes > 0).then(|| Duration::from_secs(self.client_block_minutes * 60))
    }

    /// Samba's tools with the configured smb.conf.
    pub fn samba_tools(&self) -> ward_smb::SambaTools {
        match &self.smb_conf {
            Some(c) => ward_smb::SambaTools::with_config(c),
            None => ward_smb::SambaTools::system(),
        }
    }

    /// Load a config file; a missing `--config` gives the defaults.
    pub fn load(path: Option<&Path>) -> Result<Config, String> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        let cfg: Config = toml::from_str(&text)
            .map_err(|e| format!("config file {} is invalid: {e}", path.display()))?;
        if cfg.fanout_threshold == 0 || cfg.fanout_window_secs == 0 {
            return Err(format!(
                "config file {}: fanout_threshold and fanout_window_secs must be at least 1",
                path.display()
            ));
        }
        if cfg.damage_threshold == 0 {
            return Err(format!(
                "config file {}: damage_threshold must be at least 1",
                path.display()
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example shipped in contrib/ is valid and says exactly the defaults.
    #[test]
    fn shipped_example_is_the_defaults() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/ward.toml");
        let c = Config::load(Some(&p)).unwrap();
        let d = Config::default();
        assert_eq!(format!("{c:?}"), format!("{d:?}"));
    }

    #[test]
    fn defaults_and_errors() {
        assert_eq!(Config::load(None).unwrap().damage_threshold, 3);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.toml");
        std::fs::write(&p, "damage_threshold = 5\ndecoys = false\n").unwrap();
        let c = Config::load(Some(&p)).unwrap();
        assert_eq!((c.damage_threshold, c.decoys, c.kill), (5, false, true));
        std::fs::write(&p, "bogus = 1\n").unwrap();
        assert!(Config::load(Some(&p)).unwrap_err().contains("bogus"));
        std::fs::write(&p, "damage_threshold = 0\n").unwrap();
        assert!(Config::load(Some(&p)).is_err());
        assert!(Config::load(Some(&d.path().join("missing")))
            .unwrap_err()
            .contains("cannot read"));
    }
}
