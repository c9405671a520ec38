//! The typed configuration: every key of `ward.toml`, its default and its meaning.
//!
//! Field names are the canonical TOML spelling. Every struct denies unknown keys and
//! fills missing keys with the defaults written here (which `packaging/ward.toml` repeats,
//! tested).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// How ward responds to an attack on a protected path.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Detect, preserve, freeze and kill the lineage (or block the SMB client), restore.
    #[default]
    Contain,
    /// Detect, preserve and report, but never freeze or kill: for trial periods and
    /// change-controlled servers. Damaged files stay restorable with `ward restore`.
    Alert,
}

impl Mode {
    /// The TOML spelling (`"contain"`, `"alert"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Contain => "contain",
            Mode::Alert => "alert",
        }
    }
}

/// The whole configuration (`/etc/ward/ward.toml`).
///
/// Top-level keys: `paths`, `mode`, `exclude`, `damage_threshold`, `decoys`, `kill`,
/// `boundary_programs`, `trusted_programs`, `trust_after_secs`, `busy_poll_us`; arrays of tables
/// `[[path]]`, `[[exclude_program]]`; sections `[vault]`, `[smb]`, `[worm]`,
/// `[outputs]` (with `[outputs.file]`, `[outputs.syslog]`, `[outputs.webhook]`),
/// `[console]`.
///
/// The older flat vault keys are still accepted with their old meaning and mapped onto
/// `[vault]` when the file is read: `vault = BOOL` (= `vault.enabled`),
/// `vault_max_mib`, `vault_max_file_mib`, `vault_retention_hours`. Giving one setting in
/// both spellings is an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Protected paths (absolute), used when `ward protect` is given no PATH. Protected
    /// with [`Config::mode`] unless a `[[path]]` entry says otherwise.
    pub paths: Vec<PathBuf>,
    /// Response mode for protected paths without their own `[[path]]` entry.
    pub mode: Mode,
    /// Per-path response mode; each entry's path is protected too. For a file, the entry
    /// with the longest path that contains it decides.
    pub path: Vec<PathRule>,
    /// Path globs whose file activity is neither analysed nor preserved. A pattern with a
    /// `/` is absolute and matches the whole path (`/srv/share/tmp/**`); one without
    /// matches the file name anywhere (`*.tmp`, `~$*`). See [`Config::excludes`].
    pub exclude: Vec<String>,
    /// Programs whose file activity is neither analysed nor preserved, by executable path
    /// and optionally the SHA-256 of its content (so a replaced binary is not excluded).
    pub exclude_program: Vec<ExcludeProgram>,
    /// Damaged pre-existing files in one process lineage that make an incident (1..=1000).
    pub damage_threshold: usize,
    /// Place a decoy document at the top of each protected directory.
    pub decoys: bool,
    /// Kill the lineage after freezing it; false leaves it stopped for forensics.
    pub kill: bool,
    /// Executable base names whose children are independent lineages (daemons).
    pub boundary_programs: Vec<String>,
    /// Executable base names whose writes are analysed but not preserved in the vault.
    pub trusted_programs: Vec<String>,
    /// Trust processes that ran this long (seconds) with a clean lineage; 0 = off.
    pub trust_after_secs: u64,
    /// After handling events, keep polling for the next one this long (microseconds,
    /// 0..=1000) before sleeping; 0 = always sleep. A process waiting in an open is
    /// answered without the wake-up of a sleeping ward (tens of microseconds per open on
    /// virtual machines); the cost is up to this much CPU after each burst of file
    /// activity, none while the server is idle.
    pub busy_poll_us: u64,
    /// The vault of copies taken before damage.
    pub vault: Vault,
    /// Cutting off Samba clients.
    pub smb: Smb,
    /// Worm-like spread: one process connecting to SMB on many hosts.
    pub worm: Worm,
    /// Where events go.
    pub outputs: Outputs,
    /// The management console.
    pub console: Console,
}

/// A `[[path]]` entry: a protected path and how ward responds to attacks under it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathRule {
    /// Absolute path of a directory or file.
    pub path: PathBuf,
    /// Response under this path (default `contain`).
    #[serde(default)]
    pub mode: Mode,
}

