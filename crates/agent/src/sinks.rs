//! The outputs a config asks for, built into `ward-outputs` sinks: stdout (native JSON
//! lines or ECS), a rotating file, syslog, a webhook with its spool.

use crate::settings::Config;
use crate::AgentError;
use serde_json::{json, Value};
use std::path::Path;
use ward_outputs::{
    EcsContext, EcsLines, FileConfig, JsonLines, RotatingFile, Sink, SyslogConfig, SyslogSink,
    WebhookConfig, WebhookSink,
};

/// What goes to stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stdout {
    /// Nothing (logs still go to stderr).
    Nothing,
    /// The native JSON lines of BRIEF §5.
    Native,
    /// One ECS document per line.
    Ecs,
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Result<T, AgentError> {
    serde_json::from_value(v).map_err(|e| AgentError::usage(format!("[outputs.{what}]: {e}")))
}

fn format_of(cfg: &Config) -> &'static str {
    match cfg.outputs.format {
        ward_config::Format::Native => "native",
        ward_config::Format::Ecs => "ecs",
    }
}

/// Build every sink: stdout as asked, then the file, syslog and webhook outputs of `cfg`.
pub fn build(
    cfg: &Config,
    stdout: Stdout,
    state_dir: &Path,
) -> Result<Vec<Box<dyn Sink>>, AgentError> {
    let ctx = EcsContext::detect();
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    match stdout {
        Stdout::Nothing => {}
        Stdout::Native => sinks.push(Box::new(JsonLines::new(std::io::stdout()))),
        Stdout::Ecs => sinks.push(Box::new(EcsLines::new(std::io::stdout(), ctx.clone()))),
    }
    let fmt = format_of(cfg);
    let err = |what: &str, e: ward_outputs::SinkError| {
        AgentError::usage(format!("the {what} output cannot start: {e}"))
    };
    if let Some(f) = &cfg.outputs.file {
        let fc: FileConfig = parse(
            "file",
            json!({"path": f.path, "format": fmt, "max_size_mib": f.rotate_mib, "keep": f.keep}),
        )?;
        sinks.push(Box::new(
            RotatingFile::new(&fc, ctx.clone()).map_err(|e| err("file", e))?,
        ));
    }
    if let Some(s) = &cfg.outputs.syslog {
        let transport = match s.transport {
            ward_config::Transport::Unix => "unix",
            ward_config::Transport::Udp => "udp",
            ward_config::Transport::Tcp => "tcp",
        };
        let facility = serde_json::to_value(s.facility).unwrap_or(json!("daemon"));
        let sc: SyslogConfig = parse(
            "syslog",
            json!({"transport": transport, "address": s.address, "facility": facility, "format": fmt}),
        )?;
        sinks.push(Box::new(
            SyslogSink::new(&sc, ctx.clone()).map_err(|e| err("syslog", e))?,
        ));
    }
    if let Some(w) = &cfg.outputs.webhook {
        let wc: WebhookConfig = parse(
            "webhook",
            json!({
                "url": w.url,
                "format": fmt,
                "spool_dir": w.spool_dir_in(state_dir),
                "headers": w.headers,
                "timeout_secs": w.timeout_secs,
                "max_spool_mib": w.max_spool_mib,
            }),
        )?;
        sinks.push(Box::new(
            WebhookSink::new(&wc, ctx.clone()).map_err(|e| err("webhook", e))?,
        ));
    }
    Ok(sinks)
}
