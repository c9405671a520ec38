//! # ward-engine
//!
//! The analysis engine of ward: it turns a stream of file and process [`Event`]s into
//! [`Verdict`]s. It is *pure*: no I/O, no syscalls, no clocks, no randomness. Given the same
//! events it returns the same verdicts, so every decision can be replayed from a recorded
//! trace and tested exhaustively without root.
//!
//! * [`stats`]: byte statistics (entropy, chi-square, "looks random", "looks armoured");
//! * [`sniff`]: format detection with light validation, encrypted containers;
//! * [`profile`]: the compact per-file content summary the engine keeps;
//! * [`engine`]: the detection rules and lineage scoring — its module documentation is the
//!   reference for what ward considers an attack.

pub mod engine;
pub mod event;
mod files;
pub mod profile;
pub mod sniff;
pub mod stats;

pub use engine::{Config, Engine, EngineStats, Indicator, Verdict};
pub use event::{Block, Event, FileKey, Op, ProcId, ProcInfo, Sample};
pub use profile::Profile;
pub use sniff::{Format, Kind};
