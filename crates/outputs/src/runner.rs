//! The fan-out runner: one output thread runs every sink, in order, so the agent's threads
//! only ever push into a bounded queue.

use crate::metrics::Metrics;
use crate::stamp::Stamped;
use crate::{Sink, SinkError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use ward_model::AgentEvent;

/// Settings of the runner.
#[derive(Debug, Clone)]
pub struct OutputOptions {
    /// Events that may wait for the output thread; past that [`Emitter::emit`] drops the
    /// event (counted, logged) rather than block the caller. Default 4096.
    pub queue_capacity: usize,
    /// How often the output thread calls [`Sink::poll`] when idle. Default 500 ms.
    pub poll_interval: Duration,
    /// At most one log line per sink (and one for drops) per this interval; the lines in
    /// between are counted and the count is logged with the next one. Default 30 s.
    pub error_log_interval: Duration,
    /// Where to count queue depth, drops, per-sink results and incidents.
    pub metrics: Option<Arc<Metrics>>,
    /// The longest [`Outputs::close`] waits for the sinks (delivery of what is queued
    /// plus flushes). A sink stuck past it (e.g. stdout to a reader that stopped reading)
    /// is left behind, with an error naming it, so the agent can still exit. Default 15 s.
    pub close_timeout: Duration,
}

impl Default for OutputOptions {
    fn default() -> Self {
        OutputOptions {
            queue_capacity: 4096,
            poll_interval: Duration::from_millis(500),
            error_log_interval: Duration::from_secs(30),
            metrics: None,
            close_timeout: Duration::from_secs(15),
        }
    }
}

/// What each sink did, returned by [`Outputs::close`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputsReport {
    /// Per sink, in the order given: (name, delivered, failed, disabled after a panic).
    pub sinks: Vec<(String, u64, u64, bool)>,
    /// Events dropped because the queue was full or the runner closed.
    pub dropped: u64,
}

enum Msg {
    Event(Box<Stamped>),
    Close,
}

struct Shared {
    closed: AtomicBool,
    depth: AtomicU64,
    dropped: AtomicU64,
    /// Milliseconds since `t0` of the last drop log line, +1 (0: never).
    last_drop_log: AtomicU64,
    suppressed_drops: AtomicU64,
    t0: Instant,
    log_every: Duration,
    metrics: Option<Arc<Metrics>>,
    /// The sink being called now (for the close timeout's message).
    current: Mutex<String>,
}

/// A clonable, `Send` handle that emits events into the runner's queue. It never blocks.
#[derive(Clone)]
pub struct Emitter {
    tx: SyncSender<Msg>,
    shared: Arc<Shared>,
}

impl Emitter {
    /// Stamp `ev` (id, time) and queue it for every sink. Returns `false` when it was
    /// dropped (queue full, or the runner closed); drops are counted and logged.
    pub fn emit(&self, ev: AgentEvent) -> bool {
        self.emit_stamped(Stamped::now(ev))
    }

    /// Queue an already stamped event.
    pub fn emit_stamped(&self, ev: Stamped) -> bool {
        let sh = &self.shared;
        if sh.closed.load(Ordering::Acquire) {
            self.dropped(ev.event.kind(), "the outputs are closed");
            return false;
        }
        let depth = sh.depth.fetch_add(1, Ordering::Relaxed) + 1;
        match self.tx.try_send(Msg::Event(Box::new(ev))) {
            Ok(()) => {
                if let Some(m) = &sh.metrics {
                    m.output_queue(depth);
                }
                true
            }
            Err(
                TrySendError::Full(Msg::Event(ev)) | TrySendError::Disconnected(Msg::Event(ev)),
            ) => {
                sh.depth.fetch_sub(1, Ordering::Relaxed);
                self.dropped(
                    ev.event.kind(),
                    "the output queue is full (a sink is stuck)",
                );
                false
            }
            Err(_) => false,
        }
    }

