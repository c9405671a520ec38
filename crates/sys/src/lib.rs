//! # ward-sys
//!
//! The one place where ward talks to the kernel through raw system calls. Every `unsafe`
//! block of the project lives in this crate, each with a `SAFETY:` comment; everything
//! above it is safe Rust.
//!
//! - [`fanotify`]: create fanotify groups, add marks, read events, answer permission events.
//! - [`decode`]: a pure, total parser of the fanotify event stream (fuzzed: it reads bytes
//!   the kernel wrote, but a parser of binary records is the first place a bug hides).
//! - [`handle`]: `open_by_handle_at` to turn a directory file handle from an event back
//!   into a path.
//! - [`proc_connector`]: the netlink process-events connector (fork/exec/exit of every
//!   process), so that short-lived processes (one `openssl` per file) keep their parentage
//!   after they exit.
//! - [`fs`]: small wrappers: `fstat`, `statfs`, `pread`, path of an fd.
//! - [`procfs`]: the parser of `/proc/PID/stat` (state, parent, start time).
//! - [`xattr_clone`]: FICLONE reflinks and fd extended attributes, for the vault.
//!
//! (The one other `unsafe` block is the simulator's `mmap` attack, which must write
//! through a shared mapping to be realistic.)

pub mod decode;
pub mod fanotify;
pub mod fs;
pub mod handle;
pub mod proc_connector;
pub mod procfs;
pub mod xattr_clone;

use std::io;

/// Turn a `-1` return value into the last OS error.
pub(crate) fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}
