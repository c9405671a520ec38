//! The agent's metrics: plain atomics the hot thread bumps with one relaxed add, read and
//! rendered (Prometheus text exposition 0.0.4) only when somebody scrapes.

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kinds of sensor event counted in `ward_events_total{kind=...}` (the engine's `op`
/// names, plus `connect` for outbound SMB connections and `other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A process appeared (fork, exec, first sighting).
    Process,
    /// A process exited.
    Exit,
    /// An open of an existing file.
    Open,
    /// A close after writing.
    CloseWrite,
    /// A directory entry created.
    Create,
    /// A directory entry removed.
    Delete,
    /// A rename.
    Rename,
    /// An outbound connection (SMB fan-out watch).
    Connect,
    /// Anything else.
    Other,
}

impl EventKind {
    /// Every kind, in exposition order.
    pub const ALL: [EventKind; 9] = [
        EventKind::Process,
        EventKind::Exit,
        EventKind::Open,
        EventKind::CloseWrite,
        EventKind::Create,
        EventKind::Delete,
        EventKind::Rename,
        EventKind::Connect,
        EventKind::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Process => "process",
            EventKind::Exit => "exit",
            EventKind::Open => "open",
            EventKind::CloseWrite => "close_write",
            EventKind::Create => "create",
            EventKind::Delete => "delete",
            EventKind::Rename => "rename",
            EventKind::Connect => "connect",
            EventKind::Other => "other",
        }
    }
}

/// The answer given to a fanotify permission event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PermAnswer {
    /// `FAN_ALLOW`.
    Allow,
    /// `FAN_DENY`.
    Deny,
}

/// Upper bounds (seconds) of the `ward_perm_answer_seconds` buckets: 10 µs … 3 s.
pub const LATENCY_BUCKETS_SECONDS: [f64; 17] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 3.0,
];

const BOUNDS_NS: [u64; 17] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    3_000_000_000,
];

/// A lock-free histogram with the fixed [`LATENCY_BUCKETS_SECONDS`] buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Non-cumulative counts; the last slot is `+Inf`.
    counts: [AtomicU64; 18],
    sum_ns: AtomicU64,
}

impl Histogram {
    /// Record one observation (two relaxed atomic adds).
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = BOUNDS_NS.partition_point(|&b| b < ns);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// Cumulative counts per bucket (the last is `+Inf`, equal to the total count) and
    /// the sum in seconds. The count is derived from the buckets, so a scrape racing an
    /// observation is still self-consistent.
    pub fn cumulative(&self) -> ([u64; 18], f64) {
        let mut out = [0u64; 18];
        let mut acc = 0u64;
        for (o, c) in out.iter_mut().zip(&self.counts) {
            acc = acc.saturating_add(c.load(Relaxed));
            *o = acc;
        }
        (out, self.sum_ns.load(Relaxed) as f64 / 1e9)
    }
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
struct SinkCounts {
    delivered: u64,
    failed: u64,
}

/// Every metric of the agent. Share it as `Arc<Metrics>`; every update is a relaxed
/// atomic operation except [`Metrics::set_sensor`] (a mutex, called once at start).
#[derive(Debug)]
pub struct Metrics {
    started: Instant,
    up: AtomicBool,
    sensor: Mutex<String>,
    events: [AtomicU64; 9],
    perm: [AtomicU64; 2],
    perm_latency: Histogram,
    queue_depth: AtomicU64,
    queue_overflows: AtomicU64,
    events_lost: AtomicU64,
    incidents: AtomicU64,
    vault_bytes: AtomicU64,
    vault_files: AtomicU64,
    vault_evictions: AtomicU64,
    clients_blocked: AtomicU64,
    output_queue: AtomicU64,
    output_dropped: AtomicU64,
    outputs: Mutex<BTreeMap<String, SinkCounts>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// A point-in-time copy of the metrics, for `ward status`.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsSnapshot {
    /// `ward_up`.
    pub up: bool,
    /// Seconds since the registry was made (agent start).
    pub uptime_secs: u64,
    /// The sensor in use.
    pub sensor: String,
    /// Sensor events by kind.
    pub events: BTreeMap<String, u64>,
    /// Permission events answered allow.
    pub perm_allowed: u64,
    /// Permission events answered deny.
    pub perm_denied: u64,
    /// Median-ish view of the answer latency: the smallest bucket bound (seconds) that
    /// holds at least half / 99 % of the answers (`None` before the first answer).
    pub perm_answer_p50_seconds: Option<f64>,
    /// See `perm_answer_p50_seconds`.
    pub perm_answer_p99_seconds: Option<f64>,
    /// Current depth of the agent's event queue.
    pub queue_depth: u64,
    /// Kernel queue overflows.
    pub queue_overflows: u64,
    /// Events lost (overflows, drops).
    pub events_lost: u64,
    /// Incidents reported.
    pub incidents: u64,
    /// Bytes held in the vaults.
    pub vault_bytes: u64,
    /// Files held in the vaults.
    pub vault_files: u64,
    /// Vault entries evicted.
    pub vault_evictions: u64,
    /// SMB clients blocked now.
    pub clients_blocked: u64,
    /// Agent events waiting for the output thread.
    pub output_queue_depth: u64,
    /// Agent events dropped because the output queue was full or closed.
    pub output_dropped: u64,
    /// Per sink: events delivered and failed.
    pub outputs: BTreeMap<String, serde_json::Value>,
}

impl Metrics {
    /// A fresh registry: everything zero, `ward_up` 1, uptime counted from now.
    pub fn new() -> Metrics {
        Metrics {
            started: Instant::now(),
            up: AtomicBool::new(true),
            sensor: Mutex::new(String::new()),
            events: Default::default(),
            perm: Default::default(),
            perm_latency: Histogram::default(),
            queue_depth: AtomicU64::new(0),
            queue_overflows: AtomicU64::new(0),
            events_lost: AtomicU64::new(0),
            incidents: AtomicU64::new(0),
            vault_bytes: AtomicU64::new(0),
            vault_files: AtomicU64::new(0),
            vault_evictions: AtomicU64::new(0),
            clients_blocked: AtomicU64::new(0),
            output_queue: AtomicU64::new(0),
            output_dropped: AtomicU64::new(0),
            outputs: Mutex::new(BTreeMap::new()),
        }
    }

