//! JSON lines (native or ECS) to a file, rotated by size.
//!
//! * Rotation: before a line would take the file past `max_size_mib`, `FILE` is renamed
//!   to `FILE.1` (`FILE.1` to `FILE.2`, ... up to `FILE.<keep>`, the oldest is deleted) and
//!   a new `FILE` is started. `keep = 0` keeps no old file.
//! * Durability (fsync policy): each event is written with one `write` and, with
//!   `fsync = true` (the default), `fdatasync`ed before the sink reports it delivered;
//!   agent events are rare (a few per incident), so this costs nothing measurable. After a
//!   rotation the directory is synced too, so a crash never loses a rotated file.
//! * External rotation (logrotate moving the file away) is noticed on the next event: the
//!   sink reopens `FILE` when the path no longer names the file it has open.
//! * New files are created with mode 0640.

use crate::config::Format;
use crate::ecs::EcsContext;
use crate::stamp::Stamped;
use crate::{Sink, SinkError};
use serde::Deserialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use ward_model::AgentEvent;

fn default_size() -> u64 {
    100
}

fn default_keep() -> u32 {
    5
}

fn yes() -> bool {
    true
}

/// `[[outputs]] type = "file"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file (its directory must exist), e.g. `/var/log/ward/events.json`.
    pub path: PathBuf,
    /// `native` (default) or `ecs`.
    #[serde(default)]
    pub format: Format,
    /// Rotate before the file would exceed this many MiB (default 100; at least 1).
    #[serde(default = "default_size")]
    pub max_size_mib: u64,
    /// Rotated files kept (`FILE.1` … `FILE.<keep>`; default 5).
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// Sync each event to disk before reporting it written (default true).
    #[serde(default = "yes")]
    pub fsync: bool,
}

/// The rotating file sink.
pub struct RotatingFile {
    path: PathBuf,
    format: Format,
    max_bytes: u64,
    keep: u32,
    fsync: bool,
    ctx: EcsContext,
    file: Option<(File, u64, u64)>, // file, inode, size
}

fn open(path: &Path) -> std::io::Result<(File, u64, u64)> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)?;
    let m = f.metadata()?;
    Ok((f, m.ino(), m.len()))
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)?.sync_all()
}

impl RotatingFile {
    /// Open (or create) the file now, so a wrong path is reported at start.
    pub fn new(cfg: &FileConfig, ctx: EcsContext) -> Result<RotatingFile, SinkError> {
        if cfg.max_size_mib == 0 {
            return Err(SinkError::Config(format!(
                "file output {}: max_size_mib must be at least 1",
                cfg.path.display()
            )));
        }
        let file = open(&cfg.path).map_err(|e| {
            SinkError::Config(format!(
                "cannot open the event file {} ({e}); create its directory or choose another \
                 path",
                cfg.path.display()
            ))
        })?;
        Ok(RotatingFile {
            path: cfg.path.clone(),
            format: cfg.format,
            max_bytes: cfg.max_size_mib.saturating_mul(1 << 20),
            keep: cfg.keep,
            fsync: cfg.fsync,
            ctx,
            file: Some(file),
        })
    }

    #[cfg(test)]
    fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        if self.keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            let oldest = rotated(&self.path, self.keep);
            match std::fs::remove_file(&oldest) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            for n in (1..self.keep).rev() {
                let from = rotated(&self.path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&self.path, n + 1))?;
                }
            }
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = Some(open(&self.path)?);
        sync_dir(&self.path)
    }

    fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        // Reopen when the path no longer names our file (moved away by logrotate).
        let current = std::fs::metadata(&self.path).ok().map(|m| m.ino());
        if self.file.as_ref().map(|f| f.1) != current || self.file.is_none() {
            self.file = Some(open(&self.path)?);
        }
        if let Some((_, _, size)) = &self.file {
            if *size > 0 && size + line.len() as u64 > self.max_bytes {
                self.rotate()?;
            }
        }
        let (f, _, size) = self
            .file
            .as_mut()
            .ok_or_else(|| std::io::Error::other("event file not open"))?;
        f.write_all(line)?;
        *size += line.len() as u64;
        if self.fsync {
            f.sync_data()?;
        }
        Ok(())
    }
}

impl Sink for RotatingFile {
    fn name(&self) -> &str {
        "file"
    }

    fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError> {
        self.send_stamped(&Stamped::now(ev.clone()))
    }

    fn send_stamped(&mut self, ev: &Stamped) -> Result<(), SinkError> {
        let mut line =
            serde_json::to_vec(&self.format.render(ev, &self.ctx)).map_err(std::io::Error::from)?;
        line.push(b'\n');
        self.write_line(&line).map_err(|e| {
            self.file = None; // reopen next time
            SinkError::Other(format!(
                "cannot write the event file {}: {e}; check the disk and the file's directory",
                self.path.display()
            ))
        })
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        if let Some((f, _, _)) = &self.file {
            f.sync_all()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    fn ctx() -> EcsContext {
        EcsContext {
            host_name: "fs01".into(),
            agent_version: "0.1.0".into(),
        }
    }

    fn cfg(path: PathBuf, keep: u32) -> FileConfig {
        FileConfig {
            path,
            format: Format::Native,
            max_size_mib: 1,
            keep,
            fsync: true,
        }
    }

    fn lines(p: &Path) -> Vec<AgentEvent> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn rotates_by_size_keeping_n_files_and_loses_nothing_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let mut sink = RotatingFile::new(&cfg(path.clone(), 2), ctx())
            .unwrap()
            .with_max_bytes(3000);
        let events: Vec<AgentEvent> = (0..40)
            .map(|n| AgentEvent::Incident(testutil::incident(n)))
            .collect();
        for ev in &events {
            sink.send(ev).unwrap();
        }
        sink.flush().unwrap();
        assert!(!rotated(&path, 3).exists());
        let mut kept = lines(&rotated(&path, 2));
        kept.extend(lines(&rotated(&path, 1)));
        kept.extend(lines(&path));
        for f in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len <= 3000, "{} is {len} bytes", f.display());
        }
        // The newest events, contiguous and in order.
        assert!(kept.len() >= 3 && kept.len() < events.len());
        assert_eq!(kept[..], events[events.len() - kept.len()..]);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "world-accessible: {mode:o}");
    }

    #[test]
    fn keep_zero_truncates_and_external_rotation_is_followed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ev.json");
        let mut sink = RotatingFile::new(&cfg(path.clone(), 0), ctx())
            .unwrap()
            .with_max_bytes(1500);
        for n in 0..10 {
            sink.send(&AgentEvent::Incident(testutil::incident(n)))
                .unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // logrotate moves the file away: the next event goes to a new file at the path.
        std::fs::rename(&path, dir.path().join("moved")).unwrap();
        sink.send(&AgentEvent::Stopped(ward_model::Stopped {}))
            .unwrap();
        assert_eq!(
            lines(&path),
            vec![AgentEvent::Stopped(ward_model::Stopped {})]
        );
    }

    #[test]
    fn ecs_format_and_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ecs.json");
        let mut c = cfg(path.clone(), 1);
        c.format = Format::Ecs;
        let mut sink = RotatingFile::new(&c, ctx()).unwrap();
        sink.send(&AgentEvent::Incident(testutil::incident(1)))
            .unwrap();
        let v: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&path).unwrap().trim()).unwrap();
        assert_eq!(v["event"]["kind"], "alert");
        let e = RotatingFile::new(&cfg(dir.path().join("no/such/dir/x"), 1), ctx())
            .err()
            .unwrap();
        assert!(e.to_string().contains("create its directory"), "{e}");
    }
}
