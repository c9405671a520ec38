//! The console's certificate authority: the CA, the server certificate and the client
//! certificates issued to enrolled agents (rcgen, ECDSA P-256), and SHA-256 fingerprints.

use crate::ConsoleError;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sha2::{Digest, Sha256};
use std::path::Path;

/// File names inside the console's state directory.
pub(crate) const CA_CERT: &str = "ca.pem";
pub(crate) const CA_KEY: &str = "ca-key.pem";
pub(crate) const SERVER_CERT: &str = "server.pem";
pub(crate) const SERVER_KEY: &str = "server-key.pem";

const CA_NAME: &str = "ward console CA";

fn pki_err(what: &str, e: impl std::fmt::Display) -> ConsoleError {
    ConsoleError::Pki(format!("{what}: {e}"))
}

fn ca_params() -> Result<CertificateParams, ConsoleError> {
    let mut p = CertificateParams::new(Vec::<String>::new()).map_err(|e| pki_err("CA", e))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(DnType::OrganizationName, "ward");
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let now = time_now();
    p.not_before = now - std::time::Duration::from_secs(3600);
    p.not_after = now + std::time::Duration::from_secs(3650 * 86400);
    Ok(p)
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// A loaded CA able to sign certificates.
pub(crate) struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// The CA certificate as written to `ca.pem`.
    pub pem: String,
}

impl Ca {
    /// Create a new CA (key and self-signed certificate).
    pub fn generate() -> Result<Ca, ConsoleError> {
        let key = KeyPair::generate().map_err(|e| pki_err("generating the CA key", e))?;
        let cert = ca_params()?
            .self_signed(&key)
            .map_err(|e| pki_err("self-signing the CA", e))?;
        let pem = cert.pem();
        Ok(Ca { cert, key, pem })
    }

    /// Load the CA from the state directory. The issuing certificate is rebuilt from the
    /// same name and key: what a signature by it needs (issuer name, key identifier) equals
    /// the certificate on disk.
    pub fn load(state_dir: &Path) -> Result<Ca, ConsoleError> {
        let key_pem = crate::read_state_file(state_dir, CA_KEY)?;
        let pem = crate::read_state_file(state_dir, CA_CERT)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| pki_err("reading ca-key.pem", e))?;
        let cert = ca_params()?
            .self_signed(&key)
            .map_err(|e| pki_err("loading the CA", e))?;
        Ok(Ca { cert, key, pem })
    }

    /// The private key, PEM.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// Issue the server certificate for these names (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[String]) -> Result<(String, String), ConsoleError> {
        let key = KeyPair::generate().map_err(|e| pki_err("generating the server key", e))?;
        let mut p = CertificateParams::new(names.to_vec())
            .map_err(|e| pki_err("server certificate names", e))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "ward console");
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time_now();
        p.not_before = now - std::time::Duration::from_secs(3600);
        p.not_after = now + std::time::Duration::from_secs(825 * 86400);
        let cert = p
            .signed_by(&key, &self.cert, &self.key)
            .map_err(|e| pki_err("signing the server certificate", e))?;
        Ok((cert.pem(), key.serialize_pem()))
    }

    /// Issue an agent's client certificate (CN = host id) for its own P-256 public key
    /// (uncompressed point). Returns (cert PEM, SHA-256 fingerprint of the cert's DER).
    pub fn issue_client(
        &self,
        host_id: &str,
        public_key: &[u8],
    ) -> Result<(String, String), ConsoleError> {
        let key = AgentKey(public_key.to_vec());
        let mut p = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| pki_err("agent certificate", e))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host_id);
        dn.push(DnType::OrganizationName, "ward agent");
        p.distinguished_name = dn;
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let now = time_now();
        p.not_before = now - std::time::Duration::from_secs(3600);
        p.not_after = now + std::time::Duration::from_secs(3650 * 86400);
        let cert = p
            .signed_by(&key, &self.cert, &self.key)
            .map_err(|e| pki_err("signing an agent certificate", e))?;
        let fp = fingerprint(cert.der());
        Ok((cert.pem(), fp))
    }
}

/// An agent's P-256 public key as rcgen needs it for signing a certificate.
struct AgentKey(Vec<u8>);

impl rcgen::PublicKeyData for AgentKey {
    fn der_bytes(&self) -> &[u8] {
        &self.0
    }
    fn algorithm(&self) -> &rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

/// Check an enrollment proof: a valid P-256 point and its signature over the message.
pub(crate) fn verify_proof(public_key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    public_key.len() == 65
        && public_key[0] == 4
        && ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_ASN1,
            public_key,
        )
        .verify(msg, sig)
        .is_ok()
}

/// A new agent key: (PKCS#8 PEM of the private key, raw public key, signer).
pub(crate) fn new_agent_key(
) -> Result<(String, Vec<u8>, ring::signature::EcdsaKeyPair), ConsoleError> {
    let k = KeyPair::generate().map_err(|e| pki_err("generating the agent key", e))?;
    let rng = ring::rand::SystemRandom::new();
    let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &k.serialize_der(),
        &rng,
    )
    .map_err(|e| pki_err("loading the agent key", e))?;
    use ring::signature::KeyPair as _;
    let public = signer.public_key().as_ref().to_vec();
    Ok((k.serialize_pem(), public, signer))
}

/// SHA-256 of DER bytes, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Parse every certificate of a PEM text.
pub(crate) fn certs_from_pem(
    pem: &str,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, ConsoleError> {
    let mut rd = pem.as_bytes();
    let certs: Result<Vec<_>, _> = rustls_pemfile::certs(&mut rd).collect();
    let certs = certs.map_err(|e| pki_err("reading a PEM certificate", e))?;
    if certs.is_empty() {
        return Err(ConsoleError::Pki(
            "no certificate found in PEM text".to_string(),
        ));
    }
    Ok(certs)
}

/// Parse a private key PEM.
pub(crate) fn key_from_pem(
    pem: &str,
) -> Result<rustls::pki_types::PrivateKeyDer<'static>, ConsoleError> {
    let mut rd = pem.as_bytes();
    rustls_pemfile::private_key(&mut rd)
        .map_err(|e| pki_err("reading a PEM private key", e))?
        .ok_or_else(|| ConsoleError::Pki("no private key found in PEM text".to_string()))
}

/// The rustls crypto provider everything here uses (ring).
pub(crate) fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}