/// An `[[exclude_program]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExcludeProgram {
    /// Absolute path of the executable (as in `/proc/PID/exe`).
    pub path: PathBuf,
    /// Lower-case hex SHA-256 of the executable's content; when given, a program at that
    /// path with other content is not excluded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// `[vault]`: copies of files taken before untrusted processes change them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Vault {
    /// Keep copies and restore them after an incident (old spelling: `vault = BOOL`).
    pub enabled: bool,
    /// Budget for copies in MiB; 0 = 10 % of the filesystem (old: `vault_max_mib`).
    pub max_mib: u64,
    /// Larger files are not copied on filesystems without reflink (old:
    /// `vault_max_file_mib`); 0 copies none.
    pub max_file_mib: u64,
    /// Copies of processes that ended without an incident are dropped after this long
    /// (old: `vault_retention_hours`), 1..=8760.
    pub retention_hours: u64,
    /// Space (MiB) the vault sets aside on each protected filesystem (a preallocated
    /// `.ward-vault/reserve`, at most 5 % of the filesystem) and gives up when a copy or a
    /// restore finds the filesystem full, e.g. filled by an attacker before encrypting;
    /// grown back while as much stays free for everyone else. 0 = no reserve.
    pub reserve_mib: u64,
}

/// `[smb]`: attribute damage done through Samba to the client and cut that client off.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Smb {
    /// Block the client (nftables) and end its sessions instead of stopping smbd.
    pub enabled: bool,
    /// Samba's configuration (share paths, for attribution).
    pub smb_conf: PathBuf,
    /// How long a blocked client stays blocked; 0 = until `ward unblock IP`.
    pub client_block_minutes: u64,
    /// The nftables table (family inet) ward owns for its block rules.
    pub nft_table: String,
}

/// `[worm]`: a local process that connects to TCP 445/139 on many hosts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Worm {
    /// Watch outbound SMB connections.
    pub enabled: bool,
    /// Distinct destination addresses that make an incident (2..=10000).
    pub fanout_threshold: u32,
    /// ... within this many seconds (1..=3600).
    pub fanout_window_secs: u64,
    /// On a worm incident, also cut this server's outbound SMB traffic except to
    /// `management_addresses` (which must then name at least one address).
    pub isolate_on_worm: bool,
    /// Addresses or CIDR networks (`10.0.0.5`, `10.1.0.0/16`, `fd00::/8`) never counted
    /// as fan-out and never isolated from.
    pub management_addresses: Vec<String>,
}

/// Output document format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// ward's own JSON events (`ready`, `incident`, `restored`, `stopped`).
    #[default]
    Native,
    /// One Elastic Common Schema document per event.
    Ecs,
}

/// `[outputs]`: where events go besides stdout.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outputs {
    /// Document format of every output (like `ward protect --format`).
    pub format: Format,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (like `--metrics-addr`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_addr: Option<SocketAddr>,
    /// Unix socket `ward status` reads the running agent's state from; default
    /// `<state dir>/status.sock` ([`Outputs::status_socket_in`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_socket: Option<PathBuf>,
    /// `[outputs.file]`: JSON lines to a file; absent = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileOutput>,
    /// `[outputs.syslog]`: RFC 5424 syslog; absent = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syslog: Option<Syslog>,
    /// `[outputs.webhook]`: HTTP POST of each event, spooled on disk; absent = off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<Webhook>,
}

/// `[outputs.file]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileOutput {
    /// Absolute path of the file events are appended to.
    pub path: PathBuf,
    /// Rotate when the file reaches this size (MiB, 1..=102400).
    pub rotate_mib: u64,
    /// Rotated files kept (`events.jsonl.1` ...), 1..=1000.
    pub keep: u32,
}

/// Syslog transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// A local unix datagram socket (`/dev/log`).
    #[default]
    Unix,
    /// UDP datagrams to `host:port`.
    Udp,
    /// TCP with octet-counting framing (RFC 6587) to `host:port`.
    Tcp,
}

/// Syslog facility (shared with the syslog output).
pub use ward_model::Facility;

/// `[outputs.syslog]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Syslog {
    /// A socket path for `unix`, `host:port` for `udp` and `tcp`.
    pub address: String,
    /// `unix`, `udp` or `tcp`.
    pub transport: Transport,
    /// Facility of every message.
    pub facility: Facility,
}

/// `[outputs.webhook]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// `http://` or `https://` URL each event is POSTed to (required).
    pub url: String,
    /// Events not yet delivered are kept here, in order, across restarts; default
    /// `<state dir>/spool/webhook`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool_dir: Option<PathBuf>,
    /// Spool budget (MiB, 1..=1048576); when full the oldest undelivered events are
    /// dropped, and reported.
    #[serde(default = "Webhook::default_max_spool_mib")]
    pub max_spool_mib: u64,
    /// Extra request headers, e.g. `{ Authorization = "Bearer ..." }`. Credentials here
    /// require a file other users cannot read.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whole-request timeout in seconds (1..=300).
    #[serde(default = "Webhook::default_timeout_secs")]
    pub timeout_secs: u64,
}

