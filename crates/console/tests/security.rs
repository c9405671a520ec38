//! Bad input and attacks: enrollment tokens, forged and revoked client certificates,
//! malformed/oversized/replayed agent messages, roles, CSRF, cookies, SQL and HTML
//! injection in every field an agent or a user controls.

mod common;
use common::*;
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use ward_console::ConsoleClient;
use ward_model::{AgentEvent, Client};
use ward_outputs::Sink;

const W: Duration = Duration::from_secs(20);

fn mtls(console_dir: &Path, cert_pem: &str, key_pem: &str) -> ureq::Agent {
    let ca = std::fs::read_to_string(console_dir.join("ca.pem")).unwrap();
    tls_agent(&ca, Some((cert_pem, key_pem)))
}

/// The enrolled agent's own identity, as a raw HTTP client.
fn identity(console_dir: &Path, agent_state: &Path) -> ureq::Agent {
    let d = agent_state.join("console");
    mtls(
        console_dir,
        &std::fs::read_to_string(d.join("client.pem")).unwrap(),
        &std::fs::read_to_string(d.join("client-key.pem")).unwrap(),
    )
}

fn status(
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), String> {
    read(r).map(|(c, _, b)| (c, b))
}

#[test]
fn enrollment_token_is_one_time_and_pins_the_console() {
    let console = Console::start(Backend::Sqlite);
    let token = console.token();
    let a = tempfile::tempdir().unwrap();
    ConsoleClient::enroll(&console.url(), &token, a.path(), "first").unwrap();
    assert!(ConsoleClient::is_enrolled(a.path()));

    let b = tempfile::tempdir().unwrap();
    let e = ConsoleClient::enroll(&console.url(), &token, b.path(), "second").unwrap_err();
    assert!(e.to_string().contains("already used"), "{e}");
    assert!(!ConsoleClient::is_enrolled(b.path()));

    // a token naming another CA: the agent refuses before sending the secret
    let other = Console::start(Backend::Sqlite);
    let foreign = other.token();
    let e = ConsoleClient::enroll(&console.url(), &foreign, b.path(), "x").unwrap_err();
    assert!(e.to_string().contains("does not have the CA"), "{e}");
    // ... so that token is still unused on its own console
    ConsoleClient::enroll(&other.url(), &foreign, b.path(), "x").unwrap();

    // malformed and guessed tokens
    let c = tempfile::tempdir().unwrap();
    for bad in [
        "",
        "ward1.zz",
        "ward1.000000000000.00000000000000000000000000000000.abc",
    ] {
        let e = ConsoleClient::enroll(&console.url(), bad, c.path(), "x").unwrap_err();
        assert!(e.to_string().contains("malformed"), "{bad}: {e}");
    }
    let fp = ward_console::ca_fingerprint(console.dir.path()).unwrap();
    let guessed = format!("ward1.{}.{}.{fp}", "a".repeat(12), "b".repeat(32));
    let e = ConsoleClient::enroll(&console.url(), &guessed, c.path(), "x").unwrap_err();
    assert!(e.to_string().contains("unknown"), "{e}");
    // a right id with a wrong secret
    let real = console.token();
    let id = real.split('.').nth(1).unwrap();
    let wrong = format!("ward1.{id}.{}.{fp}", "c".repeat(32));
    let e = ConsoleClient::enroll(&console.url(), &wrong, c.path(), "x").unwrap_err();
    assert!(e.to_string().contains("wrong secret"), "{e}");
    // ... which did not burn the real one
    ConsoleClient::enroll(&console.url(), &real, c.path(), "third").unwrap();

    let audit = console.admin().ok("/api/v1/audit");
    let refused = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "enroll" && r["ok"] == false)
        .count();
    assert!(refused >= 3, "refused enrollments are audited: {audit}");
    // not enrolled and no token: a clear error
    let d = tempfile::tempdir().unwrap();
    let e = ConsoleClient::start(
        ward_console::ClientOptions::new(console.url(), d.path()),
        None,
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("--enroll-token"), "{e}");
}

