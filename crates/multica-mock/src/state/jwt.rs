//! Login JWTs as the server issues and checks them (golang-jwt v5): HMAC
//! signed (`HS256`, also `HS384`/`HS512`) with the server's secret, the user
//! in `sub`, `exp`/`nbf` checked on the fake clock.

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use ring::hmac;
use serde_json::{json, Map, Value};

use crate::clock::Millis;

/// The server's secret when none is configured (`JWT_SECRET` unset).
pub const DEFAULT_JWT_SECRET: &str = "multica-dev-secret-change-in-production";

/// How long a login token the fake issues is valid (the server's default
/// `AuthTokenTTL`, 30 days).
const LOGIN_TTL_SECS: u64 = 30 * 24 * 3600;

/// Go's `base64.RawURLEncoding`: no padding, trailing bits not checked.
const SEGMENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// Why a JWT is refused, with the middleware's message.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum JwtRefusal {
    /// Not a JWT, another algorithm, a bad signature, expired…: `invalid token`.
    InvalidToken,
    /// Valid, but without a non-blank string `sub`: `invalid claims`.
    InvalidClaims,
}

/// The user (`sub`) and `email` of a valid token.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct JwtUser {
    pub(super) sub: String,
    pub(super) email: String,
}

/// Checks a login JWT as the server's auth middlewares do.
pub(super) fn verify(token: &str, secret: &[u8], now: Millis) -> Result<JwtUser, JwtRefusal> {
    use JwtRefusal::{InvalidClaims, InvalidToken};
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts.as_slice() else { return Err(InvalidToken) };
    let decode_json = |segment: &str| -> Result<Map<String, Value>, JwtRefusal> {
        let bytes = SEGMENT.decode(segment).map_err(|_| InvalidToken)?;
        serde_json::from_slice(&bytes).map_err(|_| InvalidToken)
    };
    let header = decode_json(header)?;
    let claims = decode_json(claims)?;
    let algorithm = match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => hmac::HMAC_SHA256,
        Some("HS384") => hmac::HMAC_SHA384,
        Some("HS512") => hmac::HMAC_SHA512,
        _ => return Err(InvalidToken),
    };
    let signature = SEGMENT.decode(signature).map_err(|_| InvalidToken)?;
    let signed = &token[..token.len() - parts[2].len() - 1];
    hmac::verify(&hmac::Key::new(algorithm, secret), signed.as_bytes(), &signature).map_err(|_| InvalidToken)?;
    let seconds = now.0 as f64 / 1000.0;
    let time = |name: &str| -> Result<Option<f64>, JwtRefusal> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64().map(f64::trunc)),
            Some(_) => Err(InvalidToken),
        }
    };
    if time("exp")?.is_some_and(|exp| seconds >= exp) || time("nbf")?.is_some_and(|nbf| seconds < nbf) {
        return Err(InvalidToken);
    }
    let sub = claims.get("sub").and_then(Value::as_str).filter(|s| !s.trim().is_empty()).ok_or(InvalidClaims)?;
    let email = claims.get("email").and_then(Value::as_str).unwrap_or_default();
    Ok(JwtUser { sub: sub.to_owned(), email: email.to_owned() })
}

/// A login token as the server issues it at sign-in: HS256 with
/// `sub`, `email`, `name`, `iat` and an `exp` 30 days later.
pub(super) fn issue(user_id: &str, name: &str, secret: &[u8], now: Millis) -> String {
    let iat = now.0 / 1000;
    let header = SEGMENT.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({ "sub": user_id, "email": "", "name": name, "iat": iat, "exp": iat + LOGIN_TTL_SECS });
    let claims = SEGMENT.encode(claims.to_string());
    let signed = format!("{header}.{claims}");
    let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), signed.as_bytes());
    format!("{signed}.{}", SEGMENT.encode(signature.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = Millis(1_767_225_600_000);

    fn sign(header: &str, claims: &str, secret: &[u8]) -> String {
        let signed = format!("{}.{}", SEGMENT.encode(header), SEGMENT.encode(claims));
        let signature = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), signed.as_bytes());
        format!("{signed}.{}", SEGMENT.encode(signature.as_ref()))
    }

    #[test]
    fn accepts_what_it_issues_and_refuses_what_the_server_refuses() {
        let secret = DEFAULT_JWT_SECRET.as_bytes();
        let token = issue("u-1", "tester", secret, NOW);
        assert_eq!(verify(&token, secret, NOW), Ok(JwtUser { sub: "u-1".into(), email: String::new() }));
        assert_eq!(verify(&token, b"another secret", NOW), Err(JwtRefusal::InvalidToken));
        assert_eq!(verify(&token, secret, Millis(NOW.0 + LOGIN_TTL_SECS * 1000)), Err(JwtRefusal::InvalidToken));
        let hs256 = r#"{"alg":"HS256","typ":"JWT"}"#;
        assert_eq!(verify(&sign(hs256, r#"{"name":"x"}"#, secret), secret, NOW), Err(JwtRefusal::InvalidClaims));
        assert_eq!(verify(&sign(hs256, r#"{"sub":"  "}"#, secret), secret, NOW), Err(JwtRefusal::InvalidClaims));
        assert_eq!(verify(&sign(hs256, r#"{"sub":7}"#, secret), secret, NOW), Err(JwtRefusal::InvalidClaims));
        assert_eq!(
            verify(&sign(hs256, r#"{"sub":"u","exp":"x"}"#, secret), secret, NOW),
            Err(JwtRefusal::InvalidToken)
        );
        let none = r#"{"alg":"none"}"#;
        assert_eq!(verify(&sign(none, r#"{"sub":"u"}"#, secret), secret, NOW), Err(JwtRefusal::InvalidToken));
        assert_eq!(verify("mat_0123", secret, NOW), Err(JwtRefusal::InvalidToken));
        assert_eq!(verify("a.b.c", secret, NOW), Err(JwtRefusal::InvalidToken));
    }
}
