//! Pure decoding of the bytes returned by `read(2)` on a fanotify group.
//!
//! Layout (see `fanotify(7)`): a sequence of events, each a `fanotify_event_metadata`
//! header (24 bytes: `event_len: u32, vers: u8, reserved: u8, metadata_len: u16,
//! mask: u64, fd: i32, pid: i32`) followed by `event_len - metadata_len` bytes of
//! information records. Each record starts with a header (`info_type: u8, pad: u8,
//! len: u16`). FID records (`FID`, `DFID`, `DFID_NAME`, `OLD_DFID_NAME`,
//! `NEW_DFID_NAME`) carry `fsid: [i32; 2]`, then a `file_handle` (`handle_bytes: u32,
//! handle_type: i32, f_handle[handle_bytes]`), then for the `*_NAME` kinds a
//! NUL-terminated name. A `RANGE` record (pre-content events) carries `pad: u32,
//! offset: u64, count: u64`.
//!
//! [`Events`] never panics and never reads out of bounds, whatever the input: malformed
//! data ends the iteration with an [`DecodeError`] item.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

/// Metadata version this decoder understands (`FANOTIFY_METADATA_VERSION`).
pub const METADATA_VERSION: u8 = 3;
/// Size of `struct fanotify_event_metadata`.
pub const METADATA_LEN: usize = 24;

pub const INFO_FID: u8 = 1;
pub const INFO_DFID_NAME: u8 = 2;
pub const INFO_DFID: u8 = 3;
pub const INFO_PIDFD: u8 = 4;
pub const INFO_ERROR: u8 = 5;
pub const INFO_RANGE: u8 = 6;
pub const INFO_OLD_DFID_NAME: u8 = 10;
pub const INFO_NEW_DFID_NAME: u8 = 12;

/// A file handle reported in an FID information record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FileHandle {
    pub fsid: [i32; 2],
    pub handle_type: i32,
    pub bytes: Vec<u8>,
}

/// One information record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Info {
    /// `FID`, `DFID`, `DFID_NAME`, `OLD_DFID_NAME`, `NEW_DFID_NAME`.
    Fid {
        kind: u8,
        handle: FileHandle,
        name: Option<OsString>,
    },
    /// `RANGE` of a pre-content event.
    Range { offset: u64, count: u64 },
    /// `PIDFD`.
    Pidfd(i32),
    /// Anything else (kept so callers can log it).
    Other { kind: u8, len: usize },
}

/// One decoded event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub mask: u64,
    /// The event's file descriptor, `None` for `FAN_NOFD` (FID mode or overflow).
    pub fd: Option<i32>,
    pub pid: i32,
    pub info: Vec<Info>,
}

impl RawEvent {
    /// The first FID record of the given kind.
    pub fn fid(&self, kind: u8) -> Option<(&FileHandle, Option<&OsString>)> {
        self.info.iter().find_map(|i| match i {
            Info::Fid {
                kind: k,
                handle,
                name,
            } if *k == kind => Some((handle, name.as_ref())),
            _ => None,
        })
    }
}

impl RawEvent {
    /// The `RANGE` record (offset, count) of a pre-content event.
    pub fn range(&self) -> Option<(u64, u64)> {
        self.info.iter().find_map(|i| match i {
            Info::Range { offset, count } => Some((*offset, *count)),
            _ => None,
        })
    }
}

