//! Streaming file helpers: fstat, copy (copy_file_range, then pread/pwrite), content
//! comparison and extended attributes. Nothing here reads a whole file into memory.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;

/// Buffer size of the read/write fallback and of comparisons.
const BUF: usize = 128 * 1024;
/// Largest single copy_file_range request (keeps each call short and gives the
/// progress/test hook a chance to run on big files).
pub(crate) const CHUNK: usize = 1 << 20;

/// The fields of `struct stat` the vault uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub atime_ns: i64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl Stat {
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

pub(crate) fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let st = nix::sys::stat::fstat(fd.as_raw_fd()).map_err(io::Error::from)?;
    Ok(Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        nlink: st.st_nlink,
        atime_ns: st.st_atime * 1_000_000_000 + st.st_atime_nsec,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
    })
}

/// Copy exactly `len` bytes from offset 0 of `src` to offset 0 of `dst`, using explicit
/// offsets (the shared file offset of `src`, e.g. a fanotify event fd, is not moved).
/// Fails with `UnexpectedEof` if `src` ends early (truncated while copying).
/// `hook` runs after every chunk (tests use it to change the source mid-copy).
pub(crate) fn copy_range(
    src: BorrowedFd<'_>,
    dst: BorrowedFd<'_>,
    len: u64,
    hook: &mut dyn FnMut(u64),
) -> io::Result<()> {
    let mut off_in: i64 = 0;
    let mut off_out: i64 = 0;
    let mut kernel_copy = true;
    while (off_in as u64) < len {
        let want = ((len - off_in as u64) as usize).min(CHUNK);
        if kernel_copy {
            match nix::fcntl::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want)
            {
                Ok(0) => return Err(shrank(off_in as u64, len)),
                Ok(_) => {}
                // Not supported between these files (or at all): plain read/write.
                Err(Errno::EXDEV | Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP)
                    if off_in == 0 =>
                {
                    kernel_copy = false;
                    continue;
                }
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
        } else {
            let mut buf = vec![0u8; BUF.min(want)];
            let n = loop {
                match nix::sys::uio::pread(src, &mut buf, off_in) {
                    Err(Errno::EINTR) => continue,
                    r => break r?,
                }
            };
            if n == 0 {
                return Err(shrank(off_in as u64, len));
            }
            write_all_at(dst, &buf[..n], off_out)?;
            off_in += n as i64;
            off_out += n as i64;
        }
        hook(off_in as u64);
    }
    Ok(())
}

fn shrank(at: u64, len: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("file ended at byte {at} of {len} while copying (truncated or replaced)"),
    )
}

fn write_all_at(fd: BorrowedFd<'_>, mut buf: &[u8], mut off: i64) -> io::Result<()> {
    while !buf.is_empty() {
        match nix::sys::uio::pwrite(fd, buf, off) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                off += n as i64;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Read up to `buf.len()` bytes at `off`, retrying short reads until EOF.
fn read_full_at(fd: BorrowedFd<'_>, buf: &mut [u8], mut off: i64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match nix::sys::uio::pread(fd, &mut buf[got..], off) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                off += n as i64;
            }
            Err(Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(got)
}

/// Do two open files hold the same bytes? Sizes first, then a streaming compare.
pub(crate) fn same_content(a: BorrowedFd<'_>, b: BorrowedFd<'_>) -> io::Result<bool> {
    let (sa, sb) = (fstat(a)?, fstat(b)?);
    if sa.size != sb.size {
        return Ok(false);
    }
    if sa.dev == sb.dev && sa.ino == sb.ino {
        return Ok(true);
    }
    let mut ba = vec![0u8; BUF];
    let mut bb = vec![0u8; BUF];
    let mut off: i64 = 0;
    loop {
        let na = read_full_at(a, &mut ba, off)?;
        let nb = read_full_at(b, &mut bb, off)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
        off += na as i64;
    }
}

/// Extended attributes worth keeping: user data, security labels/capabilities,
/// trusted (root only) and POSIX ACLs.
fn wanted_xattr(name: &OsStr) -> bool {
    let n = name.as_bytes();
    n.starts_with(b"user.")
        || n.starts_with(b"security.")
        || n.starts_with(b"trusted.")
        || n.starts_with(b"system.posix_acl_")
}

/// Best effort: the wanted extended attributes of `fd` (empty on filesystems without
/// xattr support).
pub(crate) fn read_xattrs(fd: BorrowedFd<'_>) -> Vec<(OsString, Vec<u8>)> {
    let Ok(names) = ward_sys::xattr_clone::flistxattr(fd) else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter(|n| wanted_xattr(n))
        .filter_map(|n| {
            ward_sys::xattr_clone::fgetxattr(fd, &n)
                .ok()
                .map(|v| (n, v))
        })
        .collect()
}

/// Best effort: set extended attributes; returns the names that could not be set.
pub(crate) fn write_xattrs(fd: BorrowedFd<'_>, xattrs: &[(OsString, Vec<u8>)]) -> Vec<OsString> {
    xattrs
        .iter()
        .filter(|(n, v)| ward_sys::xattr_clone::fsetxattr(fd, n, v).is_err())
        .map(|(n, _)| n.clone())
        .collect()
}

/// Encode xattrs for the index: repeated (u32 name len, name, u32 value len, value).
pub(crate) fn encode_xattrs(x: &[(OsString, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (n, v) in x {
        out.extend_from_slice(&(n.len() as u32).to_le_bytes());
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v);
    }
    out
}

pub(crate) fn decode_xattrs(mut b: &[u8]) -> Vec<(OsString, Vec<u8>)> {
    use std::os::unix::ffi::OsStringExt;
    fn take<'a>(b: &mut &'a [u8]) -> Option<&'a [u8]> {
        let len = u32::from_le_bytes(b.get(..4)?.try_into().ok()?) as usize;
        let s = b.get(4..4 + len)?;
        *b = &b[4 + len..];
        Some(s)
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let (Some(n), Some(v)) = (take(&mut b), take(&mut b)) else {
            break;
        };
        out.push((OsString::from_vec(n.to_vec()), v.to_vec()));
    }
    out
}

/// fsync a directory so that renames/links in it are durable.
pub(crate) fn fsync_dir(dir: &std::path::Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Raw errno of an io::Error, for classification.
pub(crate) fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// Open a regular file for reading without following a final symlink.
pub(crate) fn open_nofollow(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    Ok(f)
}
