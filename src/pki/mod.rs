//! The development PKI (`opale-apim pki init`) and certificate handling:
//! a root CA for the server and admin certificates, one issuing CA per
//! environment for partner certificates (docs/contract.md §6). Keys are ECDSA P-256,
//! written with mode 0600; an existing PKI is never overwritten unless asked.

mod files;
mod inspect;
mod issue;

pub use files::{PkiFiles, load_or_create_ed25519, write_private};
pub use inspect::{CertInfo, parse_certificate_chain, pem_encode};
pub use issue::{IssuingCa, init};

/// What went wrong with certificates or keys. Messages never include keys.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// `pki init` would overwrite an existing file.
    #[error("{0} already exists; pass --force to overwrite the PKI")]
    Exists(std::path::PathBuf),
    /// A PKI file is missing.
    #[error(
        "{0} is missing; run `opale-apim pki init` (or `serve`, which creates a dev PKI when none exists)"
    )]
    Missing(std::path::PathBuf),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file or field holds no usable certificate (the text names the
    /// file or says what is missing; a parse error is [`PkiError::Pem`] or
    /// [`PkiError::X509`]).
    #[error("not a PEM certificate: {0}")]
    NotACertificate(String),
    /// A PEM text that does not parse.
    #[error("not a PEM certificate: {0}")]
    Pem(#[source] rustls_pki_types::pem::Error),
    /// A certificate that is not parseable X.509.
    #[error("not a PEM certificate: cannot parse X.509: {0}")]
    X509(#[source] x509_parser::nom::Err<x509_parser::error::X509Error>),
    /// A key file could not be read.
    #[error("{path}: not a usable private key: {message}")]
    BadKey {
        /// The file.
        path: std::path::PathBuf,
        /// The parser's reason.
        message: String,
    },
    /// The CSR is unusable (a finding about its content; rcgen's own
    /// refusals are [`PkiError::Csr`]).
    #[error("{0}")]
    BadCsr(String),
    /// rcgen refused the CSR (the message says why in the CSR's terms).
    #[error("{}", issue::csr_reason(.0))]
    Csr(#[source] rcgen::Error),
    /// rcgen refused to build a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// No random serial number could be drawn.
    #[error(transparent)]
    Random(#[from] crate::domain::RandomError),
}
