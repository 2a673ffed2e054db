//! SQL store (in progress).

/// The SQL store.
pub struct SqlStore;
