//! # ward-agent
//!
//! The pipeline from observation to incident, as a library: the binary only parses
//! arguments and calls [`protect::run`], [`restore::run`] and friends.
//!
//! ```text
//! EventSource (ward-sensor: fanotify)  ──observations──▶  Agent::handle
//!     │                                                     │ engine (pure)
//!     ◀── answer (Agent::decide: allow / deny / copy first) ┤
//!                                                           │ verdict
//!                        Responder (ward-response) ◀────────┤ contain
//!                        Vault worker (ward-vault) ◀────────┤ preserve / restore (plan)
//!                        Store worker (ward-store) ◀────────┤ incident, plan
//!                        Output → Sinks (ward-outputs) ◀────┘ AgentEvent
//! ```
//!
//! * [`agent`]: the [`Agent`] and its parts; [`permit`]: the one decision per permission
//!   request; [`preserve`]: copies before damage; [`contain`]: verdict → responder →
//!   incident; [`plan`]: what to restore (shared with `ward restore`).
//! * [`protect`]: start-up order, the poll loop and shutdown of `ward protect`.
//! * [`vaultd`], [`store`], [`output`]: the worker threads (vault I/O, SQLite, outputs)
//!   that keep slow work off the thread that answers permission events.
//! * [`watchdog`]: the separate process that keeps a stopped or wedged ward from stalling
//!   the machine. [`decoys`], [`settings`], [`trace`], [`restore`].
//!
//! What it must never do: block the thread that answers permission events on its own file
//! I/O (that deadlocks on its own events), signal a process it did not convict, or lose a
//! permission request unanswered.

#![forbid(unsafe_code)]

pub mod agent;
pub mod console;
pub mod contain;
pub mod decoys;
pub mod output;
pub mod permit;
pub mod plan;
pub mod preserve;
pub mod protect;
pub mod report;
pub mod restore;
pub mod settings;
pub mod sinks;
pub mod store;
pub mod trace;
pub mod vaultd;
pub mod watchdog;

pub use agent::{Agent, Clock, Parts};
pub use permit::Decision;

/// An error that ends a command, with the exit status it maps to.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Bad arguments, configuration or environment (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// Failure while running (exit status 1).
    #[error("{0}")]
    Runtime(String),
    /// The work ran to its end but could not do all of it: a restore that left files
    /// lost (exit status 3).
    #[error("{0}")]
    Incomplete(String),
}

impl AgentError {
    /// A usage/config/environment error.
    pub fn usage(msg: impl Into<String>) -> AgentError {
        AgentError::Usage(msg.into())
    }
    /// A runtime failure.
    pub fn runtime(msg: impl Into<String>) -> AgentError {
        AgentError::Runtime(msg.into())
    }
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            AgentError::Usage(_) => 2,
            AgentError::Runtime(_) => 1,
            AgentError::Incomplete(_) => 3,
        }
    }
}