impl Webhook {
    fn default_max_spool_mib() -> u64 {
        64
    }
    fn default_timeout_secs() -> u64 {
        5
    }
    /// The spool directory, given the agent's state directory.
    pub fn spool_dir_in(&self, state_dir: &Path) -> PathBuf {
        self.spool_dir
            .clone()
            .unwrap_or_else(|| state_dir.join("spool").join("webhook"))
    }
}

/// `[console]`: report to a ward console (like `--console URL --enroll-token TOKEN`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Console {
    /// `https://host:port` of the console; absent = no console.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// One-time token from `ward console enroll-token`; not needed once enrolled. A
    /// secret: a file that holds one must not be readable by other users.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enroll_token: Option<String>,
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Default `boundary_programs`.
pub const DEFAULT_BOUNDARY_PROGRAMS: &[&str] = &[
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
];

/// Default `trusted_programs`.
pub const DEFAULT_TRUSTED_PROGRAMS: &[&str] = &[
    "dpkg",
    "apt",
    "apt-get",
    "rpm",
    "dnf",
    "yum",
    "unattended-upgrade",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            paths: Vec::new(),
            mode: Mode::Contain,
            path: Vec::new(),
            exclude: Vec::new(),
            exclude_program: Vec::new(),
            damage_threshold: 3,
            decoys: true,
            kill: true,
            boundary_programs: strings(DEFAULT_BOUNDARY_PROGRAMS),
            trusted_programs: strings(DEFAULT_TRUSTED_PROGRAMS),
            trust_after_secs: 0,
            busy_poll_us: 50,
            vault: Vault::default(),
            smb: Smb::default(),
            worm: Worm::default(),
            outputs: Outputs::default(),
            console: Console::default(),
        }
    }
}

impl Default for Vault {
    fn default() -> Self {
        Vault {
            enabled: true,
            max_mib: 0,
            max_file_mib: 1024,
            retention_hours: 24,
            reserve_mib: 64,
        }
    }
}

impl Default for Smb {
    fn default() -> Self {
        Smb {
            enabled: true,
            smb_conf: PathBuf::from("/etc/samba/smb.conf"),
            client_block_minutes: 0,
            nft_table: "ward".into(),
        }
    }
}

impl Default for Worm {
    fn default() -> Self {
        Worm {
            enabled: true,
            fanout_threshold: 10,
            fanout_window_secs: 30,
            isolate_on_worm: false,
            management_addresses: Vec::new(),
        }
    }
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            format: Format::Native,
            metrics_addr: None,
            status_socket: None,
            file: None,
            syslog: None,
            webhook: None,
        }
    }
}

impl Default for FileOutput {
    fn default() -> Self {
        FileOutput {
            path: PathBuf::from("/var/log/ward/events.jsonl"),
            rotate_mib: 100,
            keep: 5,
        }
    }
}

impl Default for Syslog {
    fn default() -> Self {
        Syslog {
            address: "/dev/log".into(),
            transport: Transport::Unix,
            facility: Facility::Daemon,
        }
    }
}

const MIB: u64 = 1 << 20;

impl Vault {
    /// `max_mib` in bytes (0 = 10 % of the filesystem, decided by the vault).
    pub fn max_bytes(&self) -> u64 {
        self.max_mib.saturating_mul(MIB)
    }
    /// `max_file_mib` in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_mib.saturating_mul(MIB)
    }
    /// `reserve_mib` in bytes.
    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_mib.saturating_mul(MIB)
    }
    /// `retention_hours` as a duration.
    pub fn retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.retention_hours.saturating_mul(3600))
    }
}

impl Outputs {
    /// The status socket, given the agent's state directory.
    pub fn status_socket_in(&self, state_dir: &Path) -> PathBuf {
        self.status_socket
            .clone()
            .unwrap_or_else(|| state_dir.join("status.sock"))
    }
}

impl Smb {
    /// How long a block lasts; `None` = until `ward unblock`.
    pub fn block_duration(&self) -> Option<std::time::Duration> {
        (self.client_block_minutes > 0)
            .then(|| std::time::Duration::from_secs(self.client_block_minutes.saturating_mul(60)))
    }
}

