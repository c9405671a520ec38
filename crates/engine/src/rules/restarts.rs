//! Slow attackers across process restarts.
//!
//! A process that damages one file per run and is started anew for each run adds up at
//! its parent when the parent is part of the lineage (a script, a shell: see
//! [`crate::lineage`]'s chains; exited members keep their evidence for the window). When
//! the parent is a *boundary* (cron, systemd, sshd, smbd's parent) each run is a lineage
//! of its own, so the runs are also counted together by **program identity**: the
//! boundary parent, the executable and the user id of the lineage root. When the runs of
//! one identity damage [`crate::Config::damage_threshold`] distinct files within the
//! window, counting only runs that have exited and the running one (concurrent sessions,
//! such as two ssh logins of one user, stay separate lineages), the running instance is
//! convicted (the earlier runs have exited: only their
//! files can be restored). What cannot be done: runs started by different boundaries
//! (cron one hour, a systemd timer the next), or by a program that changes its executable
//! path or user each run, are not linked; runs further apart than the window are not
//! linked either.

use crate::engine::Engine;
use crate::event::ProcId;
use crate::evidence::DamageRec;
use crate::hash::path_hash;
use crate::verdict::Verdict;
use std::sync::Arc;

/// Program identities tracked at most.
pub(crate) const MAX_GROUPS: usize = 4096;
/// Damaged files remembered per identity.
pub(crate) const MAX_GROUP_DAMAGE: usize = 64;

/// Interpreters whose program is the script they run, not their executable.
const INTERPRETERS: &[&str] = &[
    "python", "python2", "python3", "perl", "ruby", "node", "nodejs", "php", "bash", "sh", "dash",
    "zsh", "ksh", "pwsh", "lua", "Rscript",
];

/// For an interpreter, what it runs: `:` and the script path (or `-m module`), so that
/// unrelated jobs of one cron or one shell (`python3 backup.py`, `python3 report.py`) are
/// not one program; `None` for other executables and for inline code (`-c`), where the
/// interpreter is the identity (per-file inline code would otherwise split a slow
/// attacker's runs). Versioned names (`python3.11`) count as their family.
pub(crate) fn script_of(exe: &str, cmdline: &[String]) -> Option<String> {
    let base = exe.rsplit('/').next().unwrap_or(exe);
    let family = base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !INTERPRETERS.contains(&base) && !INTERPRETERS.contains(&family) {
        return None;
    }
    let mut args = cmdline.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-c" | "-e" | "--eval" => return None,
            "-m" => return args.next().map(|m| format!(":-m {m}")),
            _ if a.starts_with('-') => continue,
            _ => return Some(format!(":{a}")),
        }
    }
    None
}

impl Engine {
    /// The program identity of the lineage whose root is `top`, when its parent is a
    /// boundary process.
    pub(crate) fn restart_key(&self, top: ProcId) -> Option<u64> {
        let info = self.procs.get(&top)?.info.as_ref()?;
        let pp = info.parent?;
        let parent = self.procs.get(&pp)?;
        if !parent.boundary() {
            return None;
        }
        let id = format!(
            "{}:{}:{}:{}{}",
            pp.pid,
            pp.start,
            info.uid,
            info.exe,
            script_of(&info.exe, &info.cmdline).unwrap_or_default()
        );
        Some(path_hash(&id))
    }

    /// Count `rec` for the program identity of `chain`'s root; convict the root when the
    /// identity's runs crossed the threshold.
    pub(crate) fn restart_damage(
        &mut self,
        chain: &[ProcId],
        culprit: ProcId,
        rec: &Arc<DamageRec>,
    ) -> Option<Verdict> {
        let top = *chain.last()?;
        let key = self.restart_key(top)?;
        let (now, window) = (self.now, self.cfg.window_ns);
        if self.groups.len() >= MAX_GROUPS && !self.groups.contains_key(&key) {
            self.groups.retain(|_, g| {
                g.back()
                    .is_some_and(|(d, _)| now.saturating_sub(d.time) <= window)
            });
            if self.groups.len() >= MAX_GROUPS {
                self.groups.clear();
            }
        }
        let g = self.groups.entry(key).or_default();
        while g
            .front()
            .is_some_and(|(d, _)| now.saturating_sub(d.time) > window)
        {
            g.pop_front();
        }
        if !g.iter().any(|(d, _)| d.file == rec.file) {
            if g.len() >= MAX_GROUP_DAMAGE {
                g.pop_front();
            }
            g.push_back((rec.clone(), top));
        }
        // Only runs that have exited, and the running one, add up.
        let procs = &self.procs;
        let counts = |r: &ProcId| *r == top || procs.get(r).is_none_or(|n| !n.alive);
        if g.iter().filter(|(_, r)| counts(r)).count() < self.cfg.damage_threshold.max(1) {
            return None;
        }
        let g = self.groups.remove(&key)?;
        let procs = &self.procs;
        let counts = |r: &ProcId| *r == top || procs.get(r).is_none_or(|n| !n.alive);
        let recs: Vec<Arc<DamageRec>> = g
            .into_iter()
            .filter(|(_, r)| counts(r))
            .map(|(d, _)| d)
            .collect();
        let mut v = self.convict(top, culprit, false);
        for d in recs {
            if !v.files_damaged.contains(&d.path) {
                v.files_damaged.push(d.path.clone());
            }
            v.first_damage = v.first_damage.min(d.time);
            for i in crate::verdict::Indicator::from_bits(d.indicators) {
                if !v.indicators.contains(&i) {
                    v.indicators.push(i);
                }
            }
        }
        v.indicators.sort_unstable();
        v.damage_count = v.files_damaged.len();
        v.score = v.score.max(v.damage_count as u32 * 10);
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::script_of;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn interpreters_are_identified_by_their_script() {
        let py = "/usr/bin/python3.11";
        assert_eq!(
            script_of(py, &v(&["python3", "-u", "/opt/backup.py", "x"])).as_deref(),
            Some(":/opt/backup.py")
        );
        assert_eq!(
            script_of(py, &v(&["python3", "-m", "tool", "a"])).as_deref(),
            Some(":-m tool")
        );
        assert_eq!(script_of(py, &v(&["python3", "-c", "print(1)"])), None);
        assert_eq!(
            script_of("/bin/bash", &v(&["bash", "run.sh"])).as_deref(),
            Some(":run.sh")
        );
        assert_eq!(script_of("/usr/bin/openssl", &v(&["openssl", "enc"])), None);
        assert_ne!(
            script_of(py, &v(&["python3", "backup.py"])),
            script_of(py, &v(&["python3", "report.py"]))
        );
    }
}
