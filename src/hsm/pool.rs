//! PKCS#11 session pool (in progress).
