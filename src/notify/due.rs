//! Which notices are due: for every active certificate and application
//! of an active partner (`registry::admission::active_owner`), the
//! tightest of the 90-, 30- and 7-day thresholds its expiry has crossed,
//! and to whom the notice goes. Pure functions of a registry snapshot and a time, so they are tested
//! without a clock.
//!
//! Grants carry fiscal years (`annee` of the data), not an end date: the
//! right to use them ends with the application's `valid_until` ("last day
//! the grants are valid"). A grant therefore expires with its
//! application, and the application's notice names its scopes.

use super::record::{Delivery, Notice, ObjectKind};
use crate::registry::admission::active_owner;
use crate::registry::{Application, CertStatus, Partner, Snapshot};
use time::{Duration, OffsetDateTime};

/// Days before expiry at which a notice is due, widest first.
pub const THRESHOLDS: [u32; 3] = [90, 30, 7];

/// The tightest threshold crossed by an expiry at `expires_at`, seen at
/// `now`; `None` if it is further than 90 days away or already past.
pub fn threshold(expires_at: OffsetDateTime, now: OffsetDateTime) -> Option<u32> {
    let left = expires_at - now;
    if left <= Duration::ZERO {
        return None;
    }
    THRESHOLDS
        .iter()
        .rev()
        .copied()
        .find(|&t| left <= Duration::days(i64::from(t)))
}

/// The end of an application's last valid day (`valid_until` is
/// inclusive), UTC.
pub fn application_expiry(app: &Application) -> Option<OffsetDateTime> {
    Some(app.valid_until.next_day()?.midnight().assume_utc())
}

/// Where a partner's notices go: the `technique` contact's e-mail, else
/// the first contact (by role name) that has one.
pub fn recipient(partner: &Partner) -> Option<String> {
    let has_email = |c: &&crate::registry::Contact| !c.email.trim().is_empty();
    partner
        .contacts
        .get("technique")
        .filter(has_email)
        .or_else(|| partner.contacts.values().find(has_email))
        .map(|c| c.email.trim().to_owned())
}

/// Every notice due at `now`, as fresh records (delivery `pending`, no
/// attempt yet): one per object, for the tightest threshold crossed.
pub fn due(snap: &Snapshot, now: OffsetDateTime) -> Vec<Notice> {
    let mut out = Vec::new();
    for app in snap.applications.values() {
        let Some(partner) = active_owner(snap, app) else {
            continue;
        };
        if let Some(at) = application_expiry(app) {
            let label = format!("{} ({})", app.name, scopes(app));
            push(
                &mut out,
                (ObjectKind::Application, app.client_id.as_str()),
                label,
                app,
                partner,
                at,
                now,
            );
        }
        for cert in snap.certificates_of(&app.client_id) {
            if cert.status == CertStatus::Active {
                let what = (ObjectKind::Certificate, cert.thumbprint.as_str());
                push(
                    &mut out,
                    what,
                    cert.subject.clone(),
                    app,
                    partner,
                    cert.not_after,
                    now,
                );
            }
        }
    }
    out
}

/// The scopes an application's grants cover, `declarations, paiements`.
fn scopes(app: &Application) -> String {
    let names: Vec<String> = app.grants.iter().map(|g| g.scope.to_string()).collect();
    names.join(", ")
}

fn push(
    out: &mut Vec<Notice>,
    (kind, object_id): (ObjectKind, &str),
    label: String,
    app: &Application,
    partner: &Partner,
    expires_at: OffsetDateTime,
    now: OffsetDateTime,
) {
    let Some(threshold_days) = threshold(expires_at, now) else {
        return;
    };
    out.push(Notice {
        kind,
        object_id: object_id.to_owned(),
        label,
        partner_id: partner.id.clone(),
        client_id: app.client_id.clone(),
        environment: app.environment,
        threshold_days,
        expires_at,
        delivery: Delivery::Pending,
        recorded_at: now,
        sent_at: None,
        recipient: recipient(partner),
        attempts: 0,
        last_error: None,
        claimed_by: None,
        claim_expires_at: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Status;
    use crate::registry::Contact;
    use time::macros::datetime;

    #[test]
    fn the_tightest_threshold_crossed() {
        let now = datetime!(2026-11-30 12:00 UTC);
        let at = |days: i64| now + Duration::days(days);
        assert_eq!(threshold(at(200), now), None);
        assert_eq!(threshold(at(91), now), None);
        assert_eq!(threshold(at(90), now), Some(90));
        assert_eq!(threshold(at(31), now), Some(90));
        assert_eq!(threshold(at(20), now), Some(30));
        assert_eq!(threshold(at(7), now), Some(7));
        assert_eq!(threshold(now + Duration::minutes(1), now), Some(7));
        assert_eq!(threshold(now, now), None);
        assert_eq!(threshold(at(-3), now), None);
    }

    fn contact(email: &str) -> Contact {
        Contact {
            nom: "N".into(),
            email: email.into(),
            telephone: None,
        }
    }

    #[test]
    fn technical_contact_first_then_any_with_an_email() {
        let mut p = Partner {
            id: crate::domain::PartnerId::new("p"),
            siren: crate::domain::Siren::parse("732829320").unwrap(),
            name: "P".into(),
            contacts: Default::default(),
            status: Status::Active,
            created_at: datetime!(2026-01-01 0:00 UTC),
        };
        assert_eq!(recipient(&p), None);
        p.contacts.insert("juridique".into(), contact("j@x.fr"));
        p.contacts.insert("administratif".into(), contact(" "));
        assert_eq!(recipient(&p).as_deref(), Some("j@x.fr"));
        p.contacts.insert("technique".into(), contact("t@x.fr"));
        assert_eq!(recipient(&p).as_deref(), Some("t@x.fr"));
    }
}
