//! `open_by_handle_at(2)`: turn a file handle from an FID event into an fd (and a path).

use crate::cvt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

/// Open the object behind a handle with `O_PATH` (which generates no fanotify event, so
/// ward never blocks on itself) and return its current path.
///
/// `mount_fd` is any fd on the same filesystem.
pub fn path_of_handle(
    mount_fd: BorrowedFd<'_>,
    handle_type: i32,
    bytes: &[u8],
) -> io::Result<PathBuf> {
    // struct file_handle { u32 handle_bytes; int handle_type; unsigned char f_handle[]; }
    let mut raw = Vec::with_capacity(8 + bytes.len());
    raw.extend_from_slice(&(bytes.len() as u32).to_ne_bytes());
    raw.extend_from_slice(&handle_type.to_ne_bytes());
    raw.extend_from_slice(bytes);
    // Keep the buffer 4-byte aligned by copying into u32 storage.
    let mut words = vec![0u32; raw.len().div_ceil(4)];
    // SAFETY: `words` has at least `raw.len()` bytes of storage.
    unsafe {
        std::ptr::copy_nonoverlapping(raw.as_ptr(), words.as_mut_ptr().cast::<u8>(), raw.len())
    };
    // SAFETY: `words` holds a well-formed `struct file_handle` of the declared size.
    let fd = cvt(unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount_fd.as_raw_fd(),
            words.as_mut_ptr(),
            libc::O_PATH | libc::O_CLOEXEC,
        ) as libc::c_int
    })?;
    // SAFETY: fresh fd owned by us.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}
