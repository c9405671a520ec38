//! `--metrics-addr ADDR`: Prometheus text exposition at `http://ADDR/metrics` on a thread
//! of its own (tiny_http), so a scrape never touches the agent's threads beyond reading
//! atomics.

use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The exposition's content type (text format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsServerError {
    /// The address is not `host:port`.
    #[error("metrics address `{0}` is not host:port; give e.g. 127.0.0.1:9477 (or [::1]:9477)")]
    Address(String),
    /// Binding failed (in use, not local, no permission).
    #[error(
        "cannot serve metrics on {addr}: {reason}; choose a free local address (e.g. \
         127.0.0.1:9477) or stop what uses it"
    )]
    Bind {
        /// The address asked for.
        addr: String,
        /// The OS's reason.
        reason: String,
    },
    /// The server thread could not be started.
    #[error("cannot start the metrics thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// The running metrics endpoint; stops when dropped.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listen on `addr` (`host:port`; port 0 picks one, see [`MetricsServer::local_addr`])
    /// and serve `GET /metrics` from `metrics`; every other path is 404, other methods on
    /// `/metrics` 405.
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> Result<MetricsServer, MetricsServerError> {
        let sock: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| MetricsServerError::Address(addr.to_string()))?;
        let server = tiny_http::Server::http(sock).map_err(|e| MetricsServerError::Bind {
            addr: addr.to_string(),
            reason: e.to_string(),
        })?;
        let bound = server
            .server_addr()
            .to_ip()
            .ok_or_else(|| MetricsServerError::Address(addr.to_string()))?;
        let server = Arc::new(server);
        let s = server.clone();
        let thread = std::thread::Builder::new()
            .name("ward-metrics".into())
            .spawn(move || serve(&s, &metrics))?;
        Ok(MetricsServer {
            server,
            addr: bound,
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stop serving and join the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn header(k: &str, v: &str) -> Option<tiny_http::Header> {
    tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).ok()
}

fn serve(server: &tiny_http::Server, metrics: &Metrics) {
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let resp = match (req.method(), path) {
            (tiny_http::Method::Get | tiny_http::Method::Head, "/metrics") => {
                let mut r = tiny_http::Response::from_string(metrics.render());
                if let Some(h) = header("Content-Type", CONTENT_TYPE) {
                    r.add_header(h);
                }
                r
            }
            (_, "/metrics") => {
                let mut r =
                    tiny_http::Response::from_string("only GET /metrics\n").with_status_code(405);
                if let Some(h) = header("Allow", "GET, HEAD") {
                    r.add_header(h);
                }
                r
            }
            _ => tiny_http::Response::from_string("not found: ward serves /metrics\n")
                .with_status_code(404),
        };
        if let Err(e) = req.respond(resp) {
            tracing::debug!("metrics scrape: cannot answer: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{EventKind, PermAnswer};
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::Duration;

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into()
    }

    #[test]
    fn scrape_over_http_parses_as_prometheus_text() {
        let m = Arc::new(Metrics::new());
        m.set_sensor("bpf+fanotify");
        m.event(EventKind::Open);
        m.events(EventKind::CloseWrite, 3);
        for us in [5, 20, 80, 400, 2_000, 70_000, 4_000_000] {
            m.perm_answer(PermAnswer::Allow, Duration::from_micros(us));
        }
        m.perm_answer(PermAnswer::Deny, Duration::from_micros(30));
        m.incident();
        m.set_vault(4096, 2);
        m.set_clients_blocked(1);
        m.output_result("webhook", true);
        let srv = MetricsServer::start("127.0.0.1:0", m.clone()).unwrap();
        let url = format!("http://{}/metrics", srv.local_addr());
        let mut resp = agent().get(&url).call().unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let ct = resp
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
        let text = resp.body_mut().read_to_string().unwrap();

        let scrape =
            prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        assert!(!scrape.samples.is_empty());
        // HELP and TYPE for every family, before its samples.
        let mut helped = BTreeSet::new();
        let mut typed = BTreeMap::new();
        for l in text.lines() {
            if let Some(r) = l.strip_prefix("# HELP ") {
                helped.insert(r.split(' ').next().unwrap().to_string());
            } else if let Some(r) = l.strip_prefix("# TYPE ") {
                let mut it = r.split(' ');
                typed.insert(
                    it.next().unwrap().to_string(),
                    it.next().unwrap().to_string(),
                );
            } else if !l.is_empty() {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(name.starts_with("ward_"), "metric not named ward_*: {name}");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| {
                        name.strip_suffix(s)
                            .filter(|f| typed.get(*f).is_some_and(|t| t == "histogram"))
                    })
                    .unwrap_or(name);
                assert!(helped.contains(family), "no HELP before {name}");
                assert!(typed.contains_key(family), "no TYPE before {name}");
            }
        }
        for s in &scrape.samples {
            assert!(s.metric.starts_with("ward_"), "{}", s.metric);
        }
        for want in [
            "ward_events_total",
            "ward_perm_events_total",
            "ward_queue_overflows_total",
            "ward_events_lost_total",
            "ward_incidents_total",
            "ward_vault_bytes",
            "ward_vault_files",
            "ward_vault_evictions_total",
            "ward_clients_blocked",
            "ward_sensor_info",
            "ward_up",
            "ward_perm_answer_seconds",
        ] {
            assert!(typed.contains_key(want), "missing {want}");
        }
        assert_eq!(typed["ward_events_total"], "counter");
        assert_eq!(typed["ward_perm_answer_seconds"], "histogram");

        let get = |metric: &str, label: Option<(&str, &str)>| -> &prometheus_parse::Value {
            &scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v))
                })
                .unwrap_or_else(|| panic!("no sample {metric} {label:?}"))
                .value
        };
        use prometheus_parse::Value as V;
        assert!(
            matches!(get("ward_events_total", Some(("kind", "close_write"))), V::Counter(c) if *c == 3.0)
        );
        assert!(
            matches!(get("ward_perm_events_total", Some(("answer", "deny"))), V::Counter(c) if *c == 1.0)
        );
        assert!(
            matches!(get("ward_sensor_info", Some(("sensor", "bpf+fanotify"))), V::Gauge(c) if *c == 1.0)
        );
        assert!(matches!(get("ward_incidents_total", None), V::Counter(c) if *c == 1.0));
        assert!(matches!(get("ward_vault_bytes", None), V::Gauge(c) if *c == 4096.0));
        assert!(matches!(get("ward_up", None), V::Gauge(c) if *c == 1.0));
        match get("ward_perm_answer_seconds", None) {
            V::Histogram(buckets) => {
                assert_eq!(buckets.len(), 18);
                assert!(
                    buckets.windows(2).all(|w| w[0].count <= w[1].count),
                    "not cumulative"
                );
                assert!(buckets.windows(2).all(|w| w[0].less_than < w[1].less_than));
                assert_eq!(buckets[0].less_than, 0.00001);
                assert_eq!(buckets[0].count, 1.0); // 5 us
                assert_eq!(buckets[16].less_than, 3.0);
                assert_eq!(buckets[16].count, 7.0); // all but the 4 s one
                assert!(buckets[17].less_than.is_infinite());
                assert_eq!(buckets[17].count, 8.0);
            }
            other => panic!("not a histogram: {other:?}"),
        }
        assert!(text.contains("ward_perm_answer_seconds_count 8\n"));
    }

    #[test]
    fn other_paths_and_methods_are_refused_and_stop_frees_the_port() {
        let srv = MetricsServer::start("127.0.0.1:0", Arc::new(Metrics::new())).unwrap();
        let base = format!("http://{}", srv.local_addr());
        let a = agent();
        assert_eq!(
            a.get(format!("{base}/")).call().unwrap().status().as_u16(),
            404
        );
        assert_eq!(
            a.get(format!("{base}/metricsx"))
                .call()
                .unwrap()
                .status()
                .as_u16(),
            404
        );
        assert_eq!(
            a.get(format!("{base}/metrics?x=1"))
                .call()
                .unwrap()
                .status()
                .as_u16(),
            200
        );
        assert_eq!(
            a.post(format!("{base}/metrics"))
                .send("")
                .unwrap()
                .status()
                .as_u16(),
            405
        );
        let addr = srv.local_addr();
        srv.stop();
        // tiny_http closes its listener asynchronously: the port is free within moments.
        let t0 = std::time::Instant::now();
        loop {
            match MetricsServer::start(&addr.to_string(), Arc::new(Metrics::new())) {
                Ok(_) => break,
                Err(e) => assert!(t0.elapsed() < Duration::from_secs(3), "port not freed: {e}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn bind_errors_say_what_to_do() {
        let first = MetricsServer::start("127.0.0.1:0", Arc::new(Metrics::new())).unwrap();
        let e = MetricsServer::start(&first.local_addr().to_string(), Arc::new(Metrics::new()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("choose a free local address"), "{e}");
        let e = MetricsServer::start("nonsense", Arc::new(Metrics::new()))
            .err()
            .unwrap();
        assert!(e.to_string().contains("host:port"), "{e}");
    }
}
