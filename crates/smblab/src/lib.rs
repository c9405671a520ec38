//! # ward-smblab
//!
//! Test and demo infrastructure for ward's Samba defence: a **real** `smbd` with a config of
//! its own, listening only on veth addresses in the root network namespace, and SMB clients
//! (Python scripts using `smbprotocol`) running in network namespaces the lab creates, one
//! per client, each with its own address. This is what the held-out tests do (BRIEF §6), and
//! what `ward demo --smb` and the end-to-end tests of the agent build on.
//!
//! What it owns: the lab's temp dir (smb.conf, Samba's private/lock/state/cache/pid dirs, the
//! passdb, logs, the client scripts), the network namespaces and veth pairs it created (names
//! `wl<pid>-<k>`), and the smbd it started. [`Lab`]'s `Drop` (also on panic) ends smbd
//! (SIGTERM, then SIGKILL after a timeout), deletes the namespaces and veths and removes the
//! temp dir. Leftovers of a lab whose process was killed are swept at the next start.
//!
//! What it must never do: touch the system's `/etc/samba/smb.conf` or its Samba state, create
//! or change any Unix user (the test users `ward-smb1`/`ward-smb2` come from
//! `scripts/setup-smb.sh`), send traffic anywhere but between its own namespaces, or change
//! files outside the share directories the caller gives (which the caller creates on a
//! scratch filesystem). It is not product code: nothing in the agent depends on it.
//!
//! ```no_run
//! use ward_smblab::{Lab, LabOptions, ShareSpec};
//! let dir = tempfile::tempdir().unwrap();
//! let lab = Lab::start(LabOptions::new(vec![ShareSpec::new("data", dir.path())], 2)).unwrap();
//! let out = lab.client(0).run("honest.py", &["--seconds", "2"], std::time::Duration::from_secs(30)).unwrap();
//! assert_eq!(out.summary().unwrap()["failed"], 0);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod net;
mod proc;
mod script;

use std::fs;
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub use script::{ClientProc, ScriptOutput};

/// What can go wrong while setting up or using the lab. Every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The machine lacks something the lab needs (not root, Samba or smbprotocol missing...).
    #[error("Samba lab unavailable: {0} (run scripts/setup-smb.sh as root)")]
    Unavailable(String),
    /// A command the lab runs failed.
    #[error("`{cmd}` failed: {detail}")]
    Command {
        /// The command line.
        cmd: String,
        /// Its exit status and stderr.
        detail: String,
    },
    /// smbd did not come up.
    #[error("smbd did not start listening within {secs:.1} s: {log}")]
    SmbdStart {
        /// How long the lab waited.
        secs: f64,
        /// The end of smbd's log.
        log: String,
    },
    /// A client script ran longer than its bound.
    #[error("client script {script} still running after {secs:.1} s; it was killed. Its output: {lines:?}; stderr: {stderr}")]
    Timeout {
        /// The script.
        script: String,
        /// The bound.
        secs: f64,
        /// The JSON lines it printed.
        lines: Vec<serde_json::Value>,
        /// Its stderr.
        stderr: String,
    },
    /// Bad options.
    #[error("invalid lab options: {0}")]
    Options(String),
    /// A file system or process error.
    #[error("{what}: {source}")]
    Io {
        /// What the lab was doing.
        what: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Shorthand for the lab's results.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// One share of the lab's smbd.
#[derive(Clone, Debug)]
pub struct ShareSpec {
    /// The share's name (`\\server\NAME`).
    pub name: String,
    /// The directory it exports (the caller creates it, on a scratch filesystem).
    pub path: PathBuf,
    /// Make the tree writable by every lab user (`chmod -R a+rwX` of `path`, which must be a
    /// scratch directory). Default true: the corpus is usually created by root.
    pub open_permissions: bool,
    /// Extra lines for the share's section (e.g. `veto files = /.ward-vault/`).
    pub extra: Vec<String>,
}

impl ShareSpec {
    /// A writable share `name` exporting `path`.
    pub fn new(name: &str, path: &Path) -> ShareSpec {
        ShareSpec {
            name: name.to_string(),
            path: path.to_path_buf(),
            open_permissions: true,
            extra: Vec::new(),
        }
    }
}

/// A Samba account of the lab (its Unix user must exist).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabUser {
    /// The user name (also the Unix user).
    pub name: String,
    /// Its SMB password.
    pub password: String,
}

/// The Unix users `scripts/setup-smb.sh` creates for the lab.
pub const TEST_USERS: [&str; 2] = ["ward-smb1", "ward-smb2"];

