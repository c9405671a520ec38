//! Config structs a TOML file deserialises into, and the one place that builds sinks
//! from them.

use crate::ecs::{to_ecs, EcsContext};
use crate::stamp::Stamped;
use serde::Deserialize;
use serde_json::Value;

/// Which JSON an output writes: the native events (BRIEF §5) or ECS documents (§5b).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `{"type":"incident",...}` exactly as on stdout with `--json`.
    #[default]
    Native,
    /// One Elastic Common Schema document per event.
    Ecs,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "native" => Ok(Format::Native),
            "ecs" => Ok(Format::Ecs),
            other => Err(format!(
                "unknown format `{other}`: use `native` (ward's JSON events) or `ecs` (Elastic \
                 Common Schema)"
            )),
        }
    }
}

impl Format {
    /// The JSON value of `ev` in this format.
    pub fn render(self, ev: &Stamped, ctx: &EcsContext) -> Value {
        match self {
            Format::Native => serde_json::to_value(&ev.event).unwrap_or(Value::Null),
            Format::Ecs => to_ecs(ev, ctx),
        }
    }
}
