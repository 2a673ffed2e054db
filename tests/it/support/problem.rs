//! Checks of `application/problem+json` answers (RFC 9457; DESIGN "Errors"): one definition
//! for every test module.

use super::server::Answer;

/// The answer is `status`, `application/problem+json`, of type `urn:eidgate:problem:{kind}`.
pub fn assert_problem(answer: &Answer, status: u16, kind: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_problem_media_type(status, &answer.headers);
    let t = answer.body["type"].as_str().unwrap_or("");
    assert_eq!(t, format!("urn:eidgate:problem:{kind}"), "{}", answer.body);
}

/// An answer of `status` whose body the test reads itself is `application/problem+json`.
pub fn assert_problem_media_type(status: u16, headers: &reqwest::header::HeaderMap) {
    let content_type = headers.get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    assert_eq!(content_type, Some("application/problem+json"), "status {status}");
}
