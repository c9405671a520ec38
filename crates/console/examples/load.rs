//! Load tool: N simulated agents against a real console on loopback.
//!
//! ```sh
//! cargo run --release -p ward-console --example load -- --agents 1000 --secs 30 --backend sqlite
//! cargo run --release -p ward-console --example load -- --agents 10000 --secs 30 --backend postgres
//! ```
//!
//! The console runs in a child process (this program with `--serve`), so its memory is
//! measured alone (VmRSS / VmHWM from /proc). Each simulated agent enrolls with its own
//! one-time token, gets its own client certificate and keeps its own mutual-TLS
//! connection, like a real agent; then for `--secs` seconds every agent heartbeats every
//! `--interval` seconds, the fleet reports `--incidents` incidents per second in total, and
//! one API client polls `GET /api/v1/hosts` and `GET /api/v1/incidents` (latency
//! percentiles). Bounded: at most 20,000 agents and 300 s; the child console stops when
//! this program ends (its stdin closes) or after 15 minutes, whichever is first.
//! `--backend postgres` starts a throw-away PostgreSQL cluster on 127.0.0.1 (as in the
//! tests; run scripts/setup-console.sh first).

#[path = "../tests/common/mod.rs"]
mod common;

use serde_json::json;
use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use ward_console::protocol::{EnrollResponse, Heartbeat};

struct Args {
    agents: usize,
    secs: u64,
    interval: f64,
    incidents: f64,
    threads: usize,
    backend: String,
    database_url: Option<String>,
    serve: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        agents: 1000,
        secs: 30,
        interval: 10.0,
        incidents: 10.0,
        threads: 16,
        backend: "sqlite".into(),
        database_url: None,
        serve: None,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--agents" => a.agents = val.parse().expect("--agents N"),
            "--secs" => a.secs = val.parse().expect("--secs S"),
            "--interval" => a.interval = val.parse().expect("--interval S"),
            "--incidents" => a.incidents = val.parse().expect("--incidents PER_SEC"),
            "--threads" => a.threads = val.parse().expect("--threads N"),
            "--backend" => a.backend = val,
            "--database-url" => a.database_url = Some(val),
            "--serve" => a.serve = Some(val),
            other => panic!("unknown argument {other}; see the header of examples/load.rs"),
        }
        i += 2;
    }
    a.agents = a.agents.clamp(1, 20_000);
    a.secs = a.secs.clamp(1, 300);
    a.threads = a.threads.clamp(1, 64);
    a
}

