//! Form and query parameters as OAuth wants them: each parameter at most once
//! (RFC 6749 §3.1), bounded in length (R-SEC-5), empty values treated as absent.

use std::fmt;

use super::error::OAuthError;

/// How many times `limits.param_chars` a request object may be long.
pub const REQUEST_OBJECT_FACTOR: usize = 4;

/// Most parameters a request may carry.
const MAX_PARAMS: usize = 64;

/// Decoded parameters. Every name and value sits in one buffer, found by its offsets, and
/// is looked up by a scan (at most [`MAX_PARAMS`]): a map of owned strings cost two
/// allocations per parameter and a SipHash per lookup on every token request (issue 22).
/// `Debug` names the parameters, never their values (codes, verifiers, secrets).
#[derive(Clone, Default)]
pub struct Params {
    text: String,
    entries: Vec<Entry>,
}

/// One parameter: its name is `text[start..split]`, its value `text[split..end]`.
#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    split: usize,
    end: usize,
}

impl Params {
    /// Parses `application/x-www-form-urlencoded` text. A repeated parameter or one
    /// longer than `max_chars` is `invalid_request`; there are at most 64 parameters. A
    /// request object (`request`, RFC 9101) carries a whole request plus its signature: it
    /// may be [`REQUEST_OBJECT_FACTOR`] times as long (each member inside is held to
    /// `max_chars` again, [`super::jar`]).
    pub fn parse(raw: &[u8], max_chars: usize) -> Result<Self, OAuthError> {
        // Decoding never lengthens the text.
        let mut params = Params {
            text: String::with_capacity(raw.len()),
            entries: Vec::with_capacity(raw.iter().filter(|&&b| b == b'&').count().min(MAX_PARAMS) + 1),
        };
        // Decoded through two buffers reused for every pair, not a string per escaped
        // name or value (issue 22). As `form_urlencoded::parse`: pairs split at `&`
        // (empty ones skipped), name and value at the first `=`, `+` is a space, `%XX` a
        // byte, and bytes that are not UTF-8 become U+FFFD.
        let (mut name_buf, mut value_buf) = (Vec::new(), Vec::new());
        let pairs = raw.split(|&b| b == b'&').filter(|pair| !pair.is_empty());
        for (count, pair) in pairs.enumerate() {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = decode(name, &mut name_buf);
            let value = decode(value, &mut value_buf);
            if count >= MAX_PARAMS {
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
            if params.find(&name).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} repeated",
                    truncate(&name)
                )));
            }
            params.push(&name, &value);
        }
        Ok(params)
    }

    /// Builds from pairs (tests, PAR); a later pair replaces an earlier one of its name.
    pub fn from_pairs<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut params = Params::default();
        for (name, value) in pairs {
            params.set(&name, &value);
        }
        params
    }

    /// A parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.find(name).map(|i| self.value(self.entries[i]))
    }

    /// Removes and returns a parameter.
    pub fn take(&mut self, name: &str) -> Option<String> {
        let i = self.find(name)?;
        let entry = self.entries.swap_remove(i);
        Some(self.value(entry).to_owned())
    }

    /// Whether a parameter is present.
    pub fn has(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// All pairs (for storing a pushed request).
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|&e| (self.name(e), self.value(e)))
    }

    /// Merges `other` in, `other` winning (PAR parameters over query parameters).
    pub fn overlay(&mut self, other: Params) {
        for (name, value) in other.pairs() {
            self.set(name, value);
        }
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|&e| self.name(e) == name)
    }

    fn name(&self, e: Entry) -> &str {
        &self.text[e.start..e.split]
    }

    fn value(&self, e: Entry) -> &str {
        &self.text[e.split..e.end]
    }

    fn push(&mut self, name: &str, value: &str) {
        let start = self.text.len();
        self.text.push_str(name);
        let split = self.text.len();
        self.text.push_str(value);
        self.entries.push(Entry {
            start,
            split,
            end: self.text.len(),
        });
    }

    fn set(&mut self, name: &str, value: &str) {
        if let Some(i) = self.find(name) {
            self.entries.swap_remove(i);
        }
        self.push(name, value);
    }
}

