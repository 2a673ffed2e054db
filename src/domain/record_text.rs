//! What may enter a record as free text (R-LOG-5): no raw biometric data and no copy of an
//! identity document, in any field an operator or a client fills (helpdesk evidence,
//! proofing facts, reasons) nor in any audit record.
//!
//! A document scan or a photo reaches a text field as a `data:` URI, as base64 (with or
//! without line breaks), or as the raw bytes of an image, PDF or biometric template
//! pasted in. Free text is refused when it carries any of these; audit details keep such a
//! value only as a reference (its SHA-256), never the content.

use sha2::{Digest, Sha256};

/// Why a value is not free text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordTextError {
    /// Longer than the field allows.
    #[error("longer than {0} characters")]
    TooLong(usize),
    /// Control characters other than line breaks and tabs (binary content).
    #[error("holds binary content (control characters)")]
    Binary,
    /// An embedded file: a `data:` URI, an image, a PDF or a biometric template.
    #[error("holds an embedded file ({0}); record a reference to the document (type, number, issuer), never a copy")]
    Embedded(&'static str),
    /// A long run of base64: an encoded file.
    #[error("holds encoded data (a base64 run of {0} characters); record facts, never a copy")]
    Encoded(usize),
}

/// The file kinds that must never be stored (images, documents, biometric templates of
/// ISO/IEC 19794): their leading bytes as text may show up (raw, Latin-1 or after a lossy
/// UTF-8 decoding), and the start of their base64 form.
const MAGIC: &[(&[&str], &str, &str)] = &[
    (
        &[
            "\u{FF}\u{D8}\u{FF}",
            "\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}JFIF",
            "JFIF\u{0}",
        ],
        "/9j/",
        "JPEG image",
    ),
    (&["\u{89}PNG", "\u{FFFD}PNG\r\n"], "iVBORw0KGgo", "PNG image"),
    (&["%PDF-"], "JVBERi0", "PDF document"),
    (&["GIF87a", "GIF89a"], "R0lGOD", "GIF image"),
    (&["II*\u{0}", "MM\u{0}*"], "SUkqA", "TIFF image"),
    (&["WEBPVP8"], "UklGR", "WebP image"),
    (&["FIR\u{0}"], "RklSA", "biometric template (ISO/IEC 19794)"),
    (&["FMR\u{0}"], "Rk1SA", "fingerprint template (ISO/IEC 19794-2)"),
    (&["FAC\u{0}"], "RkFDA", "face image (ISO/IEC 19794-5)"),
    (&["IIR\u{0}"], "SUlSA", "iris image (ISO/IEC 19794-6)"),
];

/// The longest base64 run that free text may hold. Identifiers, document numbers, hashes
/// (SHA-256 hex is 64, base64 44) and signed tokens presented as evidence are shorter; a
/// scanned page is tens of thousands.
pub const MAX_BASE64_RUN: usize = 2048;

fn is_base64_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '-' | '_')
}

/// The longest run of base64 characters, line breaks inside the run included (MIME wraps
/// base64 at 76 characters).
fn longest_base64_run(s: &str) -> usize {
    let (mut best, mut run) = (0, 0);
    for c in s.chars() {
        if is_base64_char(c) {
            run += 1;
            best = best.max(run);
        } else if c == '\n' || c == '\r' {
            // a wrapped line continues the run
        } else {
            run = 0;
        }
    }
    best
}

