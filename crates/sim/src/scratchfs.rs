//! Scratch filesystems: a loop-mounted ext4, xfs or btrfs image (or a tmpfs) under a
//! fresh temporary directory, unmounted and deleted when the guard is dropped — also
//! when a test fails or panics. ward's demo, `ward eval` and the integration tests mark
//! only filesystems made here, never `/` or a real data directory.

use std::path::{Path, PathBuf};
use std::process::Command;

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

impl Drop for ScratchFs {
    fn drop(&mut self) {
        if self.mounted {
            // A process still using the fs (a test that failed mid-way) would make a
            // plain umount fail: retry, then detach lazily so nothing is left mounted.
            let mut ok = false;
            for _ in 0..20 {
                if Command::new("umount")
                    .arg(&self.mnt)
                    .status()
                    .is_ok_and(|s| s.success())
                {
                    ok = true;
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if !ok {
                let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
