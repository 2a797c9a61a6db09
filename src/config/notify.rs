//! `[notify]` (docs/contract.md §9, "Notices"): where expiry notices are e-mailed
//! from and through, and how often the notice pass runs (`crate::notify`).
//! No `smtp_url` → notices are shown on the partner dashboard only.

use super::ConfigError;
use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer};
use std::str::FromStr;
use std::time::Duration;

/// The longest claim lease accepted: a day.
const MAX_CLAIM_LEASE_SECS: u64 = 86_400;

/// `[notify]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySettings {
    /// SMTP relay: `smtp://host[:port]` (plain, port 25 by default),
    /// `smtp://host[:port]?tls=required` (STARTTLS, 587) or
    /// `smtps://host[:port]` (implicit TLS, 465); `user:password@` may
    /// carry credentials. Absent (default): no e-mail.
    #[serde(default)]
    pub smtp_url: Option<SmtpUrl>,
    /// `From:` of the notices (default `OPALE <opale-apim@localhost>`).
    #[serde(default = "default_from", deserialize_with = "mailbox")]
    pub from: Mailbox,
    /// Seconds between two notice passes (default 3600); one pass also
    /// runs at start.
    #[serde(default = "default_check_interval")]
    pub check_interval_secs: u64,
    /// Seconds a node's claim on a notice holds (default 300, 1 to 86400):
    /// the longest one send may take, and how long a notice waits when
    /// the node that claimed it died before sending (another node then
    /// sends it; `crate::notify` claim.rs).
    #[serde(default = "default_claim_lease")]
    pub claim_lease_secs: u64,
}

impl Default for NotifySettings {
    fn default() -> Self {
        NotifySettings {
            smtp_url: None,
            from: default_from(),
            check_interval_secs: default_check_interval(),
            claim_lease_secs: default_claim_lease(),
        }
    }
}

impl NotifySettings {
    /// The time between two notice passes.
    pub fn check_interval(&self) -> Duration {
        Duration::from_secs(self.check_interval_secs)
    }

    /// How long a claim on a notice holds.
    pub fn claim_lease(&self) -> Duration {
        Duration::from_secs(self.claim_lease_secs)
    }

    /// Checks values that are well-formed but unusable.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            ("notify.check_interval_secs", self.check_interval_secs),
            ("notify.claim_lease_secs", self.claim_lease_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid {
                    key: key.into(),
                    message: "must be at least 1".into(),
                });
            }
        }
        if self.claim_lease_secs > MAX_CLAIM_LEASE_SECS {
            return Err(ConfigError::Invalid {
                key: "notify.claim_lease_secs".into(),
                message: format!("must be at most {MAX_CLAIM_LEASE_SECS} (a day)"),
            });
        }
        Ok(())
    }
}

/// An SMTP relay URL, checked at load. It may hold a password: its
/// `Debug` shows the scheme only, and nothing logs it.
#[derive(Clone)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// Checks `s`: scheme `smtp` or `smtps`, a host, and `tls` (if given)
    /// `required` or `opportunistic`. The error never repeats `s`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("not a URL: {e}"))?;
        let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v);
        let ok_tls = matches!(tls.as_deref(), None | Some("required" | "opportunistic"));
        match (url.scheme(), url.host_str(), ok_tls) {
            ("smtp" | "smtps", Some(_), true) => Ok(SmtpUrl(s.to_owned())),
            _ => Err(
                "must be smtp://host[:port][?tls=required|opportunistic] or smtps://host[:port]"
                    .into(),
            ),
        }
    }

    /// The URL as written (with its credentials): for the SMTP client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = self.0.split(':').next().unwrap_or("?");
        write!(f, "SmtpUrl({scheme}://…)")
    }
}

impl<'de> Deserialize<'de> for SmtpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        SmtpUrl::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// `OPALE <opale-apim@localhost>`: a constant, valid address, built
/// without the (fallible) parser.
fn default_from() -> Mailbox {
    let address = lettre::Address::new_dangerous("opale-apim", "localhost");
    Mailbox::new(Some("OPALE".into()), address)
}

fn default_check_interval() -> u64 {
    3600
}

fn default_claim_lease() -> u64 {
    300
}

fn mailbox<'de, D: Deserializer<'de>>(d: D) -> Result<Mailbox, D::Error> {
    let s = String::deserialize(d)?;
    Mailbox::from_str(&s)
        .map_err(|e| serde::de::Error::custom(format!("{s:?} is not a mailbox: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    struct Doc {
        notify: NotifySettings,
    }

    fn parse(text: &str) -> Result<NotifySettings, toml::de::Error> {
        toml::from_str::<Doc>(text).map(|d| d.notify)
    }

    #[test]
    fn defaults_and_accepted_urls() {
        let n = parse("[notify]\n").unwrap();
        assert!(n.smtp_url.is_none());
        assert_eq!(n.check_interval_secs, 3600);
        assert_eq!(n.claim_lease(), Duration::from_secs(300));
        assert_eq!(n.from.email.to_string(), "opale-apim@localhost");
        for url in [
            "smtp://127.0.0.1:2525",
            "smtps://mail.example.fr",
            "smtp://u:p@mail.example.fr:587?tls=required",
        ] {
            let n = parse(&format!("[notify]\nsmtp_url = {url:?}\n")).unwrap();
            assert_eq!(n.smtp_url.unwrap().expose(), url);
        }
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for url in [
            "http://x",
            "smtp://u:secret@/",
            "smtp://h?tls=maybe",
            "nonsense",
        ] {
            let err = SmtpUrl::parse(url).unwrap_err();
            assert!(!err.contains("secret"), "{err}");
            // The whole configuration's error names the key, not the value.
            let text = format!("[notify]\nsmtp_url = {url:?}\n");
            let err = crate::config::Config::parse(&text, std::path::Path::new("t.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("notify.smtp_url"), "{err}");
            assert!(!err.contains("secret"), "{err}");
        }
        assert!(parse("[notify]\nfrom = \"not a mailbox\"\n").is_err());
        assert!(parse("[notify]\ncheck_interval_secs = 0\n").is_ok());
        let zero = "[notify]\ncheck_interval_secs = 0\n";
        let err = crate::config::Config::parse(zero, std::path::Path::new("t.toml")).unwrap_err();
        assert!(
            err.to_string().contains("notify.check_interval_secs"),
            "{err}"
        );
        let zero = "[notify]\nclaim_lease_secs = 0\n";
        let err = crate::config::Config::parse(zero, std::path::Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("notify.claim_lease_secs"), "{err}");
        let long = "[notify]\nclaim_lease_secs = 86401\n";
        let err = crate::config::Config::parse(long, std::path::Path::new("t.toml")).unwrap_err();
        assert!(err.to_string().contains("notify.claim_lease_secs"), "{err}");
    }

    #[test]
    fn debug_hides_credentials() {
        let n = parse("[notify]\nsmtp_url = \"smtp://u:secret@h:25\"\n").unwrap();
        let shown = format!("{n:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