impl Worm {
    /// The fan-out window as a duration.
    pub fn window(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.fanout_window_secs)
    }
    /// `management_addresses` parsed (entries that do not parse are skipped; a checked
    /// config has none).
    pub fn management_nets(&self) -> Vec<IpNet> {
        self.management_addresses
            .iter()
            .filter_map(|s| IpNet::parse(s).ok())
            .collect()
    }
}

/// An address or CIDR network from `worm.management_addresses`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpNet {
    /// The network address (host bits as written).
    pub addr: IpAddr,
    /// Prefix length (32 or 128 for a single address).
    pub prefix: u8,
}

impl IpNet {
    /// Parse `ADDR` or `ADDR/PREFIX`.
    pub fn parse(s: &str) -> Result<IpNet, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .trim()
            .parse()
            .map_err(|_| format!("`{a}` is not an IPv4 or IPv6 address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("prefix `/{p}` must be a number from 0 to {max}")),
            },
        };
        Ok(IpNet { addr, prefix })
    }

    /// Whether `ip` is inside this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl Config {
    /// Every protected path named by the config: `paths`, then each `[[path]]` entry's
    /// path, without duplicates, in order.
    pub fn protected_paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for p in self.paths.iter().chain(self.path.iter().map(|r| &r.path)) {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// The response mode for a file: that of the `[[path]]` entry with the longest path
    /// containing it (component-wise), else [`Config::mode`].
    pub fn mode_for(&self, file: &Path) -> Mode {
        self.path
            .iter()
            .filter(|r| file.starts_with(&r.path))
            .max_by_key(|r| r.path.components().count())
            .map_or(self.mode, |r| r.mode)
    }

    /// Paths of `[[path]]` entries (and, when [`Config::mode`] is alert, of `paths`) whose
    /// response is alert-only.
    pub fn alert_paths(&self) -> Vec<PathBuf> {
        self.protected_paths()
            .into_iter()
            .filter(|p| self.mode_for(p) == Mode::Alert)
            .collect()
    }

    /// A systemd drop-in for `ward.service` that makes every protected path writable
    /// inside the unit's `ProtectSystem=strict` sandbox (ward places decoys and its vault
    /// there, and restores files into them); `None` when the config names no paths.
    /// Written by ward's systemd generator, so paths named once in `ward.toml` need no
    /// second list in the unit. Paths that do not exist are skipped by systemd (`-`).
    pub fn systemd_dropin(&self) -> Option<String> {
        let paths = self.protected_paths();
        if paths.is_empty() {
            return None;
        }
        let mut out = String::from(
            "# Generated by ward's systemd generator from the paths in /etc/ward/ward.toml:\n\
             # ward places decoys and its vault there and restores damaged files into them.\n\
             [Service]\n",
        );
        for p in paths {
            out.push_str("ReadWritePaths=");
            out.push_str(&systemd_word(&format!("-{}", p.display())));
            out.push('\n');
        }
        Some(out)
    }

    /// Whether a process whose executable is `exe` is excluded by `[[exclude_program]]`.
    /// `sha256` gives the lower-case hex SHA-256 of that executable's content (read from
    /// `/proc/PID/exe` by the caller, so a binary replaced after its start is judged by
    /// what runs); it is called at most once, and only when an entry for `exe` names a
    /// hash. A hash that cannot be computed (`None`) never excludes.
    pub fn program_excluded(&self, exe: &Path, sha256: impl FnOnce() -> Option<String>) -> bool {
        let entries: Vec<&ExcludeProgram> = self
            .exclude_program
            .iter()
            .filter(|e| e.path == exe)
            .collect();
        if entries.is_empty() {
            return false;
        }
        if entries.iter().any(|e| e.sha256.is_none()) {
            return true;
        }
        let Some(actual) = sha256() else {
            return false;
        };
        entries
            .iter()
            .filter_map(|e| e.sha256.as_deref())
            .any(|h| h.eq_ignore_ascii_case(actual.trim()))
    }

    /// The compiled `exclude` patterns. Patterns that do not compile are skipped (a
    /// checked config has none).
    pub fn excludes(&self) -> crate::Excludes {
        crate::Excludes::new(&self.exclude).unwrap_or_else(|(ok, _)| ok)
    }
}

/// One word of a systemd unit setting: specifiers (`%`) escaped, quoted when it holds
/// spaces, quotes, backslashes or control characters.
fn systemd_word(s: &str) -> String {
    let s = s.replace('%', "%%");
    if !s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\'' || c == '\\')
    {
        return s;
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => q.push_str(&format!("\\x{:02x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}