/// How to build a lab.
#[derive(Clone, Debug)]
pub struct LabOptions {
    /// The shares (at least one).
    pub shares: Vec<ShareSpec>,
    /// Number of client namespaces (1..=16).
    pub clients: usize,
    /// Samba accounts; default: [`TEST_USERS`] with passwords `<name>-pw`.
    pub users: Vec<LabUser>,
    /// Extra `[global]` lines for smb.conf.
    pub extra_global: Vec<String>,
    /// How long to wait for smbd to listen.
    pub start_timeout: Duration,
}

impl LabOptions {
    /// A lab with these shares and `clients` client namespaces, default users.
    pub fn new(shares: Vec<ShareSpec>, clients: usize) -> LabOptions {
        LabOptions {
            shares,
            clients,
            users: TEST_USERS
                .iter()
                .map(|u| LabUser {
                    name: u.to_string(),
                    password: format!("{u}-pw"),
                })
                .collect(),
            extra_global: Vec::new(),
            start_timeout: Duration::from_secs(15),
        }
    }
}

/// Why the lab cannot run here, or `None` when it can: root, `ip`, `smbd`, `smbpasswd`,
/// a Python with `smbprotocol`, and the test users. Tests print this and pass (skip).
pub fn unavailable_reason() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("not root".into());
    }
    for tool in [
        "ip",
        "smbd",
        "smbpasswd",
        "smbstatus",
        "smbcontrol",
        "testparm",
    ] {
        if proc::which(tool).is_none() {
            return Some(format!("`{tool}` not found"));
        }
    }
    if let Err(e) = script::python() {
        return Some(e.to_string());
    }
    for u in TEST_USERS {
        if nix::unistd::User::from_name(u).ok().flatten().is_none() {
            return Some(format!("Unix test user {u} missing"));
        }
    }
    None
}

/// One client namespace: its name, its veth pair and the two addresses of its /30.
#[derive(Clone, Debug)]
pub struct ClientNs {
    /// The network namespace's name.
    pub netns: String,
    /// The veth end in the root namespace (where smbd listens).
    pub host_if: String,
    /// The client's address (inside the namespace).
    pub ip: Ipv4Addr,
    /// The server's address on this client's link (root namespace side).
    pub server_ip: Ipv4Addr,
}

static LAB_SEQ: AtomicU32 = AtomicU32::new(0);

/// A running Samba lab. Dropping it tears everything down.
pub struct Lab {
    dir: Option<tempfile::TempDir>,
    conf: PathBuf,
    clients: Vec<ClientNs>,
    shares: Vec<ShareSpec>,
    users: Vec<LabUser>,
    smbd: Option<Child>,
    python: PathBuf,
    stopped: bool,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("conf", &self.conf)
            .field("clients", &self.clients)
            .field("smbd", &self.smbd_pid())
            .finish()
    }
}

impl Lab {
    /// Start a lab: namespaces and veths, smb.conf, passdb, smbd; returns once smbd listens
    /// on every client link.
    pub fn start(opts: LabOptions) -> Result<Lab> {
        if let Some(why) = unavailable_reason() {
            return Err(Error::Unavailable(why));
        }
        if opts.shares.is_empty() || opts.clients == 0 || opts.clients > 16 {
            return Err(Error::Options(
                "need at least one share and 1..=16 clients".into(),
            ));
        }
        for s in &opts.shares {
            if !s.path.is_dir() {
                return Err(Error::Options(format!(
                    "share {} path {} is not a directory (create it first)",
                    s.name,
                    s.path.display()
                )));
            }
        }
        net::sweep_stale();
        let python = script::python()?;
        let pid = std::process::id();
        let dir = tempfile::Builder::new()
            .prefix(&format!("ward-smblab-{pid}-"))
            .tempdir()
            .map_err(io_err("creating the lab's temp dir"))?;
        let mut lab = Lab {
            conf: dir.path().join("smb.conf"),
            dir: Some(dir),
            clients: Vec::new(),
            shares: opts.shares.clone(),
            users: opts.users.clone(),
            smbd: None,
            python,
            stopped: false,
        };
        // From here on, Drop cleans up whatever was made.
        for _ in 0..opts.clients {
            let k = LAB_SEQ.fetch_add(1, Ordering::Relaxed);
            let c = net::create_client(&format!("wl{pid}-{k}"))?;
            lab.clients.push(c);
        }
        lab.write_config(&opts)?;
        for s in &lab.shares {
            if s.open_permissions {
                proc::run(Command::new("chmod").arg("-R").arg("a+rwX").arg(&s.path))?;
            }
        }
        for u in &lab.users {
            proc::run_stdin(
                Command::new("smbpasswd")
                    .arg("-c")
                    .arg(&lab.conf)
                    .args(["-a", "-s"])
                    .arg(&u.name),
                &format!("{0}\n{0}\n", u.password),
            )?;
        }
        script::install(&lab.dir().join("py"))?;
        lab.start_smbd(opts.start_timeout)?;
        Ok(lab)
    }

