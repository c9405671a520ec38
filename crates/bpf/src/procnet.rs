//! The fallback where BPF is unavailable: poll the TCP socket tables.
//!
//! Every [`read`](ProcNetSource::read) lists the network namespaces in use (one process per
//! distinct `/proc/PID/ns/net`), reads `/proc/PID/net/tcp` and `tcp6` of each, keeps the
//! sockets in `SYN_SENT`, `ESTABLISHED` or `CLOSE_WAIT` whose *remote* port is watched, and reports each
//! socket once, attributed to the process holding it (a scan of `/proc/*/fd`, done only
//! when a new such socket appears).
//!
//! Blind spots, by construction (document them wherever this source is used):
//! - connections that begin and end between two polls (a refused connect, which is over in
//!   microseconds on a LAN, or a quick probe and close) are never seen; a worm scanning
//!   dead or filtered addresses stays in `SYN_SENT` for seconds and is seen;
//! - a socket whose owner closed it or exited before the fd scan is counted as
//!   [`dropped`](crate::ConnectStats::dropped) (seen but not attributable);
//! - the thread id is not known (`tid == pid`), the uid is the socket owner's;
//!   the time is when the socket was first seen (up to one poll interval late);
//! - it cannot refuse connections ([`ConnectSource::deny`] fails);
//! - a network namespace with no process left in it (a socket kept only by a bind mount) is
//!   not visited;
//! - cost grows with the number of processes and sockets on the host (each poll reads the
//!   socket tables; each new SMB socket costs one pass over every process's descriptors).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::{
    monotonic_now_ns, validate_ports, BpfError, ConnectEvent, ConnectSource, ConnectStats,
    MonitorOptions, SourceKind,
};

/// One row of `/proc/net/tcp{,6}` that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TcpRow {
    pub remote: IpAddr,
    pub remote_port: u16,
    /// Kernel TCP state: 1 ESTABLISHED, 2 SYN_SENT, ...
    pub state: u8,
    pub uid: u32,
    pub inode: u64,
}

const TCP_ESTABLISHED: u8 = 1;
const TCP_SYN_SENT: u8 = 2;
/// The peer closed, the owner still holds the socket: a connection it made.
const TCP_CLOSE_WAIT: u8 = 8;

/// Parse the text of `/proc/net/tcp` (`v6 == false`) or `/proc/net/tcp6`; lines that do not
/// parse are skipped.
pub(crate) fn parse_tcp_table(text: &str, v6: bool) -> Vec<TcpRow> {
    text.lines()
        .skip(1)
        .filter_map(|l| parse_tcp_line(l, v6))
        .collect()
}

fn parse_tcp_line(line: &str, v6: bool) -> Option<TcpRow> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 {
        return None;
    }
    let (addr, port) = f[2].split_once(':')?;
    let remote = parse_addr(addr, v6)?;
    let remote_port = u16::from_str_radix(port, 16).ok()?;
    let state = u8::from_str_radix(f[3], 16).ok()?;
    let uid = f[7].parse().ok()?;
    let inode = f[9].parse().ok()?;
    Some(TcpRow {
        remote,
        remote_port,
        state,
        uid,
        inode,
    })
}

/// The kernel prints each 32-bit word of the (network-order) address as a native integer.
fn parse_addr(hex: &str, v6: bool) -> Option<IpAddr> {
    let word = |i: usize| -> Option<[u8; 4]> {
        let s = hex.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(s, 16).ok()?.to_ne_bytes())
    };
    if !v6 {
        if hex.len() != 8 {
            return None;
        }
        return Some(IpAddr::V4(Ipv4Addr::from(word(0)?)));
    }
    if hex.len() != 32 {
        return None;
    }
    let mut b = [0u8; 16];
    for i in 0..4 {
        b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
    }
    Some(IpAddr::V6(Ipv6Addr::from(b)).to_canonical())
}

