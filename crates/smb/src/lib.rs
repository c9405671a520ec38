//! # ward-smb
//!
//! ward's Samba side, for damage done through Samba by a remote client:
//!
//! - [`role`]: which smbd process is the master (a boundary), a per-client child (the lineage
//!   root of one client connection) or a helper, from `/proc`.
//! - [`peer`]: the client address of a per-client child (its TCP peer on 445/139), from
//!   procfs, available at once.
//! - [`attr`]: [`Attributor`]: `pid → Client{ip, user, share}`, the address at once, user and
//!   share from a cached, rate-limited `smbstatus --json` run by a background thread (falling
//!   back to the child's uid and the share whose path holds the file).
//! - [`block`]: [`Blocker`]: an nftables table of ward's own dropping the SMB traffic of
//!   blocked addresses (with expiry), removed on teardown.
//! - [`cutoff`]: [`cut_off`]: the whole response for one client: freeze its smbd children,
//!   block its address, end its sessions.
//! - [`session`]: [`end_client`]: end a client's sessions cleanly (`smbcontrol
//!   kill-client-ip`, then SIGTERM; SIGCONT so frozen children can exit).
//! - [`tools`]: [`exposures`]: which shares let clients reach ward's vault (each needs
//!   `veto files = /.ward-vault/`); and running `smbstatus`, `testparm`, `smbcontrol` with a configurable smb.conf
//!   (`-s FILE`) and a bounded time, and parsing what they print.
//!
//! What it must never do: run a Samba tool on the caller's hot path (only the refresher
//! thread and the containment calls do), signal anything but a per-client smbd child of the
//! client being cut off (checked by pid, start time, role and peer), SIGKILL an smbd, touch
//! nftables outside its own table, or change Samba's configuration.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod attr;
pub mod block;
pub mod cutoff;
pub mod peer;
pub mod role;
pub mod session;
pub mod tools;

pub use attr::{Attribution, Attributor, AttributorConfig, Source};
pub use block::{Block, Blocker, BlockerConfig};
pub use cutoff::{cut_off, CutOff};
pub use peer::tcp_peer;
pub use role::{client_pids, smbd_role, SmbdRole};
pub use session::{end_client, EndMethod, EndReport};
pub use tools::{exposures, Exposure, SambaTools, Share, ShareConfig, SmbStatus};

/// What can go wrong. Every message says what failed and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Samba tool failed or did not answer in time.
    #[error("{tool} failed: {detail} (is Samba installed, and is the smb.conf setting right?)")]
    Tool {
        /// The tool.
        tool: String,
        /// Exit status, stderr, or the timeout.
        detail: String,
    },
    /// An nft command failed.
    #[error("`{cmd}` failed: {detail} (needs root and the nftables package)")]
    Nft {
        /// The command.
        cmd: String,
        /// What it said.
        detail: String,
    },
    /// A tool printed something this crate cannot read.
    #[error("cannot parse {what}: {detail} (unsupported tool version?)")]
    Parse {
        /// Which output.
        what: &'static str,
        /// The parser's complaint.
        detail: String,
    },
    /// Bad settings.
    #[error("invalid SMB setting: {0}")]
    Config(String),
}

/// Shorthand for this crate's results.
pub type Result<T> = std::result::Result<T, Error>;
