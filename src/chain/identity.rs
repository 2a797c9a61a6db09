//! Step 4 — identity: the token is bound to the live certificate
//! (RFC 8705 §3), its client is the certificate's application, and the
//! application and its partner are active (the admission policy's
//! conditions, `registry::admission`, asked at step 1). Checked on every
//! request.

use super::certificate::Certified;
use super::{Denial, Reason};
use crate::oauth::AccessClaims;
use crate::registry::admission::Refusal;

/// Runs step 4.
pub fn check(claims: &AccessClaims, certified: &Certified<'_>) -> Result<(), Denial> {
    if claims.cnf.x5t_s256 != certified.certificate.thumbprint.as_str() {
        return Err(Denial::new(
            Reason::TokenBoundElsewhere,
            "the token is bound to another certificate than the one presented",
        ));
    }
    let app = certified.application;
    if claims.client_id != app.client_id.as_str() {
        return Err(Denial::new(
            Reason::ClientMismatch,
            format!(
                "the token was issued to {}, the certificate belongs to {}",
                claims.client_id, app.client_id
            ),
        ));
    }
    match certified.admission {
        Err(Refusal::ApplicationSuspended(_)) => Err(Denial::new(
            Reason::Suspended,
            format!("application {} is suspended", app.client_id),
        )),
        Err(Refusal::PartnerSuspended(_)) => Err(Denial::new(
            Reason::Suspended,
            format!("partner {} is suspended", app.partner_id),
        )),
        _ => Ok(()),
    }
}
