//! Cutting one client off: an nftables table of ward's own.
//!
//! Choice: the `nft` command (`nft -f -` batches, `nft -j list set`), not a netlink crate.
//! `nft -f` applies a whole batch atomically in one netlink transaction, it is the interface
//! nftables documents and keeps stable, every distribution with nftables ships it (the
//! `nftables` package), and it keeps ward free of a young netlink dependency. A block costs
//! one short process (≈ 2–5 ms), which is nothing next to an incident.
//!
//! The table (default `inet ward`) holds two address sets with timeout support and an input
//! chain hooked before the filter priority that drops *every* TCP packet to the SMB ports
//! from a listed address: new connections fail, and an established session (even one whose
//! smbd child is frozen) cannot send another request. Nothing outside this table is touched;
//! any drop verdict in it is final for the packet whatever other tables accept.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::peer::canonical;
use crate::{Error, Result};

/// How the blocker's table looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockerConfig {
    /// The `inet` table's name (ASCII letters, digits, `_`; at most 32). Default `ward`;
    /// tests use their own (e.g. `ward_test_<pid>`). One table per agent: a second
    /// [`Blocker::new`] with the same name replaces the first one's table and its blocks.
    pub table: String,
    /// The ports whose traffic from a blocked address is dropped.
    pub ports: Vec<u16>,
    /// The `nft` binary.
    pub nft: PathBuf,
    /// Bound on each `nft` run.
    pub timeout: Duration,
}

impl Default for BlockerConfig {
    fn default() -> Self {
        BlockerConfig {
            table: "ward".into(),
            ports: vec![445, 139],
            nft: "nft".into(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// An address in force in the block sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Block {
    /// The blocked address.
    pub ip: IpAddr,
    /// Time left, `None` for a block without expiry (nft reports whole seconds).
    pub remaining: Option<Duration>,
}

/// ward's nftables table. Created by [`Blocker::new`], removed by [`Blocker::teardown`]
/// and on drop.
#[derive(Debug)]
pub struct Blocker {
    cfg: BlockerConfig,
    active: bool,
    /// Created by this value (and so removed by its drop), or attached to a running ward's.
    owned: bool,
}

fn valid_table(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name
            .chars()
            .next()
            .map(|c| c.is_ascii_alphabetic())
            .unwrap_or(false)
}

fn set_of(ip: IpAddr) -> &'static str {
    match ip {
        IpAddr::V4(_) => "block4",
        IpAddr::V6(_) => "block6",
    }
}

impl Blocker {
    /// Create (or replace, atomically, one left by a killed ward) the table with empty sets.
    pub fn new(cfg: BlockerConfig) -> Result<Blocker> {
        if !valid_table(&cfg.table) {
            return Err(Error::Config(format!(
                "nftables table name {:?} must be 1-32 ASCII letters, digits or _ and start with a letter",
                cfg.table
            )));
        }
        if cfg.ports.is_empty() {
            return Err(Error::Config("no SMB ports to block".into()));
        }
        let t = &cfg.table;
        let ports: Vec<String> = cfg.ports.iter().map(|p| p.to_string()).collect();
        let ports = ports.join(", ");
        // "table" + "delete table" first makes the batch work whether or not it exists.
        let script = format!(
            "table inet {t} {{}}\n\
             delete table inet {t}\n\
             table inet {t} {{\n\
             \x20 set block4 {{ type ipv4_addr; flags timeout; }}\n\
             \x20 set block6 {{ type ipv6_addr; flags timeout; }}\n\
             \x20 chain input {{\n\
             \x20   type filter hook input priority filter - 10; policy accept;\n\
             \x20   meta l4proto tcp tcp dport {{ {ports} }} ip saddr @block4 drop\n\
             \x20   meta l4proto tcp tcp dport {{ {ports} }} ip6 saddr @block6 drop\n\
             \x20 }}\n\
             }}\n"
        );
        let mut b = Blocker {
            cfg,
            active: false,
            owned: true,
        };
        b.nft_script(&script)?;
        b.active = true;
        Ok(b)
    }

    /// Use the table a running `ward protect` made (e.g. for `ward unblock IP` from another
    /// process), without replacing it; dropping this value leaves the table in place.
    pub fn attach(cfg: BlockerConfig) -> Result<Blocker> {
        if !valid_table(&cfg.table) {
            return Err(Error::Config(format!(
                "nftables table name {:?} must be 1-32 ASCII letters, digits or _ and start with a letter",
                cfg.table
            )));
        }
        let b = Blocker {
            cfg,
            active: true,
            owned: false,
        };
        b.nft_run(&["-j", "list", "set", "inet", &b.cfg.table, "block4"], "")
            .map_err(|e| {
                Error::Config(format!(
                    "no ward nftables table inet {} to attach to (is ward protect running?): {e}",
                    b.cfg.table
                ))
            })?;
        Ok(b)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.cfg.table
    }

    /// Block `ip` on the SMB ports, for `ttl` or until unblocked. Blocking an address already
    /// blocked replaces its expiry.
    pub fn block(&self, ip: IpAddr, ttl: Option<Duration>) -> Result<()> {
        self.check_active()?;
        let ip = canonical(ip);
        let (t, s) = (&self.cfg.table, set_of(ip));
        let expiry = match ttl {
            Some(d) => format!(" timeout {}ms", d.as_millis().max(1000)),
            None => String::new(),
        };
        // add (no-op if present), delete, add: atomically replaces any old expiry.
        self.nft_script(&format!(
            "add element inet {t} {s} {{ {ip} }}\n\
             delete element inet {t} {s} {{ {ip} }}\n\
             add element inet {t} {s} {{ {ip}{expiry} }}\n"
        ))
    }

    /// Lift the block of `ip` (no error if it was not blocked).
    pub fn unblock(&self, ip: IpAddr) -> Result<()> {
        self.check_active()?;
        let ip = canonical(ip);
        let (t, s) = (&self.cfg.table, set_of(ip));
        self.nft_script(&format!(
            "add element inet {t} {s} {{ {ip} }}\n\
             delete element inet {t} {s} {{ {ip} }}\n"
        ))
    }

    /// The blocks in force.
    pub fn list(&self) -> Result<Vec<Block>> {
        self.check_active()?;
        let mut out = Vec::new();
        for s in ["block4", "block6"] {
            let json = self.nft_run(&["-j", "list", "set", "inet", &self.cfg.table, s], "")?;
            out.extend(parse_set_json(&json)?);
        }
        Ok(out)
    }

    /// Delete ward's table (only it). Idempotent.
    pub fn teardown(&mut self) -> Result<()> {
        if !self.active {
            return Ok(());
        }
        let t = &self.cfg.table;
        self.nft_script(&format!("table inet {t} {{}}\ndelete table inet {t}\n"))?;
        self.active = false;
        Ok(())
    }

    fn check_active(&self) -> Result<()> {
        if self.active {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "the nftables table inet {} was torn down; create a new Blocker",
                self.cfg.table
            )))
        }
    }

    fn nft_script(&self, script: &str) -> Result<()> {
        self.nft_run(&["-f", "-"], script).map(|_| ())
    }

    fn nft_run(&self, args: &[&str], stdin: &str) -> Result<String> {
        let what = format!("{} {}", self.cfg.nft.display(), args.join(" "));
        let fail = |detail: String| Error::Nft {
            cmd: what.clone(),
            detail,
        };
        let mut child = Command::new(&self.cfg.nft)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                fail(format!(
                    "cannot start nft: {e} (install the nftables package)"
                ))
            })?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes())
                .map_err(|e| fail(format!("writing the batch: {e}")))?;
        }
        // nft's output is small; wait with a bound, then read it.
        let t0 = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if t0.elapsed() < self.cfg.timeout => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(fail(format!(
                        "no answer within {:.1} s; killed it",
                        self.cfg.timeout.as_secs_f64()
                    )));
                }
            }
        }
        let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(fail(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }
}

