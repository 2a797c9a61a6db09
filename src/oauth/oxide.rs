//! The adapter between our token endpoint and oxide-auth 0.6.1, which has
//! no hyper 1 frontend: a request type that hands the flow the form body
//! (client credentials included, already decoded: no `Authorization`
//! header, so oxide-auth's own HTTP Basic parsing never runs), a response
//! type that keeps
//! the status and the typed RFC 6749 §5.2 error oxide-auth chose, and the
//! endpoint that lends the flow our registrar and issuer.

use super::gate::{Gate, Minter};
use hyper::StatusCode;
use oxide_auth::code_grant::error::AccessTokenErrorType;
use oxide_auth::endpoint::{
    ClientCredentialsFlow, Endpoint, NormalizedParameter, OAuthError, OwnerConsent, OwnerSolicitor,
    QueryParameter, Scopes, Solicitation, Template, WebRequest, WebResponse,
};
use oxide_auth::primitives::issuer::Issuer;
use oxide_auth::primitives::registrar::Registrar;
use std::borrow::Cow;

/// A token request as oxide-auth reads it.
pub(super) struct FlowRequest {
    /// The form parameters, with the client's credentials (`flow.rs`
    /// decodes HTTP Basic into `client_id` and `client_secret`).
    pub body: NormalizedParameter,
}

/// What the flow answered: the status, and the error when it refused.
#[derive(Debug)]
pub(super) struct FlowResponse {
    /// 200, 400 or 401.
    pub status: StatusCode,
    /// The RFC 6749 §5.2 error oxide-auth chose.
    pub error: Option<AccessTokenErrorType>,
}

/// Why the flow produced no response.
#[derive(Debug)]
pub(super) enum FlowFailure {
    /// oxide-auth's own verdict: `DenySilently` when our registrar refused
    /// to bind the client or to negotiate its scope, `PrimitiveError` when
    /// the issuer failed.
    Oxide(OAuthError),
    /// The flow asked for something client credentials never does (a
    /// redirect).
    Unexpected,
}

/// Runs oxide-auth's client-credentials flow with our registrar and issuer.
/// Credentials in the body are allowed: `client_secret_post` (RFC 6749
/// §2.3.1) sends them there, and `flow.rs` puts the decoded HTTP Basic
/// credentials and the `tls_client_auth` proof there too.
pub(super) fn run<'a>(
    gate: &Gate<'a>,
    minter: &mut Minter<'a>,
    request: FlowRequest,
) -> Result<FlowResponse, FlowFailure> {
    let endpoint = Lender {
        gate,
        minter,
        solicitor: SelfConsent,
    };
    let mut flow = ClientCredentialsFlow::prepare(endpoint)?;
    flow.allow_credentials_in_body(true);
    flow.execute(request)
}

/// No resource owner in client credentials: the client acts for itself.
struct SelfConsent;

impl OwnerSolicitor<FlowRequest> for SelfConsent {
    fn check_consent(
        &mut self,
        _: &mut FlowRequest,
        s: Solicitation,
    ) -> OwnerConsent<FlowResponse> {
        OwnerConsent::Authorized(s.pre_grant().client_id.clone())
    }
}

/// Lends the flow our primitives for one request.
struct Lender<'r, 'a> {
    gate: &'r Gate<'a>,
    minter: &'r mut Minter<'a>,
    solicitor: SelfConsent,
}

impl Endpoint<FlowRequest> for Lender<'_, '_> {
    type Error = FlowFailure;

    fn registrar(&self) -> Option<&dyn Registrar> {
        Some(self.gate)
    }
    fn authorizer_mut(
        &mut self,
    ) -> Option<&mut dyn oxide_auth::primitives::authorizer::Authorizer> {
        None
    }
    fn issuer_mut(&mut self) -> Option<&mut dyn Issuer> {
        Some(&mut *self.minter)
    }
    fn owner_solicitor(&mut self) -> Option<&mut dyn OwnerSolicitor<FlowRequest>> {
        Some(&mut self.solicitor)
    }
    fn scopes(&mut self) -> Option<&mut dyn Scopes<FlowRequest>> {
        None
    }
    fn response(
        &mut self,
        _: &mut FlowRequest,
        mut template: Template,
    ) -> Result<FlowResponse, FlowFailure> {
        Ok(FlowResponse {
            status: StatusCode::OK,
            error: template.access_token_error().map(|e| e.kind()),
        })
    }
    fn error(&mut self, e: OAuthError) -> FlowFailure {
        FlowFailure::Oxide(e)
    }
    fn web_error(&mut self, e: FlowFailure) -> FlowFailure {
        e
    }
}

impl WebRequest for FlowRequest {
    type Error = FlowFailure;
    type Response = FlowResponse;

    fn query(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, FlowFailure> {
        Ok(Cow::Owned(NormalizedParameter::new()))
    }
    fn urlbody(&mut self) -> Result<Cow<'_, dyn QueryParameter + 'static>, FlowFailure> {
        Ok(Cow::Borrowed(&self.body))
    }
    /// Never a header: HTTP Basic arrives decoded, in the body.
    fn authheader(&mut self) -> Result<Option<Cow<'_, str>>, FlowFailure> {
        Ok(None)
    }
}

impl WebResponse for FlowResponse {
    type Error = FlowFailure;

    fn ok(&mut self) -> Result<(), FlowFailure> {
        self.status = StatusCode::OK;
        Ok(())
    }
    fn redirect(&mut self, _: url::Url) -> Result<(), FlowFailure> {
        Err(FlowFailure::Unexpected)
    }
    fn client_error(&mut self) -> Result<(), FlowFailure> {
        self.status = StatusCode::BAD_REQUEST;
        Ok(())
    }
    fn unauthorized(&mut self, _: &str) -> Result<(), FlowFailure> {
        self.status = StatusCode::UNAUTHORIZED;
        Ok(())
    }
    fn body_text(&mut self, _: &str) -> Result<(), FlowFailure> {
        Ok(())
    }
    fn body_json(&mut self, _: &str) -> Result<(), FlowFailure> {
        // Our response is written from the issuer's claims or the typed
        // error above, never from oxide-auth's JSON.
        Ok(())
    }
}
