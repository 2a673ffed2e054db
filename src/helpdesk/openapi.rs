//! The OpenAPI 3.1 description of the helpdesk API, served at
//! `/helpdesk/v1/openapi.json` (a test checks it parses and lists every route).

/// The document.
pub fn document() -> &'static str {
    include_str!("openapi.json")
}