    /// Count one sensor event of `kind`.
    pub fn event(&self, kind: EventKind) {
        self.events(kind, 1);
    }

    /// Count `n` sensor events of `kind`.
    pub fn events(&self, kind: EventKind, n: u64) {
        self.events[kind as usize].fetch_add(n, Relaxed);
    }

    /// Count one answered permission event and its latency (from the event's read to the
    /// answer's write).
    pub fn perm_answer(&self, answer: PermAnswer, latency: Duration) {
        self.perm[answer as usize].fetch_add(1, Relaxed);
        self.perm_latency.observe(latency);
    }

    /// The latency histogram.
    pub fn perm_latency(&self) -> &Histogram {
        &self.perm_latency
    }

    /// Set the depth of the agent's event queue (sensor to engine).
    pub fn set_queue_depth(&self, n: u64) {
        self.queue_depth.store(n, Relaxed);
    }

    /// Count one kernel queue overflow (`FAN_Q_OVERFLOW`).
    pub fn queue_overflow(&self) {
        self.queue_overflows.fetch_add(1, Relaxed);
    }

    /// Count `n` events lost (not seen by the engine).
    pub fn events_lost(&self, n: u64) {
        self.events_lost.fetch_add(n, Relaxed);
    }

    /// Count one incident. [`crate::Outputs`] started with metrics does this for every
    /// incident event it is given: call it yourself only when not using `Outputs`.
    pub fn incident(&self) {
        self.incidents.fetch_add(1, Relaxed);
    }

    /// Set the vaults' total size and file count.
    pub fn set_vault(&self, bytes: u64, files: u64) {
        self.vault_bytes.store(bytes, Relaxed);
        self.vault_files.store(files, Relaxed);
    }

    /// Count `n` vault evictions (expired or over budget).
    pub fn vault_evictions(&self, n: u64) {
        self.vault_evictions.fetch_add(n, Relaxed);
    }

    /// Set the number of SMB client blocks in force.
    pub fn set_clients_blocked(&self, n: u64) {
        self.clients_blocked.store(n, Relaxed);
    }

    /// Name the sensor front end in use (`fanotify`, `bpf+fanotify`).
    pub fn set_sensor(&self, sensor: &str) {
        if let Ok(mut s) = self.sensor.lock() {
            sensor.clone_into(&mut s);
        }
    }

    /// Set `ward_up` (1 while protecting; 0 when stopping).
    pub fn set_up(&self, up: bool) {
        self.up.store(up, Relaxed);
    }

    pub(crate) fn output_queue(&self, depth: u64) {
        self.output_queue.store(depth, Relaxed);
    }

    pub(crate) fn output_dropped(&self) {
        self.output_dropped.fetch_add(1, Relaxed);
    }

    pub(crate) fn output_result(&self, sink: &str, ok: bool) {
        if let Ok(mut m) = self.outputs.lock() {
            let c = m.entry(sink.to_string()).or_default();
            if ok {
                c.delivered += 1;
            } else {
                c.failed += 1;
            }
        }
    }

