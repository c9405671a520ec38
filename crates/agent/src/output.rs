//! The agent's outputs: typed [`AgentEvent`]s delivered in order to every configured sink
//! by `ward-outputs`' runner (its own thread), so that a slow reader of stdout or a slow SIEM
//! can never delay an answer to a permission event.

use std::sync::Arc;
use ward_model::AgentEvent;
use ward_outputs::{Metrics, OutputOptions, Outputs, Sink};

/// The output runner (`None` after close).
pub struct Output {
    runner: Option<Outputs>,
    emitter: ward_outputs::Emitter,
}

impl Output {
    /// Deliver to `sinks`, counting in `metrics`.
    pub fn start(sinks: Vec<Box<dyn Sink>>, metrics: Option<Arc<Metrics>>) -> Output {
        let runner = Outputs::start_with(
            sinks,
            OutputOptions {
                metrics,
                ..Default::default()
            },
        );
        let emitter = runner.emitter();
        Output {
            runner: Some(runner),
            emitter,
        }
    }

    /// Queue an event for every sink (never blocks: a full queue drops and counts).
    pub fn emit(&self, ev: AgentEvent) {
        self.emitter.emit(ev);
    }

    /// A clonable `Send` handle other threads can emit through.
    pub fn emitter(&self) -> ward_outputs::Emitter {
        self.emitter.clone()
    }

    /// Deliver everything queued and stop (bounded: a stuck sink is left behind).
    pub fn close(&mut self) {
        if let Some(r) = self.runner.take() {
            let report = r.close();
            for (name, _, failed, disabled) in &report.sinks {
                if *failed > 0 || *disabled {
                    tracing::warn!("output {name}: {failed} event(s) not delivered");
                }
            }
        }
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        self.close();
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
