//! Session tokens of temporary credentials (what `AssumeRole` hands out with a key and secret).
//!
//! A token is opaque to clients, as AWS's are: the base64url of the key id and expiry sealed
//! (AES-256-GCM) with the same key that seals access-key secrets, bound to the key id. A gateway
//! or the control plane holding the sealer can check a token without a lookup of its own, and a
//! token cannot be moved to another key or have its expiry changed without failing to open. The
//! key record (status, expiry) is still read and checked by the caller, so a deleted or
//! deactivated temporary key stops working although its token would still open.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::secrets::{SealError, SecretSealer, SecretString};

/// Why a session token was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token this service issued for this key (bad encoding, wrong key, tampered).
    #[error("the security token is invalid for this access key")]
    Invalid,
    /// The token's credentials have expired.
    #[error("the security token expired at {expires_ms} (now {now_ms})")]
    Expired {
        /// When it expired, ms since the epoch.
        expires_ms: i64,
        /// The time of the check.
        now_ms: i64,
    },
    /// A token could not be made.
    #[error("sealing the security token failed: {0}")]
    Seal(#[from] SealError),
}

fn context(access_key_id: &str) -> String {
    format!("session-token:{access_key_id}")
}

/// Makes the session token of a temporary key that expires at `expires_ms`.
pub fn mint(
    sealer: &SecretSealer,
    access_key_id: &str,
    expires_ms: i64,
) -> Result<String, TokenError> {
    let plain = SecretString::new(format!("{access_key_id}|{expires_ms}"));
    let sealed = sealer.seal(&context(access_key_id), &plain)?;
    Ok(URL_SAFE_NO_PAD.encode(sealed))
}

/// Checks that `token` was minted for `access_key_id` and has not expired at `now_ms`; returns
/// its expiry.
pub fn verify(
    sealer: &SecretSealer,
    token: &str,
    access_key_id: &str,
    now_ms: i64,
) -> Result<i64, TokenError> {
    let sealed = URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| TokenError::Invalid)?;
    let plain = sealer
        .unseal(&context(access_key_id), &sealed)
        .map_err(|_| TokenError::Invalid)?;
    let (key, expiry) = plain.expose().split_once('|').ok_or(TokenError::Invalid)?;
    let expires_ms: i64 = expiry.parse().map_err(|_| TokenError::Invalid)?;
    if key != access_key_id {
        return Err(TokenError::Invalid);
    }
    if now_ms >= expires_ms {
        return Err(TokenError::Expired { expires_ms, now_ms });
    }
    Ok(expires_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ASIAEXAMPLE000000001";

    fn sealer() -> SecretSealer {
        SecretSealer::from_key([7; 32])
    }

    fn invalid(r: Result<i64, TokenError>) -> bool {
        matches!(r, Err(TokenError::Invalid))
    }

    #[test]
    fn round_trip_until_expiry() {
        let s = sealer();
        let token = mint(&s, KEY, 10_000).expect("mint");
        assert_eq!(verify(&s, &token, KEY, 9_999).expect("valid"), 10_000);
        assert!(matches!(
            verify(&s, &token, KEY, 10_000),
            Err(TokenError::Expired {
                expires_ms: 10_000,
                now_ms: 10_000
            })
        ));
    }

    #[test]
    fn bound_to_its_key_and_sealer() {
        let s = sealer();
        let token = mint(&s, KEY, 10_000).expect("mint");
        assert!(
            invalid(verify(&s, &token, "ASIAEXAMPLE000000002", 0)),
            "another key's token"
        );
        let other = SecretSealer::from_key([8; 32]);
        assert!(
            invalid(verify(&other, &token, KEY, 0)),
            "another deployment's token"
        );
        let mut tampered = token.into_bytes();
        let last = tampered.len() - 2;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).expect("ascii");
        assert!(invalid(verify(&s, &tampered, KEY, 0)), "tampered");
        assert!(invalid(verify(&s, "not base64 !", KEY, 0)), "garbage");
    }
}