impl Drop for Blocker {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        if let Err(e) = self.teardown() {
            tracing::warn!("removing ward's nftables table: {e}");
        }
    }
}

/// Parse `nft -j list set` output: elements are plain strings or `{"elem":{"val","expires"}}`.
pub(crate) fn parse_set_json(json: &str) -> Result<Vec<Block>> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::Parse {
        what: "nft -j list set output",
        detail: e.to_string(),
    })?;
    let mut out = Vec::new();
    let items = v["nftables"].as_array().cloned().unwrap_or_default();
    for item in items {
        let Some(elems) = item["set"]["elem"].as_array() else {
            continue;
        };
        for e in elems {
            let (val, expires) = match e {
                serde_json::Value::String(s) => (Some(s.as_str()), None),
                other => (
                    other["elem"]["val"].as_str(),
                    other["elem"]["expires"].as_f64(),
                ),
            };
            if let Some(ip) = val.and_then(|s| s.parse::<IpAddr>().ok()) {
                out.push(Block {
                    ip,
                    remaining: expires.map(|s| Duration::from_secs_f64(s.max(0.0))),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nft_1_0_6_set_listing() {
        let j = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"set": {"family": "inet", "name": "block4", "table": "wardx", "type": "ipv4_addr", "handle": 2, "flags": ["timeout"], "elem": [{"elem": {"val": "10.1.2.3", "timeout": 60, "expires": 59}}, "10.1.2.4"]}}]}"#;
        let b = parse_set_json(j).unwrap();
        assert_eq!(
            b,
            vec![
                Block {
                    ip: "10.1.2.3".parse().unwrap(),
                    remaining: Some(Duration::from_secs(59))
                },
                Block {
                    ip: "10.1.2.4".parse().unwrap(),
                    remaining: None
                }
            ]
        );
        let empty = r#"{"nftables": [{"metainfo": {}}, {"set": {"name": "block6"}}]}"#;
        assert!(parse_set_json(empty).unwrap().is_empty());
        assert!(parse_set_json("oops").is_err());
    }

    #[test]
    fn table_names_are_checked() {
        assert!(valid_table("ward"));
        assert!(valid_table("ward_test_123"));
        assert!(!valid_table(""));
        assert!(!valid_table("1ward"));
        assert!(!valid_table("ward; flush ruleset"));
        assert!(!valid_table(&"a".repeat(33)));
        let e = Blocker::new(BlockerConfig {
            table: "x y".into(),
            ..BlockerConfig::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("table name"), "{e}");
    }
}
