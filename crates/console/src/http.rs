//! The few HTTP calls the agent side makes, over ureq (sync) with rustls and ring — the
//! same client crate and TLS stack as the rest of the workspace.

use crate::ConsoleError;
use std::time::Duration;
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};

/// Whom the client trusts.
pub(crate) enum Trust<'a> {
    /// Any server certificate: only to fetch the CA, which is then checked against the
    /// fingerprint in the enrollment token before anything secret is sent.
    FetchCaOnly,
    /// Servers with a certificate from this CA (PEM).
    Ca(&'a str),
}

fn pki(what: &str, e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Pki(format!("{what}: {e}"))
}

fn certs(pem: &str, what: &str) -> Result<Vec<Certificate<'static>>, ConsoleError> {
    let mut v = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
        if let PemItem::Certificate(c) = item.map_err(|e| pki(what, e))? {
            v.push(c);
        }
    }
    if v.is_empty() {
        return Err(ConsoleError::Pki(format!("{what}: no certificate in it")));
    }
    Ok(v)
}

/// An HTTPS client; with `identity` (certificate PEM, key PEM) it authenticates with it.
pub(crate) fn agent(
    trust: Trust<'_>,
    identity: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<ureq::Agent, ConsoleError> {
    let mut tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(crate::pki::provider());
    tls = match trust {
        Trust::FetchCaOnly => tls.disable_verification(true),
        Trust::Ca(pem) => tls.root_certs(RootCerts::new_with_certs(&certs(pem, "the console CA")?)),
    };
    if let Some((cert, key)) = identity {
        let chain = certs(cert, "the agent's client certificate")?;
        let key = PrivateKey::from_pem(key.as_bytes()).map_err(|e| pki("the agent's key", e))?;
        tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
    }
    Ok(ureq::Agent::config_builder()
        .tls_config(tls.build())
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .new_agent())
}

fn conn(what: &str, e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Connection(format!("{what}: {e}"))
}

/// The body of a 2xx answer, or an error with the console's own message.
fn body(
    what: &str,
    r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), ConsoleError> {
    let mut r = r.map_err(|e| conn(what, e))?;
    let code = r.status().as_u16();
    let text = r
        .body_mut()
        .with_config()
        .limit(16 << 20)
        .read_to_string()
        .map_err(|e| conn(what, e))?;
    Ok((code, text))
}

fn ok_or_err(what: &str, (code, text): (u16, String)) -> Result<String, ConsoleError> {
    if (200..300).contains(&code) {
        return Ok(text);
    }
    let msg = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(text);
    Err(ConsoleError::Connection(format!(
        "{what}: HTTP {code}: {msg}"
    )))
}

/// GET, text.
pub(crate) fn get_text(a: &ureq::Agent, url: &str, what: &str) -> Result<String, ConsoleError> {
    ok_or_err(what, body(what, a.get(url).call())?)
}

/// POST JSON, the status and the body whatever the status.
pub(crate) fn post_raw(
    a: &ureq::Agent,
    url: &str,
    json: &impl serde::Serialize,
    what: &str,
) -> Result<(u16, String), ConsoleError> {
    body(what, a.post(url).send_json(json))
}

/// POST JSON, a JSON answer (2xx) or an error.
pub(crate) fn post_json<T: serde::de::DeserializeOwned>(
    a: &ureq::Agent,
    url: &str,
    json: &impl serde::Serialize,
    what: &str,
) -> Result<T, ConsoleError> {
    let text = ok_or_err(what, post_raw(a, url, json, what)?)?;
    serde_json::from_str(&text).map_err(|e| conn(&format!("{what}: unexpected answer"), e))
}