/// Why decoding stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    Truncated { at: usize },
    BadVersion(u8),
    BadLength { at: usize, len: usize },
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Truncated { at } => write!(f, "truncated fanotify event at byte {at}"),
            DecodeError::BadVersion(v) => write!(
                f,
                "fanotify metadata version {v}, expected {METADATA_VERSION}: kernel/ward mismatch"
            ),
            DecodeError::BadLength { at, len } => {
                write!(f, "bad fanotify event length {len} at byte {at}")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Iterator over the events in a read buffer.
pub struct Events<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Decode the events in `buf` (the bytes one `read` returned).
pub fn events(buf: &[u8]) -> Events<'_> {
    Events {
        buf,
        pos: 0,
        failed: false,
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn i32_at(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<RawEvent, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let r = decode_one(self.buf, self.pos);
        match r {
            Ok((ev, len)) => {
                self.pos += len;
                Some(Ok(ev))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn decode_one(buf: &[u8], at: usize) -> Result<(RawEvent, usize), DecodeError> {
    let b = &buf[at..];
    let trunc = DecodeError::Truncated { at };
    let event_len = u32_at(b, 0).ok_or(trunc.clone())? as usize;
    let vers = *b.get(4).ok_or(trunc.clone())?;
    if vers != METADATA_VERSION {
        return Err(DecodeError::BadVersion(vers));
    }
    let metadata_len = u16_at(b, 6).ok_or(trunc.clone())? as usize;
    if event_len < METADATA_LEN || metadata_len < METADATA_LEN || metadata_len > event_len {
        return Err(DecodeError::BadLength { at, len: event_len });
    }
    if event_len > b.len() {
        return Err(trunc);
    }
    let mask = u64_at(b, 8).ok_or(trunc.clone())?;
    let fd = i32_at(b, 16).ok_or(trunc.clone())?;
    let pid = i32_at(b, 20).ok_or(trunc)?;
    let info = decode_info(&b[metadata_len..event_len]);
    let ev = RawEvent {
        mask,
        fd: if fd >= 0 { Some(fd) } else { None },
        pid,
        info,
    };
    Ok((ev, event_len))
}

fn decode_info(mut rec: &[u8]) -> Vec<Info> {
    let mut out = Vec::new();
    while rec.len() >= 4 {
        let kind = rec[0];
        let len = match u16_at(rec, 2) {
            Some(l) => l as usize,
            None => break,
        };
        if len < 4 || len > rec.len() {
            break;
        }
        let body = &rec[4..len];
        out.push(decode_record(kind, body));
        rec = &rec[len..];
    }
    out
}

fn decode_record(kind: u8, body: &[u8]) -> Info {
    match kind {
        INFO_FID | INFO_DFID | INFO_DFID_NAME | INFO_OLD_DFID_NAME | INFO_NEW_DFID_NAME => {
            decode_fid(kind, body).unwrap_or(Info::Other {
                kind,
                len: body.len(),
            })
        }
        INFO_RANGE => match (u64_at(body, 4), u64_at(body, 12)) {
            (Some(offset), Some(count)) => Info::Range { offset, count },
            _ => Info::Other {
                kind,
                len: body.len(),
            },
        },
        INFO_PIDFD => match i32_at(body, 0) {
            Some(fd) => Info::Pidfd(fd),
            None => Info::Other {
                kind,
                len: body.len(),
            },
        },
        _ => Info::Other {
            kind,
            len: body.len(),
        },
    }
}

fn decode_fid(kind: u8, body: &[u8]) -> Option<Info> {
    let fsid = [i32_at(body, 0)?, i32_at(body, 4)?];
    let handle_bytes = u32_at(body, 8)? as usize;
    let handle_type = i32_at(body, 12)?;
    let start = 16usize;
    let end = start.checked_add(handle_bytes)?;
    let bytes = body.get(start..end)?.to_vec();
    let name = if kind == INFO_DFID_NAME || kind == INFO_OLD_DFID_NAME || kind == INFO_NEW_DFID_NAME
    {
        let rest = body.get(end..)?;
        let nul = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
        Some(OsString::from_vec(rest[..nul].to_vec()))
    } else {
        None
    };
    Some(Info::Fid {
        kind,
        handle: FileHandle {
            fsid,
            handle_type,
            bytes,
        },
        name,
    })
}

/// Encode an event the way the kernel does (used by tests and the fuzz seed corpus).
pub fn encode(ev: &RawEvent) -> Vec<u8> {
    let mut info = Vec::new();
    for i in &ev.info {
        match i {
            Info::Fid { kind, handle, name } => {
                let mut body = Vec::new();
                body.extend_from_slice(&handle.fsid[0].to_ne_bytes());
                body.extend_from_slice(&handle.fsid[1].to_ne_bytes());
                body.extend_from_slice(&(handle.bytes.len() as u32).to_ne_bytes());
                body.extend_from_slice(&handle.handle_type.to_ne_bytes());
                body.extend_from_slice(&handle.bytes);
                if let Some(n) = name {
                    body.extend_from_slice(n.as_encoded_bytes());
                    body.push(0);
                }
                while (body.len() + 4) % 4 != 0 {
                    body.push(0);
                }
                push_record(&mut info, *kind, &body);
            }
            Info::Range { offset, count } => {
                let mut body = vec![0u8; 4];
                body.extend_from_slice(&offset.to_ne_bytes());
                body.extend_from_slice(&count.to_ne_bytes());
                push_record(&mut info, INFO_RANGE, &body);
            }
            Info::Pidfd(fd) => push_record(&mut info, INFO_PIDFD, &fd.to_ne_bytes()),
            Info::Other { kind, len } => push_record(&mut info, *kind, &vec![0; *len]),
        }
    }
    let event_len = METADATA_LEN + info.len();
    let mut out = Vec::with_capacity(event_len);
    out.extend_from_slice(&(event_len as u32).to_ne_bytes());
    out.push(METADATA_VERSION);
    out.push(0);
    out.extend_from_slice(&(METADATA_LEN as u16).to_ne_bytes());
    out.extend_from_slice(&ev.mask.to_ne_bytes());
    out.extend_from_slice(&ev.fd.unwrap_or(-1).to_ne_bytes());
    out.extend_from_slice(&ev.pid.to_ne_bytes());
    out.extend_from_slice(&info);
    out
}

fn push_record(out: &mut Vec<u8>, kind: u8, body: &[u8]) {
    out.push(kind);
    out.push(0);
    out.extend_from_slice(&((body.len() + 4) as u16).to_ne_bytes());
    out.extend_from_slice(body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<RawEvent> {
        vec![
            RawEvent {
                mask: 0x10000,
                fd: Some(7),
                pid: 42,
                info: vec![],
            },
            RawEvent {
                mask: 0x100,
                fd: None,
                pid: 43,
                info: vec![Info::Fid {
                    kind: INFO_DFID_NAME,
                    handle: FileHandle {
                        fsid: [1, 2],
                        handle_type: 1,
                        bytes: vec![9; 8],
                    },
                    name: Some("report.docx".into()),
                }],
            },
            RawEvent {
                mask: 0x10000000,
                fd: None,
                pid: 44,
                info: vec![
                    Info::Fid {
                        kind: INFO_OLD_DFID_NAME,
                        handle: FileHandle {
                            fsid: [1, 2],
                            handle_type: 1,
                            bytes: vec![1; 8],
                        },
                        name: Some("a".into()),
                    },
                    Info::Fid {
                        kind: INFO_NEW_DFID_NAME,
                        handle: FileHandle {
                            fsid: [1, 2],
                            handle_type: 1,
                            bytes: vec![2; 8],
                        },
                        name: Some("a.locked".into()),
                    },
                ],
            },
            RawEvent {
                mask: 0x100000,
                fd: Some(3),
                pid: 1,
                info: vec![Info::Range {
                    offset: 4096,
                    count: 100,
                }],
            },
        ]
    }

    #[test]
    fn roundtrip() {
        let evs = sample();
        let mut buf = Vec::new();
        for e in &evs {
            buf.extend(encode(e));
        }
        let got: Vec<_> = events(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(got, evs);
        assert_eq!(got[3].range(), Some((4096, 100)));
        assert_eq!(got[0].range(), None);
    }

    #[test]
    fn rejects_bad_version_and_truncation() {
        let mut buf = encode(&sample()[0]);
        buf[4] = 2;
        assert_eq!(events(&buf).next(), Some(Err(DecodeError::BadVersion(2))));
        let buf = encode(&sample()[1]);
        let r: Vec<_> = events(&buf[..buf.len() - 1]).collect();
        assert!(matches!(r[0], Err(DecodeError::Truncated { .. })));
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            for _ in events(&bytes) {}
        }

        #[test]
        fn mutated_valid_never_panics(idx in 0usize..200, val in any::<u8>()) {
            let mut buf = Vec::new();
            for e in sample() { buf.extend(encode(&e)); }
            let i = idx % buf.len();
            buf[i] = val;
            for _ in events(&buf) {}
        }
    }
}
