//! Scratch filesystems: a loop-mounted ext4, xfs or btrfs image (or a tmpfs) under a
//! fresh temporary directory, unmounted and deleted when the guard is dropped — also
//! when a test fails or panics. ward's demo, `ward eval` and the integration tests mark
//! only filesystems made here, never `/` or a real data directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Mounted scratch filesystems of this process: (mount point, base directory).
static LIVE: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

/// On SIGINT/SIGTERM (Ctrl-C on `ward demo`/`eval`/`bench`), remove every scratch
/// filesystem of this process before exiting with status 130, so an interrupted run leaves
/// no mount, loop device or image behind. Call once, early.
pub fn cleanup_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            let live: Vec<_> = LIVE.lock().map(|v| v.clone()).unwrap_or_default();
            for (mnt, dir) in live {
                teardown(&mnt, &dir);
            }
            std::process::exit(130);
        }
    });
}

/// Kill the users of `mnt`, unmount it (lazily if it stays busy) and delete `dir`.
fn teardown(mnt: &Path, dir: &Path) {
    kill_users(mnt);
    let mut ok = false;
    for _ in 0..20 {
        if Command::new("umount")
            .arg(mnt)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            ok = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        kill_users(mnt);
    }
    if !ok {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(mnt)
            .stderr(std::process::Stdio::null())
            .status();
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Kinds of scratch filesystem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsKind {
    Ext4,
    Xfs,
    Btrfs,
    Tmpfs,
}

impl FsKind {
    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Tmpfs => "tmpfs",
        }
    }

    pub fn parse(s: &str) -> Option<FsKind> {
        match s {
            "ext4" => Some(FsKind::Ext4),
            "xfs" => Some(FsKind::Xfs),
            "btrfs" => Some(FsKind::Btrfs),
            "tmpfs" => Some(FsKind::Tmpfs),
            _ => None,
        }
    }

    fn mkfs(self) -> Option<(&'static str, &'static [&'static str], &'static str)> {
        match self {
            FsKind::Ext4 => Some(("mkfs.ext4", &["-q", "-F"], "e2fsprogs")),
            FsKind::Xfs => Some(("mkfs.xfs", &["-q", "-f"], "xfsprogs")),
            FsKind::Btrfs => Some(("mkfs.btrfs", &["-q", "-f"], "btrfs-progs")),
            FsKind::Tmpfs => None,
        }
    }
}

/// A mounted scratch filesystem. Dropping it unmounts it and deletes the image.
#[derive(Debug)]
pub struct ScratchFs {
    dir: PathBuf,
    mnt: PathBuf,
    kind: FsKind,
    mounted: bool,
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "{what} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

impl ScratchFs {
    /// Create and mount a scratch filesystem of `size_mib` MiB (at least 320 MiB for
    /// xfs, which refuses smaller). The image is sparse: it uses only what is written.
    /// Needs root.
    pub fn create(kind: FsKind, size_mib: u64) -> Result<ScratchFs, String> {
        let size_mib = if kind == FsKind::Xfs {
            size_mib.max(320)
        } else {
            size_mib
        };
        let base = std::env::temp_dir().join(format!(
            "ward-scratch-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
        let mnt = base.join("mnt");
        std::fs::create_dir(&mnt).map_err(|e| format!("creating {}: {e}", mnt.display()))?;
        let mut fs = ScratchFs {
            dir: base.clone(),
            mnt: mnt.clone(),
            kind,
            mounted: false,
        };
        match kind.mkfs() {
            None => {
                let size = format!("size={size_mib}m");
                run(
                    Command::new("mount")
                        .args(["-t", "tmpfs", "-o", &size, "ward-scratch"])
                        .arg(&mnt),
                    "mounting tmpfs",
                )?;
            }
            Some((mkfs, args, package)) => {
                let img = base.join("fs.img");
                let f = std::fs::File::create(&img).map_err(|e| format!("creating image: {e}"))?;
                f.set_len(size_mib << 20)
                    .map_err(|e| format!("sizing image: {e}"))?;
                drop(f);
                run(Command::new(mkfs).args(args).arg(&img), mkfs).map_err(|e| {
                    if which(mkfs) {
                        e
                    } else {
                        format!("{mkfs} not found: install the Debian package {package}")
                    }
                })?;
                run(
                    Command::new("mount")
                        .args(["-o", "loop"])
                        .arg(&img)
                        .arg(&mnt),
                    "mounting the scratch image (needs root and loop devices)",
                )?;
            }
        }
        fs.mounted = true;
        if let Ok(mut live) = LIVE.lock() {
            live.push((fs.mnt.clone(), fs.dir.clone()));
        }
        Ok(fs)
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.mnt
    }

    pub fn kind(&self) -> FsKind {
        self.kind
    }
}

fn which(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).exists()
        || Path::new("/sbin").join(tool).exists()
}

/// Kill every process that has a file, its working directory or its root inside `mnt`,
/// or names it on its command line. Only processes started by our own tests and tools
/// can be there (the mount is private and fresh), e.g. the `gpg-agent --homedir MNT/...`
/// a simulated attack daemonized before it was killed (its inotify watch keeps the
/// filesystem busy).
fn kill_users(mnt: &Path) {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let inside = |l: &Path| std::fs::read_link(l).is_ok_and(|t| t.starts_with(mnt));
        let mnt_bytes = mnt.as_os_str().as_encoded_bytes();
        let named = std::fs::read(p.path().join("cmdline")).is_ok_and(|c| {
            c.split(|&b| b == 0)
                .any(|arg| arg.windows(mnt_bytes.len()).any(|w| w == mnt_bytes))
        });
        let uses = named
            || inside(&p.path().join("cwd"))
            || inside(&p.path().join("root"))
            || std::fs::read_dir(p.path().join("fd"))
                .map(|fds| fds.flatten().any(|fd| inside(&fd.path())))
                .unwrap_or(false);
        if uses {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

impl Drop for ScratchFs {
    fn drop(&mut self) {
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|(m, _)| m != &self.mnt);
        }
        if self.mounted {
            teardown(&self.mnt, &self.dir);
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
