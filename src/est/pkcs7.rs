//! The bodies EST exchanges (RFC 7030 §4.1.3, §4.2.3): a PKCS #7 / CMS
//! `SignedData` with certificates and no signers ("certs-only", RFC 5652
//! §5.1 as RFC 8951 profiles it), base64 without a MIME wrapper; and the
//! base64 of the PKCS #10 request a client posts. The SignedData is built
//! by RustCrypto's `cms` (the same shape OpenSSL writes: no digest
//! algorithms, an empty CRL set), not by hand.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cms::content_info::ContentInfo;
use der::{Decode, Encode};
use x509_cert::Certificate;

/// Why a body could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum Pkcs7Error {
    /// A certificate of ours that `der` cannot re-encode (never expected:
    /// it was parsed when loaded).
    #[error("cannot encode the certificate as PKCS #7: {0}")]
    Encode(#[source] der::Error),
    /// The request body is not base64.
    #[error("the body is not base64 (RFC 7030 §4.2.1): {0}")]
    Base64(#[source] base64::DecodeError),
}

/// The base64 of a certs-only SignedData holding `certificate` (DER), in
/// lines of 64 characters, each ending with LF (`base64 -d` refuses CR).
pub fn certs_only(certificate: &[u8]) -> Result<String, Pkcs7Error> {
    let cert = Certificate::from_der(certificate).map_err(Pkcs7Error::Encode)?;
    let der = ContentInfo::try_from(cert)
        .and_then(|info| info.to_der())
        .map_err(Pkcs7Error::Encode)?;
    let text = STANDARD.encode(der);
    let mut out = String::with_capacity(text.len() + text.len() / 32 + 2);
    for line in text.as_bytes().chunks(64) {
        // Chunks of an ASCII string are ASCII.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    Ok(out)
}

/// The bytes of a base64 body, line breaks and other ASCII white space
/// ignored (`base64` wraps at 76 columns by default).
pub fn decode_base64(body: &[u8]) -> Result<Vec<u8>, Pkcs7Error> {
    let compact: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    STANDARD.decode(compact).map_err(Pkcs7Error::Base64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cms::signed_data::SignedData;

    fn certificate() -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["est.test".into()]).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn certs_only_round_trips_the_certificate_without_signers() {
        let der = certificate();
        let text = certs_only(&der).unwrap();
        assert!(text.lines().all(|l| l.len() <= 64));
        let info = ContentInfo::from_der(&decode_base64(text.as_bytes()).unwrap()).unwrap();
        assert_eq!(info.content_type, const_oid_signed_data());
        let signed: SignedData = info.content.decode_as().unwrap();
        assert!(signed.signer_infos.0.is_empty());
        let certs = signed.certificates.unwrap();
        let cms::cert::CertificateChoices::Certificate(c) = certs.0.get(0).unwrap() else {
            panic!("not a certificate");
        };
        assert_eq!(c.to_der().unwrap(), der);
    }

    fn const_oid_signed_data() -> der::oid::ObjectIdentifier {
        der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2")
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(certs_only(b"not a certificate").is_err());
        assert!(decode_base64(b"@@@").is_err());
        assert_eq!(decode_base64(b"aGVs\r\nbG8=\n").unwrap(), b"hello");
    }
}
