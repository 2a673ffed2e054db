//! The password + TOTP means (R-MEANS-2, R-AUTH-4, R-AUTH-5): seed generation, the
//! `otpauth://` URI and its SVG QR code for enrolment, code checks within ±1 time step,
//! and the password rules of new passwords.
//!
//! The seed is 160 bits from the CSPRNG (RFC 4226 §4 recommends 160), HMAC-SHA-1, 6 digits,
//! 30-second steps (what authenticator apps support). It is stored only sealed under the
//! HSM `data-wrap` key ([`crate::hsm::Sealer`], R-AUTH-3, R-AUTH-6); in memory it lives in
//! [`TotpSeed`], which zeroises on drop and never prints. Code comparison is constant
//! time. Which step a code matched is returned so that the caller can refuse it (and
//! every earlier step) for ever after (replay, R-AUTH-5).
//!
//! A code as typed is normalised by [`normalise_code`]: leading and trailing ASCII
//! whitespace (space, tab, CR, LF: what a paste brings along) is removed, and what is
//! left must be exactly six ASCII digits. Nothing else is tolerated: no inner spaces
//! or dashes (`123 456`), no other Unicode digits or spaces; such a code is a wrong code.

use totp_rs::{Algorithm, TOTP};
use zeroize::Zeroizing;

use crate::domain::secret::{ct_eq, Password};
use crate::domain::UnixTime;

/// Seed length in bytes (160 bits).
pub const SEED_BYTES: usize = 20;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Seconds per time step.
pub const STEP_SECS: i64 = 30;
/// Steps accepted either side of the current one (clock drift of the holder's phone).
pub const WINDOW: i64 = 1;

/// Minimum password length (NIST 800-63B allows 8; eID means ask for more).
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The bundled list of common passwords refused at activation and change (NIST
/// 800-63B 5.1.1.2: compare against values known to be commonly used). Lower case.
const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

/// A TOTP seed in memory: zeroised on drop, redacted in `Debug`.
pub struct TotpSeed(Zeroizing<Vec<u8>>);

impl TotpSeed {
    /// A fresh random seed of [`SEED_BYTES`].
    pub fn generate() -> Self {
        let mut seed = Zeroizing::new(vec![0u8; SEED_BYTES]);
        crate::random::fill(&mut seed);
        Self(seed)
    }

    /// Wraps seed bytes (from the HSM or an import). At least 128 bits (RFC 4226 §4).
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Result<Self, TotpError> {
        if bytes.len() < 16 {
            return Err(TotpError::SeedTooShort);
        }
        Ok(Self(bytes))
    }

    /// Decodes an RFC 4648 base32 seed (import).
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let cleaned: Zeroizing<String> = Zeroizing::new(text.chars().filter(|c| !c.is_whitespace()).collect());
        let bytes = totp_rs::Secret::Encoded(cleaned.to_uppercase())
            .to_bytes()
            .map_err(|_| TotpError::BadSeed)?;
        Self::from_bytes(Zeroizing::new(bytes))
    }

    /// The seed bytes: call only where they are used (sealing, code computation).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, account: &str, issuer: &str) -> Result<TOTP, TotpError> {
        TOTP::new(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECS.unsigned_abs(),
            self.0.to_vec(),
            Some(issuer.to_owned()),
            account.to_owned(),
        )
        .map_err(|_| TotpError::BadSeed)
    }

    /// The code of time step `step`.
    pub fn code_at_step(&self, step: i64) -> Result<String, TotpError> {
        let time = u64::try_from(step.saturating_mul(STEP_SECS)).map_err(|_| TotpError::BadTime)?;
        // The account name and issuer do not enter the code.
        Ok(self.totp("x", "x")?.generate(time))
    }

    /// The `otpauth://totp/...` URI an authenticator app enrols from.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<String, TotpError> {
        // The otpauth label forbids ':' in issuer and account name.
        let issuer = issuer.replace(':', "");
        let account = account.replace(':', "");
        Ok(self.totp(&account, &issuer)?.get_url())
    }

    /// The step within ±[`WINDOW`] of `now` whose code is `code` (as typed, see
    /// [`normalise_code`]), compared in constant time over every candidate step.
    pub fn matching_step(&self, code: &str, now: UnixTime) -> Result<Option<i64>, TotpError> {
        let Some(code) = normalise_code(code) else {
            return Ok(None);
        };
        let current = now.div_euclid(STEP_SECS);
        let mut found = None;
        for step in current - WINDOW..=current + WINDOW {
            let expected = Zeroizing::new(self.code_at_step(step)?);
            // The latest matching step wins; every step is computed either way.
            if ct_eq(expected.as_bytes(), code.as_bytes()) {
                found = Some(step);
            }
        }
        Ok(found)
    }
}

impl std::fmt::Debug for TotpSeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSeed([redacted])")
    }
}

