//! Who may do what. The server enforces these rules on every request; the
//! phone knows them too, so it refuses an action before the server has to.

use serde::{Deserialize, Serialize};

/// A person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Hospital staff of one facility: records and voids receipts there.
    Receiver,
    /// Programme or ministry staff for a region (or all): creates shipments,
    /// edits expected lines, writes reviews.
    Coordinator,
    /// Manages facilities, accounts and devices.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Receiver, Role::Coordinator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Receiver => "receiver",
            Role::Coordinator => "coordinator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Recording and voiding receipts.
    pub fn may_record_receipts(self) -> bool {
        self == Role::Receiver
    }

    /// Creating shipments, editing expected lines, writing reviews.
    pub fn may_manage_shipments(self) -> bool {
        self == Role::Coordinator
    }

    /// Facilities, accounts and devices.
    pub fn may_administer(self) -> bool {
        self == Role::Admin
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::Role;

    #[test]
    fn names_round_trip_and_rights_do_not_overlap() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let rights = [
                role.may_record_receipts(),
                role.may_manage_shipments(),
                role.may_administer(),
            ];
            assert_eq!(rights.iter().filter(|r| **r).count(), 1, "{role}");
        }
        assert_eq!(Role::parse("Admin"), None);
    }
}
