//! Operators and their roles (R-SEC-3, R-SEC-4). An operator is a natural person in the
//! registry who logs in through this provider; the roles come from the server's own
//! operator records, never from a client.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ids::PersonId;

/// An operator role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages operators, clients and configuration.
    Admin,
    /// Suspends, revokes, reactivates means for callers (24/7 helpdesk).
    Helpdesk,
    /// Approves applications and issues means (the second pair of eyes).
    Issuance,
    /// Registers persons and applications for means.
    Registration,
    /// Reads the audit log, alerts and reports.
    Security,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Helpdesk,
        Role::Issuance,
        Role::Registration,
        Role::Security,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Helpdesk => "helpdesk",
            Role::Issuance => "issuance",
            Role::Registration => "registration",
            Role::Security => "security",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or(UnknownRole)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a role.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role")]
pub struct UnknownRole;

/// An operator record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operator {
    /// The person behind the operator.
    pub person: PersonId,
    /// Granted roles, sorted, without duplicates.
    pub roles: Vec<Role>,
}

impl Operator {
    /// Whether the operator holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Roles as stored (`"helpdesk,registration"`).
    pub fn roles_text(&self) -> String {
        self.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(",")
    }

    /// Parses stored roles.
    pub fn parse_roles(text: &str) -> Result<Vec<Role>, UnknownRole> {
        let mut roles: Vec<Role> = text
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        roles.sort();
        roles.dedup();
        Ok(roles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r_sec_3_roles_round_trip_and_unknown_roles_are_refused() {
        let roles = Operator::parse_roles("registration,helpdesk,helpdesk").unwrap();
        assert_eq!(roles, vec![Role::Helpdesk, Role::Registration]);
        let op = Operator {
            person: PersonId::new(),
            roles,
        };
        assert_eq!(op.roles_text(), "helpdesk,registration");
        assert!(op.has(Role::Helpdesk) && !op.has(Role::Admin));
        assert!(Operator::parse_roles("root").is_err());
    }
}