/// What embedded content `s` carries, if any.
pub fn embedded_content(s: &str) -> Option<RecordTextError> {
    let lower = s.to_ascii_lowercase();
    if let Some(i) = lower.find("data:") {
        let rest = &lower[i + 5..];
        if rest.contains(";base64,") || rest.starts_with("image/") || rest.starts_with("application/") {
            return Some(RecordTextError::Embedded("data: URI"));
        }
    }
    for (raw, b64, kind) in MAGIC {
        if raw.iter().any(|r| s.contains(r)) {
            return Some(RecordTextError::Embedded(kind));
        }
        // The base64 form of a file: a long word that starts like one.
        let encoded = s
            .split(|c: char| !is_base64_char(c))
            .any(|word| word.len() >= 64 && word.starts_with(b64));
        if encoded {
            return Some(RecordTextError::Embedded(kind));
        }
    }
    let run = longest_base64_run(s);
    if run > MAX_BASE64_RUN {
        return Some(RecordTextError::Encoded(run));
    }
    None
}

/// Checks a free-text field an operator or client fills (a reason, evidence, a proofing
/// fact): at most `max_chars`, no control characters but line breaks and tabs, no embedded
/// file.
pub fn check_free_text(s: &str, max_chars: usize) -> Result<(), RecordTextError> {
    if s.chars().count() > max_chars {
        return Err(RecordTextError::TooLong(max_chars));
    }
    if let Some(e) = embedded_content(s) {
        return Err(e);
    }
    if s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        return Err(RecordTextError::Binary);
    }
    Ok(())
}

/// The longest string an audit record keeps as it is; longer ones are kept as a reference.
pub const MAX_RECORD_STRING: usize = 1024;

/// What an audit record keeps of a string: the string itself when it is plain, short text;
/// otherwise a reference (`sha256:<hex>`) and its length, never the content (R-LOG-5).
pub fn reference_if_not_plain(s: &str) -> Option<String> {
    let plain = s.chars().count() <= MAX_RECORD_STRING
        && embedded_content(s).is_none()
        && !s.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    if plain {
        return None;
    }
    let digest = Sha256::digest(s.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("sha256:{hex} ({} chars withheld: R-LOG-5)", s.chars().count()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan() -> String {
        // The start of a JPEG file in base64, as a scanner's upload would carry it.
        let mut s = String::from("/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAAMCAgMCAgMDAwMEAwMEBQgFBQQEBQoHBwYIDAoMDAsKCwsNDhIQDQ4RDgsLEBYQERMUFRUVDA8XGBYUGBIUFRT");
        s.push_str(&"QUFB".repeat(100));
        s
    }

    #[test]
    fn r_log_5_document_scans_photos_and_templates_are_refused_as_free_text() {
        let png_b64 = format!(
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk{}",
            "A".repeat(40)
        );
        let cases = [
            format!("data:image/jpeg;base64,{}", scan()),
            "DATA:application/pdf;base64,JVBERi0xLjQK".to_owned(),
            scan(),
            format!("passport scan: {}", scan()),
            png_b64,
            "%PDF-1.7\n1 0 obj <<>> endobj".to_owned(),
            "FMR\u{0} 20\u{0}\u{0}\u{1}".to_owned(),
            "seen: \u{FFFD}PNG\r\n\u{1a}\n".to_owned(),
            format!("{}\n{}\n{}", "QUJD".repeat(19), "QUJD".repeat(19), "QUJD".repeat(600)),
        ];
        for case in &cases {
            assert!(
                check_free_text(case, 100_000).is_err(),
                "accepted: {}",
                &case[..case.len().min(60)]
            );
            assert!(reference_if_not_plain(case).is_some());
        }
    }

    #[test]
    fn r_log_5_facts_and_references_pass() {
        for ok in [
            "passport LT1234567 issued by LT, checked in person",
            "order 2026/17 of the Vilnius district prosecutor",
            "holder called from the registered phone number",
            "sha256:3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b",
            "line one\nline two\twith a tab",
        ] {
            assert_eq!(check_free_text(ok, 1024), Ok(()), "{ok}");
            assert_eq!(reference_if_not_plain(ok), None);
        }
        assert_eq!(check_free_text("ab", 1), Err(RecordTextError::TooLong(1)));
        assert_eq!(check_free_text("a\u{0}b", 10), Err(RecordTextError::Binary));
    }
}
