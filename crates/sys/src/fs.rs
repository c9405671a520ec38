//! Small filesystem wrappers.

use crate::cvt;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `fstat` of an fd: (device, inode, size, is regular file).
pub fn fstat(fd: BorrowedFd<'_>) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `st` is valid for writes; fstat fills it on success.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) })?;
    // SAFETY: fstat succeeded, so `st` is initialised.
    let st = unsafe { st.assume_init() };
    Ok(Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        size: st.st_size as u64,
        regular: (st.st_mode & libc::S_IFMT) == libc::S_IFREG,
        nlink: st.st_nlink,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        ctime_ns: st.st_ctime * 1_000_000_000 + st.st_ctime_nsec,
    })
}

/// The parts of `struct stat` ward uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub regular: bool,
    pub nlink: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

/// `pread` as much as possible of `len` bytes at `offset` (short on EOF).
pub fn pread(fd: BorrowedFd<'_>, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut got = 0usize;
    while got < len {
        // SAFETY: the slice `buf[got..]` is valid for writes of `len - got` bytes.
        let n = unsafe {
            libc::pread(
                fd.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                len - got,
                (offset + got as u64) as libc::off_t,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    buf.truncate(got);
    Ok(buf)
}

/// The path an fd refers to, from `/proc/self/fd`.
pub fn fd_path(fd: BorrowedFd<'_>) -> io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// Filesystem facts from `statfs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FsInfo {
    /// `f_type` magic (e.g. `0xEF53` for ext2/3/4).
    pub magic: i64,
    /// `f_fsid`, the value fanotify reports in FID records.
    pub fsid: [i32; 2],
}

/// `statfs(path)`.
pub fn statfs(path: &Path) -> io::Result<FsInfo> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is NUL-terminated; `st` is valid for writes.
    cvt(unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) })?;
    // SAFETY: statfs succeeded.
    let st = unsafe { st.assume_init() };
    // SAFETY: fsid_t is two c_ints in every Linux ABI; reading it as such is sound.
    let fsid: [i32; 2] = unsafe { std::mem::transmute(st.f_fsid) };
    Ok(FsInfo {
        magic: st.f_type,
        fsid,
    })
}

/// Human name of a filesystem magic number.
pub fn fs_name(magic: i64) -> &'static str {
    match magic {
        0xEF53 => "ext4",
        0x5846_5342 => "xfs",
        0x9123_683E => "btrfs",
        0x0102_1994 => "tmpfs",
        0x794c_7630 => "overlayfs",
        0x6969 => "nfs",
        0xFF53_4D42 => "cifs",
        0x6573_5546 => "fuse",
        0x2FC1_2FC1 => "zfs",
        0x5346_544e => "ntfs",
        0x4d44 => "vfat",
        _ => "unknown",
    }
}