#[test]
fn forged_unenrolled_and_revoked_certificates_are_rejected() {
    let console = Console::start(Backend::Sqlite);
    let admin = console.admin();
    let s = tempfile::tempdir().unwrap();
    let mut a = console.agent(s.path(), "victim", None);
    a.send(&ready()).unwrap();
    assert!(a.wait_delivered(W));
    let host_id = admin.host_id("victim");

    // a certificate for the same host id, signed by a CA the console does not know
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut cap = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    cap.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    cap.distinguished_name
        .push(rcgen::DnType::CommonName, "ward console CA");
    let fake_ca = cap.self_signed(&ca_key).unwrap();
    let k = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, host_id.clone());
    p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let forged = p.clone().signed_by(&k, &fake_ca, &ca_key).unwrap();
    let evil = mtls(console.dir.path(), &forged.pem(), &k.serialize_pem());
    let body = json!([{"seq": 999, "at": "2026-12-01T10:00:00Z", "event": {"type": "stopped"}}]);
    let r = status(
        evil.post(&format!("{}/agent/v1/events", console.url()))
            .send_json(body.clone()),
    );
    assert!(
        r.is_err(),
        "the TLS handshake refuses a forged certificate: {r:?}"
    );

    // a self-signed one
    let k2 = rcgen::KeyPair::generate().unwrap();
    let selfs = p.self_signed(&k2).unwrap();
    let evil2 = mtls(console.dir.path(), &selfs.pem(), &k2.serialize_pem());
    assert!(status(
        evil2
            .post(&format!("{}/agent/v1/heartbeat", console.url()))
            .send_json(json!({}))
    )
    .is_err());

    // no certificate at all
    let anon = ca_agent(console.dir.path());
    let (c, m) = status(
        anon.post(&format!("{}/agent/v1/events", console.url()))
            .send_json(body),
    )
    .unwrap();
    assert_eq!(c, 401, "{m}");
    assert!(m.contains("enroll"), "{m}");

    // revoked: the real certificate stops working
    let real = identity(console.dir.path(), s.path());
    let hb = || {
        status(
            real.post(&format!("{}/agent/v1/heartbeat", console.url()))
                .send_json(json!({})),
        )
        .unwrap()
    };
    assert_eq!(hb().0, 200);
    let (c, _) = admin.post(&format!("/api/v1/hosts/{host_id}/revoke"), json!({}));
    assert_eq!(c, 200);
    let (c, m) = hb();
    assert_eq!(c, 403, "{m}");
    assert!(m.contains("revoked"), "{m}");
    let audit = admin.ok("/api/v1/audit");
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "agent-auth" && r["detail"] == "revoked certificate"));
    assert!(admin.ok("/api/v1/hosts").as_array().unwrap().is_empty());
}

