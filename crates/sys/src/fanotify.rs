//! fanotify groups: create, mark, read, respond.

use crate::cvt;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub use libc::{
    FAN_ACCESS_PERM, FAN_ALLOW, FAN_CLASS_CONTENT, FAN_CLASS_NOTIF, FAN_CLASS_PRE_CONTENT,
    FAN_CLOEXEC, FAN_CLOSE_WRITE, FAN_CREATE, FAN_DELETE, FAN_DENY, FAN_MARK_ADD,
    FAN_MARK_EVICTABLE, FAN_MARK_FILESYSTEM, FAN_MARK_IGNORED_MASK, FAN_MARK_IGNORED_SURV_MODIFY,
    FAN_MARK_INODE, FAN_MARK_MOUNT, FAN_MARK_REMOVE, FAN_MODIFY, FAN_MOVED_FROM, FAN_MOVED_TO,
    FAN_NONBLOCK, FAN_ONDIR, FAN_OPEN, FAN_OPEN_PERM, FAN_Q_OVERFLOW, FAN_RENAME,
    FAN_REPORT_DFID_NAME, FAN_REPORT_FID, FAN_REPORT_TID, FAN_UNLIMITED_MARKS, FAN_UNLIMITED_QUEUE,
};

/// `FAN_PRE_ACCESS` (Linux ≥ 6.14): blocking event before a read/write/truncate, with a
/// range record. Not yet in the `libc` crate. The event does not say whether the access is
/// a read or a write (a read also raises `FAN_ACCESS_PERM` after it; a write does not).
/// Whether a file raises pre-content events at all is decided when it is *opened*, from
/// the pre-content marks present then (a mark added during that open's `FAN_OPEN_PERM` is
/// too late for it): watch a filesystem (`FAN_MARK_FILESYSTEM`) and silence the files that
/// do not matter with ignore marks instead.
pub const FAN_PRE_ACCESS: u64 = 0x0010_0000;

/// An fanotify group (the fd returned by `fanotify_init`). Closing it makes the kernel
/// allow every permission event still pending: a crash fails open.
#[derive(Debug)]
pub struct Fanotify {
    fd: OwnedFd,
}

impl Fanotify {
    /// `fanotify_init(flags, event_f_flags)`.
    pub fn init(flags: libc::c_uint, event_f_flags: libc::c_uint) -> io::Result<Fanotify> {
        // SAFETY: plain syscall with integer arguments; the returned fd is owned by us.
        let fd = cvt(unsafe { libc::fanotify_init(flags, event_f_flags) })?;
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        Ok(Fanotify {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// `fanotify_mark(fd, flags, mask, AT_FDCWD, path)`.
    pub fn mark(&self, flags: libc::c_uint, mask: u64, path: &Path) -> io::Result<()> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        cvt(unsafe {
            libc::fanotify_mark(self.fd.as_raw_fd(), flags, mask, libc::AT_FDCWD, c.as_ptr())
        })?;
        Ok(())
    }

    /// `fanotify_mark(fd, flags, mask, file, NULL)`: mark the object `file` refers to
    /// (an inode mark with `FAN_MARK_INODE`), e.g. the descriptor of a permission event.
    pub fn mark_fd(&self, flags: libc::c_uint, mask: u64, file: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: plain syscall; a NULL pathname makes the kernel use `file` itself, which
        // is a valid open descriptor for the duration of the call.
        cvt(unsafe {
            libc::fanotify_mark(
                self.fd.as_raw_fd(),
                flags,
                mask,
                file.as_raw_fd(),
                std::ptr::null(),
            )
        })?;
        Ok(())
    }

    /// Read events into `buf`. Returns 0 when the (non-blocking) queue is empty.
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(e);
        }
        Ok(n as usize)
    }

    /// Answer a permission event. `allow == false` denies it (the syscall fails with EPERM).
    pub fn respond(&self, event_fd: RawFd, allow: bool) -> io::Result<()> {
        let resp = libc::fanotify_response {
            fd: event_fd,
            response: if allow { FAN_ALLOW } else { FAN_DENY },
        };
        let size = std::mem::size_of::<libc::fanotify_response>();
        // SAFETY: `resp` is a valid, initialised struct of `size` bytes.
        let n = unsafe {
            libc::write(
                self.fd.as_raw_fd(),
                (&resp as *const libc::fanotify_response).cast(),
                size,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

impl AsFd for Fanotify {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Fanotify {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Take ownership of an event's file descriptor so it is closed when dropped.
///
/// # Panics
/// Never; a negative fd yields `None`.
pub fn own_event_fd(fd: i32) -> Option<OwnedFd> {
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel installed this fd into our table for this event only; the
    // caller hands it over exactly once.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}
