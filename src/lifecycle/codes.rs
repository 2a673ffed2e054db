//! Activation codes and revocation secrets: random from the CSPRNG, shown once, stored
//! only as argon2id hashes (R-ISS-2, R-ISS-3, R-AUTH-3).

use crate::domain::secret::Password;

/// Crockford base32 without ambiguous letters: easy to read out on the phone.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A code of `groups` groups of 4 characters (20 bits each), e.g. `7KQ2-M9XD-4TRA`.
pub fn generate(groups: usize) -> String {
    let mut out = String::with_capacity(groups * 5);
    for g in 0..groups {
        if g > 0 {
            out.push('-');
        }
        for _ in 0..4 {
            let i = crate::random::below(32) as usize;
            out.push(char::from(ALPHABET[i]));
        }
    }
    out
}

/// Normalises what a person typed: upper case, no spaces or dashes, `O`→`0`, `I`/`L`→`1`.
pub fn normalise(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

/// The argon2id hash of a code (normalised first), on the bounded pool.
pub async fn hash(
    pool: &crate::authn::password::PasswordVerifier,
    code: &str,
) -> Result<String, crate::authn::password::HashError> {
    pool.hash(Password::new(normalise(code))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_iss_3_codes_are_random_and_normalise_as_typed() {
        let a = generate(3);
        assert_eq!(a.len(), 14);
        assert_ne!(a, generate(3));
        assert_eq!(normalise(&a.to_lowercase().replace('-', " ")), a.replace('-', ""));
        assert_eq!(normalise("o1-il"), "0111");
    }
}