/// Child mode: run the console until stdin closes.
fn serve(dir: &str, url: Option<String>) {
    let mut o = ward_console::ServeOptions::new(dir, "127.0.0.1:0".parse().unwrap());
    o.database_url = url;
    let c = ward_console::start(o).expect("console starts");
    println!("LISTENING {}", c.addr().port());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while std::io::stdin()
            .read(&mut b)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(900));
    c.stop();
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn mtls(ca: &str, cert: &str, key: &str) -> ureq::Agent {
    common::tls_agent(ca, Some((cert, key)))
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Sim {
    http: ureq::Agent,
    next_hb: Instant,
    seq: u64,
}

fn main() {
    let a = args();
    if let Some(dir) = &a.serve {
        serve(dir, a.database_url.clone());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let init = ward_console::init(dir.path()).unwrap();
    let pg = (a.backend == "postgres" && a.database_url.is_none()).then(common::Pg::start);
    let url = a.database_url.clone().or(pg.as_ref().map(|p| p.url()));
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.arg("--serve").arg(dir.path());
    if let Some(u) = &url {
        cmd.arg("--database-url").arg(u);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("console child");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("LISTENING ")
        .expect("console port")
        .parse()
        .unwrap();
    let base = format!("https://127.0.0.1:{port}");
    let ca_pem = std::fs::read_to_string(dir.path().join("ca.pem")).unwrap();
    let cpid = child.id();
    eprintln!(
        "console pid {cpid} on {base} ({}), idle RSS {} KiB",
        a.backend,
        rss_kib(cpid).0
    );

    // 1. enrollment: a one-time token and a certificate per agent
    let tokens: Vec<String> = (0..a.agents)
        .map(|_| ward_console::enroll_token(dir.path()).unwrap())
        .collect();
    let t0 = Instant::now();
    let chunks: Vec<Vec<String>> = tokens
        .chunks(a.agents.div_ceil(a.threads))
        .map(|c| c.to_vec())
        .collect();
    let sims: Vec<Vec<Sim>> = std::thread::scope(|s| {
        let hs: Vec<_> = chunks
            .into_iter()
            .enumerate()
            .map(|(t, toks)| {
                let base = base.clone();
                let ca = ca_pem.clone();
                let dirp = dir.path().to_path_buf();
                s.spawn(move || {
                    let enroll_http = common::ca_agent(&dirp);
                    toks.iter()
                        .enumerate()
                        .map(|(i, tok)| {
                            let (req, key_pem) =
                                ward_console::enroll_request(tok, &format!("sim-{t:02}-{i:05}"))
                                    .unwrap();
                            let r: EnrollResponse = enroll_http
                                .post(&format!("{base}/enroll/v1"))
                                .send_json(req)
                                .expect("enroll")
                                .body_mut()
                                .read_json()
                                .unwrap();
                            Sim {
                                http: mtls(&ca, &r.cert_pem, &key_pem),
                                next_hb: Instant::now(),
                                seq: 0,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let enroll_secs = t0.elapsed().as_secs_f64();
    eprintln!("enrolled {} agents in {enroll_secs:.1} s", a.agents);

    // 2. sustained load
    let stop = Arc::new(AtomicBool::new(false));
    let warm = Arc::new(AtomicBool::new(false));
    let hbs = Arc::new(AtomicU64::new(0));
    let incs = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_err = Arc::new(Mutex::new(None::<String>));
    let interval = Duration::from_secs_f64(a.interval);
    let per_thread_inc = a.incidents / sims.len() as f64;
    let hb = Heartbeat {
        version: "0.1.0".into(),
        paths: vec!["/srv/samba/shares".into()],
        sensor: "fanotify".into(),
        health: "ok".into(),
        vault_used_bytes: 1 << 30,
        vault_max_bytes: 20 << 30,
        ..Default::default()
    };
    let api_lat: Arc<Mutex<(Vec<f64>, Vec<f64>)>> = Arc::default();
    let mut peak_rss = 0u64;
    let mut rss_samples = vec![];
    let t_connect = Instant::now();
    let (hb_measured, inc_measured, measured_secs) = std::thread::scope(|s| {
        for (t, mut mine) in sims.into_iter().enumerate() {
            let (stop, hbs, incs, errors, first_err, base, hb) = (
                stop.clone(),
                hbs.clone(),
                incs.clone(),
                errors.clone(),
                first_err.clone(),
                base.clone(),
                hb.clone(),
            );
            // spread first heartbeats over one interval
            let n = mine.len();
            for (i, sim) in mine.iter_mut().enumerate() {
                sim.next_hb = Instant::now() + interval.mul_f64(i as f64 / n as f64);
            }
            s.spawn(move || {
                let hb_body = serde_json::to_vec(&hb).unwrap();
                let start = Instant::now();
                let mut sent_inc = 0u64;
                let mut k = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    let mut did = false;
                    for sim in mine.iter_mut() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if sim.next_hb <= now {
                            sim.next_hb += interval;
                            let r = sim.http.post(&format!("{base}/agent/v1/heartbeat")).header("Content-Type", "application/json").send(&hb_body[..]);
                            match r {
                                Ok(mut r) if r.status().is_success() => {
                                    // read to the end: only then does the connection go back to the pool
                                    let _ = r.body_mut().read_to_vec();
                                    hbs.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(r) => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                    first_err.lock().unwrap().get_or_insert(format!("HTTP {}", r.status()));
                                }
                                Err(e) => {
                                    errors.fetch_add(1, Ordering::Relaxed);
                                    first_err.lock().unwrap().get_or_insert(e.to_string());
                                }
                            }
                            did = true;
                        }
                    }
                    // incidents at the target rate
                    let due = (start.elapsed().as_secs_f64() * per_thread_inc) as u64;
                    while sent_inc < due && !stop.load(Ordering::Relaxed) {
                        let sim = &mut mine[k % n];
                        k += 1;
                        sim.seq += 1;
                        let inc = common::incident(
                            &format!("load-{t}-{k}"),
                            None,
                            (0..10).map(|f| format!("/srv/samba/shares/dept/file-{f}.docx")).collect(),
                        );
                        let body = json!([{"seq": sim.seq, "at": chrono::Utc::now(), "event": ward_model::AgentEvent::Incident(inc)}]);
                        match sim.http.post(&format!("{base}/agent/v1/events")).send_json(body) {
                            Ok(mut r) if r.status().is_success() => {
                                    // read to the end: only then does the connection go back to the pool
                                    let _ = r.body_mut().read_to_vec();
                                incs.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(r) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                first_err.lock().unwrap().get_or_insert(format!("HTTP {}", r.status()));
                            }
                            Err(e) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                first_err.lock().unwrap().get_or_insert(e.to_string());
                            }
                        }
                        sent_inc += 1;
                        did = true;
                    }
                    if !did {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            });
        }
        // API poller
        {
            let (stop, warm, lat) = (stop.clone(), warm.clone(), api_lat.clone());
            let api = common::Api::new(&base, dir.path(), &init.admin_token);
            s.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for (i, p) in ["/api/v1/hosts", "/api/v1/incidents"].iter().enumerate() {
                        let t = Instant::now();
                        let (c, _) = api.get(p);
                        let ms = t.elapsed().as_secs_f64() * 1000.0;
                        if c == 200 && warm.load(Ordering::Relaxed) {
                            let mut l = lat.lock().unwrap();
                            if i == 0 {
                                l.0.push(ms)
                            } else {
                                l.1.push(ms)
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_millis(250));
                }
            });
        }
        // warm-up: one interval (every agent connects once), then measure
        let warm_until = Instant::now() + interval + Duration::from_secs(1);
        while Instant::now() < warm_until {
            std::thread::sleep(Duration::from_millis(200));
        }
        eprintln!(
            "warm-up done in {:.1} s ({} heartbeats)",
            t_connect.elapsed().as_secs_f64(),
            hbs.load(Ordering::Relaxed)
        );
        warm.store(true, Ordering::Relaxed);
        let (h0, i0, m0) = (
            hbs.load(Ordering::Relaxed),
            incs.load(Ordering::Relaxed),
            Instant::now(),
        );
        let end = m0 + Duration::from_secs(a.secs);
        while Instant::now() < end {
            std::thread::sleep(Duration::from_millis(500));
            let (r, hwm) = rss_kib(cpid);
            rss_samples.push(r);
            peak_rss = peak_rss.max(hwm);
        }
        let el = m0.elapsed().as_secs_f64();
        let out = (
            hbs.load(Ordering::Relaxed) - h0,
            incs.load(Ordering::Relaxed) - i0,
            el,
        );
        stop.store(true, Ordering::Relaxed);
        out
    });
    let (rss, hwm) = rss_kib(cpid);
    let mut l = api_lat.lock().unwrap();
    let (mut hl, mut il) = (std::mem::take(&mut l.0), std::mem::take(&mut l.1));
    let summary = json!({
        "backend": a.backend,
        "agents": a.agents,
        "enroll_secs": (enroll_secs * 10.0).round() / 10.0,
        "enrollments_per_sec": (a.agents as f64 / enroll_secs).round(),
        "heartbeat_interval_s": a.interval,
        "heartbeats_per_sec_target": (a.agents as f64 / a.interval).round(),
        "heartbeats_per_sec": (hb_measured as f64 / measured_secs).round(),
        "incidents_per_sec_target": a.incidents,
        "incidents_per_sec": ((inc_measured as f64 / measured_secs) * 10.0).round() / 10.0,
        "errors": errors.load(Ordering::Relaxed),
        "first_error": *first_err.lock().unwrap(),
        "measured_secs": measured_secs.round(),
        "api_hosts_ms": {"n": hl.len(), "p50": pct(&mut hl, 0.5).round(), "p99": pct(&mut hl, 0.99).round()},
        "api_incidents_ms": {"n": il.len(), "p50": pct(&mut il, 0.5).round(), "p99": pct(&mut il, 0.99).round()},
        "console_rss_mib": rss / 1024,
        "console_peak_rss_mib": hwm.max(peak_rss) / 1024,
    });
    println!("{summary}");
    drop(child.stdin.take());
    let _ = child.wait();
    drop(pg);
}
