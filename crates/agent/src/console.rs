//! The agent's side of the fleet console: its events go to the console through
//! `ward-console`'s spooling client (a sink like any other), and the actions the security
//! team takes in the console come back here and are answered truthfully.

use crate::settings::Config;
use crate::AgentError;
use std::path::{Path, PathBuf};
use ward_console::protocol::ActionKind;

/// Start the console client for `url` (enrolling with `token` the first time).
pub fn client(
    url: &str,
    token: Option<String>,
    state_dir: &Path,
    cfg: &Config,
) -> Result<ward_console::ConsoleClient, AgentError> {
    let mut opts = ward_console::ClientOptions::new(url, state_dir);
    opts.enroll_token = token;
    let handler = Handler {
        state_dir: state_dir.to_path_buf(),
        nft_table: cfg.smb.nft_table.clone(),
    };
    ward_console::ConsoleClient::start(opts, Some(Box::new(move |a| handler.run(a))))
        .map_err(|e| AgentError::usage(format!("console {url}: {e}")))
}

/// What the agent does with an action from the console (on the console client's thread).
struct Handler {
    state_dir: PathBuf,
    nft_table: String,
}

impl Handler {
    fn run(&self, a: &ActionKind) -> Result<String, String> {
        let store = || ward_store::Store::open(&self.state_dir).map_err(|e| e.to_string());
        match a {
            ActionKind::Restore { incident } => {
                // The agent restores every incident by itself right after containment (and
                // resumes unfinished restores at start): report where that stands.
                let inc = store()?
                    .get(incident)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no incident {incident} on this host"))?;
                match inc.restore {
                    ward_model::RestoreStatus::Done => Ok(format!("{incident}: restored")),
                    ward_model::RestoreStatus::Partial => Err(format!(
                        "{incident}: restored in part; some files were never preserved (see `ward restore --dry-run {incident}`)"
                    )),
                    ward_model::RestoreStatus::Pending => Ok(format!(
                        "{incident}: restore in progress (automatic)"
                    )),
                    ward_model::RestoreStatus::None => Err(format!(
                        "{incident}: no vault was active, nothing to restore from"
                    )),
                }
            }
            ActionKind::LiftBlock { ip } => {
                let addr: std::net::IpAddr =
                    ip.parse().map_err(|_| format!("{ip} is not an address"))?;
                crate::report::lift_block(&self.state_dir, &self.nft_table, addr)
                    .map_err(|e| e.to_string())?;
                Ok(format!("{addr} unblocked"))
            }
            ActionKind::KeepBlock { ip } => Ok(format!("{ip} stays blocked")),
            ActionKind::Isolate | ActionKind::Release => Err(
                "host isolation is not available in this version of ward: nothing was changed"
                    .into(),
            ),
        }
    }
}
