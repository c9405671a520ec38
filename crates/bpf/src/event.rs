//! The wire format of `struct event` in `bpf/connect.bpf.c`, decoded without trusting it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::ConnectEvent;

/// Size of one ring-buffer record (`struct event`): 40 bytes.
///
/// Layout (native endianness): `u64 ktime_ns; u32 tgid; u32 tid; u32 uid; u16 dport;
/// u8 family (4|6); u8 denied; u8 daddr[16]` (network order, IPv4 in the first 4 bytes).
pub const EVENT_SIZE: usize = 40;

/// Decode one record; `None` if it is not a well-formed event (wrong size, unknown family).
pub fn decode_event(rec: &[u8]) -> Option<ConnectEvent> {
    if rec.len() != EVENT_SIZE {
        return None;
    }
    let u32_at = |o: usize| u32::from_ne_bytes([rec[o], rec[o + 1], rec[o + 2], rec[o + 3]]);
    let mut t = [0u8; 8];
    t.copy_from_slice(&rec[0..8]);
    let time_ns = u64::from_ne_bytes(t);
    let port = u16::from_ne_bytes([rec[20], rec[21]]);
    let mut a = [0u8; 16];
    a.copy_from_slice(&rec[24..40]);
    let addr = match rec[22] {
        4 => IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])),
        6 => IpAddr::V6(Ipv6Addr::from(a)).to_canonical(),
        _ => return None,
    };
    Some(ConnectEvent {
        pid: u32_at(8),
        tid: u32_at(12),
        uid: u32_at(16),
        addr,
        port,
        time_ns,
        denied: rec[23] != 0,
    })
}

#[cfg(test)]
pub(crate) fn encode_event(e: &ConnectEvent) -> [u8; EVENT_SIZE] {
    let mut r = [0u8; EVENT_SIZE];
    r[0..8].copy_from_slice(&e.time_ns.to_ne_bytes());
    r[8..12].copy_from_slice(&e.pid.to_ne_bytes());
    r[12..16].copy_from_slice(&e.tid.to_ne_bytes());
    r[16..20].copy_from_slice(&e.uid.to_ne_bytes());
    r[20..22].copy_from_slice(&e.port.to_ne_bytes());
    r[23] = e.denied as u8;
    match e.addr {
        IpAddr::V4(v4) => {
            r[22] = 4;
            r[24..28].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            r[22] = 6;
            r[24..40].copy_from_slice(&v6.octets());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(addr: IpAddr) -> ConnectEvent {
        ConnectEvent {
            pid: 4242,
            tid: 4243,
            uid: 1000,
            addr,
            port: 445,
            time_ns: 123_456_789_012,
            denied: true,
        }
    }

    #[test]
    fn round_trips_v4_and_v6() {
        for addr in [
            IpAddr::V4(Ipv4Addr::new(10, 214, 0, 7)),
            IpAddr::V6("fd00::1:2".parse().unwrap()),
        ] {
            let e = ev(addr);
            assert_eq!(decode_event(&encode_event(&e)), Some(e));
        }
    }

    #[test]
    fn v4_mapped_v6_is_reported_as_v4() {
        let mut r = encode_event(&ev(IpAddr::V6("::ffff:10.1.2.3".parse().unwrap())));
        assert_eq!(r[22], 6);
        let d = decode_event(&r).unwrap();
        assert_eq!(d.addr, IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)));
        r[23] = 0;
        assert!(!decode_event(&r).unwrap().denied);
    }

    #[test]
    fn malformed_records_are_rejected() {
        let good = encode_event(&ev(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert_eq!(decode_event(&good[..39]), None);
        let mut long = good.to_vec();
        long.push(0);
        assert_eq!(decode_event(&long), None);
        assert_eq!(decode_event(&[]), None);
        let mut bad = good;
        bad[22] = 5;
        assert_eq!(decode_event(&bad), None);
    }
}