    fn sensor_name(&self) -> String {
        self.sensor.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// A copy of every value, for `ward status`.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let (buckets, _) = self.perm_latency.cumulative();
        let total = buckets[17];
        let quantile = |q: f64| -> Option<f64> {
            if total == 0 {
                return None;
            }
            let need = (total as f64 * q).ceil() as u64;
            let i = buckets.iter().position(|&c| c >= need)?;
            Some(
                LATENCY_BUCKETS_SECONDS
                    .get(i)
                    .copied()
                    .unwrap_or(f64::INFINITY),
            )
        };
        let outputs = self
            .outputs
            .lock()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), serde_json::json!(v)))
                    .collect()
            })
            .unwrap_or_default();
        MetricsSnapshot {
            up: self.up.load(Relaxed),
            uptime_secs: self.started.elapsed().as_secs(),
            sensor: self.sensor_name(),
            events: EventKind::ALL
                .iter()
                .map(|&k| {
                    (
                        k.as_str().to_string(),
                        self.events[k as usize].load(Relaxed),
                    )
                })
                .collect(),
            perm_allowed: self.perm[0].load(Relaxed),
            perm_denied: self.perm[1].load(Relaxed),
            perm_answer_p50_seconds: quantile(0.5),
            perm_answer_p99_seconds: quantile(0.99),
            queue_depth: self.queue_depth.load(Relaxed),
            queue_overflows: self.queue_overflows.load(Relaxed),
            events_lost: self.events_lost.load(Relaxed),
            incidents: self.incidents.load(Relaxed),
            vault_bytes: self.vault_bytes.load(Relaxed),
            vault_files: self.vault_files.load(Relaxed),
            vault_evictions: self.vault_evictions.load(Relaxed),
            clients_blocked: self.clients_blocked.load(Relaxed),
            output_queue_depth: self.output_queue.load(Relaxed),
            output_dropped: self.output_dropped.load(Relaxed),
            outputs,
        }
    }

    /// The Prometheus text exposition (format 0.0.4) of every metric.
    pub fn render(&self) -> String {
        let mut o = String::with_capacity(4096);
        let s = self.snapshot();
        family(
            &mut o,
            "ward_up",
            "gauge",
            "1 while ward protects, 0 while it stops.",
        );
        sample(&mut o, "ward_up", &[], s.up as u64 as f64);
        family(
            &mut o,
            "ward_uptime_seconds",
            "gauge",
            "Seconds since the agent started.",
        );
        sample(
            &mut o,
            "ward_uptime_seconds",
            &[],
            self.started.elapsed().as_secs_f64(),
        );
        family(
            &mut o,
            "ward_sensor_info",
            "gauge",
            "The sensor front end in use (label sensor); always 1.",
        );
        let sensor = if s.sensor.is_empty() {
            "none"
        } else {
            &s.sensor
        };
        sample(&mut o, "ward_sensor_info", &[("sensor", sensor)], 1.0);
        family(
            &mut o,
            "ward_events_total",
            "counter",
            "Sensor events seen, by kind.",
        );
        for k in EventKind::ALL {
            let v = self.events[k as usize].load(Relaxed);
            sample(
                &mut o,
                "ward_events_total",
                &[("kind", k.as_str())],
                v as f64,
            );
        }
        family(
            &mut o,
            "ward_perm_events_total",
            "counter",
            "Permission events answered, by answer.",
        );
        sample(
            &mut o,
            "ward_perm_events_total",
            &[("answer", "allow")],
            s.perm_allowed as f64,
        );
        sample(
            &mut o,
            "ward_perm_events_total",
            &[("answer", "deny")],
            s.perm_denied as f64,
        );
        family(
            &mut o,
            "ward_perm_answer_seconds",
            "histogram",
            "Time from reading a permission event to answering it.",
        );
        let (buckets, sum) = self.perm_latency.cumulative();
        for (i, c) in buckets.iter().enumerate() {
            let le = LATENCY_BUCKETS_SECONDS
                .get(i)
                .map(|b| b.to_string())
                .unwrap_or_else(|| "+Inf".to_string());
            sample(
                &mut o,
                "ward_perm_answer_seconds_bucket",
                &[("le", &le)],
                *c as f64,
            );
        }
        sample(&mut o, "ward_perm_answer_seconds_sum", &[], sum);
        sample(
            &mut o,
            "ward_perm_answer_seconds_count",
            &[],
            buckets[17] as f64,
        );
        let simple: [(&str, &str, &str, u64); 10] = [
            (
                "ward_queue_depth",
                "gauge",
                "Events waiting in the agent's queue.",
                s.queue_depth,
            ),
            (
                "ward_queue_overflows_total",
                "counter",
                "Kernel event queue overflows (each followed by a re-scan).",
                s.queue_overflows,
            ),
            (
                "ward_events_lost_total",
                "counter",
                "Sensor events lost before the engine saw them.",
                s.events_lost,
            ),
            (
                "ward_incidents_total",
                "counter",
                "Incidents reported.",
                s.incidents,
            ),
            (
                "ward_vault_bytes",
                "gauge",
                "Bytes held in the vaults.",
                s.vault_bytes,
            ),
            (
                "ward_vault_files",
                "gauge",
                "Files held in the vaults.",
                s.vault_files,
            ),
            (
                "ward_vault_evictions_total",
                "counter",
                "Vault entries evicted (expired or over budget).",
                s.vault_evictions,
            ),
            (
                "ward_clients_blocked",
                "gauge",
                "SMB client blocks in force.",
                s.clients_blocked,
            ),
            (
                "ward_output_queue_depth",
                "gauge",
                "Agent events waiting for the output thread.",
                s.output_queue_depth,
            ),
            (
                "ward_output_dropped_total",
                "counter",
                "Agent events dropped because the output queue was full or closed.",
                s.output_dropped,
            ),
        ];
        for (name, ty, help, v) in simple {
            family(&mut o, name, ty, help);
            sample(&mut o, name, &[], v as f64);
        }
        family(
            &mut o,
            "ward_output_events_total",
            "counter",
            "Agent events handed to each output sink, by result.",
        );
        if let Ok(m) = self.outputs.lock() {
            for (sink, c) in m.iter() {
                for (result, v) in [("delivered", c.delivered), ("failed", c.failed)] {
                    sample(
                        &mut o,
                        "ward_output_events_total",
                        &[("sink", sink), ("result", result)],
                        v as f64,
                    );
                }
            }
        }
        o
    }
}

