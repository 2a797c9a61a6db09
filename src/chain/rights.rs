//! Step 5 — rights: the dataset's scope is in the token and in the
//! application's current grant, the grant is valid today (the admission
//! policy's condition, `registry::admission`, asked at step 1), and the
//! requested year (`annee`) is one the grant covers.

use super::{Authenticated, Denial, Reason};
use crate::domain::Scope;
use crate::registry::admission::Refusal;
use time::Date;

/// Runs step 5 for `scope` and `year`, `today` being the current date.
pub fn check(who: &Authenticated<'_>, scope: Scope, year: i32, today: Date) -> Result<(), Denial> {
    let app = who.application;
    if !who.claims.scopes().any(|s| s == scope.as_str()) {
        return Err(Denial::new(
            Reason::ScopeNotGranted,
            format!("scope {scope} is not in the access token"),
        ));
    }
    let grant = app
        .grants
        .iter()
        .find(|g| g.scope == scope)
        .ok_or_else(|| {
            Denial::new(
                Reason::ScopeNotGranted,
                format!("scope {scope} is no longer granted"),
            )
        })?;
    if let Err(Refusal::OutsideValidity(_)) = who.admission {
        return Err(Denial::new(
            Reason::GrantNotValidToday,
            format!(
                "the grant is valid from {} to {}",
                app.valid_from, app.valid_until
            ),
        ));
    }
    if !grant.covers(year, today.year()) {
        let covered: Vec<String> = grant.years.iter().map(ToString::to_string).collect();
        return Err(Denial::new(
            Reason::YearNotGranted,
            format!(
                "year {year} is not covered by the {scope} grant ({})",
                covered.join(", ")
            ),
        ));
    }
    Ok(())
}