#[test]
fn malformed_oversized_and_replayed_agent_messages() {
    let console = Console::start(Backend::Sqlite);
    let admin = console.admin();
    let s = tempfile::tempdir().unwrap();
    ConsoleClient::enroll(&console.url(), &console.token(), s.path(), "raw").unwrap();
    let http = identity(console.dir.path(), s.path());
    let post = |path: &str, body: &[u8]| {
        status(
            http.post(&format!("{}{path}", console.url()))
                .header("Content-Type", "application/json")
                .send(body),
        )
        .unwrap()
    };
    for bad in [
        &b"{not json"[..],
        b"[{\"seq\":1}]",
        b"[{\"seq\":1,\"at\":\"x\",\"event\":{\"type\":\"nope\"}}]",
        b"\xff\xfe",
        b"{}",
    ] {
        let (c, m) = post("/agent/v1/events", bad);
        assert_eq!(c, 400, "{m}");
    }
    let (c, _) = post("/agent/v1/heartbeat", b"[1,2]");
    assert_eq!(c, 400);
    let (c, _) = post(
        "/agent/v1/events",
        br#"[{"seq":0,"at":"2026-12-01T10:00:00Z","event":{"type":"stopped"}}]"#,
    );
    assert_eq!(c, 400, "seq 0 is refused");
    let many: Vec<_> = (1..=101)
        .map(|i| json!({"seq": i, "at": "2026-12-01T10:00:00Z", "event": {"type": "stopped"}}))
        .collect();
    let (c, _) = post(
        "/agent/v1/events",
        serde_json::to_vec(&many).unwrap().as_slice(),
    );
    assert_eq!(c, 400, "more than 100 events in a batch");
    // oversized: 2 MiB of file names
    let inc = incident(
        "big",
        None,
        (0..40_000).map(|i| format!("/srv/{i:050}")).collect(),
    );
    let big = serde_json::to_vec(
        &json!([{"seq": 1, "at": "2026-12-01T10:00:00Z", "event": AgentEvent::Incident(inc)}]),
    )
    .unwrap();
    assert!(big.len() > 1024 * 1024);
    // the console answers 413 as soon as it sees the length, and may close the connection
    // before the client has written everything: either way nothing is read or stored
    match status(
        http.post(&format!("{}/agent/v1/events", console.url()))
            .header("Content-Type", "application/json")
            .send(&big[..]),
    ) {
        Ok((c, _)) => assert_eq!(c, 413),
        Err(e) => assert!(e.contains("Broken pipe") || e.contains("reset"), "{e}"),
    }
    assert!(
        admin.ok("/api/v1/incidents").as_array().unwrap().is_empty(),
        "nothing stored from rejected messages"
    );

    // replay: the same seq twice is stored once
    let one = serde_json::to_vec(&json!([{"seq": 7, "at": "2026-12-01T10:00:00Z",
        "event": AgentEvent::Incident(incident("r-1", None, vec!["/a".into()]))}]))
    .unwrap();
    let (c, m) = post("/agent/v1/events", &one);
    assert_eq!(c, 200, "{m}");
    assert!(m.contains("\"accepted\":1"), "{m}");
    let (c, m) = post("/agent/v1/events", &one);
    assert_eq!(c, 200);
    assert!(
        m.contains("\"duplicates\":1") && m.contains("\"accepted\":0"),
        "{m}"
    );
    assert_eq!(admin.ok("/api/v1/incidents").as_array().unwrap().len(), 1);
    // confirming an action that does not exist
    let (c, _) = post("/agent/v1/actions/12345", br#"{"ok":true,"message":"x"}"#);
    assert_eq!(c, 404);
    let audit = admin.ok("/api/v1/audit");
    let rejected = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] == "agent-message-rejected")
        .count();
    assert!(rejected >= 7, "rejections are audited ({rejected})");
}

#[test]
fn roles_are_enforced() {
    let console = Console::start(Backend::Sqlite);
    let admin = console.admin();
    let viewer = console.api(&admin.user("vera", "viewer", "viewer password 1"));
    let operator = console.api(&admin.user("otto", "operator", "operator password 1"));
    let nobody = console.api("wct_000000000000000000000000000000000000000000000000");
    let anon = console.api("");
    assert_eq!(viewer.get("/api/v1/hosts").0, 200);
    assert_eq!(viewer.get("/api/v1/incidents").0, 200);
    assert_eq!(nobody.get("/api/v1/hosts").0, 401);
    assert_eq!(anon.get("/api/v1/hosts").0, 401);
    assert_eq!(viewer.get("/api/v1/audit").0, 403);
    assert_eq!(
        viewer
            .post(
                "/api/v1/actions",
                json!({"host_id": "h", "kind": "isolate"})
            )
            .0,
        403
    );
    assert_eq!(
        viewer.post("/api/v1/incidents/1/acknowledge", json!({})).0,
        403
    );
    assert_eq!(
        operator
            .post(
                "/api/v1/users",
                json!({"name": "x", "role": "admin", "password": "xxxxxxxxxxxxxxx"})
            )
            .0,
        403
    );
    assert_eq!(
        operator.post("/api/v1/tokens", json!({"user": "otto"})).0,
        403
    );
    assert_eq!(operator.post("/api/v1/hosts/h-1/revoke", json!({})).0, 403);
    assert_eq!(
        operator
            .post(
                "/api/v1/actions",
                json!({"host_id": "h-none", "kind": "isolate"})
            )
            .0,
        404
    );
    assert_eq!(
        admin
            .post(
                "/api/v1/users",
                json!({"name": "y", "role": "root", "password": "xxxxxxxxxxxxxxx"})
            )
            .0,
        400
    );
    assert_eq!(
        admin
            .post(
                "/api/v1/users",
                json!({"name": "y", "role": "viewer", "password": "short"})
            )
            .0,
        400
    );
    let audit = admin.ok("/api/v1/audit");
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "forbidden" && r["actor"] == "vera"));
}

