//! Bearer tokens: HMAC-SHA256 signed claims naming a lesson, a role and (for
//! classrooms) a school.
//!
//! Format: `crt1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(secret, "crt1." + claims))>`.
//! The `sid` claim identifies one issued token: the teacher's own token may publish
//! again to replace its session (a reconnect); another teacher token may not.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "crt1.";

/// Who a token lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenRole {
    Teacher,
    Classroom,
}

impl std::str::FromStr for TokenRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "teacher" => Ok(TokenRole::Teacher),
            "classroom" => Ok(TokenRole::Classroom),
            o => Err(format!("unknown role {o:?}: use teacher or classroom")),
        }
    }
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub lesson: String,
    pub role: TokenRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Token id.
    pub sid: String,
}

impl Claims {
    /// New claims with a fresh random token id.
    pub fn new(lesson: &str, role: TokenRole, school: Option<&str>, exp: u64) -> Claims {
        Claims {
            lesson: lesson.into(),
            role,
            school: school.map(Into::into),
            exp,
            sid: format!("{:032x}", rand::random::<u128>()),
        }
    }
}

/// Why a token was refused (all map to 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("the token is not a classroom-relay token (it should start with \"crt1.\")")]
    Malformed,
    #[error("the token's signature does not match this relay's secret")]
    BadSignature,
    #[error("the token expired; ask for a new one")]
    Expired,
}

fn mac(secret: &str, data: &str) -> Hmac<Sha256> {
    let mut m =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(data.as_bytes());
    m
}

/// Sign claims.
pub fn sign(secret: &str, claims: &Claims) -> String {
    let body = format!(
        "{PREFIX}{}",
        B64.encode(serde_json::to_vec(claims).expect("claims serialize"))
    );
    let sig = B64.encode(mac(secret, &body).finalize().into_bytes());
    format!("{body}.{sig}")
}

/// Check a token's signature and expiry at `now_unix`.
pub fn verify(secret: &str, token: &str, now_unix: u64) -> Result<Claims, TokenError> {
    let (body, sig) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let payload = body.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
    mac(secret, body)
        .verify_slice(&sig)
        .map_err(|_| TokenError::BadSignature)?;
    let json = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    if claims.exp <= now_unix {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_and_refusals() {
        let c = Claims::new("math", TokenRole::Classroom, Some("s1"), 1000);
        let t = sign("secret-secret-secret", &c);
        assert_eq!(verify("secret-secret-secret", &t, 999).unwrap(), c);
        assert_eq!(
            verify("secret-secret-secret", &t, 1000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify("other-secret-value", &t, 999),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify("secret-secret-secret", "abc", 0),
            Err(TokenError::Malformed)
        );
        // Tampered claims.
        let (_, sig) = t.rsplit_once('.').unwrap();
        let forged = format!(
            "crt1.{}.{sig}",
            B64.encode(
                serde_json::to_vec(&Claims {
                    role: TokenRole::Teacher,
                    ..c.clone()
                })
                .unwrap()
            )
        );
        assert_eq!(
            verify("secret-secret-secret", &forged, 0),
            Err(TokenError::BadSignature)
        );
        assert_ne!(
            Claims::new("a", TokenRole::Teacher, None, 1).sid,
            Claims::new("a", TokenRole::Teacher, None, 1).sid
        );
    }
}
