//! Samba's own tools, run with a bounded time and the configured smb.conf (`-s FILE`):
//! `smbstatus --json` (sessions and tree connects by pid), `testparm -s` (shares and their
//! paths), `smbcontrol smbd kill-client-ip`.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{Error, Result};

/// Where Samba's tools are and which smb.conf they read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SambaTools {
    /// `smbstatus`.
    pub smbstatus: PathBuf,
    /// `testparm`.
    pub testparm: PathBuf,
    /// `smbcontrol`.
    pub smbcontrol: PathBuf,
    /// The smb.conf to pass as `-s FILE`; `None`: the tools' default (the system's).
    pub config: Option<PathBuf>,
    /// Bound on each tool run; a tool still running then is killed and the call fails.
    pub timeout: Duration,
}

impl Default for SambaTools {
    fn default() -> Self {
        SambaTools {
            smbstatus: "smbstatus".into(),
            testparm: "testparm".into(),
            smbcontrol: "smbcontrol".into(),
            config: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// One authenticated SMB session (`smbstatus --json` → `sessions`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The smbd process serving it.
    pub pid: u32,
    /// The user it authenticated as.
    pub username: String,
    /// The client's address or name as Samba resolved it.
    pub remote_machine: String,
    /// `ipv4:ADDR:PORT` / `ipv6:ADDR:PORT`.
    pub hostname: String,
    /// The Unix uid it maps to.
    pub uid: Option<u32>,
}

/// One tree connect (`smbstatus --json` → `tcons`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tcon {
    /// The smbd process serving it.
    pub pid: u32,
    /// The share's name.
    pub service: String,
    /// The client machine.
    pub machine: String,
}

/// What `smbstatus --json` said.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SmbStatus {
    /// Authenticated sessions.
    pub sessions: Vec<Session>,
    /// Tree connects.
    pub tcons: Vec<Tcon>,
}

/// A share and the directory it exports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// The share's name.
    pub name: String,
    /// Its `path` (canonicalised when it exists).
    pub path: PathBuf,
}

#[derive(Deserialize)]
struct RawServerId {
    pid: String,
}

#[derive(Deserialize)]
struct RawSession {
    server_id: RawServerId,
    #[serde(default)]
    username: String,
    #[serde(default)]
    remote_machine: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    uid: Option<i64>,
}

#[derive(Deserialize)]
struct RawTcon {
    server_id: RawServerId,
    #[serde(default)]
    service: String,
    #[serde(default)]
    machine: String,
}

#[derive(Deserialize)]
struct RawStatus {
    #[serde(default)]
    sessions: std::collections::BTreeMap<String, RawSession>,
    #[serde(default)]
    tcons: std::collections::BTreeMap<String, RawTcon>,
}

/// Parse `smbstatus --json` output (Samba ≥ 4.16).
pub fn parse_smbstatus(json: &str) -> Result<SmbStatus> {
    let raw: RawStatus = serde_json::from_str(json).map_err(|e| Error::Parse {
        what: "smbstatus --json output",
        detail: e.to_string(),
    })?;
    let mut st = SmbStatus::default();
    for s in raw.sessions.into_values() {
        if let Ok(pid) = s.server_id.pid.parse() {
            st.sessions.push(Session {
                pid,
                username: s.username,
                remote_machine: s.remote_machine,
                hostname: s.hostname,
                uid: s.uid.and_then(|u| u32::try_from(u).ok()),
            });
        }
    }
    for t in raw.tcons.into_values() {
        if let Ok(pid) = t.server_id.pid.parse() {
            st.tcons.push(Tcon {
                pid,
                service: t.service,
                machine: t.machine,
            });
        }
    }
    Ok(st)
}

/// A share's settings that matter to ward, from `testparm -s`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShareConfig {
    /// The share's name.
    pub name: String,
    /// Its `path` (canonicalised when it exists).
    pub path: PathBuf,
    /// Its `veto files` patterns (the share's, else the `[global]` ones).
    pub veto_files: Vec<String>,
}

