//! The data source of an admitted read: the sandbox's deterministic
//! generator (with the claims transmitted by the caller's partner merged
//! into `creances`, never another partner's) or the production upstream. Its own answers (unknown
//! company, no data, upstream failure) are denials of the catalogue.

use crate::chain::{Denial, Reason};
use crate::data::sandbox::{self, SandboxAnswer};
use crate::data::transmitted::Transmissions;
use crate::data::upstream::{Upstream, UpstreamError};
use crate::domain::{Dataset, Environment, PartnerId, Siren};
use crate::registry::Snapshot;
use crate::respond::{self, Body};
use hyper::{Response, StatusCode};
use std::sync::Arc;

/// What the data sources need.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// The production data provider.
    pub upstream: &'a Upstream,
    /// Claims transmitted by partners.
    pub transmissions: &'a Arc<Transmissions>,
}

/// What is asked: which company, dataset and year, and by whom.
#[derive(Clone, Copy)]
pub struct Query<'a> {
    /// The company.
    pub siren: &'a Siren,
    /// The dataset.
    pub dataset: Dataset,
    /// The fiscal year.
    pub year: i32,
    /// The caller.
    pub reader: Reader<'a>,
}

/// Who reads: the caller's partner, and the registry that says which
/// applications are that partner's (the sandbox shows a partner only the
/// claims its own applications transmitted).
#[derive(Clone, Copy)]
pub struct Reader<'a> {
    /// The partner of the calling application.
    pub partner: &'a PartnerId,
    /// The registry snapshot the call was admitted on.
    pub snapshot: &'a Snapshot,
}

impl Reader<'_> {
    /// Whether the application `client_id` belongs to the reader's partner.
    fn owns(&self, client_id: &str) -> bool {
        self.snapshot
            .applications
            .get(client_id)
            .is_some_and(|a| &a.partner_id == self.partner)
    }
}

/// Answers `q` from the environment's source.
pub async fn read(
    sources: Sources<'_>,
    env: Environment,
    q: Query<'_>,
    correlation: &str,
) -> Result<Response<Body>, Denial> {
    match env {
        Environment::Sandbox => from_sandbox(sources.transmissions, env, q),
        Environment::Production => sources
            .upstream
            .fetch(q.siren, q.dataset, q.year, correlation)
            .await
            .map_err(upstream_denial),
    }
}

fn from_sandbox(
    transmissions: &Transmissions,
    env: Environment,
    Query {
        siren,
        dataset,
        year,
        reader,
    }: Query<'_>,
) -> Result<Response<Body>, Denial> {
    match sandbox::generate(siren, dataset, year) {
        SandboxAnswer::Data(bytes) => {
            let body = if dataset == Dataset::Creances {
                transmissions.merge_into((env, siren, year), |c| reader.owns(c), bytes)
            } else {
                bytes
            };
            Ok(respond::bytes(StatusCode::OK, "application/json", body))
        }
        other => {
            let (reason, what) = match other {
                SandboxAnswer::UnknownCompany => (Reason::UnknownCompany, "unknown company"),
                SandboxAnswer::NoDataForYear => (Reason::NoDataForYear, "no data for that year"),
                SandboxAnswer::UpstreamTimeout => (Reason::UpstreamTimeout, "simulated timeout"),
                _ => (Reason::NonDiffusible, "not diffusible"),
            };
            let message = other.message().unwrap_or(what);
            Err(Denial::new(
                reason,
                format!("{message} (SIREN {siren}, {dataset}, {year})"),
            ))
        }
    }
}

fn upstream_denial(e: UpstreamError) -> Denial {
    match e {
        UpstreamError::Timeout(_) => Denial::new(Reason::UpstreamTimeout, e.to_string()),
        other => {
            tracing::warn!(error = %other, "upstream failure");
            Denial::new(Reason::UpstreamFailure, "the data provider failed")
        }
    }
}
