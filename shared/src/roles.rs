//! Who may do what. The server enforces these rules on every request; the
//! phone knows them too, so it refuses an action before the server has to.
//!
//! [`check_edit`] is the rule for documents: given a shipment before and
//! after someone's changes, it says whether that person was allowed to make
//! them. The server runs it on every upload; the phone checks the same
//! [`Action`]s before it saves anything.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::{AttachmentId, DeliveryId, DeviceId, ReceiptId, ReviewId, UnitEventId, UserId};
use crate::model::{Shipment, StepKind};

/// A person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Hospital staff of one facility: records and voids receipts there.
    Receiver,
    /// Programme or ministry staff for a region (or all): creates shipments,
    /// edits expected lines, writes reviews.
    Coordinator,
    /// Manages facilities, accounts and devices. Sees no shipment data: an
    /// account manager has no business reading what hospitals received.
    Admin,
}

/// Something a role may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Record a receipt, or a correction that voids one; attach files
    /// (photos, documents, signatures) or remove them; record a delivery
    /// and a unit's steps after receipt (installed, tested, status…).
    RecordReceipts,
    /// Mark a unit as handed over into the hospital's asset register.
    HandOverUnits,
    /// Create a shipment, edit its header or its expected lines.
    ManageShipments,
    /// Write a review note on a shipment.
    WriteReviews,
    /// Manage facilities, accounts and devices.
    Administer,
}

impl Action {
    pub fn describe(self) -> &'static str {
        match self {
            Action::RecordReceipts => {
                "record or void receipts, or attach files, deliveries or units' steps"
            }
            Action::HandOverUnits => "hand units over into an asset register",
            Action::ManageShipments => "create shipments or edit their header and expected lines",
            Action::WriteReviews => "write reviews",
            Action::Administer => "manage facilities, accounts and devices",
        }
    }
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

    /// The one table of rights. Kept disjoint on purpose: a coordinator who
    /// also counts boxes uses a receiver account, so every receipt is
    /// attributable to someone who was at the facility.
    pub fn may(self, action: Action) -> bool {
        matches!(
            (self, action),
            (Role::Receiver, Action::RecordReceipts)
                | (Role::Coordinator, Action::ManageShipments)
                | (Role::Coordinator, Action::WriteReviews)
                | (Role::Coordinator, Action::HandOverUnits)
                | (Role::Admin, Action::Administer)
        )
    }

    /// [`Self::may`], as an error that tells the person why not.
    pub fn require(self, action: Action) -> Result<(), Forbidden> {
        if self.may(action) {
            Ok(())
        } else {
            Err(Forbidden::Role { role: self, action })
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is changing a document, as far as the rules care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    pub user: UserId,
    pub role: Role,
    /// Devices receipts may name. The phone: itself. The server: every
    /// device this user ever logged in from, so records a phone made before
    /// its token expired still sync after the user logs in again.
    pub devices: BTreeSet<DeviceId>,
}

/// Why someone may not make a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Forbidden {
    #[error("a {role} may not {}", action.describe())]
    Role { role: Role, action: Action },
    #[error("receipt {receipt} claims to be recorded by {claimed}, but the sender is {user}")]
    ReceiptOfAnotherUser {
        receipt: ReceiptId,
        claimed: UserId,
        user: UserId,
    },
    #[error("receipt {receipt} names device {device}, which is not one of {user}'s devices")]
    ReceiptOfAnotherDevice {
        receipt: ReceiptId,
        device: DeviceId,
        user: UserId,
    },
    #[error("attachment {attachment} claims to be recorded by {claimed}, but the sender is {user}")]
    AttachmentOfAnotherUser {
        attachment: AttachmentId,
        claimed: UserId,
        user: UserId,
    },
    #[error("attachment {attachment} names device {device}, which is not one of {user}'s devices")]
    AttachmentOfAnotherDevice {
        attachment: AttachmentId,
        device: DeviceId,
        user: UserId,
    },
    #[error("delivery {delivery} claims to be recorded by {claimed}, but the sender is {user}")]
    DeliveryOfAnotherUser {
        delivery: DeliveryId,
        claimed: UserId,
        user: UserId,
    },
    #[error("delivery {delivery} names device {device}, which is not one of {user}'s devices")]
    DeliveryOfAnotherDevice {
        delivery: DeliveryId,
        device: DeviceId,
        user: UserId,
    },
    #[error("unit event {event} claims to be recorded by {claimed}, but the sender is {user}")]
    UnitEventOfAnotherUser {
        event: UnitEventId,
        claimed: UserId,
        user: UserId,
    },
    #[error("unit event {event} names device {device}, which is not one of {user}'s devices")]
    UnitEventOfAnotherDevice {
        event: UnitEventId,
        device: DeviceId,
        user: UserId,
    },
    #[error("only the server upgrades a document's schema (from {from} to {to})")]
    SchemaChange { from: u64, to: u64 },
    #[error("review {review} claims to be by {claimed}, but the sender is {user}")]
    ReviewOfAnotherUser {
        review: ReviewId,
        claimed: UserId,
        user: UserId,
    },
}

