//! RFC 9068 access tokens: minting and verifying. Verification is a pure
//! function of the token, the environment's registered public keys (the
//! [`Keyring`]: the one whose kid the token names), the deny-list and the
//! clock (`now`): no disk, no lock held across an await.

use super::{DenyList, Keyring, OAuthError};
use crate::domain::{Environment, Thumbprint, random_uuid};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::Arc;

/// Clock skew tolerated on `iat` and `nbf` (seconds).
pub const MAX_SKEW_SECS: i64 = 60;
/// Longest token accepted for verification (bytes).
const MAX_TOKEN_LEN: usize = 4096;
/// The JOSE `typ` of access tokens (RFC 9068 §2.1).
pub const TOKEN_TYP: &str = "at+jwt";

/// RFC 8705 §3.1 confirmation claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Thumbprint of the certificate the token is bound to.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// The claims of an access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The environment's issuer URL.
    pub iss: String,
    /// The environment's API audience.
    pub aud: String,
    /// The client (no resource owner in client credentials).
    pub sub: String,
    /// The client.
    pub client_id: String,
    /// Space-separated granted scopes.
    pub scope: String,
    /// Unique token id (revocation key).
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Expires at (Unix seconds).
    pub exp: i64,
    /// Not before (Unix seconds), if present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Certificate binding.
    pub cnf: Confirmation,
}

impl AccessClaims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

/// Why a token is refused (the `detail` of a 900901 or an inactive
/// introspection).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a JWS compact serialization, or missing claims.
    #[error("the token is malformed")]
    Malformed,
    /// `alg` other than EdDSA (including `none`).
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    /// `typ` other than `at+jwt`.
    #[error("the token is not an access token (typ must be at+jwt)")]
    Type,
    /// No registered key of this environment that still verifies has the
    /// token's `kid` (or it has none), or the signature does not verify
    /// with it.
    #[error("the token's signature is not valid for this environment")]
    Signature,
    /// `iss` or `aud` of another environment.
    #[error("the token was issued for another environment")]
    OtherEnvironment,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// `iat` or `nbf` too far in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Revoked directly or through its certificate.
    #[error("the token has been revoked")]
    Revoked,
    /// `exp − iat` longer than the configured lifetime: never minted by
    /// us, whoever holds the key (docs/contract.md §8).
    #[error("the token's lifetime exceeds the configured maximum")]
    Lifetime,
}

/// Verified tokens remembered at most (signature checks are memoised).
const VERIFIED_CAPACITY: u64 = 10_000;

/// A token whose signature verified, and with which key.
struct Verified {
    claims: AccessClaims,
    kid: String,
}

/// One environment's token issuer and verifier.
pub struct TokenAuthority {
    /// The environment.
    pub environment: Environment,
    /// `iss`: the environment listener's public URL.
    pub issuer: String,
    /// `aud`: names the environment's data API.
    pub audience: String,
    /// Access token lifetime (seconds).
    pub lifetime_secs: i64,
    keys: Arc<Keyring>,
    /// Tokens whose signature, header and issuer already verified, by their
    /// exact text, with the kid that verified them. Ed25519 verification is
    /// most of a call's CPU otherwise; the result is a pure function of the
    /// token and the key, so remembering it changes no decision as long as
    /// the key still verifies, which every hit checks (a lookup by kid).
    /// Time and deny-list checks still run on every request. Only successes
    /// are remembered, so a flood of forged tokens cannot fill it.
    verified: moka::sync::Cache<Box<str>, Arc<Verified>>,
}

impl std::fmt::Debug for TokenAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthority")
            .field("environment", &self.environment)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

