//! Elastic Common Schema documents (`--format ecs`, BRIEF §5b): one document per event.
//!
//! Fields follow the ECS reference (version [`ECS_VERSION`]); everything ECS has no field
//! for (full file lists, indicators, timings, the SMB share, restore counts) is under the
//! custom `ward.*` namespace, as ECS asks of custom fields. Documents are nested objects
//! (`{"event":{"kind":..}}`), which Elasticsearch indexes the same as dotted keys.
//!
//! Event mapping:
//!
//! | event | kind | category | type | action | outcome |
//! |---|---|---|---|---|---|
//! | incident (contained) | alert | malware, intrusion_detection, file | info, change, denied | `ransomware-contained` | success |
//! | incident (alert-only) | alert | malware, intrusion_detection, file | info, change, allowed | `ransomware-detected` | unknown |
//! | restored | event | file | change | `files-restored` | success, failure if files were lost |
//! | ready | event | process | start | `agent-ready` | success |
//! | block-lifted | event | network | allowed, end | `client-unblocked` | success |
//! | stopped | event | process | end | `agent-stopped` | success |

use crate::stamp::Stamped;
use crate::{Sink, SinkError};
use serde_json::{json, Map, Value};
use ward_model::{Action, AgentEvent, Incident};

/// The ECS version the documents follow.
pub const ECS_VERSION: &str = "8.17.0";

/// What ECS documents say about where they come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsContext {
    /// `host.name` / `host.hostname`.
    pub host_name: String,
    /// `agent.version`.
    pub agent_version: String,
}

