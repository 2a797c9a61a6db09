//! Admission: whether the holder of a client certificate may be served
//! now. One policy for the three places that admit a caller: the data
//! chain (docs/contract.md §2, steps 1, 2, 4 and 5), the token endpoint
//! (§3) and the partner dashboard (§12).
//!
//! It sits in the registry, beside the records it reads, rather than in
//! `chain/`: it is a pure function of a [`Snapshot`] that knows nothing of
//! HTTP and is asked by three planes, each of which turns a [`Refusal`]
//! into its own answer — the chain into a catalogue `Denial` reported by
//! the step that owns the condition, `/token` into an RFC 6749 §5.2 error,
//! the dashboard into its 403 page.
//!
//! The conditions, checked in the chain's order (docs/contract.md §2); the
//! first that fails is the refusal:
//!
//! | # | condition | refusal | call | dashboard |
//! |---|---|---|---|---|
//! | 1 | the certificate is registered | `NotRegistered` | yes | yes |
//! | 2 | it is not revoked | `CertificateRevoked` | yes | yes |
//! | 3 | now is within its registered dates | `CertificateOutOfDates` | no | yes |
//! | 4 | it names an application (for a call: it and the application are of the listener's environment) | `NoApplication` | yes | yes |
//! | 5 | the caller address is inside the application's allowlist | `AddressNotAllowed` | yes | no |
//! | 6 | the application is active | `ApplicationSuspended` | yes | no |
//! | 7 | its partner exists and is active | `PartnerSuspended` | yes | yes |
//! | 8 | today is within the application's `valid_from..=valid_until` | `OutsideValidity` | yes | no |
//!
//! Two more places ask only conditions 6 and 7 of an application they
//! already hold — token introspection (is the token's client still
//! active?) and expiry notices (is anyone still active to warn?) — through
//! [`active_owner`], so that "active" is decided here and nowhere else.
//!
//! The dashboard asks less. A partner signs in with a certificate of its
//! own to see its applications, including one that is suspended, expired
//! or called from elsewhere: that is where it learns why. The admin
//! listener has no environment, and its caller is a browser, not the
//! application's server. For a call, the certificate's dates (with its
//! chain and the revocation lists) are the TLS verdict computed at the
//! handshake (`tls/verify.rs`), which the chain and `/token` check before
//! asking; on the admin listener the verdict judges admin certificates,
//! so the dashboard asks for the registered dates instead.
//!
//! Addresses are compared in their canonical form: an IPv4 caller reaching
//! a dual-stack socket as `::ffff:a.b.c.d` is the IPv4 address `a.b.c.d`,
//! and an allowlist entry written as an IPv4-mapped IPv6 network
//! (`::ffff:10.0.0.0/104`) is the IPv4 network it maps (`10.0.0.0/8`). The
//! entries are canonicalised here, at check time, rather than rewritten
//! when an application is saved: registries written before this rule keep
//! working without a migration, and the admin reads back what was typed.

use super::{Application, CertStatus, CertificateRecord, Partner, Snapshot};
use crate::domain::{Environment, Status, Thumbprint};
use ipnetwork::{IpNetwork, Ipv4Network};
use std::net::IpAddr;
use time::{Date, OffsetDateTime};

/// What a certificate is presented for; decides which conditions apply
/// (the module's table).
#[derive(Debug, Clone, Copy)]
pub enum Purpose {
    /// A call on an environment listener: a data call (docs/contract.md
    /// §2) or `POST /token` (§3). Every condition but 3.
    Call(Call),
    /// Signing in to the partner dashboard on the admin listener (§12):
    /// conditions 1 to 4 and 7.
    Dashboard {
        /// The current time, for the certificate's registered dates.
        now: OffsetDateTime,
    },
}

/// A call on an environment listener, as admission sees it.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The listener's environment.
    pub environment: Environment,
    /// The caller address: the socket peer, or the source a trusted
    /// balancer's PROXY header announced (`server/proxy.rs`); never a
    /// header such as `X-Forwarded-For`.
    pub address: IpAddr,
    /// The current date (UTC), for the application's validity dates.
    pub today: Date,
}

/// A registered certificate and the application it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder<'s> {
    /// The certificate's registry entry.
    pub certificate: &'s CertificateRecord,
    /// The application it is registered to.
    pub application: &'s Application,
}

/// A holder that may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admitted<'s> {
    /// The certificate and its application.
    pub holder: Holder<'s>,
    /// The application's (active) partner.
    pub partner: &'s Partner,
}

