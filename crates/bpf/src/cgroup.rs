//! Finding the root of the cgroup-v2 hierarchy, where the connect hooks are attached so that
//! they apply to every process on the host.

use std::path::PathBuf;

use crate::BpfError;

/// The mount point of the cgroup-v2 hierarchy's root, from `/proc/self/mountinfo`:
/// `/sys/fs/cgroup` on unified hosts, `/sys/fs/cgroup/unified` on hybrid ones.
pub fn cgroup2_root() -> Result<PathBuf, BpfError> {
    let path = "/proc/self/mountinfo";
    let text = std::fs::read_to_string(path).map_err(|source| BpfError::Proc {
        path: path.into(),
        source,
    })?;
    parse_cgroup2_root(&text).ok_or(BpfError::CgroupV2NotMounted)
}

/// The cgroup-v2 root mount point in the text of a `mountinfo` file (see proc(5)): a
/// `cgroup2` mount of the hierarchy's root (`/`), preferring `/sys/fs/cgroup`, then
/// `/sys/fs/cgroup/unified`, then the first other one. `None` if there is none.
pub fn parse_cgroup2_root(mountinfo: &str) -> Option<PathBuf> {
    let mut found: Vec<String> = Vec::new();
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 || fields.get(sep + 1) != Some(&"cgroup2") {
            continue;
        }
        if fields[3] != "/" {
            continue; // a bind mount of a sub-tree: attaching there would not cover the host
        }
        found.push(unescape(fields[4]));
    }
    for preferred in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if found.iter().any(|m| m == preferred) {
            return Some(preferred.into());
        }
    }
    found.into_iter().next().map(PathBuf::from)
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            if let Ok(byte) = u8::try_from(v) {
                out.push(byte);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
32 31 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
33 31 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
";

    const UNIFIED: &str = "\
31 25 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
90 31 0:26 / /mnt/other\\040cg rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_host_uses_unified() {
        assert_eq!(
            parse_cgroup2_root(HYBRID),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn unified_host_prefers_sys_fs_cgroup() {
        assert_eq!(
            parse_cgroup2_root(UNIFIED),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
    }

    #[test]
    fn other_mount_point_is_unescaped() {
        let only = "90 31 0:26 / /mnt/other\\040cg rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            parse_cgroup2_root(only),
            Some(PathBuf::from("/mnt/other cg"))
        );
    }

    #[test]
    fn sub_tree_bind_and_v1_only_are_not_roots() {
        let text = "\
40 31 0:26 /system.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw
33 31 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd
";
        assert_eq!(parse_cgroup2_root(text), None);
    }

    #[test]
    fn garbage_is_not_a_mount() {
        assert_eq!(parse_cgroup2_root(""), None);
        assert_eq!(
            parse_cgroup2_root("- cgroup2\n\\\\\\ - -\n1 2 3 4 5\n"),
            None
        );
        assert_eq!(unescape("a\\"), "a\\");
        assert_eq!(unescape("a\\77"), "a\\77");
        assert_eq!(unescape("\\777x"), "\\777x");
    }

    #[test]
    fn this_host_has_one() {
        // Every supported host mounts cgroup2 somewhere; if not, the error must say so.
        match cgroup2_root() {
            Ok(p) => assert!(p.is_absolute()),
            Err(e) => assert!(matches!(e, BpfError::CgroupV2NotMounted), "{e}"),
        }
    }
}
