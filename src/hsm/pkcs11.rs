//! PKCS#11 module handling (in progress).

/// The HSM.
pub struct Pkcs11Hsm;
