//! Who is behind an smbd child: [`Attributor`].
//!
//! The address comes from procfs at once (the child's TCP peer), and so does the uid the
//! child runs as (the client's Unix user). User name and share come from `smbstatus --json`
//! (tens of ms) and uid → name from NSS (which may ask winbind or LDAP and block), both far
//! too slow for the event path, so a background thread does them on demand, at most once per
//! `min_refresh`, and fills the cache; until then the user name falls back to the uid's name
//! once resolved, and the share to the share whose path contains the file. Lookups never run
//! a tool or an NSS query and never wait, except [`Attributor::wait_complete`], which is for
//! callers off the hot path (writing the incident).

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ward_model::{Client, ProcId};

use crate::peer::tcp_peer;
use crate::tools::{share_for_path, SambaTools, Share, SmbStatus};

/// How the attributor works.
#[derive(Clone, Debug)]
pub struct AttributorConfig {
    /// Samba's tools and the smb.conf they read.
    pub tools: SambaTools,
    /// A fixed share map (name → path); `None`: read it with `testparm -s`.
    pub shares: Option<Vec<Share>>,
    /// Minimum time between two `smbstatus` runs.
    pub min_refresh: Duration,
    /// How often the share map from testparm is re-read.
    pub share_refresh: Duration,
    /// The SMB ports whose connections name the client.
    pub ports: Vec<u16>,
}

impl Default for AttributorConfig {
    fn default() -> Self {
        AttributorConfig {
            tools: SambaTools::default(),
            shares: None,
            min_refresh: Duration::from_millis(250),
            share_refresh: Duration::from_secs(60),
            ports: vec![445, 139],
        }
    }
}

/// Where a field of an [`Attribution`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Not known (yet).
    Unknown,
    /// From procfs or the share map: immediate, and good (uid and path are facts).
    Local,
    /// From Samba itself (`smbstatus`): authoritative.
    Samba,
}

/// What is known about the client of one smbd child.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attribution {
    /// The pid of the smbd child.
    pub pid: u32,
    /// The uid it runs as (the client's Unix user), known at once; `None` before session
    /// setup.
    pub uid: Option<u32>,
    /// The client (fields empty while unknown).
    pub client: Client,
    /// Where the user came from.
    pub user_source: Source,
    /// Where the share came from.
    pub share_source: Source,
}

impl Attribution {
    /// Is Samba's word in for both user and share (or for the user, with a share known)?
    pub fn complete(&self) -> bool {
        self.user_source == Source::Samba && self.share_source != Source::Unknown
    }
}

#[derive(Clone, Debug)]
struct Entry {
    start: u64,
    ip: Option<IpAddr>,
    /// When the TCP tables were last read for it (each read walks the kernel's TCP hash:
    /// ≈ 1.4 ms, so a pid without a peer is not re-read on every lookup).
    ip_checked: Instant,
    /// The uid the child runs as (the client's user after session setup; 0 before).
    uid: Option<u32>,
    samba_user: Option<String>,
    tcon_shares: Vec<String>,
    /// smbstatus ran after this entry was made and did not list it (yet).
    samba_checked: bool,
}

#[derive(Default)]
struct State {
    cache: HashMap<u32, Entry>,
    /// uid → user name (None: no such user), filled by the refresher.
    names: HashMap<u32, Option<String>>,
    shares: Vec<Share>,
    shares_at: Option<Instant>,
    want_refresh: bool,
    /// pids to read procfs for in the background (new connections, before any event).
    prefetch: Vec<(u32, u64)>,
    generation: u64,
    last_status: Option<Instant>,
    last_error: Option<String>,
    shutdown: bool,
}

struct Inner {
    cfg: AttributorConfig,
    state: Mutex<State>,
    wake: Condvar,
    done: Condvar,
}

/// Attribution of smbd children to clients, with a background refresher. Cheap to share
/// behind an `Arc`; dropping it stops the refresher.
pub struct Attributor {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Attributor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attributor")
            .field("config", &self.inner.cfg)
            .finish()
    }
}

/// How often a process without a TCP peer is looked up again.
const IP_RECHECK: Duration = Duration::from_secs(1);

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn uid_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("Uid:"))?;
    // Uid: real effective saved fs
    line.split_whitespace().nth(2)?.parse().ok()
}

