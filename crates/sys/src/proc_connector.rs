//! The kernel's process-events connector (netlink `NETLINK_CONNECTOR`, `CN_IDX_PROC`).
//!
//! It reports every fork, exec and exit on the machine with the parent's pid, which
//! `/proc` can no longer tell once a short-lived child has been reaped. Requires root and
//! `CONFIG_PROC_EVENTS` (enabled on every mainstream distribution kernel).

use crate::cvt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

const NETLINK_CONNECTOR: libc::c_int = 11;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;
const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;

const PROC_EVENT_FORK: u32 = 0x0000_0001;
const PROC_EVENT_EXEC: u32 = 0x0000_0002;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// A process event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    /// A new task. When `child_pid == child_tgid` it is a new process (not a thread).
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        tgid: u32,
    },
    Exit {
        pid: u32,
        tgid: u32,
    },
}

/// A subscribed connector socket (non-blocking).
pub struct ProcConnector {
    fd: OwnedFd,
}

impl ProcConnector {
    /// Open, bind and subscribe. Fails with `EPERM` when not root, `EPROTONOSUPPORT` or
    /// `ENOENT` when the kernel lacks the connector.
    pub fn open() -> io::Result<ProcConnector> {
        // SAFETY: plain socket(2) call.
        let fd = cvt(unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                NETLINK_CONNECTOR,
            )
        })?;
        // SAFETY: fresh fd owned by us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let rcvbuf: libc::c_int = 8 << 20;
        // SAFETY: valid pointer/size pair for an int option. Failure is harmless (the
        // default buffer is used), so the result is ignored.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&rcvbuf as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        // SAFETY: zeroed sockaddr_nl is a valid initial value.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        sa.nl_groups = CN_IDX_PROC;
        sa.nl_pid = 0;
        // SAFETY: `sa` is a valid sockaddr_nl of the given size.
        cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        })?;
        let mut msg = Vec::with_capacity(NLMSG_HDRLEN + CN_MSG_LEN + 4);
        let total = (NLMSG_HDRLEN + CN_MSG_LEN + 4) as u32;
        msg.extend_from_slice(&total.to_ne_bytes());
        msg.extend_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
        msg.extend_from_slice(&0u16.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&std::process::id().to_ne_bytes());
        msg.extend_from_slice(&CN_IDX_PROC.to_ne_bytes());
        msg.extend_from_slice(&CN_VAL_PROC.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes()); // seq
        msg.extend_from_slice(&0u32.to_ne_bytes()); // ack
        msg.extend_from_slice(&4u16.to_ne_bytes()); // len
        msg.extend_from_slice(&0u16.to_ne_bytes()); // flags
        msg.extend_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
        // SAFETY: `msg` is valid for reads of its length.
        let n = unsafe { libc::send(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ProcConnector { fd })
    }

    /// Receive pending events into `out`. Returns `Ok(false)` when the kernel dropped
    /// events because ward fell behind (`ENOBUFS`); callers should then rescan `/proc`.
    pub fn drain(&self, out: &mut Vec<ProcEvent>) -> io::Result<bool> {
        let mut buf = [0u8; 8192];
        let mut complete = true;
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EAGAIN) => return Ok(complete),
                    Some(libc::EINTR) => continue,
                    Some(libc::ENOBUFS) => {
                        complete = false;
                        continue;
                    }
                    _ => return Err(e),
                }
            }
            decode(&buf[..n as usize], out);
        }
    }
}

impl AsFd for ProcConnector {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decode the netlink messages in one datagram. Total: malformed input is skipped.
pub fn decode(mut b: &[u8], out: &mut Vec<ProcEvent>) {
    while b.len() >= NLMSG_HDRLEN {
        let len = match u32_at(b, 0) {
            Some(l) => l as usize,
            None => return,
        };
        if len < NLMSG_HDRLEN || len > b.len() {
            return;
        }
        let payload = &b[NLMSG_HDRLEN..len];
        // cn_msg header, then struct proc_event { what, cpu, timestamp_ns(u64), data }
        let ev = &payload.get(CN_MSG_LEN..).unwrap_or(&[]);
        if let Some(what) = u32_at(ev, 0) {
            let d = ev.get(16..).unwrap_or(&[]);
            let e = match what {
                PROC_EVENT_FORK => match (u32_at(d, 4), u32_at(d, 8), u32_at(d, 12)) {
                    (Some(parent_tgid), Some(child_pid), Some(child_tgid)) => {
                        Some(ProcEvent::Fork {
                            parent_tgid,
                            child_pid,
                            child_tgid,
                        })
                    }
                    _ => None,
                },
                PROC_EVENT_EXEC => u32_at(d, 4).map(|tgid| ProcEvent::Exec { tgid }),
                PROC_EVENT_EXIT => match (u32_at(d, 0), u32_at(d, 4)) {
                    (Some(pid), Some(tgid)) => Some(ProcEvent::Exit { pid, tgid }),
                    _ => None,
                },
                _ => None,
            };
            out.extend(e);
        }
        let aligned = (len + 3) & !3;
        if aligned >= b.len() {
            return;
        }
        b = &b[aligned..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut v = Vec::new();
            decode(&bytes, &mut v);
        }
    }

    #[test]
    fn decodes_fork() {
        let mut m = vec![0u8; NLMSG_HDRLEN + CN_MSG_LEN];
        let mut ev = Vec::new();
        ev.extend_from_slice(&PROC_EVENT_FORK.to_ne_bytes());
        ev.extend_from_slice(&0u32.to_ne_bytes());
        ev.extend_from_slice(&0u64.to_ne_bytes());
        for v in [10u32, 10, 11, 11] {
            ev.extend_from_slice(&v.to_ne_bytes());
        }
        m.extend(ev);
        let l = m.len() as u32;
        m[0..4].copy_from_slice(&l.to_ne_bytes());
        let mut out = Vec::new();
        decode(&m, &mut out);
        assert_eq!(
            out,
            vec![ProcEvent::Fork {
                parent_tgid: 10,
                child_pid: 11,
                child_tgid: 11
            }]
        );
    }
}
