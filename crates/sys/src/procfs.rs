//! `/proc/PID/stat`: the one parser of it in ward.

/// The fields of `/proc/PID/stat` ward uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// State letter (field 3): `R`, `S`, `D`, `T` (stopped), `Z` (zombie), ...
    pub state: char,
    /// Parent pid (field 4).
    pub ppid: u32,
    /// Start time in clock ticks since boot (field 22): with the pid, a process identity
    /// that survives pid reuse.
    pub start: u64,
}

/// Parse the content of `/proc/PID/stat`. The command name (field 2) may contain spaces
/// and parentheses, so fields are counted from the last `)`.
pub fn parse_stat(stat: &str) -> Option<ProcStat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}

/// Read and parse `/proc/PID/stat`; `None` if the process is gone.
pub fn stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// pids never to be blamed or signalled: 0, 1 (init), 2 (kthreadd), this process and
/// all its ancestors.
pub fn self_and_ancestors() -> std::collections::BTreeSet<u32> {
    let mut s: std::collections::BTreeSet<u32> = [0, 1, 2].into_iter().collect();
    let mut pid = std::process::id();
    while pid > 1 && s.insert(pid) {
        match stat(pid) {
            Some(st) => pid = st.ppid,
            None => break,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_odd_command_names() {
        let s = "1234 (a) b (c)) S 99 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        assert_eq!(
            parse_stat(s),
            Some(ProcStat {
                state: 'S',
                ppid: 99,
                start: 777
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) R"), None);
    }

    #[test]
    fn self_and_ancestors_include_self_parent_and_init() {
        let s = self_and_ancestors();
        assert!(s.contains(&std::process::id()));
        assert!(s.contains(&stat(std::process::id()).unwrap().ppid));
        assert!(s.contains(&1));
    }

    #[test]
    fn reads_self() {
        let me = stat(std::process::id()).unwrap();
        assert!(matches!(me.state, 'R' | 'S'), "{me:?}");
        assert!(me.start > 0);
    }
}
