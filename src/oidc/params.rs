//! Form and query parameters as OAuth wants them: each parameter at most once
//! (RFC 6749 §3.1), bounded in length (R-SEC-5), empty values treated as absent.

use std::collections::HashMap;

use super::error::OAuthError;

/// How many times `limits.param_chars` a request object may be long.
pub const REQUEST_OBJECT_FACTOR: usize = 4;

/// Decoded parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text. A repeated parameter or one
    /// longer than `max_chars` is `invalid_request`; there are at most 64 parameters. A
    /// request object (`request`, RFC 9101) carries a whole request plus its signature: it
    /// may be [`REQUEST_OBJECT_FACTOR`] times as long (each member inside is held to
    /// `max_chars` again, [`super::jar`]).
    pub fn parse(raw: &[u8], max_chars: usize) -> Result<Self, OAuthError> {
        let mut map = HashMap::new();
        for (count, (name, value)) in url::form_urlencoded::parse(raw).enumerate() {
            if count >= 64 {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            let limit = match name.as_ref() {
                "request" => max_chars.saturating_mul(REQUEST_OBJECT_FACTOR),
                _ => max_chars,
            };
            if value.chars().count() > limit || name.len() > 64 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is too long",
                    truncate(&name)
                )));
            }
            if value.is_empty() {
                continue;
            }
            if map.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} repeated",
                    truncate(&name)
                )));
            }
        }
        Ok(Self(map))
    }

    /// Builds from pairs (tests, PAR).
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        Self(pairs.into_iter().collect())
    }

    /// A parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Removes and returns a parameter.
    pub fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }

    /// Whether a parameter is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// All pairs (for storing a pushed request).
    pub fn pairs(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    /// Merges `other` in, `other` winning (PAR parameters over query parameters).
    pub fn overlay(&mut self, other: Params) {
        self.0.extend(other.0);
    }
}

fn truncate(name: &str) -> String {
    name.chars().take(32).filter(|c| c.is_ascii_graphic()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sec_5_repeated_and_oversized_parameters_are_refused() {
        assert!(Params::parse(b"a=1&a=2", 100).is_err());
        assert!(Params::parse(format!("a={}", "x".repeat(101)).as_bytes(), 100).is_err());
        let p = Params::parse(b"a=1&b=&c=%20x", 100).unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some(" x"));
        let object = format!("request={}", "x".repeat(400));
        assert!(Params::parse(object.as_bytes(), 100).is_ok());
        let object = format!("request={}", "x".repeat(401));
        assert!(Params::parse(object.as_bytes(), 100).is_err());
    }
}
