//! Sample events for the tests.

use chrono::{DateTime, Utc};
use std::path::PathBuf;
use ward_model::*;

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// An incident through Samba (client set), id `20261201T100000-N`, pid N.
pub fn incident(n: u32) -> Incident {
    Incident {
        id: format!("20261201T100000-{n}"),
        pid: n,
        exe: "/usr/sbin/smbd".into(),
        cmdline: vec!["smbd".into(), "-D".into(), "--option=a \"b\"]".into()],
        client: Some(Client {
            ip: "10.0.0.5".into(),
            user: "alice".into(),
            share: "data".into(),
        }),
        started_at: t("2026-12-01T10:00:00.100Z"),
        detected_at: t("2026-12-01T10:00:00.120Z"),
        contained_at: t("2026-12-01T10:00:00.125Z"),
        action: Action::ClientBlocked,
        files_damaged: 3,
        indicators: vec!["content-encrypted".into(), "decoy-touched".into()],
        uid: 1000,
        damaged: vec![
            "/srv/share/a.docx".into(),
            "/srv/share/b.xlsx".into(),
            "/srv/share/c.pdf".into(),
        ],
        created: vec!["/srv/share/a.docx.locked".into()],
        processes: vec![n, n + 1],
        contain_ms: 25.0,
        freeze_ms: 0.4,
        restore: RestoreStatus::Pending,
    }
}

/// A local incident (no client), killed.
pub fn local_incident(n: u32) -> Incident {
    Incident {
        exe: "/tmp/enc".into(),
        cmdline: vec!["/tmp/enc".into(), "/srv".into()],
        client: None,
        action: Action::Killed,
        ..incident(n)
    }
}

pub fn ready() -> Ready {
    Ready {
        version: "0.1.0".into(),
        pid: 4242,
        paths: vec![PathBuf::from("/srv/share")],
        state_dir: PathBuf::from("/var/lib/ward"),
        filesystems: vec!["ext4".into()],
        protections: Protections {
            open_perm: true,
            name_events: true,
            vault: true,
            decoys: 4,
            ..Protections::default()
        },
        vaults: vec![PathBuf::from("/srv/share/.ward-vault")],
        sensor: "fanotify".into(),
        warnings: vec!["no FAN_RENAME".into()],
    }
}

pub fn restored(n: u32, lost: usize) -> Restored {
    Restored {
        id: format!("20261201T100000-{n}"),
        files_restored: 3 - lost,
        files_lost: lost,
        files_quarantined: 1,
        conflicts: vec![],
        already_ok: 0,
    }
}

/// One of every event kind.
pub fn all_events() -> Vec<AgentEvent> {
    vec![
        AgentEvent::Ready(ready()),
        AgentEvent::Incident(incident(11)),
        AgentEvent::Incident(local_incident(12)),
        AgentEvent::Restored(restored(11, 0)),
        AgentEvent::Restored(restored(12, 1)),
        AgentEvent::BlockLifted(BlockLifted {
            ip: "10.0.0.5".into(),
            reason: "unblock".into(),
        }),
        AgentEvent::EventsLost(ward_model::EventsLost {
            source: "fanotify".into(),
            lost: 1,
            total: 3,
        }),
        AgentEvent::Stopped(Stopped {}),
    ]
}
