//! The agent's outputs: typed [`AgentEvent`]s delivered, in order, to every configured
//! [`Sink`] by one output thread, so that a slow reader of stdout (or a slow SIEM) can
//! never delay an answer to a permission event.

use std::sync::mpsc;
use std::thread::JoinHandle;
use ward_model::AgentEvent;
use ward_outputs::Sink;

/// The output thread.
pub struct Output {
    tx: Option<mpsc::Sender<AgentEvent>>,
    thread: Option<JoinHandle<()>>,
}

impl Output {
    /// Deliver to `sinks` (none: events are dropped).
    pub fn start(mut sinks: Vec<Box<dyn Sink>>) -> Output {
        if sinks.is_empty() {
            return Output {
                tx: None,
                thread: None,
            };
        }
        let (tx, rx) = mpsc::channel::<AgentEvent>();
        let thread = std::thread::Builder::new()
            .name("outputs".into())
            .spawn(move || {
                let mut failures = vec![0u64; sinks.len()];
                for ev in rx {
                    for (i, s) in sinks.iter_mut().enumerate() {
                        // A failing output must never stop protection.
                        if let Err(e) = s.send(&ev) {
                            failures[i] += 1;
                            if failures[i].is_power_of_two() {
                                tracing::warn!(
                                    "output {}: {e} ({} failure(s) so far)",
                                    s.name(),
                                    failures[i]
                                );
                            }
                        }
                    }
                }
                for s in sinks.iter_mut() {
                    if let Err(e) = s.flush() {
                        tracing::warn!("output {}: {e}", s.name());
                    }
                }
            })
            .expect("spawning the output thread");
        Output {
            tx: Some(tx),
            thread: Some(thread),
        }
    }

    /// Queue an event for every sink.
    pub fn emit(&self, ev: AgentEvent) {
        self.emitter().emit(ev);
    }

    /// A handle other threads can emit through (in order with everything else).
    pub fn emitter(&self) -> Emitter {
        Emitter {
            tx: self.tx.clone(),
        }
    }

    /// Deliver everything queued and stop the thread.
    pub fn close(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.close();
    }
}

/// A clonable, `Send` handle to the outputs.
#[derive(Clone)]
pub struct Emitter {
    tx: Option<mpsc::Sender<AgentEvent>>,
}

impl Emitter {
    /// Queue an event.
    pub fn emit(&self, ev: AgentEvent) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(ev);
        }
    }
}

/// A sink that keeps every event in memory (tests, `ward demo`).
#[derive(Clone, Default)]
pub struct Collect(pub std::sync::Arc<std::sync::Mutex<Vec<AgentEvent>>>);

impl Sink for Collect {
    fn name(&self) -> &str {
        "collect"
    }
    fn send(&mut self, ev: &AgentEvent) -> Result<(), ward_outputs::SinkError> {
        self.0
            .lock()
            .map_err(|_| ward_outputs::SinkError::Other("poisoned".into()))?
            .push(ev.clone());
        Ok(())
    }
}
