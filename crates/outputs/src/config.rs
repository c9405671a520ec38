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

/// `[[outputs]] type = "stdout"`: JSON lines on standard output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StdoutConfig {
    /// `native` (default) or `ecs`.
    #[serde(default)]
    pub format: Format,
}

/// One configured output, as a config file lists them:
///
/// ```toml
/// [[outputs]]
/// type = "syslog"            # or "stdout", "file", "webhook"
/// transport = "tcp"
/// address = "siem.example.org:601"
/// format = "ecs"
///
/// [[outputs]]
/// type = "webhook"
/// url = "http://alerts.example.org/ward"
/// ```
///
/// ```
/// # #[derive(serde::Deserialize)] struct C { outputs: Vec<ward_outputs::SinkConfig> }
/// let c: C = toml::from_str(r#"
///     [[outputs]]
///     type = "file"
///     path = "/var/log/ward/events.json"
///     keep = 3
/// "#).unwrap();
/// assert_eq!(c.outputs[0].kind(), "file");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum SinkConfig {
    /// JSON lines on stdout.
    Stdout(StdoutConfig),
    /// JSON lines to a rotated file.
    File(crate::file::FileConfig),
    /// RFC 5424 syslog.
    Syslog(crate::syslog::SyslogConfig),
    /// HTTP POST with a durable spool.
    Webhook(crate::webhook::WebhookConfig),
}

/// What building a sink needs besides its own config.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// Host name and version for ECS documents and syslog's HOSTNAME.
    pub ecs: EcsContext,
    /// The agent's state directory: webhook spools default to
    /// `<state_dir>/spool/webhook-<hash of the url>`.
    pub state_dir: std::path::PathBuf,
}

impl SinkContext {
    /// Detected host name and this build's version, with `state_dir`.
    pub fn new(state_dir: impl Into<std::path::PathBuf>) -> SinkContext {
        SinkContext {
            ecs: EcsContext::detect(),
            state_dir: state_dir.into(),
        }
    }
}

/// FNV-1a, for stable spool directory names.
fn fnv64(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

impl SinkConfig {
    /// `stdout`, `file`, `syslog` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            SinkConfig::Stdout(_) => "stdout",
            SinkConfig::File(_) => "file",
            SinkConfig::Syslog(_) => "syslog",
            SinkConfig::Webhook(_) => "webhook",
        }
    }

    /// Make the sink (opens files, resolves addresses, resumes a webhook spool). Errors
    /// are [`crate::SinkError::Config`] with what to change.
    pub fn build(&self, ctx: &SinkContext) -> Result<Box<dyn crate::Sink>, crate::SinkError> {
        Ok(match self {
            SinkConfig::Stdout(c) => match c.format {
                Format::Native => Box::new(crate::JsonLines::new(std::io::stdout())),
                Format::Ecs => Box::new(crate::EcsLines::new(std::io::stdout(), ctx.ecs.clone())),
            },
            SinkConfig::File(c) => Box::new(crate::RotatingFile::new(c, ctx.ecs.clone())?),
            SinkConfig::Syslog(c) => Box::new(crate::SyslogSink::new(c, ctx.ecs.clone())?),
            SinkConfig::Webhook(c) => {
                let mut c = c.clone();
                if c.spool_dir.is_none() {
                    c.spool_dir = Some(
                        ctx.state_dir
                            .join("spool")
                            .join(format!("webhook-{:016x}", fnv64(c.url.trim()))),
                    );
                }
                Box::new(crate::WebhookSink::new(&c, ctx.ecs.clone())?)
            }
        })
    }

    /// Build every sink, stopping at the first that cannot be made (the error names it).
    pub fn build_all(
        configs: &[SinkConfig],
        ctx: &SinkContext,
    ) -> Result<Vec<Box<dyn crate::Sink>>, crate::SinkError> {
        configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                c.build(ctx).map_err(|e| {
                    crate::SinkError::Config(format!("output #{} ({}): {e}", i + 1, c.kind()))
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ward_model::AgentEvent;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        outputs: Vec<SinkConfig>,
    }

    #[test]
    fn toml_outputs_parse_and_build() {
        let dir = tempfile::tempdir().unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let text = format!(
            r#"
            [[outputs]]
            type = "stdout"
            format = "ecs"

            [[outputs]]
            type = "file"
            path = "{file}"
            max_size_mib = 10
            keep = 2
            fsync = false

            [[outputs]]
            type = "syslog"
            transport = "udp"
            address = "{udp}"
            facility = "local3"
            format = "ecs"

            [[outputs]]
            type = "webhook"
            url = "http://127.0.0.1:9/hook"
            headers = {{ Authorization = "Bearer abc" }}
            "#,
            file = dir.path().join("ev.json").display(),
            udp = udp.local_addr().unwrap(),
        );
        let c: Cfg = toml::from_str(&text).unwrap();
        let kinds: Vec<&str> = c.outputs.iter().map(|o| o.kind()).collect();
        assert_eq!(kinds, ["stdout", "file", "syslog", "webhook"]);
        let ctx = SinkContext::new(dir.path());
        let mut sinks = SinkConfig::build_all(&c.outputs[1..], &ctx).unwrap();
        let names: Vec<&str> = sinks.iter().map(|s| s.name()).collect();
        assert_eq!(names, ["file", "syslog", "webhook"]);
        // The webhook spool defaults under the state dir.
        let spools: Vec<_> = std::fs::read_dir(dir.path().join("spool"))
            .unwrap()
            .collect();
        assert_eq!(spools.len(), 1);
        sinks[0]
            .send(&AgentEvent::Stopped(ward_model::Stopped {}))
            .unwrap();
        assert!(std::fs::read_to_string(dir.path().join("ev.json"))
            .unwrap()
            .contains("stopped"));
    }

    #[test]
    fn unknown_keys_types_and_values_are_errors() {
        for (bad, says) in [
            (
                "[[outputs]]\ntype = \"file\"\npath = \"/x\"\nrotate = 3\n",
                "unknown field",
            ),
            (
                "[[outputs]]\ntype = \"syslog\"\ntransport = \"sctp\"\naddress = \"x:1\"\n",
                "sctp",
            ),
            ("[[outputs]]\ntype = \"kafka\"\n", "kafka"),
            (
                "[[outputs]]\ntype = \"file\"\npath = \"/x\"\nkeep = \"many\"\n",
                "invalid type",
            ),
            ("[[outputs]]\ntype = \"stdout\"\nformat = \"cef\"\n", "cef"),
        ] {
            let e = toml::from_str::<Cfg>(bad)
                .err()
                .unwrap_or_else(|| panic!("accepted: {bad}"));
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn build_errors_name_the_output() {
        let ctx = SinkContext::new("/nonexistent");
        let c: Cfg = toml::from_str(
            "[[outputs]]\ntype = \"syslog\"\ntransport = \"tcp\"\naddress = \"nowhere\"\n",
        )
        .unwrap();
        let e = SinkConfig::build_all(&c.outputs, &ctx)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("output #1 (syslog)") && e.contains("host:port"),
            "{e}"
        );
        assert_eq!("ecs".parse::<Format>(), Ok(Format::Ecs));
        assert!("json".parse::<Format>().unwrap_err().contains("native"));
    }
}
