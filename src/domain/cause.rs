//! The cause of a dependency's failure (the store, the ephemeral store, the HSM, password
//! hashing), kept as the `#[source]` of a service error so that it is logged once, where
//! the request is answered, with its whole chain.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

/// A dependency's error, shared (service errors are cloned and compared).
#[derive(Clone)]
pub struct Cause(Arc<dyn Error + Send + Sync + 'static>);

impl Cause {
    /// Keeps `error` as the cause.
    pub fn new(error: impl Error + Send + Sync + 'static) -> Self {
        Self(Arc::new(error))
    }
}

impl fmt::Debug for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl Error for Cause {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.0.source()
    }
}

/// Two failures of a dependency are the same outcome for the caller, whatever the cause.
impl PartialEq for Cause {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Cause {}

/// The whole chain of `error`, outermost first, for the one log line at the edge.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(e) = next {
        text.push_str(": ");
        text.push_str(&e.to_string());
        next = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_keeps_every_cause() {
        let cause = Cause::new(Outer(std::io::Error::other("disk")));
        assert_eq!(chain(&cause), "outer: disk");
        assert_eq!(cause, Cause::new(std::io::Error::other("other")));
    }
}
