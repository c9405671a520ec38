//! The engine's tunables.

use serde::{Deserialize, Serialize};

/// Tunables. `Default` gives the production values.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Damaged pre-existing files in one lineage that make a verdict.
    pub damage_threshold: usize,
    /// Paths of decoy files placed by ward. Damaging one is an immediate verdict.
    pub decoys: Vec<String>,
    /// Evidence older than this (event time, ns) is forgotten.
    pub window_ns: u64,
    /// Maximum number of files tracked (least recently touched evicted first).
    pub max_files: usize,
    /// Exited processes without evidence are forgotten this long after their exit.
    pub dead_ttl_ns: u64,
    /// Maximum number of exited processes retained (older ones are forgotten early).
    pub max_dead: usize,
    /// Distinct addresses a lineage must connect to on TCP 445/139 within
    /// [`Config::fanout_window_ns`](crate::Config::fanout_window_ns) for an `smb-fanout` verdict (0 disables the rule).
    pub fanout_threshold: usize,
    /// Window of the SMB fan-out rule (event time, ns).
    pub fanout_window_ns: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            damage_threshold: 3,
            decoys: Vec::new(),
            window_ns: 3_600 * 1_000_000_000,
            max_files: 100_000,
            dead_ttl_ns: 600 * 1_000_000_000,
            max_dead: 4_096,
            fanout_threshold: 10,
            fanout_window_ns: 30 * 1_000_000_000,
        }
    }
}