impl EcsContext {
    /// This machine's host name (or `localhost` when unreadable) and this build's version.
    pub fn detect() -> EcsContext {
        EcsContext {
            host_name: crate::hostname().unwrap_or_else(|| "localhost".into()),
            agent_version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

fn ts(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

/// The login name of `uid` from `/etc/passwd` (agent events are rare: read it each time).
fn user_name(uid: u32) -> Option<String> {
    let text = std::fs::read_to_string("/etc/passwd").ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

fn contained(a: Action) -> bool {
    !matches!(a, Action::Alerted)
}

/// MITRE ATT&CK tactics and techniques an incident shows: (tactic id, tactic name,
/// technique id, technique name).
fn attack(i: &Incident) -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
    let fanout = i.indicators.iter().any(|s| s == "smb-fanout");
    let other = i.indicators.iter().any(|s| s != "smb-fanout") || i.files_damaged > 0;
    let mut v = Vec::new();
    if other || !fanout {
        v.push(("TA0040", "Impact", "T1486", "Data Encrypted for Impact"));
    }
    if fanout {
        v.push((
            "TA0008",
            "Lateral Movement",
            "T1210",
            "Exploitation of Remote Services",
        ));
    }
    v
}

fn incident_doc(i: &Incident, doc: &mut Map<String, Value>) {
    let done = contained(i.action);
    let who = match &i.client {
        Some(c) if !c.user.is_empty() => format!(" for SMB client {} (user {})", c.ip, c.user),
        Some(c) => format!(" for SMB client {}", c.ip),
        None => String::new(),
    };
    let message = if done {
        format!(
            "ward contained an attack: {} (pid {}){} damaged {} files; action {}",
            i.exe, i.pid, who, i.files_damaged, i.action
        )
    } else {
        format!(
            "ward detected an attack (alert only, nothing stopped): {} (pid {}){} damaged {} \
             files",
            i.exe, i.pid, who, i.files_damaged
        )
    };
    doc.insert("@timestamp".into(), json!(ts(i.detected_at)));
    doc.insert("message".into(), json!(message));
    let mut ev = doc
        .get_mut("event")
        .and_then(Value::as_object_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    ev.insert("kind".into(), json!("alert"));
    ev.insert(
        "category".into(),
        json!(["malware", "intrusion_detection", "file"]),
    );
    ev.insert(
        "type".into(),
        json!(["info", "change", if done { "denied" } else { "allowed" }]),
    );
    ev.insert(
        "action".into(),
        json!(if done {
            "ransomware-contained"
        } else {
            "ransomware-detected"
        }),
    );
    ev.insert(
        "outcome".into(),
        json!(if done { "success" } else { "unknown" }),
    );
    ev.insert("start".into(), json!(ts(i.started_at)));
    ev.insert("end".into(), json!(ts(i.contained_at)));
    ev.insert(
        "duration".into(),
        json!((i.contain_ms.max(0.0) * 1e6).round() as u64),
    );
    ev.insert("reason".into(), json!(i.indicators.join(", ")));
    ev.insert("severity".into(), json!(if done { 73 } else { 99 }));
    doc.insert("event".into(), Value::Object(ev));
    let local_user = user_name(i.uid);
    let mut puser = Map::new();
    puser.insert("id".into(), json!(i.uid.to_string()));
    if let Some(n) = &local_user {
        puser.insert("name".into(), json!(n));
    }
    doc.insert(
        "process".into(),
        json!({
            "pid": i.pid,
            "executable": i.exe,
            "name": basename(&i.exe),
            "command_line": i.cmdline.join(" "),
            "args": i.cmdline,
            "args_count": i.cmdline.len(),
            "user": puser,
        }),
    );
    if let Some(first) = i.damaged.first() {
        doc.insert(
            "file".into(),
            json!({ "path": first, "name": basename(first) }),
        );
    }
    let mut related = Map::new();
    if let Some(c) = &i.client {
        let mut source = Map::new();
        source.insert("address".into(), json!(c.ip));
        if c.ip.parse::<std::net::IpAddr>().is_ok() {
            source.insert("ip".into(), json!(c.ip));
            related.insert("ip".into(), json!([c.ip]));
        }
        doc.insert("source".into(), Value::Object(source));
        if !c.user.is_empty() {
            doc.insert("user".into(), json!({ "name": c.user }));
            related.insert("user".into(), json!([c.user]));
        }
    } else if let Some(n) = &local_user {
        // A local attack: the user is the one the process runs as.
        doc.insert("user".into(), json!({ "name": n, "id": i.uid.to_string() }));
        related.insert("user".into(), json!([n]));
    }
    if !related.is_empty() {
        doc.insert("related".into(), Value::Object(related));
    }
    doc.insert(
        "rule".into(),
        json!({
            "name": "ward-ransomware-behaviour",
            "ruleset": "ward",
            "category": "ransomware",
            "description": format!("indicators: {}", i.indicators.join(", ")),
        }),
    );
    let a = attack(i);
    doc.insert(
        "threat".into(),
        json!({
            "framework": "MITRE ATT&CK",
            "tactic": {
                "id": a.iter().map(|t| t.0).collect::<Vec<_>>(),
                "name": a.iter().map(|t| t.1).collect::<Vec<_>>(),
            },
            "technique": {
                "id": a.iter().map(|t| t.2).collect::<Vec<_>>(),
                "name": a.iter().map(|t| t.3).collect::<Vec<_>>(),
            },
        }),
    );
    doc.insert(
        "ward".into(),
        json!({
            "incident": {
                "id": i.id,
                "action": i.action.as_str(),
                "files_damaged": i.files_damaged,
                "indicators": i.indicators,
                "processes": i.processes,
                "contain_ms": i.contain_ms,
                "freeze_ms": i.freeze_ms,
                "restore": i.restore.as_str(),
                "client": i.client.as_ref().map(|c| json!({
                    "ip": c.ip, "user": c.user, "share": c.share,
                })),
            },
            "files": { "damaged": i.damaged, "created": i.created },
        }),
    );
}

/// The ECS document for one stamped event.
pub fn to_ecs(s: &Stamped, ctx: &EcsContext) -> Value {
    let mut doc = Map::new();
    doc.insert("@timestamp".into(), json!(ts(s.at)));
    doc.insert("ecs".into(), json!({ "version": ECS_VERSION }));
    doc.insert(
        "event".into(),
        json!({
            "id": s.id,
            "created": ts(s.at),
            "module": "ward",
            "provider": "ward",
            "dataset": format!("ward.{}", s.event.kind()),
        }),
    );
    doc.insert(
        "host".into(),
        json!({ "name": ctx.host_name, "hostname": ctx.host_name }),
    );
    doc.insert(
        "agent".into(),
        json!({ "type": "ward", "name": ctx.host_name, "version": ctx.agent_version }),
    );
    let set = |doc: &mut Map<String, Value>,
               kind: &str,
               cat: &[&str],
               ty: &[&str],
               action: &str,
               outcome: &str,
               message: String| {
        if let Some(ev) = doc.get_mut("event").and_then(Value::as_object_mut) {
            ev.insert("kind".into(), json!(kind));
            ev.insert("category".into(), json!(cat));
            ev.insert("type".into(), json!(ty));
            ev.insert("action".into(), json!(action));
            ev.insert("outcome".into(), json!(outcome));
        }
        doc.insert("message".into(), json!(message));
    };
    match &s.event {
        AgentEvent::Incident(i) => incident_doc(i, &mut doc),
        AgentEvent::Restored(r) => {
            set(
                &mut doc,
                "event",
                &["file"],
                &["change"],
                "files-restored",
                if r.files_lost == 0 {
                    "success"
                } else {
                    "failure"
                },
                format!(
                    "ward restored {} files of incident {} ({} lost, {} quarantined, {} \
                     conflicts kept side by side)",
                    r.files_restored,
                    r.id,
                    r.files_lost,
                    r.files_quarantined,
                    r.conflicts.len()
                ),
            );
            doc.insert(
                "ward".into(),
                json!({
                    "incident": { "id": r.id },
                    "restore": {
                        "files_restored": r.files_restored,
                        "files_lost": r.files_lost,
                        "files_quarantined": r.files_quarantined,
                        "already_ok": r.already_ok,
                        "conflicts": r.conflicts,
                    },
                }),
            );
        }
        AgentEvent::RestoreFailed(r) => {
            set(
                &mut doc,
                "event",
                &["file"],
                &["change"],
                "restore-failed",
                "failure",
                format!(
                    "ward could not restore the {} damaged files of incident {}: {}; the vault \
                     keeps them: run `{}`",
                    r.files_pending, r.id, r.error, r.retry
                ),
            );
            doc.insert("error".into(), json!({ "message": r.error }));
            doc.insert(
                "ward".into(),
                json!({
                    "incident": { "id": r.id },
                    "restore": { "files_pending": r.files_pending, "retry": r.retry },
                }),
            );
        }
        AgentEvent::Ready(r) => {
            let paths: Vec<String> = r.paths.iter().map(|p| p.display().to_string()).collect();
            set(
                &mut doc,
                "event",
                &["process"],
                &["start"],
                "agent-ready",
                "success",
                format!(
                    "ward {} protects {} (sensor {}){}",
                    r.version,
                    paths.join(", "),
                    if r.sensor.is_empty() {
                        "unknown"
                    } else {
                        &r.sensor
                    },
                    if r.warnings.is_empty() {
                        String::new()
                    } else {
                        format!("; degraded: {}", r.warnings.join("; "))
                    }
                ),
            );
            doc.insert("process".into(), json!({ "pid": r.pid, "name": "ward" }));
            doc.insert(
                "ward".into(),
                json!({
                    "paths": paths,
                    "state_dir": r.state_dir,
                    "filesystems": r.filesystems,
                    "protections": r.protections,
                    "vaults": r.vaults,
                    "sensor": r.sensor,
                    "warnings": r.warnings,
                }),
            );
        }
        AgentEvent::BlockLifted(b) => {
            set(
                &mut doc,
                "event",
                &["network"],
                &["allowed", "end"],
                "client-unblocked",
                "success",
                format!(
                    "ward lifted the block of SMB client {} ({})",
                    b.ip, b.reason
                ),
            );
            let mut source = Map::new();
            source.insert("address".into(), json!(b.ip));
            if b.ip.parse::<std::net::IpAddr>().is_ok() {
                source.insert("ip".into(), json!(b.ip));
                doc.insert("related".into(), json!({ "ip": [b.ip] }));
            }
            doc.insert("source".into(), Value::Object(source));
            doc.insert("ward".into(), json!({ "block": { "reason": b.reason } }));
        }
        AgentEvent::EventsLost(l) => {
            set(
                &mut doc,
                "event",
                &["process"],
                &["info"],
                "events-lost",
                "failure",
                format!(
                    "ward lost {} {} event(s) ({} since it started): some file activity was not seen",
                    l.lost, l.source, l.total
                ),
            );
            doc.insert(
                "ward".into(),
                json!({ "lost": { "source": l.source, "count": l.lost, "total": l.total } }),
            );
        }
        AgentEvent::Stopped(_) => {
            set(
                &mut doc,
                "event",
                &["process"],
                &["end"],
                "agent-stopped",
                "success",
                "ward stopped".into(),
            );
            doc.insert(
                "process".into(),
                json!({ "pid": std::process::id(), "name": "ward" }),
            );
        }
    }
    Value::Object(doc)
}

/// ECS documents as JSON lines, to any writer.
pub struct EcsLines<W: std::io::Write + Send> {
    out: W,
    ctx: EcsContext,
}

impl<W: std::io::Write + Send> EcsLines<W> {
    /// Write to `out` (e.g. `std::io::stdout()`), describing this host with `ctx`.
    pub fn new(out: W, ctx: EcsContext) -> Self {
        EcsLines { out, ctx }
    }
}

impl<W: std::io::Write + Send> Sink for EcsLines<W> {
    fn name(&self) -> &str {
        "ecs"
    }

    fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError> {
        self.send_stamped(&Stamped::now(ev.clone()))
    }

    fn send_stamped(&mut self, ev: &Stamped) -> Result<(), SinkError> {
        let mut line = serde_json::to_vec(&to_ecs(ev, &self.ctx)).map_err(std::io::Error::from)?;
        line.push(b'\n');
        self.out.write_all(&line)?;
        self.out.flush()?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use std::collections::BTreeMap;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum T {
        Keyword,
        Wildcard,
        Text,
        Long,
        Date,
        Ip,
    }

    /// Every ECS field ward emits, with its type and, where ECS restricts them, its
    /// allowed values (from the ECS field reference, 8.x).
    const ECS_FIELDS: &[(&str, T, &[&str])] = &[
        ("@timestamp", T::Date, &[]),
        ("message", T::Text, &[]),
        ("ecs.version", T::Keyword, &[]),
        (
            "event.kind",
            T::Keyword,
            &[
                "alert",
                "asset",
                "enrichment",
                "event",
                "metric",
                "state",
                "pipeline_error",
                "signal",
            ],
        ),
        (
            "event.category",
            T::Keyword,
            &[
                "api",
                "authentication",
                "configuration",
                "database",
                "driver",
                "email",
                "file",
                "host",
                "iam",
                "intrusion_detection",
                "library",
                "malware",
                "network",
                "package",
                "process",
                "registry",
                "session",
                "threat",
                "vulnerability",
                "web",
            ],
        ),
        (
            "event.type",
            T::Keyword,
            &[
                "access",
                "admin",
                "allowed",
                "change",
                "connection",
                "creation",
                "deletion",
                "denied",
                "device",
                "end",
                "error",
                "group",
                "indicator",
                "info",
                "installation",
                "protocol",
                "start",
                "user",
            ],
        ),
        (
            "event.outcome",
            T::Keyword,
            &["failure", "success", "unknown"],
        ),
        ("event.action", T::Keyword, &[]),
        ("event.id", T::Keyword, &[]),
        ("event.created", T::Date, &[]),
        ("event.start", T::Date, &[]),
        ("event.end", T::Date, &[]),
        ("event.duration", T::Long, &[]),
        ("event.module", T::Keyword, &[]),
        ("event.provider", T::Keyword, &[]),
        ("event.dataset", T::Keyword, &[]),
        ("event.reason", T::Keyword, &[]),
        ("event.severity", T::Long, &[]),
        ("host.name", T::Keyword, &[]),
        ("host.hostname", T::Keyword, &[]),
        ("agent.type", T::Keyword, &[]),
        ("agent.name", T::Keyword, &[]),
        ("agent.version", T::Keyword, &[]),
        ("process.pid", T::Long, &[]),
        ("process.executable", T::Keyword, &[]),
        ("process.name", T::Keyword, &[]),
        ("process.command_line", T::Wildcard, &[]),
        ("process.args", T::Keyword, &[]),
        ("process.args_count", T::Long, &[]),
        ("process.user.id", T::Keyword, &[]),
        ("process.user.name", T::Keyword, &[]),
        ("user.id", T::Keyword, &[]),
        ("source.ip", T::Ip, &[]),
        ("source.address", T::Keyword, &[]),
        ("user.name", T::Keyword, &[]),
        ("related.ip", T::Ip, &[]),
        ("related.user", T::Keyword, &[]),
        ("file.path", T::Keyword, &[]),
        ("file.name", T::Keyword, &[]),
        ("rule.name", T::Keyword, &[]),
        ("rule.ruleset", T::Keyword, &[]),
        ("rule.category", T::Keyword, &[]),
        ("rule.description", T::Keyword, &[]),
        ("threat.framework", T::Keyword, &[]),
        ("threat.tactic.id", T::Keyword, &[]),
        ("threat.tactic.name", T::Keyword, &[]),
        ("threat.technique.id", T::Keyword, &[]),
        ("threat.technique.name", T::Keyword, &[]),
    ];

    /// ECS "expected event types" per category, for the categories ward uses.
    const EXPECTED_TYPES: &[(&str, &[&str])] = &[
        ("malware", &["info"]),
        (
            "file",
            &["access", "change", "creation", "deletion", "info"],
        ),
        ("intrusion_detection", &["allowed", "denied", "info"]),
        ("process", &["access", "change", "end", "info", "start"]),
        (
            "network",
            &[
                "access",
                "allowed",
                "connection",
                "denied",
                "end",
                "info",
                "protocol",
                "start",
            ],
        ),
    ];

    fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    if key == "ward" {
                        assert!(v.is_object(), "ward namespace must be an object");
                        out.insert(key, v.clone());
                    } else {
                        flatten(&key, v, out);
                    }
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }

    fn check_scalar(key: &str, ty: T, allowed: &[&str], v: &Value) {
        match ty {
            T::Keyword | T::Wildcard | T::Text => {
                let s = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{key}: not a string: {v}"));
                if !allowed.is_empty() {
                    assert!(
                        allowed.contains(&s),
                        "{key}: `{s}` is not an allowed ECS value"
                    );
                }
            }
            T::Long => assert!(v.is_i64() || v.is_u64(), "{key}: not an integer: {v}"),
            T::Date => {
                let s = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{key}: not a string: {v}"));
                chrono::DateTime::parse_from_rfc3339(s)
                    .unwrap_or_else(|e| panic!("{key}: `{s}` is not a date: {e}"));
            }
            T::Ip => {
                let s = v
                    .as_str()
                    .unwrap_or_else(|| panic!("{key}: not a string: {v}"));
                s.parse::<std::net::IpAddr>()
                    .unwrap_or_else(|e| panic!("{key}: `{s}` is not an ip: {e}"));
            }
        }
    }

    /// Every key is an ECS field of the right type and allowed value, or under `ward.`.
    fn check_doc(doc: &Value) -> BTreeMap<String, Value> {
        let mut flat = BTreeMap::new();
        flatten("", doc, &mut flat);
        for (key, v) in &flat {
            if key == "ward" {
                continue;
            }
            let (_, ty, allowed) = ECS_FIELDS.iter().find(|f| f.0 == key).unwrap_or_else(|| {
                panic!("`{key}` is neither an ECS field in the table nor under ward.")
            });
            match v {
                Value::Array(items) => {
                    assert!(!items.is_empty(), "{key}: empty array");
                    for item in items {
                        check_scalar(key, *ty, allowed, item);
                    }
                }
                other => check_scalar(key, *ty, allowed, other),
            }
        }
        for required in [
            "@timestamp",
            "ecs.version",
            "event.kind",
            "event.category",
            "event.type",
            "event.action",
            "event.id",
            "event.outcome",
            "host.name",
            "agent.type",
            "agent.version",
            "message",
        ] {
            assert!(flat.contains_key(required), "missing {required} in {doc}");
        }
        assert_eq!(flat["agent.type"], "ward");
        assert_eq!(flat["ecs.version"], ECS_VERSION);
        // Each event.type is expected for at least one of the document's categories.
        let cats: Vec<&str> = flat["event.category"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for ty in flat["event.type"].as_array().unwrap() {
            let ty = ty.as_str().unwrap();
            assert!(
                cats.iter().any(|c| EXPECTED_TYPES
                    .iter()
                    .any(|(cat, tys)| cat == c && tys.contains(&ty))),
                "event.type {ty} is not expected for categories {cats:?}"
            );
        }
        flat
    }

    fn ctx() -> EcsContext {
        EcsContext {
            host_name: "fs01".into(),
            agent_version: "0.1.0".into(),
        }
    }

    #[test]
    fn every_event_kind_is_valid_ecs() {
        for ev in testutil::all_events() {
            let doc = to_ecs(&Stamped::now(ev.clone()), &ctx());
            let flat = check_doc(&doc);
            let expect_kind = if ev.kind() == "incident" {
                "alert"
            } else {
                "event"
            };
            assert_eq!(flat["event.kind"], expect_kind, "{doc}");
        }
    }

    #[test]
    fn smb_incident_fields() {
        let i = testutil::incident(7);
        let s = Stamped::now(AgentEvent::Incident(i.clone()));
        let flat = check_doc(&to_ecs(&s, &ctx()));
        assert_eq!(flat["event.id"], i.id);
        assert_eq!(flat["event.action"], "ransomware-contained");
        assert_eq!(flat["event.outcome"], "success");
        assert_eq!(
            flat["event.category"],
            json!(["malware", "intrusion_detection", "file"])
        );
        assert_eq!(flat["event.duration"], 25_000_000);
        assert_eq!(flat["@timestamp"], "2026-12-01T10:00:00.120000Z");
        assert_eq!(flat["event.start"], "2026-12-01T10:00:00.100000Z");
        assert_eq!(flat["process.pid"], 7);
        assert_eq!(flat["process.executable"], "/usr/sbin/smbd");
        assert_eq!(flat["process.name"], "smbd");
        assert_eq!(flat["process.args"], json!(i.cmdline));
        assert_eq!(flat["process.command_line"], i.cmdline.join(" "));
        assert_eq!(flat["process.user.id"], "1000");
        assert_eq!(flat["source.ip"], "10.0.0.5");
        assert_eq!(flat["user.name"], "alice");
        assert_eq!(flat["file.path"], "/srv/share/a.docx");
        assert_eq!(flat["host.name"], "fs01");
        assert_eq!(flat["threat.technique.id"], json!(["T1486"]));
        let ward = &flat["ward"];
        assert_eq!(ward["files"]["damaged"], json!(i.damaged));
        assert_eq!(ward["incident"]["client"]["share"], "data");
        assert_eq!(ward["incident"]["action"], "client-blocked");
        assert!(flat["message"].as_str().unwrap().contains("10.0.0.5"));
    }

    #[test]
    fn alert_only_worm_and_lossy_restore() {
        let mut i = testutil::local_incident(9);
        i.action = Action::Alerted;
        i.indicators = vec!["smb-fanout".into()];
        i.files_damaged = 0;
        i.damaged.clear();
        let flat = check_doc(&to_ecs(&Stamped::now(AgentEvent::Incident(i)), &ctx()));
        assert_eq!(flat["event.action"], "ransomware-detected");
        assert_eq!(flat["event.outcome"], "unknown");
        assert_eq!(flat["threat.tactic.id"], json!(["TA0008"]));
        assert!(!flat.contains_key("source.ip"));
        assert!(!flat.contains_key("file.path"));
        let r = AgentEvent::Restored(testutil::restored(9, 1));
        let flat = check_doc(&to_ecs(&Stamped::now(r), &ctx()));
        assert_eq!(flat["event.outcome"], "failure");
        assert_eq!(flat["ward"]["restore"]["files_lost"], 1);
    }

    #[test]
    fn a_local_incident_names_the_user_it_ran_as() {
        let mut i = testutil::local_incident(4);
        i.uid = 0; // root is in every /etc/passwd
        let flat = check_doc(&to_ecs(&Stamped::now(AgentEvent::Incident(i)), &ctx()));
        assert_eq!(flat["process.user.id"], "0");
        assert_eq!(flat["process.user.name"], "root");
        assert_eq!(flat["user.name"], "root");
        assert_eq!(flat["user.id"], "0");
        assert_eq!(flat["related.user"], json!(["root"]));
    }

    #[test]
    fn a_non_ip_client_address_stays_out_of_source_ip() {
        let mut i = testutil::incident(3);
        i.client.as_mut().unwrap().ip = "workstation-7".into();
        let flat = check_doc(&to_ecs(&Stamped::now(AgentEvent::Incident(i)), &ctx()));
        assert_eq!(flat["source.address"], "workstation-7");
        assert!(!flat.contains_key("source.ip"));
    }

    #[test]
    fn ecs_lines_writes_one_document_per_line() {
        let mut buf = Vec::new();
        {
            let mut s = EcsLines::new(&mut buf, ctx());
            for ev in testutil::all_events() {
                s.send(&ev).unwrap();
            }
        }
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), testutil::all_events().len());
        for l in lines {
            check_doc(&serde_json::from_str(l).unwrap());
        }
    }
}
