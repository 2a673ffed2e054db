//! Key labels, kinds, kids and JWKS (in progress).

/// Kinds of keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// EC P-256 signing key `oidc-sign-<n>`.
    OidcEc,
    /// RSA-3072 signing key `oidc-sign-rsa-<n>`.
    OidcRsa,
}

/// A key as listed.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// Label.
    pub label: String,
}