impl TokenAuthority {
    /// An authority for `environment` reachable at `issuer`.
    pub fn new(
        environment: Environment,
        issuer: String,
        lifetime_secs: i64,
        keys: Arc<Keyring>,
    ) -> Self {
        let ttl =
            std::time::Duration::from_secs(lifetime_secs.max(1) as u64 + 2 * MAX_SKEW_SECS as u64);
        TokenAuthority {
            environment,
            audience: format!("urn:opale:api:{environment}"),
            issuer,
            lifetime_secs,
            keys,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_CAPACITY)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The signing keys of the cluster (for the JWKS).
    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    /// Signs a token for `client_id` bound to `thumbprint`.
    pub fn mint(
        &self,
        client_id: &str,
        scope: &str,
        thumbprint: &Thumbprint,
        now: i64,
    ) -> Result<(String, AccessClaims), OAuthError> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: client_id.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            jti: random_uuid()?.to_string(),
            iat: now,
            exp: now + self.lifetime_secs,
            nbf: None,
            cnf: Confirmation {
                x5t_s256: thumbprint.to_string(),
            },
        };
        let signer = self.keys.signer(self.environment);
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYP.into());
        header.kid = Some(signer.kid().to_owned());
        let token =
            jsonwebtoken::encode(&header, &claims, signer.encoding()).map_err(OAuthError::Sign)?;
        Ok((token, claims))
    }

    /// Verifies signature, type, issuer, audience and time, without the
    /// deny-list (used to decide whether a token may be revoked). A token
    /// whose `exp − iat` exceeds [`lifetime_secs`](Self::lifetime_secs) is
    /// refused even when validly signed: lowering the configured lifetime
    /// therefore also refuses the longer tokens issued before.
    pub fn decode(&self, token: &str, now: i64) -> Result<AccessClaims, TokenRejection> {
        let claims = self.decode_signed(token, now)?;
        if claims.exp.saturating_sub(claims.iat) > self.lifetime_secs {
            return Err(TokenRejection::Lifetime);
        }
        if claims.exp <= now {
            return Err(TokenRejection::Expired);
        }
        if claims.iat > now + MAX_SKEW_SECS || claims.nbf.is_some_and(|n| n > now + MAX_SKEW_SECS) {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(claims)
    }

    /// [`decode`](Self::decode), then the deny-list: the token step.
    pub fn verify(
        &self,
        token: &str,
        denylist: &DenyList,
        now: i64,
    ) -> Result<AccessClaims, TokenRejection> {
        let claims = self.decode(token, now)?;
        if denylist.is_revoked(&claims) {
            return Err(TokenRejection::Revoked);
        }
        Ok(claims)
    }

    /// Signature, header and environment checks only (no time checks but
    /// the signing key's retirement at `now`), memoised for tokens that
    /// passed them.
    pub fn decode_signed(&self, token: &str, now: i64) -> Result<AccessClaims, TokenRejection> {
        if let Some(hit) = self.verified.get(token) {
            if self
                .keys
                .verifier(self.environment, &hit.kid, now)
                .is_none()
            {
                return Err(TokenRejection::Signature);
            }
            return Ok(hit.claims.clone());
        }
        let verified = self.verify_signed(token, now)?;
        let claims = verified.claims.clone();
        self.verified.insert(token.into(), Arc::new(verified));
        Ok(claims)
    }

    fn verify_signed(&self, token: &str, now: i64) -> Result<Verified, TokenRejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenRejection::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenRejection::Algorithm);
        }
        let typ = header.typ.unwrap_or_default().to_ascii_lowercase();
        if typ != TOKEN_TYP && typ != "application/at+jwt" {
            return Err(TokenRejection::Type);
        }
        let kid = header.kid.ok_or(TokenRejection::Signature)?;
        let key = self
            .keys
            .verifier(self.environment, &kid, now)
            .ok_or(TokenRejection::Signature)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims = HashSet::new();
        let data = jsonwebtoken::decode::<AccessClaims>(token, &key.decoding, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::InvalidSignature => TokenRejection::Signature,
                jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => TokenRejection::Algorithm,
                _ => TokenRejection::Malformed,
            })?;
        let claims = data.claims;
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(TokenRejection::OtherEnvironment);
        }
        Ok(Verified { claims, kid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{SledStore, Store};
    use time::OffsetDateTime;

    #[tokio::test]
    async fn a_remembered_token_is_refused_once_its_key_retired() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("sled")).unwrap());
        let keys = dir.path().join("keys");
        let now = OffsetDateTime::now_utc();
        let ring = Arc::new(
            Keyring::open(store, &keys, "node-a", 600, now)
                .await
                .unwrap(),
        );
        let env = Environment::Sandbox;
        let authority = TokenAuthority::new(env, "https://i".into(), 600, ring.clone());
        let thumbprint = Thumbprint::of_der(b"certificate");
        let t = now.unix_timestamp();
        let (token, _) = authority.mint("c", "declarations", &thumbprint, t).unwrap();
        assert!(
            authority.decode(&token, t).is_ok(),
            "verified and remembered"
        );

        let old = ring.signer(env).kid().to_owned();
        ring.rotate(&[env], now).await.unwrap();
        assert_ne!(ring.signer(env).kid(), old);
        let (newer, _) = authority.mint("c", "declarations", &thumbprint, t).unwrap();
        assert!(
            authority.decode(&token, t).is_ok(),
            "the old key still verifies"
        );
        assert!(authority.decode(&newer, t).is_ok());
        let retired = ring
            .list()
            .iter()
            .find_map(|r| r.retired_at.filter(|_| r.kid == old));
        let retired = retired.unwrap().unix_timestamp();
        assert_eq!(
            authority.decode_signed(&token, retired),
            Err(TokenRejection::Signature),
            "remembered, yet refused: its key retired"
        );
        assert!(authority.decode_signed(&newer, retired).is_ok());
    }

    #[tokio::test]
    async fn a_token_without_a_registered_kid_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("sled")).unwrap());
        let now = OffsetDateTime::now_utc();
        let keys = dir.path().join("keys");
        let ring = Arc::new(
            Keyring::open(store, &keys, "node-a", 600, now)
                .await
                .unwrap(),
        );
        let authority = TokenAuthority::new(Environment::Sandbox, "https://i".into(), 600, ring);
        let t = now.unix_timestamp();
        let thumbprint = Thumbprint::of_der(b"certificate");
        let (token, claims) = authority.mint("c", "declarations", &thumbprint, t).unwrap();
        let signer = authority.keys().signer(Environment::Sandbox);
        for kid in [None, Some("unknown".to_owned())] {
            let mut header = Header::new(Algorithm::EdDSA);
            header.typ = Some(TOKEN_TYP.into());
            header.kid = kid;
            let forged = jsonwebtoken::encode(&header, &claims, signer.encoding()).unwrap();
            assert_ne!(forged, token);
            assert_eq!(authority.decode(&forged, t), Err(TokenRejection::Signature));
        }
    }
}