fn user_name(uid: u32) -> Option<String> {
    if uid == 0 {
        // Before session setup the child still runs as root: that names no client.
        return None;
    }
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

impl Attributor {
    /// Start an attributor (and its refresher thread).
    pub fn new(cfg: AttributorConfig) -> Attributor {
        let mut st = State::default();
        if let Some(s) = &cfg.shares {
            st.shares = s
                .iter()
                .map(|s| Share {
                    name: s.name.clone(),
                    path: std::fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone()),
                })
                .collect();
            st.shares_at = Some(Instant::now());
        } else {
            // Read the share map once up front, off the caller's thread.
            st.want_refresh = true;
        }
        let inner = Arc::new(Inner {
            cfg,
            state: Mutex::new(st),
            wake: Condvar::new(),
            done: Condvar::new(),
        });
        let i2 = inner.clone();
        let thread = std::thread::Builder::new()
            .name("ward-smb-attr".into())
            .spawn(move || refresher(&i2))
            .ok();
        Attributor { inner, thread }
    }

    /// What is known now about the client of smbd child `pid`, optionally for an event on
    /// `path` (absolute and resolved, as fanotify reports it; it names the share). Never blocks on a tool: the address is read from
    /// procfs at once; if Samba's word on user/share is not in yet, a refresh is requested
    /// and a later call (or [`Attributor::wait_complete`]) has it. `None` if the process is
    /// gone and was never seen.
    pub fn lookup(&self, pid: u32, path: Option<&Path>) -> Option<Attribution> {
        let start = ward_sys::procfs::stat(pid).map(|s| s.start);
        self.lookup_at(pid, start, path)
    }

    /// [`Attributor::lookup`] for a process whose identity the caller already knows (pid and
    /// start time, e.g. from the proc connector): no `/proc/PID/stat` read on a cache hit.
    pub fn lookup_id(&self, id: ProcId, path: Option<&Path>) -> Option<Attribution> {
        self.lookup_at(id.pid, Some(id.start), path)
    }

    fn lookup_at(&self, pid: u32, start: Option<u64>, path: Option<&Path>) -> Option<Attribution> {
        let mut st = lock(&self.inner.state);
        let fresh = match (st.cache.get(&pid), start) {
            (Some(e), Some(s)) => e.start != s,
            (Some(_), None) => false, // gone: answer from the cache
            (None, Some(_)) => true,
            (None, None) => return None,
        };
        if fresh {
            drop(st);
            // procfs reads outside the lock.
            let e = new_entry(pid, start.unwrap_or(0), &self.inner.cfg.ports);
            st = lock(&self.inner.state);
            st.cache.insert(pid, e);
        }
        let e = st.cache.get_mut(&pid)?;
        if e.ip.is_none() && start.is_some() && e.ip_checked.elapsed() > IP_RECHECK {
            e.ip_checked = Instant::now();
            e.ip = tcp_peer(pid, &self.inner.cfg.ports);
        }
        if matches!(e.uid, None | Some(0)) && start.is_some() {
            e.uid = uid_of(pid);
        }
        let e = e.clone();
        // uid → name goes through NSS (winbind, LDAP...), which may block: only the
        // refresher resolves it; here the cache answers.
        let name = e.uid.and_then(|u| st.names.get(&u).cloned().flatten());
        let unresolved = e
            .uid
            .map(|u| u != 0 && !st.names.contains_key(&u))
            .unwrap_or(false);
        let a = attribution(pid, &e, name, &st.shares, path);
        if (!a.complete() && !e.samba_checked) || unresolved {
            st.want_refresh = true;
            self.inner.wake.notify_one();
        }
        Some(a)
    }

    /// Like [`Attributor::lookup`], but wait up to `bound` for Samba's word (one refresh
    /// after the call). For callers off the hot path. Returns what is known by then.
    pub fn wait_complete(
        &self,
        pid: u32,
        path: Option<&Path>,
        bound: Duration,
    ) -> Option<Attribution> {
        let deadline = Instant::now() + bound;
        let mut a = self.lookup(pid, path)?;
        let gen0 = lock(&self.inner.state).generation;
        // Two generations: the refresh running now may have started before our request.
        while !a.complete() {
            let mut st = lock(&self.inner.state);
            if st.generation >= gen0 + 2 || st.shutdown {
                break;
            }
            st.want_refresh = true;
            self.inner.wake.notify_one();
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let (g, _) = self
                .inner
                .done
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|p| p.into_inner());
            drop(g);
            a = self.lookup(pid, path)?;
        }
        Some(a)
    }

    /// Read procfs for a new smbd child in the background (call it when the master forks:
    /// the connection exists then), so that the first lookup for it is a cache hit.
    /// Never blocks.
    pub fn prefetch(&self, id: ProcId) {
        let mut st = lock(&self.inner.state);
        if st
            .cache
            .get(&id.pid)
            .map(|e| e.start == id.start)
            .unwrap_or(false)
        {
            return;
        }
        st.prefetch.push((id.pid, id.start));
        self.inner.wake.notify_one();
    }

    /// Forget `pid` (it exited).
    pub fn forget(&self, pid: u32) {
        lock(&self.inner.state).cache.remove(&pid);
    }

    /// The smbd children in the cache whose client address is `ip` (live ones only).
    pub fn pids_of(&self, ip: IpAddr) -> Vec<u32> {
        let st = lock(&self.inner.state);
        let mut v: Vec<u32> = st
            .cache
            .iter()
            .filter(|(p, e)| {
                e.ip == Some(ip) && ward_sys::procfs::stat(**p).map(|s| s.start) == Some(e.start)
            })
            .map(|(p, _)| *p)
            .collect();
        v.sort_unstable();
        v
    }

    /// The last error of the refresher (smbstatus or testparm failing), if any.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.inner.state).last_error.clone()
    }

    /// The share map in use.
    pub fn shares(&self) -> Vec<Share> {
        lock(&self.inner.state).shares.clone()
    }
}

