//! The web UI: server-rendered HTML, no JavaScript, no CDN. Every value that an agent or a
//! user controls goes through [`esc`] (file names come from attackers).

use crate::auth::Caller;
use crate::server::HostView;
use crate::store::{ms_to_rfc3339, ActionRow, AuditRow, HostRow, IncidentRow, Role};
use std::fmt::Write;

/// HTML-escape text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn page(c: Option<&Caller>, title: &str, refresh: bool, body: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{}\
         <title>{} · ward console</title><link rel=\"stylesheet\" href=\"/assets/style.css\"></head><body>",
        if refresh { "<meta http-equiv=\"refresh\" content=\"2\">" } else { "" },
        esc(title)
    );
    h.push_str("<header><span class=\"brand\">ward console</span>");
    if let Some(c) = c {
        let _ = write!(
            h,
            "<nav><a href=\"/\">Fleet</a><a href=\"/major\">Major incident</a>{}</nav>\
             <span class=\"who\">{} ({})</span>\
             <form method=\"post\" action=\"/logout\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form>",
            if c.role >= Role::Operator { "<a href=\"/audit\">Audit log</a>" } else { "" },
            esc(&c.user),
            c.role.as_str(),
            esc(c.csrf.as_deref().unwrap_or(""))
        );
    }
    h.push_str("</header><main>");
    h.push_str(body);
    h.push_str("</main></body></html>");
    h
}

fn status_label(s: &str) -> &'static str {
    match s {
        "under-attack" => "Under attack",
        "contained" => "Contained",
        "silent" => "Silent",
        _ => "Healthy",
    }
}

fn pill(s: &str) -> String {
    format!(
        "<span class=\"pill s-{}\">{}</span>",
        esc(s),
        status_label(s)
    )
}

fn action_form(
    c: &Caller,
    op: &str,
    label: &str,
    host_id: &str,
    incident: Option<i64>,
    ip: &str,
    danger: bool,
) -> String {
    if c.role < Role::Operator {
        return String::new();
    }
    format!(
        "<form method=\"post\" action=\"/ui/action\" class=\"inline\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"op\" value=\"{}\">\
         <input type=\"hidden\" name=\"host_id\" value=\"{}\">{}<input type=\"hidden\" name=\"ip\" value=\"{}\">\
         <button class=\"{}\" id=\"{}\">{}</button></form>",
        esc(c.csrf.as_deref().unwrap_or("")),
        esc(op),
        esc(host_id),
        incident
            .map(|n| format!("<input type=\"hidden\" name=\"incident\" value=\"{n}\">"))
            .unwrap_or_default(),
        esc(ip),
        if danger { "danger" } else { "" },
        esc(&format!("{op}-{}", incident.map(|n| n.to_string()).unwrap_or_else(|| host_id.to_string()))),
        esc(label)
    )
}

fn bytes(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.1} {}", U[i])
}