    fn dropped(&self, kind: &str, why: &str) {
        let sh = &self.shared;
        sh.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &sh.metrics {
            m.output_dropped();
        }
        let now = sh.t0.elapsed().as_millis() as u64 + 1;
        let last = sh.last_drop_log.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= sh.log_every.as_millis() as u64;
        if due
            && sh
                .last_drop_log
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let more = sh.suppressed_drops.swap(0, Ordering::Relaxed);
            tracing::error!(
                "output event `{kind}` dropped: {why}; {more} more dropped since the last \
                 message (see ward_output_dropped_total)"
            );
        } else {
            sh.suppressed_drops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The running outputs: an output thread and the sinks it owns.
pub struct Outputs {
    emitter: Emitter,
    thread: Option<JoinHandle<()>>,
    done: Option<Receiver<OutputsReport>>,
    close_timeout: Duration,
}

impl Outputs {
    /// Run `sinks` on a new output thread with the default [`OutputOptions`].
    pub fn start(sinks: Vec<Box<dyn Sink>>) -> Outputs {
        Outputs::start_with(sinks, OutputOptions::default())
    }

    /// Run `sinks` on a new output thread. If the thread cannot be spawned (out of
    /// threads), an error is logged and every event is counted as dropped.
    pub fn start_with(sinks: Vec<Box<dyn Sink>>, opts: OutputOptions) -> Outputs {
        let (tx, rx) = mpsc::sync_channel(opts.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            closed: AtomicBool::new(false),
            depth: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_drop_log: AtomicU64::new(0),
            suppressed_drops: AtomicU64::new(0),
            t0: Instant::now(),
            log_every: opts.error_log_interval,
            metrics: opts.metrics.clone(),
            current: Mutex::new(String::new()),
        });
        let slots: Vec<Slot> = sinks
            .into_iter()
            .map(|sink| Slot {
                name: sink.name().to_string(),
                sink,
                delivered: 0,
                failed: 0,
                dead: false,
                last_log: None,
                suppressed: 0,
            })
            .collect();
        let sh = shared.clone();
        let close_timeout = opts.close_timeout;
        let (done_tx, done) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ward-outputs".into())
            .spawn(move || {
                let _ = done_tx.send(run(rx, slots, sh, opts));
            });
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::error!("cannot start the output thread ({e}): no event will be output");
                shared.closed.store(true, Ordering::Release);
                None
            }
        };
        Outputs {
            emitter: Emitter { tx, shared },
            thread,
            done: Some(done),
            close_timeout,
        }
    }

    /// Queue `ev` for every sink (see [`Emitter::emit`]).
    pub fn emit(&self, ev: AgentEvent) -> bool {
        self.emitter.emit(ev)
    }

    /// A handle for other threads.
    pub fn emitter(&self) -> Emitter {
        self.emitter.clone()
    }

    /// Deliver everything queued so far (the `stopped` event included), flush every sink,
    /// stop the output thread and report. Events emitted after this are dropped.
    pub fn close(mut self) -> OutputsReport {
        self.close_inner()
    }

    fn close_inner(&mut self) -> OutputsReport {
        let sh = self.emitter.shared.clone();
        let dropped = || sh.dropped.load(Ordering::Relaxed);
        let (Some(thread), Some(done)) = (self.thread.take(), self.done.take()) else {
            return OutputsReport {
                dropped: dropped(),
                ..OutputsReport::default()
            };
        };
        sh.closed.store(true, Ordering::Release);
        let deadline = Instant::now() + self.close_timeout;
        let stuck = || {
            let name = sh.current.lock().map(|n| n.clone()).unwrap_or_default();
            tracing::error!(
                "output `{name}` is stuck: ward exits without waiting for it (events still \
                 queued for the outputs are lost; a webhook's spool keeps its events)"
            );
            OutputsReport {
                dropped: dropped(),
                ..OutputsReport::default()
            }
        };
        let mut close = Msg::Close;
        loop {
            match self.emitter.tx.try_send(close) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => break,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return stuck();
                    }
                    close = m;
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match done.recv_timeout(left) {
            Ok(mut report) => {
                let _ = thread.join();
                report.dropped = dropped();
                report
            }
            Err(RecvTimeoutError::Timeout) => stuck(),
            Err(RecvTimeoutError::Disconnected) => {
                let _ = thread.join();
                tracing::error!("the output thread panicked; some events may not have been output");
                OutputsReport {
                    dropped: dropped(),
                    ..OutputsReport::default()
                }
            }
        }
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.close_inner();
        }
    }
}

struct Slot {
    sink: Box<dyn Sink>,
    name: String,
    delivered: u64,
    failed: u64,
    dead: bool,
    last_log: Option<Instant>,
    suppressed: u64,
}

impl Slot {
    /// Run one call on the sink, containing errors and panics.
    fn call(
        &mut self,
        what: &str,
        log_every: Duration,
        f: impl FnOnce(&mut dyn Sink) -> Result<(), SinkError>,
    ) -> bool {
        if self.dead {
            return false;
        }
        let sink = &mut self.sink;
        match catch_unwind(AssertUnwindSafe(|| f(sink.as_mut()))) {
            Ok(Ok(())) => true,
            Ok(Err(e)) => {
                let due = self.last_log.is_none_or(|t| t.elapsed() >= log_every);
                if due {
                    let more = std::mem::take(&mut self.suppressed);
                    tracing::warn!(
                        "output `{}`: {what} failed: {e} ({more} more failures since the last \
                         message; see ward_output_events_total)",
                        self.name
                    );
                    self.last_log = Some(Instant::now());
                } else {
                    self.suppressed += 1;
                }
                false
            }
            Err(_) => {
                tracing::error!(
                    "output `{}` panicked during {what}; it is disabled until ward restarts \
                     (the other outputs go on)",
                    self.name
                );
                self.dead = true;
                false
            }
        }
    }
}

