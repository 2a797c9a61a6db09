//! The sandbox data source: fictitious but realistic French tax data for any
//! SIREN, generated on the fly.
//!
//! It answers `GET /opale/v1/entreprises/{siren}/{dataset}?annee=YYYY` on the
//! sandbox environment once the control chain has let the request through,
//! in place of the upstream provider production calls. Every answer is a
//! pure function of `(SIREN, dataset, year)`: no clock, no I/O, no state, so
//! the same request gives byte-identical bytes on every run and machine (all
//! randomness comes from SHA-256, see `stream`).
//!
//! The generated company is coherent across datasets and years: one profile
//! per SIREN (name, creation date, size, regimes, bank accounts, mandates)
//! and one set of figures per year (`exercice`), from which returns,
//! payments, claims and refunds are all derived — the VAT a CA3 declares is
//! the VAT its payment pays, every refund is a claim of the same year.
//!
//! A few reserved SIRENs ([`RESERVED`]) produce the error answers, so that
//! partners can test their handling of them; `docs/sandbox.md` documents the
//! lot.

mod comptes_bancaires;
mod creances;
mod date;
mod declarations;
mod euros;
mod exercice;
mod habilitations;
mod iban;
mod obligations_fiscales;
mod paiements;
mod profile;
mod reference;
mod remboursements;
mod stream;
#[cfg(test)]
mod tests;
mod text;

use crate::domain::{Dataset, Siren};
use profile::Profile;
use serde::ser::{Serialize, SerializeStruct, Serializer};

/// What the sandbox answers for (SIREN, dataset, year).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxAnswer {
    /// 200 with this JSON body (UTF-8 bytes, compact, stable key order).
    Data(Vec<u8>),
    /// 404: no company with this SIREN (reserved SIREN 000000000).
    UnknownCompany,
    /// 404: the company exists but has no data for that year.
    NoDataForYear,
    /// 504: simulate an upstream timeout.
    UpstreamTimeout,
    /// 403-like "non-diffusible" company (statut de diffusion partielle): the
    /// caller decides the status; [`SandboxAnswer::message`] carries the message.
    NonDiffusible,
}

impl SandboxAnswer {
    /// The message for an error answer (French, for the `detail` or
    /// `message` of the error body); `None` for [`SandboxAnswer::Data`].
    pub fn message(&self) -> Option<&'static str> {
        match self {
            SandboxAnswer::Data(_) => None,
            SandboxAnswer::UnknownCompany => Some("Aucune entreprise ne correspond à ce SIREN."),
            SandboxAnswer::NoDataForYear => {
                Some("Aucune donnée n'est disponible pour cette entreprise et cette année.")
            }
            SandboxAnswer::UpstreamTimeout => {
                Some("Le fournisseur de données n'a pas répondu dans le délai imparti.")
            }
            SandboxAnswer::NonDiffusible => Some(
                "Entreprise non diffusible (statut de diffusion partielle) : \
                 ses données ne peuvent pas être communiquées.",
            ),
        }
    }
}

/// First year with data for an ordinary SIREN.
pub const FIRST_YEAR: i32 = 2015;

/// Last year with data for an ordinary SIREN. Fixed rather than read from
/// the clock, so that answers never change with the date.
pub const LAST_YEAR: i32 = 2050;

/// Reserved SIRENs and what they do, for docs and tests. They win over the
/// year rule: each gives its answer for every dataset and every year.
pub const RESERVED: &[(&str, &str)] = &[
    (
        "000000000",
        "unknown company (404): no company has this SIREN",
    ),
    (
        "111111118",
        "no data for any year (404): the company exists but has no data",
    ),
    (
        "222222226",
        "upstream timeout (504): the data provider does not answer in time",
    ),
    (
        "333333334",
        "non-diffusible company (statut de diffusion partielle): refused with 403",
    ),
];

/// The sandbox answer for `dataset` of `siren` in `year`.
///
/// Reserved SIRENs first ([`RESERVED`]); then any year outside
/// [`FIRST_YEAR`]..=[`LAST_YEAR`] has no data; otherwise the generated body.
pub fn generate(siren: &Siren, dataset: Dataset, year: i32) -> SandboxAnswer {
    if let Some(answer) = reserved(siren) {
        return answer;
    }
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
        return SandboxAnswer::NoDataForYear;
    }
    let profile = Profile::new(siren);
    let body = Body { siren, year };
    match dataset {
        Dataset::Declarations => body.render(
            declarations::KEY,
            &declarations::items(siren, &profile, year),
        ),
        Dataset::ComptesBancaires => body.render(
            comptes_bancaires::KEY,
            &comptes_bancaires::items(siren, &profile, year),
        ),
        Dataset::Creances => body.render(creances::KEY, &creances::items(siren, &profile, year)),
        Dataset::Paiements => body.render(paiements::KEY, &paiements::items(siren, &profile, year)),
        Dataset::Remboursements => body.render(
            remboursements::KEY,
            &remboursements::items(siren, &profile, year),
        ),
        Dataset::ObligationsFiscales => body.render(
            obligations_fiscales::KEY,
            &obligations_fiscales::items(&profile),
        ),
        Dataset::Habilitations => body.render(
            habilitations::KEY,
            &habilitations::items(siren, &profile, year),
        ),
    }
}

fn reserved(siren: &Siren) -> Option<SandboxAnswer> {
    match siren.as_str() {
        "000000000" => Some(SandboxAnswer::UnknownCompany),
        "111111118" => Some(SandboxAnswer::NoDataForYear),
        "222222226" => Some(SandboxAnswer::UpstreamTimeout),
        "333333334" => Some(SandboxAnswer::NonDiffusible),
        _ => None,
    }
}

/// The top level every dataset shares: `{"siren", "annee", <list>}`.
struct Body<'a> {
    siren: &'a Siren,
    year: i32,
}

impl Body<'_> {
    fn render<T: Serialize>(&self, key: &'static str, items: &[T]) -> SandboxAnswer {
        let mut bytes = Vec::with_capacity(64 + 320 * items.len());
        let list = List {
            body: self,
            key,
            items,
        };
        match serde_json::to_writer(&mut bytes, &list) {
            Ok(()) => SandboxAnswer::Data(bytes),
            // Unreachable: writing these types to a Vec cannot fail. Answer
            // as a failed upstream rather than panic on the request path.
            Err(_) => SandboxAnswer::UpstreamTimeout,
        }
    }
}

/// The body with its list, keys in a fixed order.
struct List<'a, T> {
    body: &'a Body<'a>,
    key: &'static str,
    items: &'a [T],
}

impl<T: Serialize> Serialize for List<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Body", 3)?;
        out.serialize_field("siren", self.body.siren)?;
        out.serialize_field("annee", &self.body.year)?;
        out.serialize_field(self.key, self.items)?;
        out.end()
    }
}
