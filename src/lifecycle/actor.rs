//! Who asks for a lifecycle change: an operator (roles from the server's own records,
//! R-SEC-3) or the holder through the account page (their own session).

use crate::domain::ids::PersonId;
use crate::domain::loa::Loa;
use crate::domain::operator::{Operator, Role};

use super::LifecycleError;

/// The caller of a lifecycle operation.
#[derive(Clone, Debug)]
pub enum Actor {
    /// An operator authenticated with an access token of the console client.
    Operator(Operator),
    /// The holder, authenticated in an SSO session at `loa`.
    Holder {
        /// The holder.
        person: PersonId,
        /// The session's level.
        loa: Loa,
    },
}

impl Actor {
    /// The audit actor string.
    pub fn audit_name(&self) -> String {
        match self {
            Actor::Operator(o) => format!("operator:{}", o.person),
            Actor::Holder { person, .. } => format!("holder:{person}"),
        }
    }

    /// The operator, if the actor holds `role`; else `Forbidden` (separation of duties is
    /// enforced here, by the server, not by a UI).
    pub fn operator_with(&self, role: Role) -> Result<&Operator, LifecycleError> {
        match self {
            Actor::Operator(o) if o.has(role) => Ok(o),
            _ => Err(LifecycleError::Forbidden("the operator lacks the required role")),
        }
    }

    /// The person acting.
    pub fn person(&self) -> PersonId {
        match self {
            Actor::Operator(o) => o.person,
            Actor::Holder { person, .. } => *person,
        }
    }
}