/// Checks that `editor` may turn `before` into `after`. Both must be valid
/// shipments and `after` a valid successor ([`Shipment::check_transition_from`]),
/// so the only differences left are additions and edits of editable fields.
pub fn check_edit(before: &Shipment, after: &Shipment, editor: &Editor) -> Result<(), Forbidden> {
    // A losing concurrent write to a header or line field changes no value
    // but adds a conflict, so conflicts count as edits too.
    let manifest_conflicts = |s: &Shipment| -> Vec<_> {
        s.conflicts
            .iter()
            .filter(|c| c.path.starts_with("shipment/") || c.path.starts_with("lines/"))
            .cloned()
            .collect()
    };
    if after.schema != before.schema {
        return Err(Forbidden::SchemaChange {
            from: before.schema,
            to: after.schema,
        });
    }
    if after.header != before.header
        || after.lines != before.lines
        || manifest_conflicts(after) != manifest_conflicts(before)
    {
        editor.role.require(Action::ManageShipments)?;
    }
    for (id, receipt) in &after.receipts {
        if before.receipts.contains_key(id) {
            continue;
        }
        editor.role.require(Action::RecordReceipts)?;
        if receipt.recorded_by != editor.user {
            return Err(Forbidden::ReceiptOfAnotherUser {
                receipt: id.clone(),
                claimed: receipt.recorded_by.clone(),
                user: editor.user.clone(),
            });
        }
        if !editor.devices.contains(&receipt.device_id) {
            return Err(Forbidden::ReceiptOfAnotherDevice {
                receipt: id.clone(),
                device: receipt.device_id.clone(),
                user: editor.user.clone(),
            });
        }
    }
    for (id, attachment) in &after.attachments {
        if before.attachments.contains_key(id) {
            continue;
        }
        editor.role.require(Action::RecordReceipts)?;
        if attachment.recorded_by != editor.user {
            return Err(Forbidden::AttachmentOfAnotherUser {
                attachment: id.clone(),
                claimed: attachment.recorded_by.clone(),
                user: editor.user.clone(),
            });
        }
        if !editor.devices.contains(&attachment.device_id) {
            return Err(Forbidden::AttachmentOfAnotherDevice {
                attachment: id.clone(),
                device: attachment.device_id.clone(),
                user: editor.user.clone(),
            });
        }
    }
    for (id, delivery) in &after.deliveries {
        if before.deliveries.contains_key(id) {
            continue;
        }
        editor.role.require(Action::RecordReceipts)?;
        if delivery.recorded_by != editor.user {
            return Err(Forbidden::DeliveryOfAnotherUser {
                delivery: id.clone(),
                claimed: delivery.recorded_by.clone(),
                user: editor.user.clone(),
            });
        }
        if !editor.devices.contains(&delivery.device_id) {
            return Err(Forbidden::DeliveryOfAnotherDevice {
                delivery: id.clone(),
                device: delivery.device_id.clone(),
                user: editor.user.clone(),
            });
        }
    }
    for (id, event) in &after.unit_events {
        if before.unit_events.contains_key(id) {
            continue;
        }
        editor.role.require(match event.step.kind() {
            StepKind::HandedOver => Action::HandOverUnits,
            _ => Action::RecordReceipts,
        })?;
        if event.recorded_by != editor.user {
            return Err(Forbidden::UnitEventOfAnotherUser {
                event: id.clone(),
                claimed: event.recorded_by.clone(),
                user: editor.user.clone(),
            });
        }
        if !editor.devices.contains(&event.device_id) {
            return Err(Forbidden::UnitEventOfAnotherDevice {
                event: id.clone(),
                device: event.device_id.clone(),
                user: editor.user.clone(),
            });
        }
    }
    for (id, review) in &after.reviews {
        if before.reviews.contains_key(id) {
            continue;
        }
        editor.role.require(Action::WriteReviews)?;
        if review.by != editor.user {
            return Err(Forbidden::ReviewOfAnotherUser {
                review: id.clone(),
                claimed: review.by.clone(),
                user: editor.user.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Action, Role};

    #[test]
    fn names_round_trip_and_rights_do_not_overlap() {
        let actions = [
            Action::RecordReceipts,
            Action::ManageShipments,
            Action::WriteReviews,
            Action::HandOverUnits,
            Action::Administer,
        ];
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        for action in actions {
            let holders: Vec<Role> = Role::ALL.into_iter().filter(|r| r.may(action)).collect();
            assert_eq!(holders.len(), 1, "{action:?} is held by {holders:?}");
        }
        assert!(Role::Receiver.may(Action::RecordReceipts));
        assert!(Role::Coordinator.may(Action::WriteReviews));
        assert!(!Role::Admin.may(Action::RecordReceipts));
        assert_eq!(Role::parse("Admin"), None);
        let refusal = Role::Receiver.require(Action::WriteReviews).err();
        assert_eq!(
            refusal.map(|e| e.to_string()).as_deref(),
            Some("a receiver may not write reviews")
        );
    }
}
