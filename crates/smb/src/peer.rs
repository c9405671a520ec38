//! The TCP peer of an smbd child: the remote address of the connected socket it holds on
//! the SMB ports, read from `/proc/PID/fd` and `/proc/PID/net/tcp{,6}` (the tables of the
//! process's own network namespace). No Samba tool involved, so it is available the moment
//! the connection exists.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP states in /proc/net/tcp.
const LISTEN: u8 = 0x0A;
const ESTABLISHED: u8 = 0x01;

/// One row of /proc/net/tcp{,6}.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TcpRow {
    pub local_port: u16,
    pub remote: IpAddr,
    pub state: u8,
    pub inode: u64,
}

/// An address as SMB clients see it: IPv4-mapped IPv6 becomes plain IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn parse_addr(hex: &str) -> Option<IpAddr> {
    // The kernel prints each 32-bit word of the network-order address as a native u32.
    match hex.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(hex, 16).ok()?.to_ne_bytes(),
        ))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
                b[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Parse the text of /proc/net/tcp or tcp6 (header line skipped, bad rows ignored).
pub(crate) fn parse_tcp(text: &str) -> Vec<TcpRow> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (_, lport) = f.get(1)?.split_once(':')?;
            let (raddr, _) = f.get(2)?.split_once(':')?;
            Some(TcpRow {
                local_port: u16::from_str_radix(lport, 16).ok()?,
                remote: parse_addr(raddr)?,
                state: u8::from_str_radix(f.get(3)?, 16).ok()?,
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

fn socket_inodes(pid: u32) -> HashSet<u64> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return HashSet::new();
    };
    rd.flatten()
        .filter_map(|e| {
            let t = std::fs::read_link(e.path()).ok()?;
            let s = t.to_str()?;
            s.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// Pick the peer among the rows of the process's sockets: a connected socket on one of
/// `ports`, established ones first (a closing one still names the client).
pub(crate) fn pick_peer(rows: &[TcpRow], inodes: &HashSet<u64>, ports: &[u16]) -> Option<IpAddr> {
    let mine = rows.iter().filter(|r| {
        inodes.contains(&r.inode) && ports.contains(&r.local_port) && r.state != LISTEN
    });
    let mut best: Option<&TcpRow> = None;
    for r in mine {
        if best
            .map(|b| b.state != ESTABLISHED && r.state == ESTABLISHED)
            .unwrap_or(true)
        {
            best = Some(r);
        }
    }
    best.map(|r| canonical(r.remote))
}

/// The client address of the smbd process `pid`: the remote end of its connected TCP socket
/// on one of `ports` (normally 445 and 139). `None` if it holds none (the master, a helper,
/// a child whose connection is gone) or the process is gone.
pub fn tcp_peer(pid: u32, ports: &[u16]) -> Option<IpAddr> {
    let inodes = socket_inodes(pid);
    if inodes.is_empty() {
        return None;
    }
    // Each table read walks the kernel's whole TCP hash (≈ 1.4 ms here), so tcp6 is read
    // only when the IPv4 table does not have the socket (smbd binds v4 and v6 separately).
    for t in ["tcp", "tcp6"] {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{t}")) {
            if let Some(ip) = pick_peer(&parse_tcp(&text), &inodes, ports) {
                return Some(ip);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1607 1 000000001b1c4724 100 0 0 10 0
   1: 01FAD50A:01BD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12115 1 00000000ada14e3b 100 0 0 10 0
   2: 01FAD50A:01BD 02FAD50A:B98E 01 00000000:00000000 02:000AFBD6 00000000     0        0 13598 2 0000000088ba1a99 20 4 17 18 -1
   3: 01FAD50A:01BD 06FAD50A:B98F 08 00000000:00000000 02:000AFBD6 00000000     0        0 13600 2 0000000088ba1a99 20 4 17 18 -1
garbage line
";
    // ::ffff:10.213.250.2 and fd00::5, as the kernel prints them on little-endian machines.
    const TCP6: &str = "  sl  local_address remote_address st ...
   0: 0000000000000000FFFF00000A01D50A:01BD 0000000000000000FFFF000002FAD50A:C350 01 00000000:00000000 00:00000000 00000000 0 0 777 1 0
   1: 000000000000000000000000000000FD:01BD 000000FD000000000000000005000000:C351 01 00000000:00000000 00:00000000 00000000 0 0 778 1 0
";

    #[test]
    fn parses_rows_as_observed_on_smbd_4_17() {
        let rows = parse_tcp(TCP);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[2].local_port, 445);
        assert_eq!(rows[2].state, ESTABLISHED);
        assert_eq!(rows[2].inode, 13598);
        if cfg!(target_endian = "little") {
            assert_eq!(rows[2].remote, "10.213.250.2".parse::<IpAddr>().unwrap());
        }
    }

    #[test]
    fn picks_the_connected_socket_of_the_process() {
        let rows = parse_tcp(TCP);
        let want =
            |inodes: &[u64]| pick_peer(&rows, &inodes.iter().copied().collect(), &[445, 139]);
        if cfg!(target_endian = "little") {
            assert_eq!(want(&[13598, 12115]), Some("10.213.250.2".parse().unwrap()));
            // A closing connection still names its client; established wins over it.
            assert_eq!(want(&[13600]), Some("10.213.250.6".parse().unwrap()));
            assert_eq!(want(&[13600, 13598]), Some("10.213.250.2".parse().unwrap()));
        }
        assert_eq!(want(&[12115]), None, "the listener is not a peer");
        assert_eq!(want(&[1]), None);
        assert_eq!(
            pick_peer(&rows, &[13598].into_iter().collect(), &[139]),
            None
        );
    }

    #[test]
    fn v4_mapped_v6_prints_as_v4() {
        let rows = parse_tcp(TCP6);
        assert_eq!(rows.len(), 2);
        if cfg!(target_endian = "little") {
            assert_eq!(canonical(rows[0].remote).to_string(), "10.213.250.2");
            assert_eq!(rows[1].remote.to_string(), "fd00::5");
        }
    }

    #[test]
    fn a_process_without_sockets_has_no_peer() {
        assert_eq!(tcp_peer(u32::MAX, &[445]), None);
    }
}