/// The first condition that failed (the module's table). Once the
/// certificate named an application (conditions 5 to 8), the refusal
/// carries it: who is refused is known, and answers name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal<'s> {
    /// 1: no certificate with this thumbprint is registered.
    NotRegistered,
    /// 2: the registered certificate was revoked by an admin.
    CertificateRevoked,
    /// 3 (dashboard): now is outside the certificate's registered dates.
    CertificateOutOfDates,
    /// 4: the certificate names no application (for a call: none of the
    /// listener's environment).
    NoApplication,
    /// 5 (call): the caller address is outside the application's allowlist.
    AddressNotAllowed(Holder<'s>),
    /// 6 (call): the application is suspended.
    ApplicationSuspended(Holder<'s>),
    /// 7: the application's partner is suspended or unknown.
    PartnerSuspended(Holder<'s>),
    /// 8 (call): today is outside the application's validity dates.
    OutsideValidity(Holder<'s>),
}

impl<'s> Refusal<'s> {
    /// The holder refused, once the certificate named an application.
    pub fn holder(&self) -> Option<Holder<'s>> {
        match *self {
            Refusal::AddressNotAllowed(holder)
            | Refusal::ApplicationSuspended(holder)
            | Refusal::PartnerSuspended(holder)
            | Refusal::OutsideValidity(holder) => Some(holder),
            Refusal::NotRegistered
            | Refusal::CertificateRevoked
            | Refusal::CertificateOutOfDates
            | Refusal::NoApplication => None,
        }
    }
}

/// Whether the holder of the certificate `thumbprint` may be served for
/// `purpose`, as the registry `snapshot` stands: the holder and its
/// partner, or the first condition of the module's table that fails.
pub fn admit<'s>(
    snapshot: &'s Snapshot,
    thumbprint: &Thumbprint,
    purpose: Purpose,
) -> Result<Admitted<'s>, Refusal<'s>> {
    let holder = holder(snapshot, thumbprint, purpose)?;
    let partner = usable(snapshot, holder, purpose)?;
    Ok(Admitted { holder, partner })
}

/// Conditions 6 and 7 alone: the partner of `application` when the
/// application is active and its partner exists and is active. The
/// narrower question of the places that already know the application and
/// ask only whether its owner still stands behind it, whatever the
/// certificate, address or date: token introspection (docs/oauth.md,
/// "Introspection") and expiry notices (`crate::notify`, which warn
/// before the validity dates pass).
pub fn active_owner<'s>(snapshot: &'s Snapshot, application: &Application) -> Option<&'s Partner> {
    if application.status != Status::Active {
        return None;
    }
    active_partner(snapshot, application)
}

/// The IPv4 network an IPv4-mapped IPv6 network (`::ffff:0:0/96` or
/// narrower) stands for; any other network unchanged. A mapped network
/// wider than /96 also covers real IPv6 addresses, so it has no IPv4
/// equivalent and stays as written (it then matches no IPv4 caller).
pub fn canonical(net: IpNetwork) -> IpNetwork {
    let IpNetwork::V6(v6) = net else {
        return net;
    };
    match (v6.ip().to_ipv4_mapped(), v6.prefix().checked_sub(96)) {
        (Some(v4), Some(prefix)) => Ipv4Network::new(v4, prefix)
            .map(IpNetwork::V4)
            .unwrap_or(net),
        _ => net,
    }
}

/// Conditions 1 to 4: the certificate's registration.
fn holder<'s>(
    snapshot: &'s Snapshot,
    thumbprint: &Thumbprint,
    purpose: Purpose,
) -> Result<Holder<'s>, Refusal<'s>> {
    let certificate = snapshot
        .certificates
        .get(thumbprint)
        .ok_or(Refusal::NotRegistered)?;
    if certificate.status == CertStatus::Revoked {
        return Err(Refusal::CertificateRevoked);
    }
    if let Purpose::Dashboard { now } = purpose
        && !(certificate.not_before <= now && now <= certificate.not_after)
    {
        return Err(Refusal::CertificateOutOfDates);
    }
    let application = snapshot
        .applications
        .get(&certificate.client_id)
        .filter(|a| match purpose {
            Purpose::Call(call) => {
                a.environment == call.environment && certificate.environment == call.environment
            }
            Purpose::Dashboard { .. } => true,
        })
        .ok_or(Refusal::NoApplication)?;
    Ok(Holder {
        certificate,
        application,
    })
}