/// A browser-like session: cookies by hand, forms posted urlencoded.
struct Browser {
    http: ureq::Agent,
    base: String,
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn new(console: &Console) -> Browser {
        Browser {
            http: ca_agent(console.dir.path()),
            base: console.url(),
            cookies: vec![],
        }
    }
    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn keep(&mut self, h: &ureq::http::HeaderMap) -> Vec<String> {
        let raw: Vec<String> = h
            .get_all("set-cookie")
            .iter()
            .map(|s| s.to_str().unwrap().to_string())
            .collect();
        for c in &raw {
            let kv = c.split(';').next().unwrap();
            let (k, v) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !v.is_empty() {
                self.cookies.push((k.to_string(), v.to_string()));
            }
        }
        raw
    }
    fn get(&mut self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie_header())
            .call();
        let (code, h, body) = read(r).unwrap();
        self.keep(&h);
        (code, body)
    }
    fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String, Vec<String>) {
        let r = self
            .http
            .post(&format!("{}{path}", self.base))
            .header("Cookie", &self.cookie_header())
            .send_form(form.iter().copied());
        let (code, h, mut body) = read(r).unwrap();
        let set = self.keep(&h);
        if body.is_empty() {
            body = h
                .get("location")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
        }
        (code, body, set)
    }
    fn csrf(html: &str) -> String {
        let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        html[i..i + html[i..].find('"').unwrap()].to_string()
    }
    fn login(&mut self, user: &str, pw: &str) -> (u16, String, Vec<String>) {
        let (_, page) = self.get("/login");
        let csrf = Self::csrf(&page);
        self.post(
            "/login",
            &[("user", user), ("password", pw), ("csrf", &csrf)],
        )
    }
}

#[test]
fn ui_sessions_cookies_and_csrf() {
    let console = Console::start(Backend::Sqlite);
    let admin = console.admin();
    admin.user("vera", "viewer", "viewer password 1");
    let mut b = Browser::new(&console);
    let (c, body) = b.get("/");
    assert_eq!(c, 303, "not signed in: redirected to /login ({body})");
    // wrong password, then a forged login form
    let (_, page, _) = b.login("vera", "wrong password!!");
    assert!(page.contains("Wrong user name"), "{page}");
    let (_, page, _) = b.post(
        "/login",
        &[
            ("user", "vera"),
            ("password", "viewer password 1"),
            ("csrf", "forged"),
        ],
    );
    assert!(page.contains("expired"), "{page}");
    let (c, loc, set) = b.login("vera", "viewer password 1");
    assert_eq!((c, loc.as_str()), (303, "/"));
    let sess = set
        .iter()
        .find(|s| s.starts_with("__Host-ward_session="))
        .unwrap();
    for attr in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(sess.contains(attr), "{sess}");
    }
    let (c, page) = b.get("/");
    assert_eq!(c, 200);
    assert!(page.contains("vera (viewer)"));
    let csrf = Browser::csrf(&page);
    // a viewer cannot act, even with a valid CSRF token
    let (c, _, _) = b.post(
        "/ui/action",
        &[("csrf", &csrf), ("op", "isolate"), ("host_id", "h")],
    );
    assert_eq!(c, 403);
    // an operator without the CSRF token is refused
    admin.user("otto", "operator", "operator password 1");
    let mut o = Browser::new(&console);
    o.login("otto", "operator password 1");
    let (c, _, _) = o.post(
        "/ui/action",
        &[("csrf", "nope"), ("op", "isolate"), ("host_id", "h")],
    );
    assert_eq!(c, 403);
    // token sign-in (empty user)
    let mut t = Browser::new(&console);
    let (c, loc, _) = t.login("", &console.admin_token);
    assert_eq!((c, loc.as_str()), (303, "/"));
    assert!(t.get("/audit").1.contains("Audit log"));
    // sign out ends the session
    let (_, page) = t.get("/");
    let csrf = Browser::csrf(&page);
    t.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(t.get("/").0, 303);
    let audit = admin.ok("/api/v1/audit");
    let logins = |ok: bool| {
        audit
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "login" && r["ok"] == ok)
            .count()
    };
    assert!(logins(true) >= 3 && logins(false) >= 2, "{audit}");
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["action"] == "logout"));
}

