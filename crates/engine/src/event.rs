//! The event model: what the sensor tells the engine.
//!
//! Everything here is plain data (serde-serialisable so that traces can be recorded and
//! replayed). Times are nanoseconds on a monotonic clock chosen by the producer; the engine
//! only compares and subtracts them.

use serde::{Deserialize, Serialize};

pub use ward_model::ProcId;

/// Identity of a file: device and inode number. Stable across renames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileKey {
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
}

/// A process as the sensor first saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcInfo {
    /// Identity (pid and start time).
    pub id: ProcId,
    /// The parent, if known. `None` for pid 1 or when the parent could not be resolved.
    pub parent: Option<ProcId>,
    /// Executable path.
    pub exe: String,
    /// Command line.
    pub cmdline: Vec<String>,
    /// User id the process runs as.
    pub uid: u32,
    /// A boundary process is never blamed and never aggregates the scores of its
    /// descendants: pid 1, ward itself and its ancestors, session managers and daemons
    /// that spawn unrelated work (sshd, cron, systemd, smbd's parent). Its children are
    /// the roots of independent lineages.
    pub boundary: bool,
}

/// A sample of a file's content: a few blocks at known offsets, plus the file size.
///
/// The sensor reads the head (up to [`HEAD_LEN`] bytes) and, for files larger than
/// `2 * HEAD_LEN`, a middle block of [`BLOCK_LEN`] bytes (at a multiple of `BLOCK_LEN`)
/// and the last `BLOCK_LEN` bytes of the file (see [`Sample::plan`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// File size in bytes when sampled.
    pub size: u64,
    /// The sampled blocks (see [`Sample::plan`]).
    pub blocks: Vec<Block>,
    /// Not read: the sensor saw the file unchanged (same size, mtime and ctime; the
    /// kernels' multigrain timestamps make a write after a stat visible) since it last
    /// sampled it, and the engine still holds the profile of that sample, which it
    /// reuses. `blocks` is then empty. Only for read-only opens.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unchanged: bool,
}

/// One sampled block of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// Offset of the block in the file.
    pub offset: u64,
    #[serde(with = "hex_bytes")]
    /// The bytes read (serialised as hex).
    pub data: Vec<u8>,
}

/// One block of a file as it was before a write and as it is after it (see
/// [`Op::Written`]). `before` is empty when the write was past the end of the file (an
/// append); either may be shorter than the block at the end of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenBlock {
    /// Offset of the block in the file.
    pub offset: u64,
    /// The bytes before the write (serialised as hex).
    #[serde(with = "hex_bytes")]
    pub before: Vec<u8>,
    /// The bytes after it (serialised as hex).
    #[serde(with = "hex_bytes")]
    pub after: Vec<u8>,
}

/// Bytes read from the start of a file.
pub const HEAD_LEN: usize = 8192;
/// Bytes read for each of the middle and tail blocks.
pub const BLOCK_LEN: usize = 4096;

impl Sample {
    /// A sample of `size` bytes made of `blocks`.
    pub fn new(size: u64, blocks: Vec<Block>) -> Sample {
        Sample {
            size,
            blocks,
            unchanged: false,
        }
    }

    /// A sample not read: the file is unchanged since its stored profile's sample.
    pub fn unchanged(size: u64) -> Sample {
        Sample {
            size,
            blocks: Vec::new(),
            unchanged: true,
        }
    }

    /// The offsets (and lengths) a sensor should read for a file of `size` bytes.
    pub fn plan(size: u64) -> Vec<(u64, usize)> {
        let head = size.min(HEAD_LEN as u64) as usize;
        let mut v = Vec::with_capacity(3);
        if head > 0 {
            v.push((0, head));
        }
        if size > 2 * HEAD_LEN as u64 {
            let block = BLOCK_LEN as u64;
            let mid = (size / 2) / block * block;
            // The tail block ends at the end of the file: that is where formats keep their
            // end structures (zip central directory, PDF trailer, PNG IEND).
            let tail = size - block;
            v.push((mid, BLOCK_LEN));
            if tail > mid {
                v.push((tail, BLOCK_LEN));
            }
        }
        v
    }

    /// Bytes read for this sample (the blocks' lengths; 0 for an unread sample).
    pub fn bytes_read(&self) -> u64 {
        self.blocks.iter().map(|b| b.data.len() as u64).sum()
    }

