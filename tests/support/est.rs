//! A partner's shell as in docs/partners.md: `openssl` and `curl`
//! processes run by bash, the EST renewal a partner's cron runs.

use super::TestServer;
use super::pki::Identity;
use opale_apim::domain::{Environment, Thumbprint};
use std::path::Path;
use std::process::Command;

/// Runs `script` with bash (`pipefail`) in `dir` off the test's runtime
/// (which also drives the server); its stdout, or a panic with its stderr.
pub async fn sh(dir: &Path, script: &str) -> String {
    let (dir, script) = (dir.to_path_buf(), script.to_owned());
    tokio::task::spawn_blocking(move || run(&dir, &script))
        .await
        .unwrap()
}

pub fn run(dir: &Path, script: &str) -> String {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The listener's base URL (the server certificate names `localhost`).
pub fn base(s: &TestServer, env: Environment) -> String {
    format!("https://localhost:{}", s.env_addr(env).port())
}

/// A partner's working directory: the gateway's root CA (to trust the
/// server) and the current certificate and key as `old.pem` / `old.key`.
pub fn workdir(s: &TestServer, current: &Identity) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(s.pki.files.ca_pem(), dir.path().join("ca.pem")).unwrap();
    std::fs::write(dir.path().join("old.pem"), &current.cert_pem).unwrap();
    std::fs::write(dir.path().join("old.key"), &current.key_pem).unwrap();
    dir
}

/// The partner's cron, word for word (docs/partners.md): a new key, a CSR
/// under `subj`, posted with the current certificate; the new certificate
/// in `new.pem`, its key in `new.key`.
pub async fn renew(dir: &Path, url: &str, subj: &str) -> Identity {
    sh(
        dir,
        &format!(
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out new.key\n\
             SUBJ='{subj}'\n\
             openssl req -new -key new.key -subj \"$SUBJ\" -outform DER | base64 \\\n\
             | curl -sS --fail --cacert ca.pem --cert old.pem --key old.key --data-binary @- \\\n\
               -H 'Content-Type: application/pkcs10' {url}/.well-known/est/simplereenroll \\\n\
             | base64 -d | openssl pkcs7 -inform DER -print_certs > new.pem"
        ),
    )
    .await;
    identity(dir, "new")
}

/// The certificate and key `{name}.pem` / `{name}.key` in `dir`.
pub fn identity(dir: &Path, name: &str) -> Identity {
    let cert_pem = std::fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap();
    let key_pem = std::fs::read_to_string(dir.join(format!("{name}.key"))).unwrap();
    let der = opale_apim::pki::parse_certificate_chain(&cert_pem).unwrap();
    Identity {
        thumbprint: Thumbprint::of_der(&der[0]).to_string(),
        cert_pem,
        key_pem,
        serial: Vec::new(),
    }
}
