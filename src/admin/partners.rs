//! Registry calls of the admin API: partners, applications and the admin
//! list. Reads answer from the current snapshot; writes await the registry
//! operation (durable when it returns).

use super::api::{Answer, Call, read_json};
use super::types::{
    ApplicationPatch, ApplicationQuery, ApplicationView, CreatedApplicationView, NewApplication,
    NewPartner, PartnerPatch, PartnerView,
};
use crate::registry::Application;
use crate::respond;
use hyper::StatusCode;
use time::OffsetDateTime;

/// `GET /admin/v1/partners`, oldest first.
pub(super) async fn list_partners(c: Call) -> Answer {
    let s = c.admin.registry.snapshot();
    let mut list: Vec<_> = s.partners.values().collect();
    list.sort_by_key(|p| p.created_at);
    Ok(respond::json(StatusCode::OK, &list))
}

/// `POST /admin/v1/partners` → 201 with the partner.
pub(super) async fn create_partner(c: Call) -> Answer {
    let input: NewPartner = read_json(c.req).await?;
    let now = OffsetDateTime::now_utc();
    let p = c.admin.registry.create_partner(input, now).await?;
    Ok(respond::json(StatusCode::CREATED, &p))
}

/// `GET /admin/v1/partners/{id}`: the partner and its applications.
pub(super) async fn show_partner(c: Call) -> Answer {
    let s = c.admin.registry.snapshot();
    let partner = s.partner("id", c.param("id"))?;
    let mut apps: Vec<&Application> = s
        .applications
        .values()
        .filter(|a| a.partner_id == partner.id)
        .collect();
    apps.sort_by_key(|a| a.created_at);
    let view = PartnerView {
        partner: partner.clone(),
        applications: apps.into_iter().cloned().collect(),
    };
    Ok(respond::json(StatusCode::OK, &view))
}

/// `PATCH /admin/v1/partners/{id}`
pub(super) async fn update_partner(c: Call) -> Answer {
    let id = c.param("id").to_owned();
    let patch: PartnerPatch = read_json(c.req).await?;
    let p = c.admin.registry.update_partner(&id, patch).await?;
    Ok(respond::json(StatusCode::OK, &p))
}

/// `GET /admin/v1/applications?partner_id=`, oldest first.
pub(super) async fn list_applications(c: Call) -> Answer {
    let s = c.admin.registry.snapshot();
    let partner = ApplicationQuery::parse(c.query()).partner_id;
    let mut list: Vec<&Application> = s
        .applications
        .values()
        .filter(|a| {
            partner
                .as_deref()
                .is_none_or(|p| a.partner_id.as_str() == p)
        })
        .collect();
    list.sort_by_key(|a| a.created_at);
    Ok(respond::json(StatusCode::OK, &list))
}

/// `POST /admin/v1/applications` → 201 with the client secret, shown once.
pub(super) async fn create_application(c: Call) -> Answer {
    let input: NewApplication = read_json(c.req).await?;
    let now = OffsetDateTime::now_utc();
    let created = c.admin.registry.create_application(input, now).await?;
    let view = CreatedApplicationView {
        application: created.application,
        client_secret: created.client_secret,
    };
    Ok(respond::json(StatusCode::CREATED, &view))
}

/// `GET /admin/v1/applications/{client_id}`: the application and its
/// certificates.
pub(super) async fn show_application(c: Call) -> Answer {
    let s = c.admin.registry.snapshot();
    let application = s.application("client_id", c.param("client_id"))?;
    let view = ApplicationView {
        certificates: s
            .certificates_of(&application.client_id)
            .into_iter()
            .cloned()
            .collect(),
        application: application.clone(),
    };
    Ok(respond::json(StatusCode::OK, &view))
}

/// `PATCH /admin/v1/applications/{client_id}`
pub(super) async fn update_application(c: Call) -> Answer {
    let id = c.param("client_id").to_owned();
    let patch: ApplicationPatch = read_json(c.req).await?;
    let a = c.admin.registry.update_application(&id, patch).await?;
    Ok(respond::json(StatusCode::OK, &a))
}

/// `GET /admin/v1/admins`, oldest first.
pub(super) async fn list_admins(c: Call) -> Answer {
    let s = c.admin.registry.snapshot();
    let mut list: Vec<_> = s.admins.values().collect();
    list.sort_by_key(|a| a.registered_at);
    Ok(respond::json(StatusCode::OK, &list))
}