    fn dir(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/"))
    }

    fn write_config(&self, opts: &LabOptions) -> Result<()> {
        let d = self.dir();
        for sub in ["private", "lock", "state", "cache", "pid", "log", "ncalrpc"] {
            fs::create_dir_all(d.join(sub)).map_err(io_err("creating the lab's Samba dirs"))?;
        }
        let ifaces: Vec<String> = self
            .clients
            .iter()
            .map(|c| c.server_ip.to_string())
            .collect();
        let mut c = String::new();
        c.push_str("# ward-smblab: a throwaway Samba config; never the system's.\n[global]\n");
        let d = d.display();
        for line in [
            "netbios name = WARDLAB".to_string(),
            "workgroup = WARDLABWG".to_string(),
            "server role = standalone server".to_string(),
            format!("interfaces = {}", ifaces.join(" ")),
            "bind interfaces only = yes".to_string(),
            "smb ports = 445".to_string(),
            "disable netbios = yes".to_string(),
            "server min protocol = SMB2_02".to_string(),
            format!("private dir = {d}/private"),
            format!("lock directory = {d}/lock"),
            format!("state directory = {d}/state"),
            format!("cache directory = {d}/cache"),
            format!("pid directory = {d}/pid"),
            format!("ncalrpc dir = {d}/ncalrpc"),
            format!("log file = {d}/log/log.%m"),
            format!("passdb backend = tdbsam:{d}/private/passdb.tdb"),
            "map to guest = never".to_string(),
            "load printers = no".to_string(),
            "printing = bsd".to_string(),
            "printcap name = /dev/null".to_string(),
            "disable spoolss = yes".to_string(),
            "rpc start on demand helpers = no".to_string(),
            "usershare path =".to_string(),
            "log level = 1".to_string(),
        ]
        .into_iter()
        .chain(opts.extra_global.iter().cloned())
        {
            c.push_str("  ");
            c.push_str(&line);
            c.push('\n');
        }
        for s in &self.shares {
            c.push_str(&format!(
                "\n[{}]\n  path = {}\n  read only = no\n  browseable = yes\n",
                s.name,
                s.path.display()
            ));
            for line in &s.extra {
                c.push_str("  ");
                c.push_str(line);
                c.push('\n');
            }
        }
        fs::write(&self.conf, c).map_err(io_err("writing the lab's smb.conf"))
    }

