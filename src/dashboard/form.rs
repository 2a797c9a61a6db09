//! What a dashboard form post must carry to be acted on (docs/contract.md
//! §12): it comes from the dashboard's own origin (`Sec-Fetch-Site`, or
//! `Origin`), and it holds the token the page put in that form, which
//! names the signed-in certificate and the form's action and expires.
//!
//! A token is `<expiry>.<mac>`: `mac` = HMAC-SHA256 over the certificate's
//! thumbprint, the action path and the expiry (unix seconds), under a key
//! kept in the store (`form/key`, created once, so every node of a cluster
//! accepts the forms every other node rendered). Nothing is kept per
//! token: a token works until it expires, for that certificate and that
//! form only — stolen with a page, it is useless without the certificate's
//! key, and useless for another form.

use crate::store::{Fetched, Read, Step, Store, StoreError, Write};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use hyper::Request;
use maud::{Markup, html};
use sha2::Sha256;

/// The store key of the form key (its own area: written once).
const KEY: &[u8] = b"form/key";
/// The area [`KEY`] is in.
const AREA: &str = "form";
/// How long a rendered form may be sent.
pub const LIFETIME_SECS: i64 = 2 * 3600;
/// The form field that carries the token.
pub const FIELD: &str = "jeton";

/// What can go wrong with the form key.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    /// The store could not be read or written.
    #[error("form key: {0}")]
    Store(#[from] StoreError),
    /// The stored key is not 64 bytes.
    #[error("form key: stored value has {0} bytes, 64 expected")]
    Corrupt(usize),
    /// The random source failed.
    #[error("form key: no random bytes: {0}")]
    Random(String),
}

/// The key every form token is signed with.
pub struct FormKey([u8; 64]);

impl std::fmt::Debug for FormKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FormKey(…)")
    }
}

impl FormKey {
    /// Reads the key from `store`, or creates it under the area's writer
    /// lock (two nodes starting together end up with the same key).
    pub async fn open(store: &dyn Store) -> Result<FormKey, FormError> {
        if let Some(stored) = store.get(KEY).await? {
            return Self::from_stored(&stored);
        }
        let mut fresh = [0u8; 64];
        aws_lc_rs::rand::fill(&mut fresh).map_err(|e| FormError::Random(e.to_string()))?;
        let mut transaction = |_, fetched: &Fetched| match fetched.0.first() {
            None => Step::Read(vec![Read::Get(KEY.to_vec())]),
            Some(_) if fetched.value(0).is_some() => Step::Nothing,
            Some(_) => Step::Commit(vec![Write::Put(KEY.to_vec(), fresh.to_vec())]),
        };
        store.transact(AREA, &mut transaction).await?;
        match store.get(KEY).await? {
            Some(stored) => Self::from_stored(&stored),
            None => Err(FormError::Corrupt(0)),
        }
    }

    fn from_stored(bytes: &[u8]) -> Result<FormKey, FormError> {
        let key: [u8; 64] = bytes
            .try_into()
            .map_err(|_| FormError::Corrupt(bytes.len()))?;
        Ok(FormKey(key))
    }

    /// A key for tests and tools that have no store.
    pub fn random() -> Result<FormKey, FormError> {
        let mut key = [0u8; 64];
        aws_lc_rs::rand::fill(&mut key).map_err(|e| FormError::Random(e.to_string()))?;
        Ok(FormKey(key))
    }

    /// The token of the form posting to `action`, shown to the holder of
    /// the certificate `thumbprint` at `now` (unix seconds).
    pub fn token(&self, thumbprint: &str, action: &str, now: i64) -> String {
        let expiry = now + LIFETIME_SECS;
        let mac = self.mac(thumbprint, action, expiry).finalize().into_bytes();
        format!("{expiry}.{}", URL_SAFE_NO_PAD.encode(mac))
    }

    /// Whether `token` was made by [`FormKey::token`] for this certificate
    /// and action and has not expired at `now` (compared in constant time).
    pub fn accepts(&self, token: &str, thumbprint: &str, action: &str, now: i64) -> bool {
        let Some((expiry, mac)) = token.split_once('.') else {
            return false;
        };
        let (Ok(expiry), Ok(mac)) = (expiry.parse::<i64>(), URL_SAFE_NO_PAD.decode(mac)) else {
            return false;
        };
        if expiry < now || expiry > now + LIFETIME_SECS {
            return false;
        }
        self.mac(thumbprint, action, expiry)
            .verify_slice(&mac)
            .is_ok()
    }