/// Conditions 5 to 8: whether the holder may be served now; its partner
/// if so.
fn usable<'s>(
    snapshot: &'s Snapshot,
    holder: Holder<'s>,
    purpose: Purpose,
) -> Result<&'s Partner, Refusal<'s>> {
    let app = holder.application;
    let call = match purpose {
        Purpose::Call(call) => Some(call),
        Purpose::Dashboard { .. } => None,
    };
    if call.is_some_and(|c| !allows(&app.ip_allowlist, c.address)) {
        return Err(Refusal::AddressNotAllowed(holder));
    }
    if call.is_some() && app.status != Status::Active {
        return Err(Refusal::ApplicationSuspended(holder));
    }
    let partner = active_partner(snapshot, app).ok_or(Refusal::PartnerSuspended(holder))?;
    if call.is_some_and(|c| c.today < app.valid_from || c.today > app.valid_until) {
        return Err(Refusal::OutsideValidity(holder));
    }
    Ok(partner)
}

/// Condition 7: the application's partner, if it exists and is active.
fn active_partner<'s>(snapshot: &'s Snapshot, application: &Application) -> Option<&'s Partner> {
    snapshot
        .partners
        .get(&application.partner_id)
        .filter(|p| p.status == Status::Active)
}

/// Whether `address` is inside one of the networks of `allowlist`, both
/// taken in their canonical form.
fn allows(allowlist: &[IpNetwork], address: IpAddr) -> bool {
    let ip = address.to_canonical();
    allowlist.iter().any(|net| canonical(*net).contains(ip))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ClientId, PartnerId};
    use serde_json::{Value, json};
    use time::macros::{date, datetime};

    const THUMBPRINT: &str = "cert-a";
    const TODAY: Date = date!(2026 - 06 - 15);

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    // Records are read from JSON, as the store does, so that a field added
    // with a serde default does not have to be repeated here.
    fn record<T: serde::de::DeserializeOwned>(value: Value) -> T {
        serde_json::from_value(value).unwrap()
    }

    /// A sandbox application, its active partner and its active
    /// certificate: admitted from 10.1.2.3 on `TODAY`.
    fn snapshot() -> Snapshot {
        let mut snap = Snapshot::default();
        let partner: Partner = record(json!({
            "id": "p-1", "siren": "732829320", "name": "Partner", "contacts": {},
            "status": "active", "created_at": "2026-01-01T00:00:00Z",
        }));
        let app: Application = record(json!({
            "client_id": "app-1", "partner_id": "p-1", "name": "App",
            "environment": "sandbox", "grants": [],
            "valid_from": "2026-01-01", "valid_until": "2026-12-31",
            "ip_allowlist": ["10.0.0.0/8", "::ffff:192.0.2.0/120"],
            "quota_per_minute": 50, "status": "active",
            "created_at": "2026-01-01T00:00:00Z",
        }));
        let cert: CertificateRecord = record(json!({
            "thumbprint": THUMBPRINT, "client_id": "app-1", "environment": "sandbox",
            "subject": "CN=a", "issuer": "CN=ca", "serial": "01",
            "not_before": "2026-01-01T00:00:00Z", "not_after": "2027-01-01T00:00:00Z",
            "status": "active", "origin": "issued",
            "registered_at": "2026-01-01T00:00:00Z", "pem": "",
        }));
        snap.partners.insert(partner.id.clone(), partner);
        snap.applications.insert(app.client_id.clone(), app);
        snap.certificates.insert(cert.thumbprint.clone(), cert);
        snap
    }

    fn call_from(address: &str) -> Purpose {
        Purpose::Call(Call {
            environment: Environment::Sandbox,
            address: address.parse().unwrap(),
            today: TODAY,
        })
    }

    fn dashboard() -> Purpose {
        Purpose::Dashboard {
            now: datetime!(2026-06-15 12:00 UTC),
        }
    }

    fn ask(snap: &Snapshot, purpose: Purpose) -> Result<Admitted<'_>, Refusal<'_>> {
        admit(snap, &Thumbprint::new(THUMBPRINT), purpose)
    }

    /// The refusal's condition, without the holder it carries.
    fn condition(result: Result<Admitted<'_>, Refusal<'_>>) -> Option<&'static str> {
        let refusal = result.err()?;
        Some(match refusal {
            Refusal::NotRegistered => "registered",
            Refusal::CertificateRevoked => "revoked",
            Refusal::CertificateOutOfDates => "certificate dates",
            Refusal::NoApplication => "application",
            Refusal::AddressNotAllowed(_) => "address",
            Refusal::ApplicationSuspended(_) => "application status",
            Refusal::PartnerSuspended(_) => "partner status",
            Refusal::OutsideValidity(_) => "validity",
        })
    }

    fn app(snap: &mut Snapshot) -> &mut Application {
        snap.applications.get_mut(&ClientId::new("app-1")).unwrap()
    }

    fn cert(snap: &mut Snapshot) -> &mut CertificateRecord {
        snap.certificates
            .get_mut(&Thumbprint::new(THUMBPRINT))
            .unwrap()
    }

    fn partner(snap: &mut Snapshot) -> &mut Partner {
        snap.partners.get_mut(&PartnerId::new("p-1")).unwrap()
    }

    #[test]
    fn a_usable_holder_is_admitted_with_its_partner() {
        let snap = snapshot();
        for purpose in [call_from("10.1.2.3"), dashboard()] {
            let admitted = ask(&snap, purpose).unwrap();
            assert_eq!(admitted.holder.application.client_id.as_str(), "app-1");
            assert_eq!(admitted.holder.certificate.thumbprint.as_str(), THUMBPRINT);
            assert_eq!(admitted.partner.id.as_str(), "p-1");
        }
    }

    /// A change to the registry that fails one condition.
    type Breakage = fn(&mut Snapshot);

    #[test]
    fn each_condition_refuses_on_its_own() {
        let cases: [(&str, Breakage); 7] = [
            ("registered", |s| s.certificates.clear()),
            ("revoked", |s| cert(s).status = CertStatus::Revoked),
            ("application", |s| s.applications.clear()),
            ("address", |s| {
                app(s).ip_allowlist = vec![net("192.0.2.0/24")]
            }),
            ("application status", |s| app(s).status = Status::Suspended),
            ("partner status", |s| partner(s).status = Status::Suspended),
            ("validity", |s| app(s).valid_until = date!(2026 - 06 - 14)),
        ];
        for (expected, break_it) in cases {
            let mut snap = snapshot();
            break_it(&mut snap);
            assert_eq!(condition(ask(&snap, call_from("10.1.2.3"))), Some(expected));
        }
    }

    #[test]
    fn a_refusal_after_the_registration_names_the_holder() {
        let mut snap = snapshot();
        app(&mut snap).status = Status::Suspended;
        let refusal = ask(&snap, call_from("10.1.2.3")).unwrap_err();
        let holder = refusal.holder().unwrap();
        assert_eq!(holder.application.client_id.as_str(), "app-1");
        assert_eq!(Refusal::NoApplication.holder(), None);
    }

    #[test]
    fn the_environment_of_the_application_and_of_the_certificate_must_be_the_listener_s() {
        let mut snap = snapshot();
        app(&mut snap).environment = Environment::Production;
        assert_eq!(
            condition(ask(&snap, call_from("10.1.2.3"))),
            Some("application")
        );
        let mut snap = snapshot();
        cert(&mut snap).environment = Environment::Production;
        assert_eq!(
            condition(ask(&snap, call_from("10.1.2.3"))),
            Some("application")
        );
    }

    #[test]
    fn a_missing_partner_counts_as_suspended() {
        let mut snap = snapshot();
        snap.partners.clear();
        assert_eq!(
            condition(ask(&snap, call_from("10.1.2.3"))),
            Some("partner status")
        );
        assert_eq!(condition(ask(&snap, dashboard())), Some("partner status"));
    }

    #[test]
    fn validity_dates_are_inclusive() {
        let mut snap = snapshot();
        app(&mut snap).valid_from = TODAY;
        app(&mut snap).valid_until = TODAY;
        assert!(ask(&snap, call_from("10.1.2.3")).is_ok());
        app(&mut snap).valid_from = TODAY.next_day().unwrap();
        assert_eq!(
            condition(ask(&snap, call_from("10.1.2.3"))),
            Some("validity")
        );
    }

    /// With every condition failing, fixing the one reported reveals the
    /// next, in the chain's order (docs/contract.md §2): certificate
    /// (registered, not revoked, of this environment), ip, identity
    /// (application, then partner), rights (validity dates).
    #[test]
    fn conditions_are_checked_in_chain_order() {
        let mut snap = snapshot();
        cert(&mut snap).status = CertStatus::Revoked;
        let revoked = std::mem::take(&mut snap.certificates);
        app(&mut snap).environment = Environment::Production;
        app(&mut snap).ip_allowlist = vec![net("10.0.0.0/8")];
        app(&mut snap).status = Status::Suspended;
        partner(&mut snap).status = Status::Suspended;
        app(&mut snap).valid_until = date!(2026 - 01 - 31);
        let repair = |snap: &mut Snapshot, condition: &str| match condition {
            "registered" => snap.certificates = revoked.clone(),
            "revoked" => cert(snap).status = CertStatus::Active,
            "application" => app(snap).environment = Environment::Sandbox,
            "address" => app(snap).ip_allowlist.push(net("192.0.2.0/24")),
            "application status" => app(snap).status = Status::Active,
            "partner status" => partner(snap).status = Status::Active,
            "validity" => app(snap).valid_until = date!(2026 - 12 - 31),
            other => panic!("no repair for {other}"),
        };
        let order = [
            "registered",
            "revoked",
            "application",
            "address",
            "application status",
            "partner status",
            "validity",
        ];
        let purpose = call_from("192.0.2.1");
        for expected in order {
            assert_eq!(condition(ask(&snap, purpose)), Some(expected));
            repair(&mut snap, expected);
        }
        assert!(ask(&snap, purpose).is_ok());
    }

    #[test]
    fn the_dashboard_asks_for_the_certificate_and_the_partner_only() {
        let mut snap = snapshot();
        app(&mut snap).environment = Environment::Production;
        app(&mut snap).ip_allowlist.clear();
        app(&mut snap).status = Status::Suspended;
        app(&mut snap).valid_until = date!(2026 - 01 - 31);
        assert!(ask(&snap, dashboard()).is_ok());
        partner(&mut snap).status = Status::Suspended;
        assert_eq!(condition(ask(&snap, dashboard())), Some("partner status"));
        snap.applications.clear();
        assert_eq!(condition(ask(&snap, dashboard())), Some("application"));
    }

    #[test]
    fn the_dashboard_checks_the_certificate_s_registered_dates_before_its_application() {
        let mut snap = snapshot();
        snap.applications.clear();
        cert(&mut snap).not_after = datetime!(2026-06-15 11:59:59 UTC);
        assert_eq!(
            condition(ask(&snap, dashboard())),
            Some("certificate dates")
        );
        cert(&mut snap).not_after = datetime!(2026-06-15 12:00 UTC);
        cert(&mut snap).not_before = datetime!(2026-06-15 12:00:01 UTC);
        assert_eq!(
            condition(ask(&snap, dashboard())),
            Some("certificate dates")
        );
        // A call leaves the certificate's dates to the TLS verdict.
        let mut snap = snapshot();
        cert(&mut snap).not_after = datetime!(2026-01-02 00:00 UTC);
        assert!(ask(&snap, call_from("10.1.2.3")).is_ok());
        cert(&mut snap).status = CertStatus::Revoked;
        assert_eq!(condition(ask(&snap, dashboard())), Some("revoked"));
    }

    #[test]
    fn callers_and_allowlist_entries_are_compared_in_canonical_form() {
        let snap = snapshot();
        for caller in [
            "10.1.2.3",
            "::ffff:10.1.2.3",
            "192.0.2.7",
            "::ffff:192.0.2.7",
        ] {
            assert!(ask(&snap, call_from(caller)).is_ok(), "{caller}");
        }
        for caller in ["11.0.0.1", "2001:db8::1", "192.0.3.1"] {
            assert_eq!(
                condition(ask(&snap, call_from(caller))),
                Some("address"),
                "{caller}"
            );
        }
    }

    #[test]
    fn an_active_owner_needs_the_application_and_its_partner_active_only() {
        let mut snap = snapshot();
        // Neither the dates, the address nor the certificate matter.
        app(&mut snap).valid_until = date!(2026 - 01 - 31);
        app(&mut snap).ip_allowlist.clear();
        snap.certificates.clear();
        let owner = |snap: &Snapshot| {
            let app = &snap.applications[&ClientId::new("app-1")];
            active_owner(snap, app).map(|p| p.id.as_str().to_owned())
        };
        assert_eq!(owner(&snap).as_deref(), Some("p-1"));
        partner(&mut snap).status = Status::Suspended;
        assert_eq!(owner(&snap), None);
        partner(&mut snap).status = Status::Active;
        app(&mut snap).status = Status::Suspended;
        assert_eq!(owner(&snap), None);
        app(&mut snap).status = Status::Active;
        snap.partners.clear();
        assert_eq!(owner(&snap), None, "a missing partner counts as suspended");
    }

    #[test]
    fn mapped_networks_are_their_ipv4_network() {
        assert_eq!(canonical(net("::ffff:127.0.0.1/128")), net("127.0.0.1/32"));
        assert_eq!(canonical(net("::ffff:10.0.0.0/104")), net("10.0.0.0/8"));
        assert_eq!(canonical(net("::ffff:0:0/96")), net("0.0.0.0/0"));
        assert_eq!(canonical(net("::ffff:0:0/95")), net("::ffff:0:0/95"));
        assert_eq!(canonical(net("2001:db8::/32")), net("2001:db8::/32"));
        assert_eq!(canonical(net("10.0.0.0/8")), net("10.0.0.0/8"));
    }
}
