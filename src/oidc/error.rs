//! OAuth 2.0 / OpenID Connect error vocabulary and the two kinds of authorization error.

use std::fmt;

/// Error codes of RFC 6749 §4.1.2.1 / §5.2, OIDC Core §3.1.2.6, RFC 9126, RFC 7009,
/// RFC 9101, RFC 9449 and
/// OpenID Connect Unmet Authentication Requirements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// "The resource owner or authorization server denied the request."
    AccessDenied,
    /// "Client authentication failed (e.g., unknown client, no client authentication
    /// included, or unsupported authentication method)."
    InvalidClient,
    /// "The provided authorization grant ... or refresh token is invalid, expired,
    /// revoked, does not match the redirection URI used in the authorization request, or
    /// was issued to another client."
    InvalidGrant,
    /// "The request is missing a required parameter, includes an invalid parameter
    /// value, includes a parameter more than once, or is otherwise malformed."
    InvalidRequest,
    /// The `request_uri` is invalid or expired (OIDC Core, RFC 9126).
    InvalidRequestUri,
    /// The request object is invalid (RFC 9101 §6.3, OIDC Core §6).
    InvalidRequestObject,
    /// The DPoP proof is missing, malformed or does not fit (RFC 9449 §5, §7.1).
    InvalidDpopProof,
    /// The DPoP proof must carry the server's current nonce (RFC 9449 §8).
    UseDpopNonce,
    /// "The requested scope is invalid, unknown, or malformed."
    InvalidScope,
    /// The access token is invalid (RFC 6750).
    InvalidToken,
    /// "The Authorization Server requires End-User authentication." (`prompt=none`)
    LoginRequired,
    /// "The Authorization Server requires End-User consent." (`prompt=none`)
    ConsentRequired,
    /// "The Authorization Server requires End-User interaction of some form." (`prompt=none`)
    InteractionRequired,
    /// The `request` parameter is not supported (OIDC Core §6).
    RequestNotSupported,
    /// The `request_uri` parameter is not supported (OIDC Core §6).
    RequestUriNotSupported,
    /// "The authorization server encountered an unexpected condition."
    ServerError,
    /// "The authorization server is currently unable to handle the request."
    TemporarilyUnavailable,
    /// "The authenticated client is not authorized to use this authorization grant type."
    UnauthorizedClient,
    /// The authentication requirements (requested `acr`) cannot be met.
    UnmetAuthenticationRequirements,
    /// "The authorization grant type is not supported by the authorization server."
    UnsupportedGrantType,
    /// "The authorization server does not support obtaining an authorization code using
    /// this method."
    UnsupportedResponseType,
    /// RFC 7009: the server does not support revoking this token type.
    UnsupportedTokenType,
}

impl ErrorCode {
    /// The registered string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidRequestUri => "invalid_request_uri",
            ErrorCode::InvalidRequestObject => "invalid_request_object",
            ErrorCode::InvalidDpopProof => "invalid_dpop_proof",
            ErrorCode::UseDpopNonce => "use_dpop_nonce",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InteractionRequired => "interaction_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
        }
    }

    /// HTTP status at the token-style endpoints (RFC 6749 §5.2).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient | ErrorCode::InvalidToken => 401,
            ErrorCode::ServerError => 500,
            ErrorCode::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

/// An OAuth error with an optional human-readable description (never secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: ErrorCode,
    /// `error_description`.
    pub description: Option<String>,
    /// The dependency's failure behind a `temporarily_unavailable` (never sent; logged
    /// once where the answer leaves, [`OAuthError::log_cause`]).
    pub cause: Option<crate::domain::cause::Cause>,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: Some(description.into()),
            cause: None,
        }
    }

    /// `invalid_request` with a description.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_grant` (deliberately without detail for the client).
    pub fn invalid_grant() -> Self {
        Self::new(
            ErrorCode::InvalidGrant,
            "grant is invalid, expired, revoked or was issued to another client",
        )
    }

    /// `invalid_client`.
    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }

    /// `temporarily_unavailable` (a dependency is down: fail closed).
    pub fn unavailable() -> Self {
        Self::new(ErrorCode::TemporarilyUnavailable, "service temporarily unavailable")
    }

    /// `temporarily_unavailable` because `cause` failed.
    pub fn dependency(cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            cause: Some(crate::domain::cause::Cause::new(cause)),
            ..Self::unavailable()
        }
    }

    /// Logs the cause, if any: once, where the answer leaves.
    pub fn log_cause(&self) {
        if let Some(cause) = &self.cause {
            tracing::warn!(error = %crate::domain::cause::chain(cause), "a dependency failed at the OAuth layer");
        }
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {}", self.code.as_str(), d),
            None => f.write_str(self.code.as_str()),
        }
    }
}

impl std::error::Error for OAuthError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause.as_ref().map(|c| c as &(dyn std::error::Error + 'static))
    }
}

/// Where an authorization error goes (zitadel's `redirectDisabled` split).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeError {
    /// `client_id`/`redirect_uri` not trusted: a 400 page, never a redirect.
    Untrusted(OAuthError),
    /// After validation: back to the RP with `error`, `state` and `iss` (RFC 9207).
    ToClient {
        /// The validated redirect URI.
        redirect_uri: String,
        /// The RP's state.
        state: Option<String>,
        /// The error.
        error: OAuthError,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses() {
        assert_eq!(
            ErrorCode::UnmetAuthenticationRequirements.as_str(),
            "unmet_authentication_requirements"
        );
        assert_eq!(ErrorCode::InvalidClient.http_status(), 401);
        assert_eq!(ErrorCode::InvalidGrant.http_status(), 400);
        assert_eq!(
            OAuthError::invalid_client().to_string(),
            "invalid_client: client authentication failed"
        );
    }
}
