//! The client side, for the admin CLI and tests: trust a given CA and
//! present a client certificate.

use super::{TlsError, load_certs, load_key, provider};
use rustls::{ClientConfig, RootCertStore};
use std::path::Path;
use std::sync::Arc;

/// A client configuration trusting the CA in `ca_pem` and presenting the
/// certificate and key in `cert_pem`/`key_pem`, offering HTTP/1.1.
pub fn client_config(
    ca_pem: &Path,
    cert_pem: &Path,
    key_pem: &Path,
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore::empty();
    for ca in load_certs(ca_pem)? {
        roots.add(ca)?;
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(load_certs(cert_pem)?, load_key(key_pem)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