fn family(o: &mut String, name: &str, ty: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {ty}");
}

fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    o.push_str(name);
    if !labels.is_empty() {
        o.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{k}=\"");
            for c in val.chars() {
                match c {
                    '\\' => o.push_str("\\\\"),
                    '"' => o.push_str("\\\""),
                    '\n' => o.push_str("\\n"),
                    c => o.push(c),
                }
            }
            o.push('"');
        }
        o.push('}');
    }
    let _ = writeln!(o, " {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_upper_inclusive_and_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(10)); // exactly the first bound: first bucket
        h.observe(Duration::from_micros(11)); // second
        h.observe(Duration::from_millis(2)); // 2.5 ms bucket
        h.observe(Duration::from_secs(10)); // +Inf only
        let (c, sum) = h.cumulative();
        assert_eq!(c[0], 1);
        assert_eq!(c[1], 2);
        assert_eq!(c[6], 2); // 1 ms
        assert_eq!(c[7], 3); // 2.5 ms
        assert_eq!(c[16], 3); // 3 s
        assert_eq!(c[17], 4); // +Inf
        assert!((sum - 10.002021).abs() < 1e-9, "{sum}");
        assert!(c.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(BOUNDS_NS.len(), LATENCY_BUCKETS_SECONDS.len());
        for (ns, s) in BOUNDS_NS.iter().zip(LATENCY_BUCKETS_SECONDS) {
            assert_eq!(*ns as f64 / 1e9, s);
        }
    }

    #[test]
    fn snapshot_reflects_updates() {
        let m = Metrics::new();
        m.event(EventKind::Open);
        m.events(EventKind::Rename, 4);
        for _ in 0..99 {
            m.perm_answer(PermAnswer::Allow, Duration::from_micros(20));
        }
        m.perm_answer(PermAnswer::Deny, Duration::from_millis(40));
        m.set_vault(1 << 20, 7);
        m.set_sensor("fanotify");
        m.queue_overflow();
        let s = m.snapshot();
        assert_eq!(s.events["open"], 1);
        assert_eq!(s.events["rename"], 4);
        assert_eq!((s.perm_allowed, s.perm_denied), (99, 1));
        assert_eq!(s.perm_answer_p50_seconds, Some(0.000025));
        assert_eq!(s.perm_answer_p99_seconds, Some(0.000025));
        assert_eq!((s.vault_bytes, s.vault_files), (1 << 20, 7));
        assert_eq!(s.sensor, "fanotify");
        assert_eq!(s.queue_overflows, 1);
        let text = m.render();
        assert!(
            text.contains("ward_sensor_info{sensor=\"fanotify\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("ward_perm_answer_seconds_bucket{le=\"+Inf\"} 100\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        let mut o = String::new();
        sample(&mut o, "x", &[("a", "q\"b\\s\nn")], 1.0);
        assert_eq!(o, "x{a=\"q\\\"b\\\\s\\nn\"} 1\n");
    }
}
