//! Who is asking: API tokens (`Authorization: Bearer`), browser sessions (cookie + CSRF
//! token), argon2 password hashes.

use crate::db::Db;
use crate::store::Role;
use axum::http::HeaderMap;

/// Session cookie name (`__Host-` prefix: Secure, Path=/, no Domain).
pub(crate) const SESSION_COOKIE: &str = "__Host-ward_session";
/// Login-form CSRF cookie (double submit).
pub(crate) const LOGIN_COOKIE: &str = "__Host-ward_login";
/// Session lifetime.
pub(crate) const SESSION_HOURS: i64 = 12;

/// An authenticated caller.
#[derive(Clone, Debug)]
pub(crate) struct Caller {
    pub user: String,
    pub role: Role,
    /// The session's CSRF token (None for API tokens, which need none: no ambient
    /// credentials).
    pub csrf: Option<String>,
}

/// Constant-time equality.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn hash_password(pw: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2::Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing the password: {e}"))
}

pub(crate) fn verify_password(pw: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    match PasswordHash::new(hash) {
        Ok(h) => argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &h)
            .is_ok(),
        Err(_) => false,
    }
}

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for v in headers.get_all(axum::http::header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            let part = part.trim();
            if let Some(val) = part.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                return Some(val.to_string());
            }
        }
    }
    None
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let t = v.strip_prefix("Bearer ")?.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// Resolve a token (API) or a session cookie (UI).
pub(crate) async fn caller(db: &Db, headers: &HeaderMap) -> Option<Caller> {
    if let Some(t) = bearer(headers) {
        let (user, role) = db.token_user(&crate::sha256_hex(&t)).await.ok()??;
        return Some(Caller {
            user,
            role,
            csrf: None,
        });
    }
    let sid = cookie(headers, SESSION_COOKIE)?;
    let (user, role, csrf) = db.session(&crate::sha256_hex(&sid)).await.ok()??;
    Some(Caller {
        user,
        role,
        csrf: Some(csrf),
    })
}
