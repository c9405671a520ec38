//! # ward-engine
//!
//! The analysis engine of ward: it turns a stream of file, process and network [`Event`]s
//! into [`Verdict`]s. It is *pure*: no I/O, no syscalls, no clocks, no randomness. Given the
//! same events it returns the same verdicts, so every decision can be replayed from a
//! recorded trace and tested exhaustively without root. It parses attacker-controlled bytes
//! and never panics on any input.
//!
//! ```
//! use ward_engine::{Config, Engine, Event, Op, ProcId};
//! let mut engine = Engine::new(Config::default());
//! let worm = ProcId { pid: 4242, start: 1 };
//! let mut verdict = None;
//! for i in 1..=10u64 {
//!     let op = Op::Connect { addr: format!("10.0.0.{i}"), port: 445 };
//!     verdict = verdict.or(engine.observe(&Event { time: i * 1_000_000, proc: worm, op }));
//! }
//! assert_eq!(verdict.unwrap().indicators[0].as_str(), "smb-fanout");
//! ```
//!
//! Where things are:
//! * [`event`]: what the sensor tells the engine;
//! * [`engine`]: the [`Engine`] (state, dispatch, public queries, event handlers) and the
//!   overview of what ward considers an attack;
//! * `rules/`: one module per indicator (content-encrypted, partial, funnel, wiped, decoy,
//!   note, fan-out); [`verdict`]: indicators, verdicts and conviction; `lineage`: the process
//!   table and the chains evidence flows up; `evidence`: what a process node holds;
//!   `files`: the compact file table; `naming`: extensions;
//! * [`stats`]: byte statistics (entropy, chi-square, "looks random", "looks armoured");
//! * [`decode`]: verifying decoders (deflate, zlib, gzip prefixes; armour);
//! * [`sniff`]: format detection with light validation, encrypted containers;
//! * [`profile`]: the compact per-file content summary the engine keeps.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod config;
pub mod decode;
pub mod engine;
pub mod event;
mod evidence;
mod files;
mod hash;
mod lineage;
mod naming;
pub mod profile;
mod rules;
pub mod sniff;
pub mod stats;
pub mod verdict;

pub use config::Config;
pub use engine::{Engine, EngineStats, PROFILE_BYTES};
pub use event::{Block, Event, FileKey, Op, ProcId, ProcInfo, Sample, WrittenBlock};
pub use profile::Profile;
pub use sniff::{Format, Kind};
pub use verdict::{Indicator, Verdict};