const EVIL: &[&str] = &[
    "<script>alert(1)</script>.docx",
    "\"><img src=x onerror=alert(2)>.pdf",
    "'; DROP TABLE incidents; --",
    "Robert'); DROP TABLE hosts;--",
    "<svg/onload=alert(3)>",
    "$1 $2 ?1 %s {0} \\x00",
];

fn injection(backend: Backend) {
    let console = Console::start(backend);
    let admin = console.admin();
    let s = tempfile::tempdir().unwrap();
    let host = "<b>ward</b>' OR '1'='1";
    let mut a = console.agent(s.path(), host, None);
    let mut r = ready();
    if let AgentEvent::Ready(r) = &mut r {
        r.paths = EVIL.iter().map(|p| p.into()).collect();
        r.sensor = EVIL[0].into();
        r.warnings = vec![EVIL[1].into()];
    }
    a.send(&r).unwrap();
    let mut inc = incident(
        EVIL[2],
        Some(Client {
            ip: EVIL[4].into(),
            user: EVIL[3].into(),
            share: EVIL[0].into(),
        }),
        EVIL.iter().map(|s| format!("/srv/{s}")).collect(),
    );
    inc.exe = EVIL[2].into();
    inc.cmdline = EVIL.iter().map(|s| s.to_string()).collect();
    inc.indicators = vec![EVIL[1].into()];
    inc.created = vec![EVIL[4].into()];
    a.send(&AgentEvent::Incident(inc)).unwrap();
    assert!(a.wait_delivered(W));
    // a user with a hostile name
    let evil_user = "x'); DROP TABLE users;--<i>";
    let tok = admin.user(evil_user, "operator", "operator password 1");
    let op = console.api(&tok);
    let hid = admin.host_id(host);
    let (c, _) = op.post(
        "/api/v1/actions",
        json!({"host_id": hid, "kind": "lift-block", "ip": EVIL[1]}),
    );
    assert_eq!(c, 200);

    // stored verbatim
    let incs = admin.ok("/api/v1/incidents");
    let i = &incs[0];
    assert_eq!(i["host"], host);
    assert_eq!(i["id"], EVIL[2]);
    assert_eq!(i["exe"], EVIL[2]);
    assert_eq!(i["client"]["user"], EVIL[3]);
    assert_eq!(i["client"]["ip"], EVIL[4]);
    for (k, e) in EVIL.iter().enumerate() {
        assert_eq!(i["damaged"][k], format!("/srv/{e}"));
        assert_eq!(i["cmdline"][k], *e);
    }
    let hosts = admin.ok("/api/v1/hosts");
    assert_eq!(hosts[0]["paths"][5], EVIL[5]);
    assert_eq!(hosts[0]["name"], host);
    assert_eq!(admin.ok("/api/v1/actions")[0]["requested_by"], evil_user);
    assert_eq!(admin.ok("/api/v1/actions")[0]["body"]["ip"], EVIL[1]);

    // rendered escaped on every page
    let mut b = Browser::new(&console);
    let (c, _, _) = b.login(evil_user, "operator password 1");
    assert_eq!(c, 303);
    let num = i["num"].as_i64().unwrap();
    for page in [
        "/".to_string(),
        format!("/incidents/{num}"),
        "/major".into(),
        "/audit".into(),
    ] {
        let (c, html) = b.get(&page);
        assert_eq!(c, 200, "{page}");
        for raw in [
            "<script>alert",
            "<img src=x",
            "<svg/onload",
            "<b>ward</b>",
            "<i>",
        ] {
            assert!(!html.contains(raw), "{page} contains raw {raw}");
        }
        assert!(html.contains("&lt;"), "{page} shows the escaped text");
    }
    let (_, html) = b.get(&format!("/incidents/{num}"));
    assert!(html.contains("/srv/&lt;script&gt;alert(1)&lt;/script&gt;.docx"));
    assert!(html.contains("&#39;; DROP TABLE incidents; --"));
    let (_, html) = b.get("/");
    assert!(html.contains("&lt;b&gt;ward&lt;/b&gt;&#39; OR &#39;1&#39;=&#39;1"));
    // and the tables are all still there
    assert_eq!(admin.ok("/api/v1/hosts").as_array().unwrap().len(), 1);
    assert_eq!(admin.ok("/api/v1/incidents").as_array().unwrap().len(), 1);
}