impl Drop for Attributor {
    fn drop(&mut self) {
        lock(&self.inner.state).shutdown = true;
        self.inner.wake.notify_all();
        self.inner.done.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn new_entry(pid: u32, start: u64, ports: &[u16]) -> Entry {
    Entry {
        start,
        ip: tcp_peer(pid, ports),
        ip_checked: Instant::now(),
        uid: uid_of(pid),
        samba_user: None,
        tcon_shares: Vec::new(),
        samba_checked: false,
    }
}

fn attribution(
    pid: u32,
    e: &Entry,
    uid_name: Option<String>,
    shares: &[Share],
    path: Option<&Path>,
) -> Attribution {
    let (user, user_source) = match (&e.samba_user, &uid_name) {
        (Some(u), _) => (u.clone(), Source::Samba),
        (None, Some(u)) => (u.clone(), Source::Local),
        (None, None) => (String::new(), Source::Unknown),
    };
    // The path names the share best (a session may have several tree connects).
    // Event paths come from the kernel, already absolute and resolved: no canonicalize here.
    let by_path = path.and_then(|p| share_for_path(shares, p).map(|s| s.name.clone()));
    let (share, share_source) = match (by_path, e.tcon_shares.as_slice()) {
        (Some(s), _) => (s, Source::Local),
        (None, [one]) => (one.clone(), Source::Samba),
        (None, _) => (String::new(), Source::Unknown),
    };
    Attribution {
        pid,
        uid: e.uid.filter(|u| *u != 0),
        client: Client {
            ip: e.ip.map(|i| i.to_string()).unwrap_or_default(),
            user,
            share,
        },
        user_source,
        share_source,
    }
}

fn apply_status(st: &mut State, status: &SmbStatus) {
    for (pid, e) in st.cache.iter_mut() {
        if let Some(s) = status.sessions.iter().find(|s| s.pid == *pid) {
            if !s.username.is_empty() {
                e.samba_user = Some(s.username.clone());
            }
        }
        let mut shares: Vec<String> = status
            .tcons
            .iter()
            .filter(|t| t.pid == *pid)
            .map(|t| t.service.clone())
            .collect();
        shares.sort();
        shares.dedup();
        if !shares.is_empty() {
            e.tcon_shares = shares;
        }
        e.samba_checked = true;
    }
}

fn refresher(inner: &Inner) {
    loop {
        let mut st = lock(&inner.state);
        while !st.want_refresh && st.prefetch.is_empty() && !st.shutdown {
            st = inner.wake.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        if st.shutdown {
            return;
        }
        if !st.prefetch.is_empty() {
            let todo = std::mem::take(&mut st.prefetch);
            drop(st);
            let made: Vec<(u32, Entry)> = todo
                .into_iter()
                .map(|(pid, start)| (pid, new_entry(pid, start, &inner.cfg.ports)))
                .collect();
            let mut st = lock(&inner.state);
            for (pid, e) in made {
                let stale = st
                    .cache
                    .get(&pid)
                    .map(|o| o.start != e.start)
                    .unwrap_or(true);
                if stale {
                    st.cache.insert(pid, e);
                }
            }
            st.want_refresh = true;
            continue;
        }
        // Rate limit: at most one smbstatus per min_refresh; a prefetch arriving meanwhile
        // is served at once (the wait is on the condvar).
        if let Some(last) = st.last_status {
            let next = last + inner.cfg.min_refresh;
            let now = Instant::now();
            if now < next {
                let (g, _) = inner
                    .wake
                    .wait_timeout(st, next - now)
                    .unwrap_or_else(|p| p.into_inner());
                drop(g);
                continue;
            }
        }
        st.want_refresh = false;
        // Mark entries existing now: only they are checked by this run.
        let before: Vec<u32> = st.cache.keys().copied().collect();
        let mut uids: Vec<u32> = st
            .cache
            .values()
            .filter_map(|e| e.uid)
            .filter(|u| *u != 0 && !st.names.contains_key(u))
            .collect();
        uids.sort_unstable();
        uids.dedup();
        let need_shares = inner.cfg.shares.is_none()
            && st
                .shares_at
                .map(|t| t.elapsed() > inner.cfg.share_refresh)
                .unwrap_or(true);
        drop(st);

        let shares = if need_shares {
            Some(inner.cfg.tools.shares())
        } else {
            None
        };
        let status = inner.cfg.tools.status();
        let names: Vec<(u32, Option<String>)> =
            uids.into_iter().map(|u| (u, user_name(u))).collect();

        let mut st = lock(&inner.state);
        st.last_status = Some(Instant::now());
        if st.names.len() > 65536 {
            st.names.clear();
        }
        st.names.extend(names);
        let mut err = None;
        match shares {
            Some(Ok(s)) => {
                st.shares = s;
                st.shares_at = Some(Instant::now());
            }
            Some(Err(e)) => {
                st.shares_at = Some(Instant::now());
                err = Some(e.to_string());
            }
            None => {}
        }
        match status {
            Ok(s) => {
                // Entries made during the run are checked by the next one.
                let saved: Vec<(u32, bool)> = st
                    .cache
                    .iter()
                    .map(|(p, e)| (*p, e.samba_checked))
                    .collect();
                apply_status(&mut st, &s);
                for (p, was) in saved {
                    if !before.contains(&p) {
                        if let Some(e) = st.cache.get_mut(&p) {
                            e.samba_checked = was;
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!("smb attribution: {e}");
                err = Some(e.to_string());
            }
        }
        // Drop entries of processes that are gone (bounded cache).
        if st.cache.len() > 4096 {
            st.cache
                .retain(|p, e| ward_sys::procfs::stat(*p).map(|s| s.start) == Some(e.start));
        }
        st.last_error = err;
        st.generation += 1;
        inner.done.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::{Session, Tcon};

    fn entry() -> Entry {
        Entry {
            start: 1,
            ip: Some("10.0.0.5".parse().unwrap()),
            ip_checked: Instant::now(),
            uid: Some(1000),
            samba_user: None,
            tcon_shares: vec![],
            samba_checked: false,
        }
    }

    #[test]
    fn fallbacks_then_samba_word() {
        let shares = vec![Share {
            name: "data".into(),
            path: "/srv/data".into(),
        }];
        let e = entry();
        let a = attribution(
            7,
            &e,
            Some("alice".into()),
            &shares,
            Some(Path::new("/srv/data/x.txt")),
        );
        assert_eq!(a.client.ip, "10.0.0.5");
        assert_eq!(a.client.user, "alice");
        assert_eq!(a.client.share, "data");
        assert_eq!(a.user_source, Source::Local);
        assert!(!a.complete());

        let mut st = State::default();
        st.cache.insert(7, e);
        let status = SmbStatus {
            sessions: vec![Session {
                pid: 7,
                username: "HOSP\\alice".into(),
                remote_machine: "10.0.0.5".into(),
                hostname: "ipv4:10.0.0.5:5000".into(),
                uid: Some(1000),
            }],
            tcons: vec![Tcon {
                pid: 7,
                service: "pacs".into(),
                machine: "10.0.0.5".into(),
            }],
        };
        apply_status(&mut st, &status);
        let e = &st.cache[&7];
        let a = attribution(7, e, None, &shares, None);
        assert_eq!(a.client.user, "HOSP\\alice");
        assert_eq!(a.client.share, "pacs");
        assert!(a.complete());
        // With a path, the path's share wins.
        let a = attribution(7, e, None, &shares, Some(Path::new("/srv/data/y")));
        assert_eq!(a.client.share, "data");
    }

    #[test]
    fn unknown_process_is_none_and_root_uid_names_nobody() {
        let at = Attributor::new(AttributorConfig {
            shares: Some(vec![]),
            ..AttributorConfig::default()
        });
        assert!(at.lookup(u32::MAX, None).is_none());
        assert_eq!(user_name(0), None);
    }

    #[test]
    fn failing_smbstatus_is_reported_not_fatal() {
        let at = Attributor::new(AttributorConfig {
            tools: SambaTools {
                smbstatus: "/nonexistent/smbstatus".into(),
                testparm: "/nonexistent/testparm".into(),
                ..SambaTools::default()
            },
            ..AttributorConfig::default()
        });
        // Our own process: no peer, but a valid lookup that completes with what is known.
        let a = at
            .wait_complete(std::process::id(), None, Duration::from_secs(3))
            .unwrap();
        assert_eq!(a.client.ip, "");
        assert!(!a.complete());
        assert!(at.last_error().unwrap().contains("/nonexistent"));
    }
}