/// The same definition of "this host" as the BPF program.
pub(crate) fn is_local(addr: &IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => a.is_loopback() || a.is_unspecified(),
        IpAddr::V6(a) => a.is_loopback() || a.is_unspecified(),
    }
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &std::path::Path) -> Option<u64> {
    let s = link.to_str()?;
    s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// Polls the socket tables; see the module docs for what it cannot see.
#[derive(Debug)]
pub struct ProcNetSource {
    ports: HashSet<u16>,
    report_loopback: bool,
    interval: Duration,
    proc_root: PathBuf,
    /// (netns inode, socket inode) reported or found unattributable, still present.
    seen: HashSet<(u64, u64)>,
    stats: ConnectStats,
    last_scan: Option<Instant>,
}

impl ProcNetSource {
    /// A fallback source for `opts.ports` (no privilege needed, but without root the sockets
    /// of other users' processes cannot be attributed and count as dropped).
    pub fn new(opts: &MonitorOptions) -> Result<ProcNetSource, BpfError> {
        validate_ports(&opts.ports)?;
        let proc_root = PathBuf::from("/proc");
        fs::metadata(proc_root.join("self/net/tcp")).map_err(|source| BpfError::Proc {
            path: proc_root.join("self/net/tcp"),
            source,
        })?;
        Ok(ProcNetSource {
            ports: opts.ports.iter().copied().collect(),
            report_loopback: opts.report_loopback,
            interval: opts.procfs_interval.max(Duration::from_millis(10)),
            proc_root,
            seen: HashSet::new(),
            stats: ConnectStats::default(),
            last_scan: None,
        })
    }

    fn pids(&self) -> Result<Vec<u32>, BpfError> {
        let dir = fs::read_dir(&self.proc_root).map_err(|source| BpfError::Proc {
            path: self.proc_root.clone(),
            source,
        })?;
        Ok(dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect())
    }

    fn netns_of(&self, pid: u32) -> Option<u64> {
        let link = fs::read_link(self.proc_root.join(format!("{pid}/ns/net"))).ok()?;
        let s = link.to_str()?;
        s.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
    }

    /// socket inode → owning pid, for the inodes in `want` (one pass over all fds).
    fn owners(&self, pids: &[u32], want: &HashSet<u64>) -> HashMap<u64, u32> {
        let mut found = HashMap::new();
        for &pid in pids {
            let Ok(dir) = fs::read_dir(self.proc_root.join(format!("{pid}/fd"))) else {
                continue; // exited, or not ours to read
            };
            for entry in dir.flatten() {
                if let Some(ino) = fs::read_link(entry.path())
                    .ok()
                    .and_then(|l| socket_inode(&l))
                {
                    if want.contains(&ino) {
                        found.entry(ino).or_insert(pid);
                    }
                }
            }
            if found.len() == want.len() {
                break;
            }
        }
        found
    }

    fn read_table(&self, pid: u32, v6: bool) -> io::Result<Vec<TcpRow>> {
        let name = if v6 { "tcp6" } else { "tcp" };
        // Each read(2) of this file walks the kernel's whole TCP hash table (hundreds of
        // microseconds on a large-memory host), so read it with as few calls as possible.
        let mut f = fs::File::open(self.proc_root.join(format!("{pid}/net/{name}")))?;
        let mut buf = Vec::with_capacity(256 * 1024);
        loop {
            if buf.len() == buf.capacity() {
                buf.reserve(buf.capacity());
            }
            let start = buf.len();
            let spare = buf.capacity() - start;
            buf.resize(start + spare, 0);
            let n = io::Read::read(&mut f, &mut buf[start..])?;
            buf.truncate(start + n);
            // seq_file returns less than asked only at the end of the table or when its own
            // buffer (at least a page) is full: a read well short of a page is the end, and
            // the extra read(2) that would return 0 (another full walk) is saved.
            if n == 0 || n + 512 < 4096 {
                break;
            }
        }
        Ok(parse_tcp_table(&String::from_utf8_lossy(&buf), v6))
    }
}

impl ConnectSource for ProcNetSource {
    fn kind(&self) -> SourceKind {
        SourceKind::ProcNet
    }
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn poll_interval(&self) -> Option<Duration> {
        Some(self.interval)
    }

    /// Scans at most once per poll interval: a call sooner than that returns 0 at once, so
    /// a caller may call it on every turn of its loop.
    fn read(&mut self, out: &mut Vec<ConnectEvent>) -> Result<usize, BpfError> {
        if self.last_scan.is_some_and(|t| t.elapsed() < self.interval) {
            return Ok(0);
        }
        self.last_scan = Some(Instant::now());
        let now = monotonic_now_ns();
        let pids = self.pids()?;
        // One representative process per network namespace.
        let mut namespaces: HashMap<u64, u32> = HashMap::new();
        for &pid in &pids {
            if let Some(ns) = self.netns_of(pid) {
                namespaces.entry(ns).or_insert(pid);
            }
        }
        let mut present: HashSet<(u64, u64)> = HashSet::new();
        let mut fresh: Vec<(u64, TcpRow)> = Vec::new();
        for (&ns, &pid) in &namespaces {
            for v6 in [false, true] {
                let Ok(rows) = self.read_table(pid, v6) else {
                    continue; // the process exited, or no IPv6
                };
                for row in rows {
                    if !matches!(row.state, TCP_SYN_SENT | TCP_ESTABLISHED | TCP_CLOSE_WAIT)
                        || !self.ports.contains(&row.remote_port)
                        || (!self.report_loopback && is_local(&row.remote))
                        || row.inode == 0
                    {
                        continue;
                    }
                    let key = (ns, row.inode);
                    present.insert(key);
                    if !self.seen.contains(&key) {
                        fresh.push((ns, row));
                    }
                }
            }
        }
        // Forget sockets that are gone, so the set stays as small as the live sockets.
        self.seen.retain(|k| present.contains(k));
        if fresh.is_empty() {
            return Ok(0);
        }
        let want: HashSet<u64> = fresh.iter().map(|(_, r)| r.inode).collect();
        let owners = self.owners(&pids, &want);
        let mut n = 0;
        for (ns, row) in fresh {
            self.seen.insert((ns, row.inode));
            match owners.get(&row.inode) {
                Some(&pid) => {
                    out.push(ConnectEvent {
                        pid,
                        tid: pid,
                        uid: row.uid,
                        addr: row.remote,
                        port: row.remote_port,
                        time_ns: now,
                        denied: false,
                    });
                    n += 1;
                }
                None => self.stats.dropped += 1,
            }
        }
        self.stats.events += n as u64;
        Ok(n)
    }

    fn stats(&self) -> ConnectStats {
        self.stats
    }
    fn can_deny(&self) -> bool {
        false
    }
    fn deny(&mut self, _tgid: u32) -> Result<(), BpfError> {
        Err(BpfError::DenyUnsupported(SourceKind::ProcNet.name()))
    }
    fn allow(&mut self, _tgid: u32) -> Result<bool, BpfError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines from a little-endian host.
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 21337 1 0000000000000000 100 0 0 10 0
   1: 0200D60A:A3F2 0500D60A:01BD 02 00000001:00000000 01:00000067 00000002  1000        0 98765 2 0000000000000000 200 0 0 1 7
   2: 0200D60A:A3F4 0600D60A:008B 01 00000000:00000000 00:00000000 00000000     0        0 98766 1 0000000000000000 20 4 30 10 -1
   3: garbage
";

    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:A000 00000000000000000000000001000000:01BD 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 20 4 0 10 -1
   1: 0000000000000000FFFF00000200D60A:A001 0000000000000000FFFF00000700D60A:01BD 02 00000000:00000000 00:00000000 00000000    33        0 5555 1 0000000000000000 20 4 0 10 -1
";

    #[test]
    fn parses_ipv4_rows() {
        let rows = parse_tcp_table(TCP, false);
        assert_eq!(rows.len(), 3);
        if cfg!(target_endian = "little") {
            assert_eq!(rows[1].remote, "10.214.0.5".parse::<IpAddr>().unwrap());
            assert_eq!(rows[2].remote, "10.214.0.6".parse::<IpAddr>().unwrap());
        }
        assert_eq!(rows[1].remote_port, 445);
        assert_eq!(rows[1].state, TCP_SYN_SENT);
        assert_eq!(rows[1].uid, 1000);
        assert_eq!(rows[1].inode, 98765);
        assert_eq!(rows[2].remote_port, 139);
        assert_eq!(rows[2].state, TCP_ESTABLISHED);
        assert_eq!(rows[0].state, 0x0A); // LISTEN
    }

    #[test]
    fn parses_ipv6_rows_and_maps_v4() {
        let rows = parse_tcp_table(TCP6, true);
        assert_eq!(rows.len(), 2);
        if cfg!(target_endian = "little") {
            assert_eq!(rows[0].remote, "::1".parse::<IpAddr>().unwrap());
            assert!(is_local(&rows[0].remote));
            assert_eq!(rows[1].remote, "10.214.0.7".parse::<IpAddr>().unwrap());
        }
        assert_eq!(rows[1].uid, 33);
    }

    #[test]
    fn bad_input_yields_no_rows() {
        assert!(parse_tcp_table("", false).is_empty());
        assert!(parse_tcp_table("header\n0: zz:zz zz:zz 01 a b c 0 0 1\n", false).is_empty());
        // an IPv6 address in the v4 table is rejected, not truncated
        assert!(parse_tcp_table(TCP6, false).is_empty());
        assert!(parse_tcp_table(TCP, true).is_empty());
        assert_eq!(parse_addr("0100007", false), None);
        assert_eq!(parse_addr("é0000000", false), None);
    }

    #[test]
    fn socket_links() {
        assert_eq!(socket_inode("socket:[42]".as_ref()), Some(42));
        assert_eq!(socket_inode("pipe:[42]".as_ref()), None);
        assert_eq!(socket_inode("socket:[x]".as_ref()), None);
    }

    #[test]
    fn local_means_this_host() {
        for a in ["127.0.0.1", "127.9.9.9", "0.0.0.0", "::1", "::"] {
            assert!(is_local(&a.parse().unwrap()), "{a}");
        }
        for a in ["10.214.0.1", "fd00::1"] {
            assert!(!is_local(&a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn deny_is_refused_with_a_reason() {
        let mut s = ProcNetSource::new(&MonitorOptions::default()).unwrap();
        assert!(!s.can_deny());
        assert!(matches!(s.deny(1234), Err(BpfError::DenyUnsupported(_))));
        assert!(!s.allow(1234).unwrap());
        assert!(s.fd().is_none());
        assert_eq!(s.poll_interval(), Some(Duration::from_millis(250)));
        // A poll of the real host works (whatever it finds) and never blocks; a second call
        // within the interval does not scan again.
        let mut out = Vec::new();
        s.read(&mut out).unwrap();
        let t = Instant::now();
        for _ in 0..1000 {
            assert_eq!(s.read(&mut out).unwrap(), 0);
        }
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "rate-limited reads are free"
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let mut o = MonitorOptions {
            ports: vec![],
            ..Default::default()
        };
        assert!(matches!(
            ProcNetSource::new(&o),
            Err(BpfError::InvalidOptions(_))
        ));
        o.ports = vec![0];
        assert!(ProcNetSource::new(&o).is_err());
        o.ports = (1..=65).collect();
        assert!(ProcNetSource::new(&o).is_err());
    }
}
