//! Extractors shared by the transport files: the operator behind a bearer token
//! ([`Operator`]), the login flow of the path bound to this browser ([`Flow`]) and a strict
//! JSON body ([`JsonBody`]). Each answers refusals as
//! problem+json, so handlers start from typed input.

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};

use super::problem::parse_json;
use super::Problem;
use crate::admin::auth::{self, OperatorAuthError};
use crate::admin::state::Admin;
use crate::authn::flow::{LoginFlow, BROWSER_COOKIE};
use crate::authn::state::Authn;
use crate::authn::AuthnError;

impl From<OperatorAuthError> for Problem {
    fn from(e: OperatorAuthError) -> Self {
        match e {
            OperatorAuthError::Unauthenticated => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Operator authentication required",
            ),
            OperatorAuthError::NotAnOperator => Problem::new(StatusCode::FORBIDDEN, "forbidden", "Not an operator"),
            OperatorAuthError::Assurance(why) => Problem::new(
                StatusCode::FORBIDDEN,
                "operator-assurance",
                "Operator login too weak or too old",
            )
            .detail(format!(
                "{why}: log in again at the required level (operators.minimum_acr) within operators.max_auth_age"
            )),
            OperatorAuthError::Unavailable => Problem::unavailable(),
        }
    }
}

/// The bearer token of a request.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// Authenticates the operator of a request.
pub async fn operator(app: &Admin, headers: &HeaderMap) -> Result<crate::domain::operator::Operator, Problem> {
    auth::authenticate(app, bearer(headers)).await.map_err(|e| {
        let mut p = Problem::from(e);
        if p.status == 401 {
            p.detail = Some("send Authorization: Bearer <operator access token>".into());
        }
        p
    })
}

/// The authenticated operator of an `/admin/v1` or `/helpdesk/v1` request (R-SEC-3,
/// R-SEC-4); refusals are audited by [`auth::authenticate`].
#[derive(Debug)]
pub struct Operator(pub crate::domain::operator::Operator);

impl<S> FromRequestParts<S> for Operator
where
    Admin: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let admin = Admin::from_ref(state);
        operator(&admin, &parts.headers).await.map(Operator)
    }
}

/// A JSON request body parsed strictly ([`parse_json`]): `application/json`, one object,
/// no unknown or duplicate fields; refusals name the category, never echo the input.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: for<'de> serde::Deserialize<'de>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state).await.map_err(|_| {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large or unreadable",
            )
        })?;
        parse_json(&headers, &body).map(JsonBody)
    }
}

/// The login flow named by the request path (`/authn/flows/{id}/...`), loaded only with
/// the browser cookie it is bound to; anything else is 404 `flow-not-found`.
#[derive(Debug)]
pub struct Flow(pub LoginFlow);

impl<S> FromRequestParts<S> for Flow
where
    Authn: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let authn = Authn::from_ref(state);
        let axum::extract::Path(id) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::from(AuthnError::FlowNotFound))?;
        let browser = super::middleware::cookie(&parts.headers, BROWSER_COOKIE, authn.config.secure_cookies());
        Ok(Flow(crate::authn::flow::load(&authn, &id, browser).await?))
    }
}
