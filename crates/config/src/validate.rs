//! Checks serde cannot express: ranges, absolute paths, globs, addresses, URLs and
//! combinations of settings. Each problem names the canonical key path of the setting.

use crate::load::Seg;
use crate::schema::{Config, Transport};
use std::collections::HashSet;
use std::path::{Component, Path};

/// A problem with one setting: its canonical path and the reason.
pub(crate) struct Problem {
    pub path: Vec<Seg>,
    pub reason: String,
}

fn key(parts: &[&str]) -> Vec<Seg> {
    parts.iter().map(|p| Seg::Key((*p).to_string())).collect()
}

fn at(mut path: Vec<Seg>, i: usize) -> Vec<Seg> {
    path.push(Seg::Index(i));
    path
}

fn sub(mut path: Vec<Seg>, k: &str) -> Vec<Seg> {
    path.push(Seg::Key(k.to_string()));
    path
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn push(&mut self, path: Vec<Seg>, reason: impl Into<String>) {
        self.problems.push(Problem {
            path,
            reason: reason.into(),
        });
    }

    fn range(&mut self, path: &[&str], v: u64, min: u64, max: u64, what: &str) {
        if v < min || v > max {
            self.push(
                key(path),
                format!("{v} is out of range: must be from {min} to {max} {what}"),
            );
        }
    }

    fn absolute(&mut self, path: Vec<Seg>, p: &Path) {
        if let Some(r) = absolute_problem(p) {
            self.push(path, r);
        }
    }

    fn programs(&mut self, name: &str, list: &[String]) {
        for (i, p) in list.iter().enumerate() {
            if p.trim().is_empty() {
                self.push(at(key(&[name]), i), "empty program name: remove it");
            } else if p.contains('/') {
                self.push(
                    at(key(&[name]), i),
                    format!(
                        "`{p}` is a path, but programs are matched by base name: write `{}`",
                        p.rsplit('/').next().unwrap_or(p)
                    ),
                );
            }
        }
    }
}

fn absolute_problem(p: &Path) -> Option<String> {
    let s = p.display();
    if p.as_os_str().is_empty() {
        Some("empty path: give an absolute path".into())
    } else if !p.is_absolute() {
        Some(format!(
            "`{s}` is relative: give an absolute path (ward runs from /)"
        ))
    } else if p
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        Some(format!(
            "`{s}` contains `.` or `..`: write the path without them"
        ))
    } else {
        None
    }
}

