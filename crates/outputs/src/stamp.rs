//! The id and time an event is given once, when the agent emits it, so that every sink
//! (ECS, syslog, webhook) reports the same `event.id` and `@timestamp`, and a spooled
//! webhook delivery keeps them across retries and restarts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use ward_model::AgentEvent;

/// An event with its id and emission time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Unique id of this event: the incident id for an incident (so every output of one
    /// incident carries the same id), otherwise `KIND-UNIXNANOS-PID-SEQ`.
    pub id: String,
    /// When the agent emitted it.
    pub at: DateTime<Utc>,
    /// The event.
    pub event: AgentEvent,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

impl Stamped {
    /// Stamp `event` now.
    pub fn now(event: AgentEvent) -> Stamped {
        Stamped::at(event, Utc::now())
    }

    /// Stamp `event` with time `at`.
    pub fn at(event: AgentEvent, at: DateTime<Utc>) -> Stamped {
        let id = match &event {
            AgentEvent::Incident(i) => i.id.clone(),
            other => {
                let seq = SEQ.fetch_add(1, Ordering::Relaxed);
                let nanos = at.timestamp_nanos_opt().unwrap_or_default();
                format!("{}-{}-{}-{}", other.kind(), nanos, std::process::id(), seq)
            }
        };
        Stamped { id, at, event }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_model::Stopped;

    #[test]
    fn ids_are_unique_and_incidents_keep_theirs() {
        let a = Stamped::now(AgentEvent::Stopped(Stopped {}));
        let b = Stamped::now(AgentEvent::Stopped(Stopped {}));
        assert_ne!(a.id, b.id);
        assert!(a.id.starts_with("stopped-"));
        let i = Stamped::now(AgentEvent::Incident(crate::testutil::incident(7)));
        assert_eq!(i.id, "20261201T100000-7");
    }
}