    fn start_smbd(&mut self, timeout: Duration) -> Result<()> {
        let log = self.dir().join("log").join("smbd.out");
        let out = fs::File::create(&log).map_err(io_err("creating smbd's log"))?;
        let err = out.try_clone().map_err(io_err("creating smbd's log"))?;
        let smbd = proc::which("smbd").unwrap_or_else(|| PathBuf::from("/usr/sbin/smbd"));
        // Its own process group: smbd signals its whole group (kill(0, SIGTERM)) when a
        // server process exits, so it must never share the test's group.
        let child = Command::new(smbd)
            .process_group(0)
            .args(["--foreground", "--no-process-group", "--debug-stdout", "-s"])
            .arg(&self.conf)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(io_err("starting smbd"))?;
        let pid = child.id();
        self.smbd = Some(child);
        let want: Vec<Ipv4Addr> = self.clients.iter().map(|c| c.server_ip).collect();
        let t0 = Instant::now();
        loop {
            if net::listening(pid, &want, 445) {
                return Ok(());
            }
            let exited = self
                .smbd
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
                .is_some();
            if exited || t0.elapsed() > timeout {
                let text = fs::read_to_string(&log).unwrap_or_default();
                let tail: String = text
                    .lines()
                    .rev()
                    .take(12)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join(" | ");
                return Err(Error::SmbdStart {
                    secs: t0.elapsed().as_secs_f64(),
                    log: if exited {
                        format!("smbd exited; log: {tail}")
                    } else {
                        tail
                    },
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The lab's smb.conf (pass it as `-s` to smbstatus, smbcontrol, testparm).
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// The smbd master's pid.
    pub fn smbd_pid(&self) -> Option<u32> {
        self.smbd.as_ref().map(|c| c.id())
    }

    /// The client namespaces.
    pub fn clients(&self) -> &[ClientNs] {
        &self.clients
    }

    /// The shares.
    pub fn shares(&self) -> &[ShareSpec] {
        &self.shares
    }

    /// The Samba accounts.
    pub fn users(&self) -> &[LabUser] {
        &self.users
    }

    /// The Python interpreter the client scripts run with.
    pub fn python(&self) -> &Path {
        &self.python
    }

    /// The lab's temp dir (logs under `log/`).
    pub fn path(&self) -> &Path {
        self.dir()
    }

    /// smbd's per-connection children now (pid, parent is the master, comm `smbd`).
    pub fn smbd_children(&self) -> Vec<u32> {
        match self.smbd_pid() {
            Some(m) => proc::children(m)
                .into_iter()
                .filter(|p| proc::comm(*p).as_deref() == Some("smbd"))
                .collect(),
            None => Vec::new(),
        }
    }

    /// The smbd children serving client namespace `n` now (their TCP peer is its address).
    pub fn smbd_children_of(&self, n: usize) -> Vec<u32> {
        let Some(c) = self.clients.get(n) else {
            return Vec::new();
        };
        self.smbd_children()
            .into_iter()
            .filter(|p| net::peers(*p).contains(&c.ip))
            .collect()
    }

    /// Wait up to `bound` for an smbd child serving client `n`; its pid.
    pub fn wait_smbd_child_of(&self, n: usize, bound: Duration) -> Option<u32> {
        let t0 = Instant::now();
        loop {
            if let Some(p) = self.smbd_children_of(n).into_iter().max() {
                return Some(p);
            }
            if t0.elapsed() > bound {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A handle to run scripts in client namespace `n` as lab user `n % users` on the first
    /// share. Panics if `n` is out of range (a test bug).
    pub fn client(&self, n: usize) -> LabClient<'_> {
        let c = &self.clients[n];
        let u = &self.users[n % self.users.len()];
        LabClient {
            lab: self,
            ns: c.clone(),
            user: u.clone(),
            share: self.shares[0].name.clone(),
        }
    }

    /// End smbd and remove everything the lab made. Idempotent; `Drop` calls it too.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(mut child) = self.smbd.take() {
            proc::stop_smbd(&mut child, &self.conf);
        }
        for c in self.clients.drain(..) {
            net::delete_client(&c);
        }
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs the lab's client scripts in one client namespace with one user's credentials.
#[derive(Clone, Debug)]
pub struct LabClient<'a> {
    lab: &'a Lab,
    /// The namespace.
    pub ns: ClientNs,
    /// The account used for `--user`/`--password`.
    pub user: LabUser,
    /// The share passed as `--share`.
    pub share: String,
}

impl LabClient<'_> {
    /// Use another lab account.
    pub fn as_user(mut self, user: &LabUser) -> Self {
        self.user = user.clone();
        self
    }

    /// Use another share.
    pub fn on_share(mut self, share: &str) -> Self {
        self.share = share.to_string();
        self
    }

    fn command(&self, script: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns.netns])
            .arg(&self.lab.python)
            .arg("-u")
            .arg(self.lab.dir().join("py").join(script))
            .args(["--server", &self.ns.server_ip.to_string()])
            .args(["--share", &self.share])
            .args(["--user", &self.user.name])
            .args(["--password", &self.user.password])
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Start `script` (`attacker.py`, `honest.py`, `bulk.py`) with `args` (server, share,
    /// user and password are added); its JSON lines are collected as they come.
    pub fn spawn(&self, script: &str, args: &[&str]) -> Result<ClientProc> {
        ClientProc::spawn(script, self.command(script, args))
    }

    /// Run `script` to the end, killing it after `timeout`.
    pub fn run(&self, script: &str, args: &[&str], timeout: Duration) -> Result<ScriptOutput> {
        self.spawn(script, args)?.wait(timeout)
    }
}

/// A tmpfs mounted on a fresh temp dir, for share contents; unmounted (and the dir removed)
/// on drop, also on panic. Root only.
#[derive(Debug)]
pub struct ScratchTmpfs {
    dir: Option<tempfile::TempDir>,
}

impl ScratchTmpfs {
    /// Mount a tmpfs of `size_mib` MiB.
    pub fn new(size_mib: u32) -> Result<ScratchTmpfs> {
        let dir = tempfile::Builder::new()
            .prefix("ward-smblab-fs-")
            .tempdir()
            .map_err(io_err("creating a mount point"))?;
        proc::run(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o"])
                .arg(format!("size={size_mib}m,mode=0755"))
                .arg("ward-smblab")
                .arg(dir.path()),
        )?;
        Ok(ScratchTmpfs { dir: Some(dir) })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir
            .as_ref()
            .map(|d| d.path())
            .unwrap_or(Path::new("/nonexistent"))
    }
}

impl Drop for ScratchTmpfs {
    fn drop(&mut self) {
        if let Some(d) = self.dir.take() {
            let _ = Command::new("umount").arg(d.path()).status();
            let _ = d.close();
        }
    }
}
