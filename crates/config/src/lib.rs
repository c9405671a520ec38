//! ward-config: ward's one typed configuration, `/etc/ward/ward.toml`.
//!
//! This crate owns the schema of the configuration file (every key, its type, its
//! default and its meaning: [`Config`]), reading it ([`Config::load`] for the agent,
//! [`check`] for `ward check-config`) and explaining what is wrong with it: every error
//! it can find, each with its line, column, key and what to do ([`ConfigErrors`], one
//! `FILE:LINE:COL: key: reason` line per error). Unknown keys are errors. A file (or its
//! directory) that a non-root user could change is refused, with the `chmod`/`chown` to
//! run: whoever edits ward's config can switch protection off.
//!
//! It must never: act on the configuration (no sensor, vault, nftables or network work
//! here: components derive their own settings from [`Config`]); silently ignore or
//! "fix" a setting; panic on any input; read anything but the one file it is given.
//!
//! # Canonical spelling
//! Top level: `paths`, `mode`, `exclude`, `damage_threshold`, `decoys`, `kill`,
//! `boundary_programs`, `trusted_programs`, `trust_after_secs`, `busy_poll_us`, then the arrays of
//! tables `[[path]]` and `[[exclude_program]]` and the sections `[vault]`, `[smb]`,
//! `[worm]`, `[outputs]` (`[outputs.file]`, `[outputs.syslog]`, `[outputs.webhook]`),
//! `[console]`. `packaging/ward.toml` (the package's `/etc/ward/ward.toml`; `contrib/ward.toml`
//! links to it) lists every key with its default (tested).
//!
//! The flat keys of ward 0.1 keep their meaning: `damage_threshold`, `decoys`, `kill`,
//! `boundary_programs`, `trusted_programs`, `trust_after_secs` are still the canonical
//! top-level keys; the vault keys `vault = BOOL`, `vault_max_mib`, `vault_max_file_mib`
//! and `vault_retention_hours` are read as `[vault]` `enabled`, `max_mib`,
//! `max_file_mib` and `retention_hours` (the `[vault]` table is canonical because the
//! key `vault` itself cannot be both a boolean and a table). Setting one value in both
//! spellings is an error.
//!
//! ```
//! let c = ward_config::parse(
//!     "paths = [\"/srv/samba\"]\nvault_max_mib = 512\n[[path]]\npath = \"/srv/pacs\"\nmode = \"alert\"\n",
//!     std::path::Path::new("ward.toml"),
//! )
//! .unwrap();
//! assert_eq!(c.vault.max_mib, 512);
//! assert_eq!(c.mode_for("/srv/pacs/x.dcm".as_ref()), ward_config::Mode::Alert);
//! assert_eq!(c.protected_paths().len(), 2);
//!
//! let e = ward_config::parse("damage_threshold = 0\nbogus = 1\n", "ward.toml".as_ref()).unwrap_err();
//! assert_eq!(e.len(), 2);
//! assert!(e.to_string().starts_with("ward.toml:1:20: damage_threshold: 0 is out of range"));
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod excludes;
mod load;
mod schema;
mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use excludes::Excludes;
pub use load::{check, parse, DEFAULT_PATH};
pub use schema::{
    Config, Console, ExcludeProgram, Facility, FileOutput, Format, IpNet, Mode, Outputs, PathRule,
    Smb, Syslog, Transport, Vault, Webhook, Worm, DEFAULT_BOUNDARY_PROGRAMS,
    DEFAULT_TRUSTED_PROGRAMS,
};