fn patterns(v: &str) -> Vec<String> {
    v.split('/')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

/// Parse `testparm -s` output into the shares with a fixed `path` (sections other than
/// `[global]`, `[printers]`, `[print$]`; paths with `%` substitutions are skipped since they
/// name a different directory per user), with their `veto files`.
pub fn parse_share_configs(text: &str) -> Vec<ShareConfig> {
    struct Sec {
        name: String,
        path: Option<String>,
        veto: Option<Vec<String>>,
    }
    let mut global_veto: Vec<String> = Vec::new();
    let mut secs: Vec<Sec> = Vec::new();
    let mut in_global = false;
    let mut skip = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') && l.ends_with(']') {
            let name = l[1..l.len() - 1].to_string();
            let lower = name.to_ascii_lowercase();
            in_global = lower == "global";
            skip = lower == "printers" || lower == "print$";
            if !in_global && !skip {
                secs.push(Sec {
                    name,
                    path: None,
                    veto: None,
                });
            }
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if in_global {
            if k == "veto files" {
                global_veto = patterns(v);
            }
            continue;
        }
        if skip {
            continue;
        }
        let Some(sec) = secs.last_mut() else { continue };
        match k.as_str() {
            "path" => sec.path = Some(v.to_string()),
            "veto files" => sec.veto = Some(patterns(v)),
            _ => {}
        }
    }
    secs.into_iter()
        .filter_map(|s| {
            let p = s.path.filter(|p| !p.is_empty() && !p.contains('%'))?;
            let p = PathBuf::from(p);
            Some(ShareConfig {
                name: s.name,
                path: std::fs::canonicalize(&p).unwrap_or(p),
                veto_files: s.veto.unwrap_or_else(|| global_veto.clone()),
            })
        })
        .collect()
}

/// Parse `testparm -s` output into shares with a fixed `path` (see [`parse_share_configs`]).
pub fn parse_testparm(text: &str) -> Vec<Share> {
    parse_share_configs(text)
        .into_iter()
        .map(|c| Share {
            name: c.name,
            path: c.path,
        })
        .collect()
}