/// Fleet overview.
pub(crate) fn fleet(c: &Caller, hosts: &[HostView], incidents: &[IncidentRow]) -> String {
    let mut b = String::new();
    let count = |s: &str| hosts.iter().filter(|h| h.status == s).count();
    let _ = write!(
        b,
        "<section class=\"summary\">\
         <div class=\"tile s-under-attack\"><b id=\"n-under-attack\">{}</b>under attack</div>\
         <div class=\"tile s-contained\"><b>{}</b>contained</div>\
         <div class=\"tile s-silent\"><b>{}</b>silent</div>\
         <div class=\"tile s-healthy\"><b id=\"n-healthy\">{}</b>healthy</div></section>",
        count("under-attack"),
        count("contained"),
        count("silent"),
        count("healthy")
    );
    b.push_str("<h2>Hosts</h2><table class=\"hosts\"><thead><tr><th>Status</th><th>Host</th><th>Last seen</th><th>Version · sensor</th><th>Protected paths</th><th>Vault</th><th>Blocks in force</th><th>Open incidents</th><th></th></tr></thead><tbody>");
    if hosts.is_empty() {
        b.push_str("<tr><td colspan=\"9\" class=\"empty\">No host enrolled yet. Run <code>ward console enroll-token</code> and start agents with <code>ward protect --console URL --enroll-token TOKEN</code>.</td></tr>");
    }
    for h in hosts {
        let hb = h.row.heartbeat.clone().unwrap_or_default();
        let blocks: Vec<String> = hb
            .blocks
            .iter()
            .map(|bl| {
                format!(
                    "{} {}{}",
                    esc(&bl.ip),
                    action_form(c, "lift-block", "Lift", &h.row.id, None, &bl.ip, false),
                    action_form(c, "keep-block", "Keep", &h.row.id, None, &bl.ip, false)
                )
            })
            .collect();
        let iso = if h.row.isolated {
            action_form(c, "release", "Release", &h.row.id, None, "", false)
        } else {
            action_form(c, "isolate", "Isolate", &h.row.id, None, "", true)
        };
        let _ = write!(
            b,
            "<tr class=\"host s-{st}\" data-host-id=\"{id}\" data-status=\"{st}\"><td>{pill}</td><td class=\"name\">{name}</td>\
             <td>{seen}</td><td>{ver} · {sensor}{health}</td><td class=\"paths\">{paths}</td><td>{vault}</td><td>{blocks}</td><td>{open}</td><td>{iso}</td></tr>",
            st = esc(h.status),
            id = esc(&h.row.id),
            pill = pill(h.status),
            name = esc(&h.row.name),
            seen = h.row.last_seen.map(ms_to_rfc3339).map(|s| esc(&s)).unwrap_or_else(|| "never".into()),
            ver = esc(&hb.version),
            sensor = esc(&hb.sensor),
            health = if hb.health == "ok" || hb.health.is_empty() {
                String::new()
            } else {
                format!(" <span class=\"warn\" title=\"{}\">{}</span>", esc(&hb.warnings.join("; ")), esc(&hb.health))
            },
            paths = hb.paths.iter().map(|p| esc(p)).collect::<Vec<_>>().join("<br>"),
            vault = if hb.vault_max_bytes > 0 {
                format!("{} of {}", bytes(hb.vault_used_bytes), bytes(hb.vault_max_bytes))
            } else {
                "—".into()
            },
            blocks = if blocks.is_empty() { "—".into() } else { blocks.join("<br>") },
            open = h.open_incidents,
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(&incident_table(incidents, 50));
    page(Some(c), "Fleet", true, &b)
}

fn incident_table(incidents: &[IncidentRow], limit: usize) -> String {
    let mut b = String::from("<h2>Incidents</h2><table class=\"incidents\"><thead><tr><th>#</th><th>Host</th><th>Detected</th><th>Process / client</th><th>Action</th><th>Damaged</th><th>Restore</th><th>State</th></tr></thead><tbody>");
    if incidents.is_empty() {
        b.push_str("<tr><td colspan=\"8\" class=\"empty\">No incident.</td></tr>");
    }
    for i in incidents.iter().take(limit) {
        let who = match i.body.get("client").filter(|c| !c.is_null()) {
            Some(cl) => format!(
                "SMB {} ({}, share {})",
                esc(cl.get("ip").and_then(|v| v.as_str()).unwrap_or("")),
                esc(cl.get("user").and_then(|v| v.as_str()).unwrap_or("")),
                esc(cl.get("share").and_then(|v| v.as_str()).unwrap_or(""))
            ),
            None => format!(
                "{} (pid {})",
                esc(&i.str_field("exe")),
                i.body.get("pid").and_then(|v| v.as_u64()).unwrap_or(0)
            ),
        };
        let _ = write!(
            b,
            "<tr class=\"{}\"><td><a href=\"/incidents/{n}\" id=\"incident-link-{n}\">{n}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if i.open() { "open" } else { "closed" },
            esc(&i.host_name),
            esc(&i.str_field("detected_at")),
            who,
            esc(&i.str_field("action")),
            i.body.get("files_damaged").and_then(|v| v.as_u64()).unwrap_or(0),
            esc(&i.restore),
            match &i.acknowledged_by {
                Some(u) => format!("acknowledged by {}", esc(u)),
                None if i.open() => "open".into(),
                None => "restored".into(),
            },
            n = i.num,
        );
    }
    b.push_str("</tbody></table>");
    b
}

fn list(items: Option<&serde_json::Value>, limit: usize) -> String {
    let arr = items
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    if arr.is_empty() {
        return "<p class=\"empty\">none</p>".into();
    }
    let mut b = String::from("<ol class=\"files\">");
    for v in arr.iter().take(limit) {
        let s = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(b, "<li>{}</li>", esc(&s));
    }
    b.push_str("</ol>");
    if arr.len() > limit {
        let _ = write!(
            b,
            "<p>… and {} more (all in the API)</p>",
            arr.len() - limit
        );
    }
    b
}

/// Incident detail.
pub(crate) fn incident(
    c: &Caller,
    i: &IncidentRow,
    host: Option<&HostRow>,
    actions: &[ActionRow],
) -> String {
    let mut b = String::new();
    let f = |k: &str| esc(&i.str_field(k));
    let client = i.body.get("client").filter(|c| !c.is_null());
    let _ = write!(
        b,
        "<h1>Incident {} on {}</h1><p class=\"state\" id=\"incident-state\">Restore: <b>{}</b>{}{}</p>",
        i.num,
        esc(&i.host_name),
        esc(&i.restore),
        match (i.files_restored, i.files_lost) {
            (Some(r), Some(l)) => format!(" — {r} files restored, {l} lost"),
            _ => String::new(),
        },
        match &i.acknowledged_by {
            Some(u) => format!(" — acknowledged by {}", esc(u)),
            None => String::new(),
        }
    );
    b.push_str("<div class=\"actions\">");
    b.push_str(&action_form(
        c,
        "restore",
        "Restore files",
        &i.host_id,
        Some(i.num),
        "",
        false,
    ));
    if let Some(cl) = client {
        let ip = cl.get("ip").and_then(|v| v.as_str()).unwrap_or("");
        b.push_str(&action_form(
            c,
            "lift-block",
            "Lift client block",
            &i.host_id,
            Some(i.num),
            ip,
            false,
        ));
        b.push_str(&action_form(
            c,
            "keep-block",
            "Keep client block",
            &i.host_id,
            Some(i.num),
            ip,
            false,
        ));
    }
    if host.is_some_and(|h| h.isolated) {
        b.push_str(&action_form(
            c,
            "release",
            "Release host",
            &i.host_id,
            Some(i.num),
            "",
            false,
        ));
    } else {
        b.push_str(&action_form(
            c,
            "isolate",
            "Isolate host",
            &i.host_id,
            Some(i.num),
            "",
            true,
        ));
    }
    if i.acknowledged_at.is_none() {
        b.push_str(&action_form(
            c,
            "acknowledge",
            "Acknowledge",
            &i.host_id,
            Some(i.num),
            "",
            false,
        ));
    }
    b.push_str("</div>");
    for a in actions.iter().take(3) {
        let _ = write!(
            b,
            "<p class=\"last-action\">{} requested by {} at {} — <span class=\"a-{}\">{}</span>{}</p>",
            esc(&a.kind),
            esc(&a.requested_by),
            esc(&a.requested_at),
            esc(&a.status),
            esc(&a.status),
            a.result
                .as_deref()
                .map(|r| format!(": {}", esc(r)))
                .unwrap_or_default()
        );
    }
    let _ = write!(
        b,
        "<table class=\"facts\"><tr><th>Incident id</th><td>{}</td></tr><tr><th>First damaging write</th><td>{}</td></tr>\
         <tr><th>Detected</th><td>{}</td></tr><tr><th>Contained</th><td>{} ({} ms after the first write)</td></tr>\
         <tr><th>Action</th><td>{}</td></tr><tr><th>Files damaged</th><td>{}</td></tr><tr><th>Indicators</th><td>{}</td></tr></table>",
        f("id"),
        f("started_at"),
        f("detected_at"),
        f("contained_at"),
        i.body.get("contain_ms").and_then(|v| v.as_f64()).map(|v| format!("{v:.1}")).unwrap_or_default(),
        f("action"),
        i.body.get("files_damaged").and_then(|v| v.as_u64()).unwrap_or(0),
        i.body
            .get("indicators")
            .and_then(|v| v.as_array())
            .map(|a| a.iter().map(|x| format!("<span class=\"tag\">{}</span>", esc(x.as_str().unwrap_or("")))).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    );
    let _ = write!(
        b,
        "<h2>Lineage</h2><table class=\"facts\"><tr><th>Root process</th><td>pid {} · uid {}</td></tr><tr><th>Executable</th><td>{}</td></tr>\
         <tr><th>Command line</th><td><code>{}</code></td></tr><tr><th>Processes stopped</th><td>{}</td></tr><tr><th>SMB client</th><td>{}</td></tr></table>",
        i.body.get("pid").and_then(|v| v.as_u64()).unwrap_or(0),
        i.body.get("uid").and_then(|v| v.as_u64()).unwrap_or(0),
        f("exe"),
        esc(&i.body.get("cmdline").and_then(|v| v.as_array()).map(|a| a.iter().map(|x| x.as_str().unwrap_or("").to_string()).collect::<Vec<_>>().join(" ")).unwrap_or_default()),
        esc(&i.body.get("processes").and_then(|v| v.as_array()).map(|a| a.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")).unwrap_or_default()),
        match client {
            Some(cl) => format!(
                "{} · user {} · share {}",
                esc(cl.get("ip").and_then(|v| v.as_str()).unwrap_or("")),
                esc(cl.get("user").and_then(|v| v.as_str()).unwrap_or("")),
                esc(cl.get("share").and_then(|v| v.as_str()).unwrap_or(""))
            ),
            None => "— (local process)".into(),
        }
    );
    b.push_str("<h2>Files damaged</h2>");
    b.push_str(&list(i.body.get("damaged"), 500));
    b.push_str("<h2>Files the attacker created</h2>");
    b.push_str(&list(i.body.get("created"), 200));
    b.push_str("<h2>Actions on this host</h2><table class=\"actions-log\"><thead><tr><th>#</th><th>Action</th><th>By</th><th>Requested</th><th>Status</th><th>Agent's answer</th></tr></thead><tbody>");
    for a in actions.iter().take(50) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"a-{}\">{}</td><td>{}</td></tr>",
            a.id,
            esc(&a.kind),
            esc(&a.requested_by),
            esc(&a.requested_at),
            esc(&a.status),
            esc(&a.status),
            esc(a.result.as_deref().unwrap_or(""))
        );
    }
    b.push_str("</tbody></table>");
    page(Some(c), &format!("Incident {}", i.num), true, &b)
}

/// The trust-wide major-incident view.
pub(crate) fn major(c: &Caller, m: &serde_json::Value) -> String {
    let mut b = String::new();
    let n = |k: &str| m.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
    let _ = write!(
        b,
        "<h1>Major incident</h1><section class=\"summary\"><div class=\"tile s-under-attack\"><b>{}</b>open incidents</div>\
         <div class=\"tile\"><b>{}</b>hosts involved</div><div class=\"tile\"><b>{}</b>SMB clients involved</div>\
         <div class=\"tile\"><b>{}</b>files damaged</div><div class=\"tile s-healthy\"><b>{}</b>restored</div><div class=\"tile s-under-attack\"><b>{}</b>lost</div></section>",
        n("open_incidents"),
        m["hosts"].as_array().map(|a| a.len()).unwrap_or(0),
        m["clients"].as_array().map(|a| a.len()).unwrap_or(0),
        n("files_damaged"),
        n("files_restored"),
        n("files_lost")
    );
    b.push_str("<div class=\"cols\"><div><h2>Hosts</h2><table><thead><tr><th>Host</th><th>Incidents</th></tr></thead><tbody>");
    for h in m["hosts"].as_array().cloned().unwrap_or_default() {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td></tr>",
            esc(h["host"].as_str().unwrap_or("")),
            h["incidents"]
        );
    }
    b.push_str("</tbody></table></div><div><h2>SMB clients</h2><table><thead><tr><th>Address</th><th>User</th><th>Share</th><th>Hosts hit</th></tr></thead><tbody>");
    for cl in m["clients"].as_array().cloned().unwrap_or_default() {
        let hs: Vec<String> = cl["hosts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|h| esc(h.as_str().unwrap_or("")))
            .collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(cl["ip"].as_str().unwrap_or("")),
            esc(cl["user"].as_str().unwrap_or("")),
            esc(cl["share"].as_str().unwrap_or("")),
            hs.join(", ")
        );
    }
    b.push_str("</tbody></table></div></div><h2>Timeline</h2><table class=\"timeline\"><thead><tr><th>When</th><th>Host</th><th>Incident</th><th>What</th></tr></thead><tbody>");
    for t in m["timeline"].as_array().cloned().unwrap_or_default() {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td><a href=\"/incidents/{}\">{}</a></td><td>{}</td></tr>",
            esc(t["at"].as_str().unwrap_or("")),
            esc(t["host"].as_str().unwrap_or("")),
            t["incident"],
            t["incident"],
            esc(t["what"].as_str().unwrap_or(""))
        );
    }
    b.push_str("</tbody></table>");
    page(Some(c), "Major incident", true, &b)
}

/// The audit log.
pub(crate) fn audit(c: &Caller, rows: &[AuditRow]) -> String {
    let mut b = String::from("<h1>Audit log</h1><table class=\"audit\"><thead><tr><th>When</th><th>Who</th><th>What</th><th>On</th><th>Detail</th><th>Result</th></tr></thead><tbody>");
    for r in rows {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
            esc(&r.at),
            esc(&r.actor),
            esc(&r.action),
            esc(&r.target),
            esc(&r.detail),
            if r.ok { "ok" } else { "bad" },
            if r.ok { "ok" } else { "refused/failed" }
        );
    }
    b.push_str("</tbody></table>");
    page(Some(c), "Audit log", false, &b)
}

/// A short message page.
pub(crate) fn message(c: &Caller, m: &str) -> String {
    page(
        Some(c),
        "ward console",
        false,
        &format!(
            "<p class=\"message\">{}</p><p><a href=\"/\">Back to the fleet</a></p>",
            esc(m)
        ),
    )
}

/// The sign-in page.
pub(crate) fn login(csrf: &str, error: Option<&str>) -> String {
    page(
        None,
        "Sign in",
        false,
        &format!(
            "<form method=\"post\" action=\"/login\" class=\"login\"><h1>Sign in</h1>{}\
             <label>User <input name=\"user\" id=\"user\" autocomplete=\"username\"></label>\
             <label>Password <input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\"></label>\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><button id=\"signin\">Sign in</button>\
             <p class=\"hint\">Or leave the user empty and paste an API token as the password.</p></form>",
            error.map(|e| format!("<p class=\"error\">{}</p>", esc(e))).unwrap_or_default(),
            esc(csrf)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn escapes_everything_that_could_open_markup() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