fn set_current(sh: &Shared, name: &str) {
    if let Ok(mut c) = sh.current.lock() {
        name.clone_into(&mut c);
    }
}

fn run(
    rx: Receiver<Msg>,
    mut slots: Vec<Slot>,
    sh: Arc<Shared>,
    opts: OutputOptions,
) -> OutputsReport {
    let deliver = |slots: &mut Vec<Slot>, ev: Box<Stamped>| {
        let depth = sh.depth.fetch_sub(1, Ordering::Relaxed).saturating_sub(1);
        if let Some(m) = &sh.metrics {
            m.output_queue(depth);
            if matches!(ev.event, AgentEvent::Incident(_)) {
                m.incident();
            }
        }
        for slot in slots.iter_mut() {
            set_current(&sh, &slot.name);
            let ok = slot.call("delivery", opts.error_log_interval, |s| s.send_stamped(&ev));
            if ok {
                slot.delivered += 1;
            } else {
                slot.failed += 1;
            }
            if let Some(m) = &sh.metrics {
                m.output_result(&slot.name, ok);
            }
        }
    };
    let mut last_poll = Instant::now();
    loop {
        let wait = opts.poll_interval.saturating_sub(last_poll.elapsed());
        match rx.recv_timeout(wait) {
            Ok(Msg::Event(ev)) => deliver(&mut slots, ev),
            Ok(Msg::Close) | Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {}
        }
        if last_poll.elapsed() >= opts.poll_interval {
            for slot in slots.iter_mut() {
                set_current(&sh, &slot.name);
                slot.call("retry", opts.error_log_interval, |s| s.poll());
            }
            last_poll = Instant::now();
        }
    }
    // Emitters that raced the close may have queued a few more: deliver them too.
    while let Ok(msg) = rx.try_recv() {
        if let Msg::Event(ev) = msg {
            deliver(&mut slots, ev);
        }
    }
    for slot in slots.iter_mut() {
        set_current(&sh, &slot.name);
        slot.call("flush", opts.error_log_interval, |s| s.flush());
    }
    OutputsReport {
        sinks: slots
            .iter()
            .map(|s| (s.name.clone(), s.delivered, s.failed, s.dead))
            .collect(),
        dropped: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use ward_model::Stopped;

    #[derive(Default)]
    struct Log {
        events: Vec<String>,
        flushed: bool,
        polls: u32,
    }

    struct Recorder {
        name: &'static str,
        log: Arc<Mutex<Log>>,
        delay: Duration,
        fail_every: u64,
        panic_on: Option<usize>,
        n: u64,
    }

    impl Recorder {
        fn new(name: &'static str) -> (Self, Arc<Mutex<Log>>) {
            let log = Arc::new(Mutex::new(Log::default()));
            (
                Recorder {
                    name,
                    log: log.clone(),
                    delay: Duration::ZERO,
                    fail_every: 0,
                    panic_on: None,
                    n: 0,
                },
                log,
            )
        }
    }

    impl Sink for Recorder {
        fn name(&self) -> &str {
            self.name
        }
        fn send(&mut self, ev: &AgentEvent) -> Result<(), SinkError> {
            self.n += 1;
            std::thread::sleep(self.delay);
            if self.panic_on == Some(self.n as usize - 1) {
                panic!("test panic");
            }
            let mut log = self.log.lock().unwrap();
            log.events.push(serde_json::to_string(ev).unwrap());
            if self.fail_every > 0 && self.n.is_multiple_of(self.fail_every) {
                return Err(SinkError::Other("destination refused".into()));
            }
            Ok(())
        }
        fn poll(&mut self) -> Result<(), SinkError> {
            self.log.lock().unwrap().polls += 1;
            Ok(())
        }
        fn flush(&mut self) -> Result<(), SinkError> {
            self.log.lock().unwrap().flushed = true;
            Ok(())
        }
    }

    fn lifted(n: usize) -> AgentEvent {
        AgentEvent::BlockLifted(ward_model::BlockLifted {
            ip: format!("10.0.0.{n}"),
            reason: "unblock".into(),
        })
    }

    #[test]
    fn every_sink_gets_every_event_in_order_and_stopped_before_close_returns() {
        let (a, la) = Recorder::new("a");
        let (b, lb) = Recorder::new("b");
        let metrics = Arc::new(Metrics::new());
        let out = Outputs::start_with(
            vec![Box::new(a), Box::new(b)],
            OutputOptions {
                metrics: Some(metrics.clone()),
                ..OutputOptions::default()
            },
        );
        let em = out.emitter();
        let t = std::thread::spawn(move || {
            for i in 0..50 {
                assert!(em.emit(lifted(i)));
            }
        });
        t.join().unwrap();
        out.emit(AgentEvent::Incident(crate::testutil::incident(3)));
        out.emit(AgentEvent::Stopped(Stopped {}));
        let report = out.close();
        for log in [la, lb] {
            let log = log.lock().unwrap();
            assert_eq!(log.events.len(), 52);
            for (i, e) in log.events[..50].iter().enumerate() {
                assert!(e.contains(&format!("\"10.0.0.{i}\"")), "out of order: {e}");
            }
            assert_eq!(log.events[51], r#"{"type":"stopped"}"#);
            assert!(log.flushed);
        }
        assert_eq!(
            report.sinks,
            vec![("a".into(), 52, 0, false), ("b".into(), 52, 0, false)]
        );
        let s = metrics.snapshot();
        assert_eq!(s.incidents, 1);
        assert_eq!(s.outputs["a"]["delivered"], 52);
        assert_eq!(s.output_queue_depth, 0);
    }

    #[test]
    fn a_slow_sink_never_delays_the_emitter() {
        let (mut slow, log) = Recorder::new("slow");
        slow.delay = Duration::from_millis(100);
        let out = Outputs::start(vec![Box::new(slow)]);
        let t0 = Instant::now();
        for i in 0..10 {
            assert!(out.emit(lifted(i)));
        }
        let took = t0.elapsed();
        // Blocking on the sink would take 10 x 100 ms; leave room for a loaded machine.
        assert!(
            took < Duration::from_millis(500),
            "emit blocked for {took:?}"
        );
        out.close();
        assert_eq!(log.lock().unwrap().events.len(), 10);
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_blocking() {
        let (mut slow, log) = Recorder::new("slow");
        slow.delay = Duration::from_millis(200);
        let metrics = Arc::new(Metrics::new());
        let out = Outputs::start_with(
            vec![Box::new(slow)],
            OutputOptions {
                queue_capacity: 2,
                metrics: Some(metrics.clone()),
                ..OutputOptions::default()
            },
        );
        let sent = (0..10).filter(|&i| out.emit(lifted(i))).count();
        assert!((2..=3).contains(&sent), "sent {sent}");
        let report = out.close();
        assert_eq!(report.dropped, 10 - sent as u64);
        assert_eq!(metrics.snapshot().output_dropped, 10 - sent as u64);
        assert_eq!(log.lock().unwrap().events.len(), sent);
    }

    #[test]
    fn failing_and_panicking_sinks_are_contained() {
        let (mut failing, lf) = Recorder::new("failing");
        failing.fail_every = 2;
        let (mut panicking, lp) = Recorder::new("panicking");
        panicking.panic_on = Some(3);
        let (good, lg) = Recorder::new("good");
        let out = Outputs::start(vec![Box::new(failing), Box::new(panicking), Box::new(good)]);
        for i in 0..10 {
            out.emit(lifted(i));
        }
        out.emit(AgentEvent::Stopped(Stopped {}));
        let report = out.close();
        assert_eq!(report.sinks[0], ("failing".into(), 6, 5, false));
        assert_eq!(report.sinks[1], ("panicking".into(), 3, 8, true));
        assert_eq!(report.sinks[2], ("good".into(), 11, 0, false));
        assert_eq!(lf.lock().unwrap().events.len(), 11);
        assert_eq!(lp.lock().unwrap().events.len(), 3);
        assert!(lg.lock().unwrap().flushed);
    }

    #[test]
    fn close_gives_up_on_a_stuck_sink() {
        let (mut stuck, _log) = Recorder::new("stuck");
        stuck.delay = Duration::from_secs(3);
        let out = Outputs::start_with(
            vec![Box::new(stuck)],
            OutputOptions {
                close_timeout: Duration::from_millis(300),
                ..OutputOptions::default()
            },
        );
        out.emit(AgentEvent::Stopped(Stopped {}));
        let t0 = Instant::now();
        let report = out.close();
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "close waited {:?}",
            t0.elapsed()
        );
        assert!(report.sinks.is_empty());
    }

    #[test]
    fn idle_runner_polls_and_closed_runner_drops() {
        let (r, log) = Recorder::new("r");
        let out = Outputs::start_with(
            vec![Box::new(r)],
            OutputOptions {
                poll_interval: Duration::from_millis(20),
                ..OutputOptions::default()
            },
        );
        std::thread::sleep(Duration::from_millis(150));
        let em = out.emitter();
        let report = out.close();
        assert!(log.lock().unwrap().polls >= 3);
        assert!(!em.emit(AgentEvent::Stopped(Stopped {})));
        assert_eq!(report.dropped, 0);
    }
}