/// Equal when they hold the same parameters, in any order.
impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.entries.len() == other.entries.len() && self.pairs().all(|(n, v)| other.get(n) == Some(v))
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.pairs().map(|(name, _)| name)).finish()
    }
}

/// `part` form-decoded into `buf` (its old content dropped).
fn decode<'b>(part: &[u8], buf: &'b mut Vec<u8>) -> std::borrow::Cow<'b, str> {
    buf.clear();
    for (i, piece) in part.split(|&b| b == b'+').enumerate() {
        if i > 0 {
            buf.push(b' ');
        }
        buf.extend(percent_encoding::percent_decode(piece));
    }
    String::from_utf8_lossy(buf)
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

    #[test]
    fn take_overlay_and_pairs_keep_one_value_per_name() {
        let mut p = Params::parse(b"code=c0de&redirect_uri=https%3A%2F%2Frp%2Fcb&scope=openid+email", 100).unwrap();
        assert_eq!(p.get("redirect_uri"), Some("https://rp/cb"));
        assert_eq!(p.get("scope"), Some("openid email"));
        assert_eq!(p.take("code").as_deref(), Some("c0de"));
        assert!(!p.has("code") && p.take("code").is_none());
        p.overlay(Params::from_pairs([
            ("scope".to_owned(), "openid".to_owned()),
            ("state".to_owned(), "s".to_owned()),
        ]));
        assert_eq!(p.get("scope"), Some("openid"));
        assert_eq!(p.pairs().count(), 3);
        let later_wins = Params::from_pairs([("a".to_owned(), "1".to_owned()), ("a".to_owned(), "2".to_owned())]);
        assert_eq!(later_wins.get("a"), Some("2"));
        assert_eq!(later_wins.pairs().count(), 1);
        // Equal whatever the order they came in.
        assert_eq!(
            Params::parse(b"a=1&b=2", 10).unwrap(),
            Params::parse(b"b=2&a=1", 10).unwrap()
        );
        assert_ne!(
            Params::parse(b"a=1&b=2", 10).unwrap(),
            Params::parse(b"a=1&b=3", 10).unwrap()
        );
        assert_ne!(
            Params::parse(b"a=1", 10).unwrap(),
            Params::parse(b"a=1&b=3", 10).unwrap()
        );
    }

    #[test]
    fn r_sec_2_params_never_print_their_values() {
        let p = Params::parse(b"client_secret=s3cret&code_verifier=v3rifier", 100).unwrap();
        let shown = format!("{p:?}");
        assert!(
            shown.contains("client_secret") && !shown.contains("s3cret") && !shown.contains("v3rifier"),
            "{shown}"
        );
    }

    #[test]
    fn r_sec_5_at_most_64_parameters() {
        let many: Vec<String> = (0..65).map(|i| format!("p{i}=v")).collect();
        assert!(Params::parse(many.join("&").as_bytes(), 10).is_err());
        assert!(Params::parse(many[..64].join("&").as_bytes(), 10).is_ok());
    }

    #[test]
    fn decodes_as_form_urlencoded_does() {
        for raw in [
            &b"a=1&&b=x+y%2Bz&c&d=%3D%26&e=%ZZ%4&f=%FF%C3%A9&g=1=2&h+i=j%20k&=v&x=%"[..],
            b"redirect_uri=https%3A%2F%2Frp.example%2Fcb%3Fa%3D1&code_verifier=abc-_.~",
            b"&&&",
            b"",
        ] {
            let ours = Params::parse(raw, 1000).unwrap();
            let mut theirs = Params::default();
            for (name, value) in url::form_urlencoded::parse(raw) {
                if !value.is_empty() {
                    theirs.set(&name, &value);
                }
            }
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(raw));
        }
    }
}
