//! `GET /admin/v1/notices[?partner_id=]`: the expiry notices recorded by
//! `crate::notify` (sent or not), soonest expiry first, answered from
//! memory.

use super::api::{Answer, Call};
use super::types::ApplicationQuery;
use crate::respond;
use hyper::StatusCode;

/// `GET /admin/v1/notices?partner_id=`: every notice, or one partner's
/// (same `partner_id` semantics as `GET /admin/v1/applications`).
pub(super) async fn list(c: Call) -> Answer {
    let partner = ApplicationQuery::parse(c.query()).partner_id;
    let list = c.admin.notices.list(partner.as_deref());
    Ok(respond::json(StatusCode::OK, &list))
}