/// Samba's `veto files` matching of one name against one pattern (`*` and `?` wildcards,
/// case-insensitive as Samba's default `case sensitive = auto` is for Windows clients).
pub fn veto_matches(pattern: &str, name: &str) -> bool {
    fn m(p: &[char], n: &[char]) -> bool {
        match (p.first(), n.first()) {
            (None, None) => true,
            (Some('*'), _) => m(&p[1..], n) || (!n.is_empty() && m(p, &n[1..])),
            (Some('?'), Some(_)) => m(&p[1..], &n[1..]),
            (Some(a), Some(b)) => a.eq_ignore_ascii_case(b) && m(&p[1..], &n[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    m(&p, &n)
}

/// A share through which one of ward's own directories (the vault) can be reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exposure {
    /// The share.
    pub share: String,
    /// The directory of ward's that lies inside it.
    pub dir: PathBuf,
    /// What to add to that share's section of smb.conf.
    pub fix: String,
}

/// Which of `dirs` (ward's vault directories) lie inside a share without being vetoed. Each
/// one needs `veto files = /NAME/` in that share (or `[global]`), so clients can neither see
/// nor open it.
pub fn exposures(shares: &[ShareConfig], dirs: &[PathBuf]) -> Vec<Exposure> {
    let mut out = Vec::new();
    for d in dirs {
        let d = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
        for s in shares {
            let Ok(rel) = d.strip_prefix(&s.path) else {
                continue;
            };
            // Samba vetoes a path if any of its components matches.
            let vetoed = rel.components().any(|c| {
                let c = c.as_os_str().to_string_lossy();
                s.veto_files.iter().any(|p| veto_matches(p, &c))
            });
            if !vetoed {
                let name = d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                out.push(Exposure {
                    share: s.name.clone(),
                    dir: d.clone(),
                    fix: format!("veto files = /{name}/"),
                });
            }
        }
    }
    out
}

/// The share whose path contains `path` (the longest match when shares nest).
pub fn share_for_path<'a>(shares: &'a [Share], path: &Path) -> Option<&'a Share> {
    shares
        .iter()
        .filter(|s| path.starts_with(&s.path))
        .max_by_key(|s| s.path.as_os_str().len())
}

impl SambaTools {
    /// The system's tools and config.
    pub fn system() -> SambaTools {
        SambaTools::default()
    }

    /// The system's tools reading `config` instead of the default smb.conf.
    pub fn with_config(config: &Path) -> SambaTools {
        SambaTools {
            config: Some(config.to_path_buf()),
            ..SambaTools::default()
        }
    }

    fn command(&self, tool: &Path) -> Command {
        let mut c = Command::new(tool);
        if let Some(conf) = &self.config {
            c.arg("-s").arg(conf);
        }
        c
    }

    /// `smbstatus [-s CONF] --json`.
    pub fn status(&self) -> Result<SmbStatus> {
        let mut c = self.command(&self.smbstatus);
        c.arg("--json");
        parse_smbstatus(&run_bounded(c, self.timeout)?)
    }

    /// `testparm [-s CONF] -s` → the shares with fixed paths.
    pub fn shares(&self) -> Result<Vec<Share>> {
        Ok(parse_testparm(&self.testparm_output()?))
    }

    /// `testparm [-s CONF] -s` → the shares with their `veto files`.
    pub fn share_configs(&self) -> Result<Vec<ShareConfig>> {
        Ok(parse_share_configs(&self.testparm_output()?))
    }

    fn testparm_output(&self) -> Result<String> {
        let mut c = Command::new(&self.testparm);
        c.arg("-s");
        if let Some(conf) = &self.config {
            c.arg(conf);
        }
        run_bounded(c, self.timeout)
    }

    /// `smbcontrol [-s CONF] smbd kill-client-ip IP`: smbd closes every connection from `ip`.
    pub fn kill_client_ip(&self, ip: IpAddr) -> Result<()> {
        let mut c = self.command(&self.smbcontrol);
        c.args(["smbd", "kill-client-ip", &ip.to_string()]);
        run_bounded(c, self.timeout).map(|_| ())
    }
}

/// Run `cmd` to the end within `bound`, returning stdout; a non-zero exit or a timeout
/// (the tool is then killed: it is our child) is an error naming the tool.
fn run_bounded(mut cmd: Command, bound: Duration) -> Result<String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Tool {
            tool: name.clone(),
            detail: format!("cannot start it: {e}"),
        })?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    // Read both pipes in threads so a chatty tool cannot block on a full pipe.
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = stdout.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let t0 = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if t0.elapsed() < bound => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Tool {
                    tool: name,
                    detail: format!("no answer within {:.1} s; killed it", bound.as_secs_f64()),
                });
            }
            Err(e) => {
                return Err(Error::Tool {
                    tool: name,
                    detail: e.to_string(),
                })
            }
        }
    };
    let out = out_t.join().unwrap_or_default();
    let err = err_t.join().unwrap_or_default();
    if status.success() {
        Ok(out)
    } else {
        Err(Error::Tool {
            tool: name,
            detail: format!("{status}: {}", err.trim()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from smbstatus 4.17.12 against a lab smbd.
    const STATUS: &str = r#"{"timestamp": "2026-12-01T19:32:50.298962+0000", "version": "4.17.12-Debian", "smb_conf": "/tmp/smbexp/smb.conf", "sessions": {"3598058697": {"session_id": "3598058697", "server_id": {"pid": "12398", "task_id": "0", "vnn": "4294967295", "unique_id": "8571636988879406223"}, "uid": 999, "gid": 994, "username": "ward-smb1", "groupname": "ward-smb1", "remote_machine": "10.213.250.2", "hostname": "ipv4:10.213.250.2:42568", "session_dialect": "SMB3_11", "encryption": {"cipher": "-", "degree": "none"}, "signing": {"cipher": "AES-128-GMAC", "degree": "full"}}}, "tcons": {"193144835": {"service": "data", "server_id": {"pid": "12398", "task_id": "0", "vnn": "4294967295", "unique_id": "8571636988879406223"}, "tcon_id": "193144835", "session_id": "3598058697", "machine": "10.213.250.2", "connected_at": "2026-12-01T19:32:47.606123+00:00", "encryption": {"cipher": "-", "degree": "none"}, "signing": {"cipher": "AES-128-GMAC", "degree": "full"}}}, "open_files": {}}"#;

    #[test]
    fn parses_smbstatus_json() {
        let st = parse_smbstatus(STATUS).unwrap();
        assert_eq!(st.sessions.len(), 1);
        assert_eq!(st.sessions[0].pid, 12398);
        assert_eq!(st.sessions[0].username, "ward-smb1");
        assert_eq!(st.sessions[0].uid, Some(999));
        assert_eq!(st.sessions[0].hostname, "ipv4:10.213.250.2:42568");
        assert_eq!(st.tcons[0].service, "data");
        assert_eq!(st.tcons[0].pid, 12398);
        let empty = parse_smbstatus(r#"{"sessions": {}, "tcons": {}}"#).unwrap();
        assert_eq!(empty, SmbStatus::default());
        assert!(matches!(
            parse_smbstatus("not json"),
            Err(Error::Parse { .. })
        ));
    }

    #[test]
    fn parses_testparm_shares() {
        let text = "# Global parameters\n[global]\n\tpath = /nope\n\tinterfaces = 10.0.0.1\n\n[data]\n\tpath = /srv/data\n\tread only = No\n\n[homes]\n\tpath = /home/%U\n\n[pacs]\n\tpath = /srv/data/pacs\n[printers]\n\tpath = /var/spool\n";
        let shares = parse_testparm(text);
        let names: Vec<&str> = shares.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["data", "pacs"]);
        let s = share_for_path(&shares, Path::new("/srv/data/pacs/x/1.dcm")).unwrap();
        assert_eq!(s.name, "pacs", "longest prefix wins");
        assert_eq!(
            share_for_path(&shares, Path::new("/srv/data/a.txt"))
                .unwrap()
                .name,
            "data"
        );
        assert!(share_for_path(&shares, Path::new("/srv/database/a")).is_none());
    }

    #[test]
    fn vault_exposure_and_veto_matching() {
        assert!(veto_matches(".ward-vault", ".ward-vault"));
        assert!(veto_matches(".WARD-*", ".ward-vault"));
        assert!(veto_matches("*.tmp", "a.tmp"));
        assert!(veto_matches(".ward-vaul?", ".ward-vault"));
        assert!(!veto_matches(".ward-vault", ".ward-vaults"));
        assert!(!veto_matches("*.tmp", "a.tmpx"));
        let text = "[global]\n\tveto files = /.snapshot/\n[data]\n\tpath = /srv/data\n[pacs]\n\tpath = /srv/pacs\n\tveto files = /.ward-vault/*.lck/\n";
        let shares = parse_share_configs(text);
        assert_eq!(shares[0].veto_files, [".snapshot"], "global default");
        assert_eq!(shares[1].veto_files, [".ward-vault", "*.lck"]);
        let ex = exposures(
            &shares,
            &[
                PathBuf::from("/srv/data/.ward-vault"),
                PathBuf::from("/srv/pacs/.ward-vault"),
                PathBuf::from("/var/lib/ward/.ward-vault"),
            ],
        );
        assert_eq!(ex.len(), 1, "{ex:?}");
        assert_eq!(ex[0].share, "data");
        assert_eq!(ex[0].fix, "veto files = /.ward-vault/");
    }

    #[test]
    fn missing_tool_is_a_clear_error() {
        let t = SambaTools {
            smbstatus: "/nonexistent/smbstatus".into(),
            ..SambaTools::default()
        };
        let e = t.status().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/smbstatus"), "{e}");
    }

    #[test]
    fn a_hung_tool_is_killed_within_the_bound() {
        let c = Command::new("sleep");
        let mut c = c;
        c.arg("10");
        let t0 = Instant::now();
        let e = run_bounded(c, Duration::from_millis(200)).unwrap_err();
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(e.to_string().contains("no answer"), "{e}");
    }
}