fn http_url_problem(url: &str, schemes: &[&str]) -> Option<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Some(format!(
            "`{url}` is not a URL: write it like `{}://host:port/path`",
            schemes[0]
        ));
    };
    if !schemes.contains(&scheme) {
        return Some(format!(
            "`{url}` uses `{scheme}://`: use {}",
            schemes
                .iter()
                .map(|s| format!("`{s}://`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ));
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    if host.is_empty() || host.starts_with(':') {
        return Some(format!(
            "`{url}` has no host: write `{scheme}://host:port/...`"
        ));
    }
    if let Some((h, port)) = host.rsplit_once(':') {
        if !h.ends_with(']') && h.contains(':') {
            // a bare IPv6 address without brackets
            return Some(format!(
                "`{url}`: put an IPv6 address in brackets, `{scheme}://[{host}]/`"
            ));
        }
        if !port.is_empty() && !h.is_empty() && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Some(format!(
                "`{url}`: port `{port}` must be a number from 1 to 65535"
            ));
        }
    }
    if url.chars().any(char::is_whitespace) {
        return Some(format!("`{url}` contains whitespace: percent-encode it"));
    }
    None
}

fn host_port_problem(addr: &str) -> Option<String> {
    if addr.parse::<std::net::SocketAddr>().is_ok() {
        return None;
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Some(format!(
            "`{addr}` has no port: write `host:port` (syslog is usually port 514)"
        ));
    };
    if host.is_empty() || host.contains(':') && !host.starts_with('[') {
        return Some(format!(
            "`{addr}` is not `host:port` (an IPv6 address goes in brackets: `[::1]:514`)"
        ));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => None,
        _ => Some(format!(
            "`{addr}`: port `{port}` must be a number from 1 to 65535"
        )),
    }
}

fn nft_name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 32
}

/// Header names that carry credentials by convention.
fn secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["auth", "token", "key", "secret", "cookie", "password"]
        .iter()
        .any(|w| n.contains(w))
}

/// Every problem of a deserialized config. `world_readable`: whether users other than
/// the owner can read the file (matters when it holds a secret).
pub(crate) fn validate(c: &Config, world_readable: bool) -> Vec<Problem> {
    let mut k = Checker {
        problems: Vec::new(),
    };

    // Protected paths and their modes.
    let mut seen = HashSet::new();
    for (i, p) in c.paths.iter().enumerate() {
        k.absolute(at(key(&["paths"]), i), p);
        if !seen.insert(p.clone()) {
            k.push(
                at(key(&["paths"]), i),
                format!("`{}` is listed twice: remove one", p.display()),
            );
        }
    }
    let mut seen_rules = HashSet::new();
    for (i, r) in c.path.iter().enumerate() {
        k.absolute(sub(at(key(&["path"]), i), "path"), &r.path);
        if !seen_rules.insert(r.path.clone()) {
            k.push(
                sub(at(key(&["path"]), i), "path"),
                format!(
                    "`{}` has two [[path]] entries: keep one (its mode decides)",
                    r.path.display()
                ),
            );
        }
    }

    // Exclusions.
    for (i, p) in c.exclude.iter().enumerate() {
        if let Some(r) = crate::excludes::pattern_error(p) {
            k.push(at(key(&["exclude"]), i), r);
        }
    }
    for (i, e) in c.exclude_program.iter().enumerate() {
        let base = at(key(&["exclude_program"]), i);
        k.absolute(sub(base.clone(), "path"), &e.path);
        if let Some(h) = &e.sha256 {
            if h.len() != 64
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                k.push(
                    sub(base, "sha256"),
                    format!(
                        "`{h}` is not a SHA-256: write the 64 lower-case hex digits that \
                         `sha256sum {}` prints",
                        e.path.display()
                    ),
                );
            }
        }
    }

    // Detection and response.
    k.range(
        &["damage_threshold"],
        c.damage_threshold as u64,
        1,
        1000,
        "damaged files",
    );
    k.range(
        &["trust_after_secs"],
        c.trust_after_secs,
        0,
        31_536_000,
        "seconds (0 = off)",
    );
    k.range(
        &["busy_poll_us"],
        c.busy_poll_us,
        0,
        1000,
        "microseconds (0 = never poll without sleeping)",
    );
    k.programs("trusted_programs", &c.trusted_programs);
    k.programs("boundary_programs", &c.boundary_programs);

    // Vault: sizes in MiB up to 1 PiB (so bytes never overflow).
    const PIB_IN_MIB: u64 = 1 << 30;
    k.range(
        &["vault", "max_mib"],
        c.vault.max_mib,
        0,
        PIB_IN_MIB,
        "MiB (0 = 10 % of the filesystem)",
    );
    k.range(
        &["vault", "max_file_mib"],
        c.vault.max_file_mib,
        0,
        PIB_IN_MIB,
        "MiB",
    );
    k.range(
        &["vault", "reserve_mib"],
        c.vault.reserve_mib,
        0,
        PIB_IN_MIB,
        "MiB",
    );
    k.range(
        &["vault", "retention_hours"],
        c.vault.retention_hours,
        1,
        8760,
        "hours",
    );

    // SMB.
    k.absolute(key(&["smb", "smb_conf"]), &c.smb.smb_conf);
    k.range(
        &["smb", "client_block_minutes"],
        c.smb.client_block_minutes,
        0,
        525_600,
        "minutes (0 = until `ward unblock`)",
    );
    if !nft_name_ok(&c.smb.nft_table) {
        k.push(
            key(&["smb", "nft_table"]),
            format!(
                "`{}` is not a usable nftables table name: use letters, digits and `_` \
                 (starting with a letter), at most 32 characters",
                c.smb.nft_table
            ),
        );
    }

    // Worm.
    k.range(
        &["worm", "fanout_threshold"],
        u64::from(c.worm.fanout_threshold),
        2,
        10_000,
        "distinct SMB destinations",
    );
    k.range(
        &["worm", "fanout_window_secs"],
        c.worm.fanout_window_secs,
        1,
        3600,
        "seconds",
    );
    for (i, a) in c.worm.management_addresses.iter().enumerate() {
        if let Err(r) = crate::schema::IpNet::parse(a) {
            k.push(
                at(key(&["worm", "management_addresses"]), i),
                format!("{r}: write an address (`10.0.0.5`) or a network (`10.0.0.0/24`)"),
            );
        }
    }
    if c.worm.isolate_on_worm && c.worm.management_addresses.is_empty() {
        k.push(
            key(&["worm", "isolate_on_worm"]),
            "isolation with no management_addresses would cut this server off from its \
             administrators too: list their addresses in worm.management_addresses, or set \
             isolate_on_worm = false",
        );
    }

    // Outputs.
    if let Some(p) = &c.outputs.status_socket {
        k.absolute(key(&["outputs", "status_socket"]), p);
    }
    if let Some(f) = &c.outputs.file {
        k.absolute(key(&["outputs", "file", "path"]), &f.path);
        k.range(
            &["outputs", "file", "rotate_mib"],
            f.rotate_mib,
            1,
            102_400,
            "MiB",
        );
        k.range(
            &["outputs", "file", "keep"],
            u64::from(f.keep),
            1,
            1000,
            "rotated files",
        );
    }
    if let Some(s) = &c.outputs.syslog {
        let problem = match s.transport {
            Transport::Unix => absolute_problem(Path::new(&s.address))
                .map(|r| format!("{r} (transport \"unix\" takes a socket path such as /dev/log)")),
            Transport::Udp | Transport::Tcp => host_port_problem(&s.address),
        };
        if let Some(r) = problem {
            k.push(key(&["outputs", "syslog", "address"]), r);
        }
    }
    if let Some(w) = &c.outputs.webhook {
        if let Some(r) = http_url_problem(&w.url, &["https", "http"]) {
            k.push(key(&["outputs", "webhook", "url"]), r);
        }
        if let Some(d) = &w.spool_dir {
            k.absolute(key(&["outputs", "webhook", "spool_dir"]), d);
        }
        k.range(
            &["outputs", "webhook", "max_spool_mib"],
            w.max_spool_mib,
            1,
            1_048_576,
            "MiB",
        );
        k.range(
            &["outputs", "webhook", "timeout_secs"],
            w.timeout_secs,
            1,
            300,
            "seconds",
        );
        for (name, value) in &w.headers {
            let path = key(&["outputs", "webhook", "headers", name]);
            let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
            if name.is_empty() || !name.chars().all(token) {
                k.push(
                    path,
                    format!("`{name}` is not an HTTP header name: use letters, digits and `-`"),
                );
            } else if value.contains(['\r', '\n']) {
                k.push(
                    path,
                    "a header value cannot contain a line break: put it on one line",
                );
            } else if world_readable && secret_header(name) {
                k.push(
                    path,
                    "this header holds a credential but other users can read the file: run \
                     `chmod 600 {FILE}`",
                );
            }
        }
    }

    // Console.
    if let Some(u) = &c.console.url {
        if let Some(r) = http_url_problem(u, &["https"]) {
            k.push(key(&["console", "url"]), r);
        }
    }
    if let Some(t) = &c.console.enroll_token {
        if t.trim().is_empty() {
            k.push(
                key(&["console", "enroll_token"]),
                "empty token: paste the output of `ward console enroll-token`, or remove the key",
            );
        } else if c.console.url.is_none() {
            k.push(
                key(&["console", "enroll_token"]),
                "a token without a console: set console.url too",
            );
        }
        if world_readable {
            k.push(
                key(&["console", "enroll_token"]),
                "this file holds a secret but other users can read it: run `chmod 600 {FILE}`",
            );
        }
    }

    k.problems
}