    fn mac(&self, thumbprint: &str, action: &str, expiry: i64) -> Hmac<Sha256> {
        // A key of SHA-256's block size: the infallible constructor.
        let mut mac = <Hmac<Sha256> as KeyInit>::new((&self.0).into());
        for part in [thumbprint.as_bytes(), action.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(&expiry.to_be_bytes());
        mac
    }
}

/// Whether a browser sent this post from the dashboard's own pages:
/// `Sec-Fetch-Site: same-origin` where the browser sends it, otherwise no
/// `Origin` or this listener's own (as the admin API judges it,
/// `crate::admin::is_own_origin`). A client that is not a browser sends
/// neither, and still needs the form token.
pub fn same_origin<B>(req: &Request<B>) -> bool {
    let header = |name: &str| req.headers().get(name).map(|v| v.to_str().unwrap_or("?"));
    if let Some(site) = header("sec-fetch-site") {
        return site.trim().eq_ignore_ascii_case("same-origin");
    }
    header("origin").is_none_or(|origin| crate::admin::is_own_origin(origin, req))
}

/// The hidden field carrying the token of the form posting to `action`,
/// for the holder of the certificate `thumbprint`.
pub fn token_field(key: &FormKey, thumbprint: &str, action: &str) -> Markup {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    html! { input type="hidden" name=(FIELD) value=(key.token(thumbprint, action, now)); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_for_one_certificate_one_form_and_a_while() {
        let key = FormKey::random().unwrap();
        let t = key.token("thumb-a", "/dashboard/x", 1000);
        assert!(key.accepts(&t, "thumb-a", "/dashboard/x", 1000));
        assert!(key.accepts(&t, "thumb-a", "/dashboard/x", 1000 + LIFETIME_SECS));
        assert!(!key.accepts(&t, "thumb-a", "/dashboard/x", 1001 + LIFETIME_SECS));
        assert!(!key.accepts(&t, "thumb-b", "/dashboard/x", 1000));
        assert!(!key.accepts(&t, "thumb-a", "/dashboard/y", 1000));
        let other = FormKey::random().unwrap();
        assert!(!other.accepts(&t, "thumb-a", "/dashboard/x", 1000));
        // Another expiry written by hand does not carry the old MAC.
        let (_, mac) = t.split_once('.').unwrap();
        let forged = format!("{}.{mac}", 999 + LIFETIME_SECS);
        assert!(!key.accepts(&forged, "thumb-a", "/dashboard/x", 1000));
        for junk in ["", ".", "abc", "1.", "x.y", "99999999999999999999.AAAA"] {
            assert!(
                !key.accepts(junk, "thumb-a", "/dashboard/x", 1000),
                "{junk}"
            );
        }
    }

    #[tokio::test]
    async fn the_key_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::SledStore::open(dir.path()).unwrap();
        let a = FormKey::open(&store).await.unwrap();
        let b = FormKey::open(&store).await.unwrap();
        assert_eq!(a.0, b.0);
        let t = a.token("t", "/a", 5);
        assert!(b.accepts(&t, "t", "/a", 5));
    }

    #[test]
    fn same_origin_reads_fetch_metadata_then_origin() {
        let req = |headers: &[(&str, &str)]| {
            let mut r = Request::builder().uri("/dashboard/x");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.body(()).unwrap()
        };
        assert!(same_origin(&req(&[])));
        assert!(same_origin(&req(&[("sec-fetch-site", "same-origin")])));
        assert!(!same_origin(&req(&[("sec-fetch-site", "cross-site")])));
        assert!(!same_origin(&req(&[("sec-fetch-site", "same-site")])));
        assert!(!same_origin(&req(&[("sec-fetch-site", "none")])));
        let host = ("host", "localhost:9443");
        assert!(same_origin(&req(&[
            host,
            ("origin", "https://localhost:9443")
        ])));
        assert!(!same_origin(&req(&[
            host,
            ("origin", "https://evil.example")
        ])));
        assert!(!same_origin(&req(&[host, ("origin", "null")])));
    }
}
