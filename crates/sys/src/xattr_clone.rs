//! For the vault: the FICLONE ioctl (reflink copies) and the fd-based extended-attribute
//! calls, which neither `std` nor `nix` wrap safely.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// `ioctl(dst, FICLONE, src)`: make `dst` share all of `src`'s extents (btrfs, xfs with
/// reflink=1, bcachefs...). Fails with `EOPNOTSUPP`/`EINVAL`/`ENOTTY`/`EXDEV` where the
/// filesystem cannot clone; the caller then falls back to copying.
pub fn ficlone(dst: BorrowedFd<'_>, src: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: FICLONE takes the source fd as its integer argument and touches no user
    // memory; both fds are valid for the duration of the call (borrowed).
    let r = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE as _, src.as_raw_fd()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Call `f` with a buffer, growing it (up to 1 MiB) while the kernel says `ERANGE`.
/// `f` returns what the syscall returned: the length written, or -1 with errno set.
fn read_growing(initial: usize, mut f: impl FnMut(&mut [u8]) -> isize) -> io::Result<Vec<u8>> {
    let mut buf: Vec<u8> = vec![0; initial];
    loop {
        let n = f(&mut buf);
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::ERANGE) && buf.len() < (1 << 20) {
            let len = buf.len() * 4;
            buf.resize(len, 0);
            continue;
        }
        return Err(e);
    }
}

/// Names of the extended attributes of an open file.
pub fn flistxattr(fd: BorrowedFd<'_>) -> io::Result<Vec<OsString>> {
    let buf = read_growing(1024, |buf| {
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes; the kernel
        // writes at most that many bytes and returns how many it wrote.
        unsafe { libc::flistxattr(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len() as _) }
    })?;
    Ok(buf
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect())
}

/// The value of one extended attribute of an open file.
pub fn fgetxattr(fd: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<u8>> {
    let name = cstr(name)?;
    read_growing(256, |buf| {
        // SAFETY: `name` is NUL-terminated; `buf` is valid for `buf.len()` bytes and the
        // kernel writes at most that many.
        unsafe {
            libc::fgetxattr(
                fd.as_raw_fd(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// Set one extended attribute of an open file (create or replace).
pub fn fsetxattr(fd: BorrowedFd<'_>, name: &OsStr, value: &[u8]) -> io::Result<()> {
    let name = cstr(name)?;
    // SAFETY: `name` is NUL-terminated; `value` is valid for reads of `value.len()` bytes.
    let r = unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn cstr(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}