    /// The head block, if any was sampled.
    pub fn head(&self) -> &[u8] {
        self.blocks
            .iter()
            .find(|b| b.offset == 0)
            .map(|b| b.data.as_slice())
            .unwrap_or(&[])
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// A process appeared (first sighting, fork or exec). Sent before any file event of
    /// that process. Re-sending with new exe/cmdline after an exec is allowed.
    Process(ProcInfo),
    /// A process exited. Its lineage state is kept (scores of a lineage outlive members).
    Exit,
    /// The process is opening an existing regular file. `sample` is the content *before*
    /// the open completes (the sensor holds the opener in a permission event), so it is the
    /// baseline for judging what the process later writes. `write` is `Some(true)` when
    /// the sensor knows the open is for writing, `None` when it cannot tell.
    Open {
        /// The file.
        file: FileKey,
        /// Its path.
        path: String,
        /// Its content before the open (the baseline).
        sample: Sample,
        /// Opened for writing: `Some(true)`, read-only: `Some(false)`, unknown: `None`.
        write: Option<bool>,
    },
    /// The process closed a file it had open for writing. `sample` is the new content.
    CloseWrite {
        /// The file.
        file: FileKey,
        /// Its path.
        path: String,
        /// Its new content.
        sample: Sample,
    },
    /// A content sample of a file the process still holds open for writing (the sensor
    /// sends at most one per file per short interval, e.g. on `FAN_MODIFY`). Judged like a
    /// close-after-write against the baseline, without ending the write: an attacker that
    /// opens every file first and writes through the held descriptors is judged as it
    /// writes, not when it closes.
    Modify {
        /// The file.
        file: FileKey,
        /// Its path.
        path: String,
        /// Its content now.
        sample: Sample,
    },
    /// The bytes of ranges the process *wrote* in a file it holds open for writing, before
    /// and after: for each range (a 4 KiB-aligned block of a write) the sensor read the
    /// old bytes while the write waited in a pre-content permission event, and the new
    /// bytes when it sends this event — just before the `Modify` or `CloseWrite` of the
    /// same file (both are still judged). Where the sampled head/middle/tail blocks miss
    /// what was written (stripes between them), this is how the engine sees it: a block
    /// that held readable data before and is random now. Sensors without pre-content
    /// events never send it.
    Written {
        /// The file.
        file: FileKey,
        /// Its path.
        path: String,
        /// The written blocks, in the order of the writes (a few per open at most).
        blocks: Vec<WrittenBlock>,
    },
    /// The process created a directory entry (a new file).
    Create {
        /// Path of the new entry.
        path: String,
        /// The new file, when the sensor knows it.
        file: Option<FileKey>,
    },
    /// The process removed a directory entry.
    Delete {
        /// Path of the removed entry.
        path: String,
        /// The removed file, when the sensor knows it.
        file: Option<FileKey>,
    },
    /// The process renamed `from` to `to` (replacing `to` if it existed).
    Rename {
        /// Old path.
        from: String,
        /// New path.
        to: String,
        /// The renamed file, when the sensor knows it.
        file: Option<FileKey>,
    },
    /// The process connected (or started connecting) to TCP `addr:port`. The engine only
    /// counts the SMB ports 445 and 139; `addr` is the textual peer address (IPv4 dotted
    /// quad or IPv6, an IPv4-mapped `::ffff:a.b.c.d` counts as `a.b.c.d`).
    Connect {
        /// Peer address.
        addr: String,
        /// Peer TCP port.
        port: u16,
    },
}

/// One observation: who did what, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic nanoseconds.
    pub time: u64,
    /// The process that acted.
    pub proc: ProcId,
    #[serde(flatten)]
    /// What it did.
    pub op: Op,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(v.len() * 2);
        for b in v {
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        let b = s.as_bytes();
        if b.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd-length hex string"));
        }
        let nib = |c: u8| -> Result<u8, D::Error> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                b'A'..=b'F' => Ok(c - b'A' + 10),
                _ => Err(serde::de::Error::custom("invalid hex digit")),
            }
        };
        b.chunks(2)
            .map(|p| Ok(nib(p[0])? << 4 | nib(p[1])?))
            .collect()
    }
}
