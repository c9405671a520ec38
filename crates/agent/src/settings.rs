//! The agent's settings: one typed [`Config`] (from `ward-config`: `/etc/ward/ward.toml`
//! or `--config FILE`), and what each component gets from it ([`Settings`]).

use std::path::PathBuf;
use std::time::Duration;
pub use ward_config::{Config, Mode};

/// Each component's settings, derived from the one config.
pub trait Settings {
    /// The engine's settings, with the decoys placed.
    fn engine_config(&self, decoys: &[PathBuf]) -> ward_engine::Config;
    /// The vault's limits.
    fn vault_limits(&self) -> ward_vault::Limits;
    /// How long client blocks last (`None`: until lifted).
    fn block_ttl(&self) -> Option<Duration>;
    /// Samba's tools with the configured smb.conf.
    fn samba_tools(&self) -> ward_smb::SambaTools;
}

impl Settings for Config {
    fn engine_config(&self, decoys: &[PathBuf]) -> ward_engine::Config {
        ward_engine::Config {
            damage_threshold: self.damage_threshold,
            fanout_threshold: self.worm.fanout_threshold as usize,
            fanout_window_ns: self.worm.fanout_window_secs.saturating_mul(1_000_000_000),
            decoys: decoys
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect(),
            ..Default::default()
        }
    }

    fn vault_limits(&self) -> ward_vault::Limits {
        ward_vault::Limits {
            max_bytes: self.vault.max_bytes(),
            retention: self.vault.retention(),
            max_file_bytes: self.vault.max_file_bytes(),
            reserve_bytes: self.vault.reserve_bytes(),
            ..Default::default()
        }
    }

    fn block_ttl(&self) -> Option<Duration> {
        self.smb.block_duration()
    }

    fn samba_tools(&self) -> ward_smb::SambaTools {
        if self.smb.smb_conf.as_os_str().is_empty() || !self.smb.smb_conf.exists() {
            ward_smb::SambaTools::system()
        } else {
            ward_smb::SambaTools::with_config(&self.smb.smb_conf)
        }
    }
}

/// Load the config (`None`: /etc/ward/ward.toml, or the defaults when it does not exist),
/// every error with its line and what to do.
pub fn load(path: Option<&std::path::Path>) -> Result<Config, String> {
    Config::load(path).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_get_the_configured_values() {
        let mut c = Config {
            damage_threshold: 5,
            ..Default::default()
        };
        c.worm.fanout_threshold = 7;
        c.smb.client_block_minutes = 30;
        let e = c.engine_config(&[PathBuf::from("/srv/a/!ward-decoy.docx")]);
        assert_eq!(e.damage_threshold, 5);
        assert_eq!(e.fanout_threshold, 7);
        assert_eq!(e.fanout_window_ns, 30_000_000_000);
        assert_eq!(e.decoys, vec!["/srv/a/!ward-decoy.docx".to_string()]);
        assert_eq!(c.block_ttl(), Some(Duration::from_secs(1800)));
        assert_eq!(c.vault_limits().max_file_bytes, c.vault.max_file_mib << 20);
        assert_eq!(c.vault_limits().reserve_bytes, 64 << 20);
    }
}
