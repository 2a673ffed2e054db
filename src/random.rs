//! Cryptographically secure randomness for every secret, code, challenge and id
//! (R-AUTH-5: "random values come from a cryptographically secure generator").
//!
//! A thread-local `ChaCha20Rng` seeded from the operating system and reseeded from it
//! every 64 KiB of output, so a token endpoint under load does not pay a syscall per value.

use std::cell::RefCell;

use base64::Engine;
use rand::rngs::adapter::ReseedingRng;
use rand::rngs::OsRng;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Core;

thread_local! {
    static RNG: RefCell<ReseedingRng<ChaCha20Core, OsRng>> = RefCell::new(
        ReseedingRng::new(ChaCha20Core::from_rng(OsRng).unwrap_or_else(|_| ChaCha20Core::from_entropy()), 64 * 1024, OsRng)
    );
}

/// Fills `buf` with CSPRNG output.
pub fn fill(buf: &mut [u8]) {
    RNG.with(|rng| rng.borrow_mut().fill_bytes(buf));
}

/// `N` random bytes.
pub fn bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// A random token of 32 bytes (256 bits), base64url without padding: codes, access and
/// refresh tokens, flow ids, client secrets.
pub fn token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes::<32>())
}

/// A random value below `bound` without modulo bias (for numeric codes).
pub fn below(bound: u32) -> u32 {
    let zone = u32::MAX - (u32::MAX % bound);
    loop {
        let v = u32::from_le_bytes(bytes::<4>());
        if v < zone {
            return v % bound;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_auth_5_tokens_are_distinct_and_long() {
        let a = token();
        let b = token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn below_stays_in_range() {
        for _ in 0..1000 {
            assert!(below(10) < 10);
        }
    }
}
