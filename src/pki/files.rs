//! Where the PKI lives in `certs_dir`, and writing key files safely.

use super::PkiError;
use crate::domain::Environment;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file names of docs/contract.md §6 inside `certs_dir`.
#[derive(Debug, Clone)]
pub struct PkiFiles {
    dir: PathBuf,
}

impl PkiFiles {
    /// The PKI in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PkiFiles { dir: dir.into() }
    }
    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Root CA certificate that clients trust for the server.
    pub fn ca_pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }
    /// Root CA key (signs server and admin certificates).
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// Server certificate (SAN localhost, 127.0.0.1, ::1).
    pub fn server_pem(&self) -> PathBuf {
        self.dir.join("server.pem")
    }
    /// Server key.
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
    /// Issuing CA certificate of an environment.
    pub fn env_ca_pem(&self, env: Environment) -> PathBuf {
        self.dir.join(format!("{env}-ca.pem"))
    }
    /// Issuing CA key of an environment.
    pub fn env_ca_key(&self, env: Environment) -> PathBuf {
        self.dir.join(format!("{env}-ca.key"))
    }
    /// The admin client certificate.
    pub fn admin_pem(&self) -> PathBuf {
        self.dir.join("admin.pem")
    }
    /// The admin client key.
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }

    /// Every file `pki init` writes.
    pub fn all(&self) -> Vec<PathBuf> {
        let mut files = vec![
            self.ca_pem(),
            self.ca_key(),
            self.server_pem(),
            self.server_key(),
        ];
        for env in Environment::ALL {
            files.push(self.env_ca_pem(env));
            files.push(self.env_ca_key(env));
        }
        files.push(self.admin_pem());
        files.push(self.admin_key());
        files
    }

    /// Reads a file of the PKI.
    pub fn read(&self, path: &Path) -> Result<String, PkiError> {
        std::fs::read_to_string(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                PkiError::Missing(path.to_path_buf())
            } else {
                PkiError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })
    }
}

/// Writes `data` to `path` with mode 0600, replacing it atomically (written
/// to a temporary file, synced, then renamed).
pub fn write_private(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    write_with_mode(path, data, 0o600)
}

/// Writes a public file (certificate) with mode 0644, atomically.
pub fn write_public(path: &Path, data: &[u8]) -> Result<(), PkiError> {
    write_with_mode(path, data, 0o644)
}

fn write_with_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let io = |source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// Loads the Ed25519 key at `path`, creating it when absent (PKCS #8 PEM,
/// mode 0600, its directory mode 0700). Used for token and audit signing.
pub fn load_or_create_ed25519(path: &Path) -> Result<rcgen::KeyPair, PkiError> {
    let bad = |message: String| PkiError::BadKey {
        path: path.to_path_buf(),
        message,
    };
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|source| PkiError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
        write_private(path, key.serialize_pem().as_bytes())?;
    }
    let pem = std::fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let key = rcgen::KeyPair::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
    if key.algorithm() != &rcgen::PKCS_ED25519 {
        return Err(bad("not an Ed25519 key".into()));
    }
    Ok(key)
}