/// A code as typed, normalised: ASCII whitespace trimmed at both ends, then exactly six
/// ASCII digits, or `None`.
pub fn normalise_code(typed: &str) -> Option<&str> {
    let code = typed.trim_matches(|c: char| c.is_ascii_whitespace());
    (code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

/// The TOTP step of `now`.
pub fn step_of(now: UnixTime) -> i64 {
    now.div_euclid(STEP_SECS)
}

/// Errors of the TOTP helpers.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    /// Shorter than 128 bits.
    #[error("TOTP seed shorter than 128 bits")]
    SeedTooShort,
    /// Not a usable seed (bad base32).
    #[error("TOTP seed is malformed")]
    BadSeed,
    /// A time before the epoch.
    #[error("time out of range")]
    BadTime,
    /// The QR code could not be made.
    #[error("QR code cannot hold the URI")]
    Qr,
}

/// An SVG QR code of `text` (the otpauth URI), medium error correction.
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).map_err(|_| TotpError::Qr)?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

/// Why a new password is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordRule {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("the password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    /// Over 1024 bytes.
    #[error("the password is too long")]
    TooLong,
    /// Contains the personal identifier.
    #[error("the password must not contain the personal identifier")]
    ContainsIdentifier,
    /// On the list of common passwords.
    #[error("the password is too common")]
    Common,
}

/// Password rules for a new password (NIST 800-63B 5.1.1.2): at least
/// [`MIN_PASSWORD_CHARS`] characters, not containing the identifier, not a common
/// password (compared without case).
pub fn check_new_password(password: &Password, identifier_code: &str) -> Result<(), PasswordRule> {
    let p = password.expose();
    if p.len() > 1024 {
        return Err(PasswordRule::TooLong);
    }
    if p.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordRule::TooShort);
    }
    if !identifier_code.is_empty() && p.contains(identifier_code) {
        return Err(PasswordRule::ContainsIdentifier);
    }
    let lower = Zeroizing::new(p.to_lowercase());
    if COMMON_PASSWORDS.lines().any(|common| common == lower.as_str()) {
        return Err(PasswordRule::Common);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B, SHA-1 seed "12345678901234567890" (8-digit vectors; the
    /// 6-digit code is the last six digits).
    #[test]
    fn r_auth_5_rfc6238_vectors() {
        let seed = TotpSeed::from_bytes(Zeroizing::new(b"12345678901234567890".to_vec())).unwrap();
        assert_eq!(seed.code_at_step(59 / 30).unwrap(), "287082");
        assert_eq!(seed.code_at_step(1_111_111_109 / 30).unwrap(), "081804");
        assert_eq!(seed.code_at_step(1_234_567_890 / 30).unwrap(), "005924");
        assert_eq!(seed.code_at_step(2_000_000_000 / 30).unwrap(), "279037");
    }

    #[test]
    fn r_auth_5_window_is_one_step_either_side() {
        let seed = TotpSeed::generate();
        let now = 1_700_000_015;
        let step = step_of(now);
        for delta in [-1, 0, 1] {
            let code = seed.code_at_step(step + delta).unwrap();
            assert_eq!(seed.matching_step(&code, now).unwrap(), Some(step + delta));
        }
        for delta in [-3, -2, 2, 3] {
            let code = seed.code_at_step(step + delta).unwrap();
            // A far code may collide with a near one by chance (1 in 10^6): check it is
            // not reported as the far step.
            assert_ne!(seed.matching_step(&code, now).unwrap(), Some(step + delta));
        }
        assert_eq!(seed.matching_step("12345", now).unwrap(), None);
        assert_eq!(seed.matching_step("abcdef", now).unwrap(), None);
        let code = seed.code_at_step(step).unwrap();
        assert_eq!(seed.matching_step(&format!(" {code}\r\n"), now).unwrap(), Some(step));
        for bad in [
            format!("{} {}", &code[..3], &code[3..]),
            format!("{}-{}", &code[..3], &code[3..]),
            format!("\u{3000}{code}"),
            format!("{code}0"),
            "١٢٣٤٥٦".to_owned(),
        ] {
            assert_eq!(seed.matching_step(&bad, now).unwrap(), None, "{bad:?}");
        }
    }

    #[test]
    fn r_auth_5_seed_is_160_bits_random_and_never_prints() {
        let a = TotpSeed::generate();
        let b = TotpSeed::generate();
        assert_eq!(a.expose().len(), 20);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "TotpSeed([redacted])");
        assert_eq!(
            TotpSeed::from_bytes(Zeroizing::new(vec![1; 15])).unwrap_err(),
            TotpError::SeedTooShort
        );
    }

    #[test]
    fn r_iss_2_otpauth_uri_and_svg_qr() {
        let seed = TotpSeed::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(seed.expose(), b"12345678901234567890");
        let uri = seed.otpauth_uri("eidgate", "LT/LT/38001085718").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), "{uri}");
        assert!(uri.contains("issuer=eidgate"), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("</svg>"));
    }

    #[test]
    fn r_auth_3_new_password_rules() {
        let check = |p: &str| check_new_password(&Password::new(p.into()), "38001085718");
        assert_eq!(check("short"), Err(PasswordRule::TooShort));
        assert_eq!(check("abc38001085718xyz"), Err(PasswordRule::ContainsIdentifier));
        assert_eq!(check("Password1234"), Err(PasswordRule::Common));
        assert_eq!(check("QWERTYUIOP123"), Err(PasswordRule::Common));
        assert_eq!(check("111111111111"), Err(PasswordRule::Common));
        assert_eq!(check(&"x".repeat(1025)), Err(PasswordRule::TooLong));
        assert_eq!(check("violet kettle orbit 42"), Ok(()));
    }
}