#[test]
fn injection_is_stored_verbatim_and_rendered_escaped_sqlite() {
    injection(Backend::Sqlite);
}

#[test]
fn injection_is_stored_verbatim_and_rendered_escaped_postgres() {
    injection(Backend::Postgres);
}

#[test]
fn enrollment_needs_proof_of_the_agents_own_key() {
    let console = Console::start(Backend::Sqlite);
    let token = console.token();
    let http = ca_agent(console.dir.path());
    let post = |v: serde_json::Value| {
        status(
            http.post(&format!("{}/enroll/v1", console.url()))
                .send_json(v),
        )
        .unwrap()
    };
    let (good, _key) = ward_console::enroll_request(&token, "pacs-01").unwrap();
    // a proof made for another name, a garbage key, a missing proof
    let (other, _) = ward_console::enroll_request(&token, "other").unwrap();
    let mut swapped = serde_json::to_value(&good).unwrap();
    swapped["proof"] = other.proof.clone().into();
    assert_eq!(post(swapped).0, 400);
    let mut bad_key = serde_json::to_value(&good).unwrap();
    bad_key["public_key"] = format!("04{}", "00".repeat(64)).into();
    assert_eq!(post(bad_key).0, 400);
    let mut no_proof = serde_json::to_value(&good).unwrap();
    no_proof["proof"] = "".into();
    assert_eq!(post(no_proof).0, 400);
    // none of that used the token up; the real request works and its certificate carries
    // the agent's key (the console never saw the private key)
    let (c, body) = post(serde_json::to_value(&good).unwrap());
    assert_eq!(c, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(v.get("key_pem").is_none());
    assert!(v["cert_pem"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert_eq!(
        post(serde_json::to_value(&good).unwrap()).0,
        403,
        "the token is used up"
    );
}

#[test]
fn repeated_failed_sign_ins_lock_the_name_for_a_while() {
    let console = Console::start(Backend::Sqlite);
    console.admin().user("vera", "viewer", "viewer password 1");
    let mut b = Browser::new(&console);
    for _ in 0..5 {
        let (_, page, _) = b.login("vera", "not the password");
        assert!(page.contains("Wrong user name"), "{page}");
    }
    let (c, page, _) = b.login("vera", "viewer password 1");
    assert_eq!(c, 200, "the right password is refused while locked");
    assert!(page.contains("Too many failed sign-ins"), "{page}");
    // token sign-in and other names are not affected
    let (c, loc, _) = Browser::new(&console).login("", &console.admin_token);
    assert_eq!((c, loc.as_str()), (303, "/"));
    let audit = console.admin().ok("/api/v1/audit");
    assert!(audit.as_array().unwrap().iter().any(|r| r["detail"]
        .as_str()
        .unwrap_or("")
        .starts_with("refused: too many failures")));
}
