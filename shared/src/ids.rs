//! Identifiers. Every id that crosses a boundary (wire, document, database) is
//! parsed once into a newtype, so a malformed id is refused at the edge with a
//! precise reason rather than discovered deep inside the merge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Longest id accepted. Ids appear as automerge map keys on every phone, so a
/// bound keeps a hostile client from bloating everyone's documents.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("id is empty")]
    Empty,
    #[error("id is longer than {MAX_ID_LEN} characters")]
    TooLong,
    #[error("id {0:?} may only contain ASCII letters, digits, '-' and '_'")]
    BadCharacter(String),
}

fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(IdError::BadCharacter(s.to_owned()));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses `s`, refusing empty, over-long or oddly-charactered ids.
            pub fn parse(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_id(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }
    };
}

id_type!(
    /// One shipment, and so one automerge document.
    ShipmentId
);
id_type!(
    /// An expected line of a shipment's manifest.
    LineId
);
id_type!(
    /// One receipt event. Fresh per receipt, so two receivers never collide.
    ReceiptId
);
id_type!(
    /// A coordinator's review note.
    ReviewId
);
id_type!(
    /// One attachment event (a photo, document or signature added, or a
    /// removal). Fresh per event, like a receipt's.
    AttachmentId
);
id_type!(
    /// One delivery (a truck's arrival with its papers), recorded as an
    /// event like a receipt.
    DeliveryId
);
id_type!(
    /// One event in a serialised unit's life after receipt (installed,
    /// commissioned, tested, moved, repaired, handed over…). Fresh per
    /// event, like a receipt's.
    UnitEventId
);
id_type!(
    /// A hospital or warehouse that receives shipments.
    FacilityId
);
id_type!(
    /// A person. Until accounts exist (a later issue) devices name their user.
    UserId
);
id_type!(
    /// A registered phone or browser; owns exactly one automerge actor id.
    DeviceId
);

/// Turns 16 random bytes (drawn by the caller: this crate draws no randomness)
/// into a 32-character id usable as any of the id types above.
pub fn id_from_random(bytes: [u8; 16]) -> String {
    to_hex(&bytes)
}

/// Lower-case hex of any bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_parsed_not_trusted() {
        assert!(ShipmentId::parse("JICA-2026-001").is_ok());
        assert_eq!(ShipmentId::parse(""), Err(IdError::Empty));
        assert_eq!(ShipmentId::parse("a".repeat(65)), Err(IdError::TooLong));
        assert!(matches!(
            ReceiptId::parse("r/1"),
            Err(IdError::BadCharacter(_))
        ));
    }

    #[test]
    fn random_ids_are_valid() {
        let id = id_from_random([0xab; 16]);
        assert_eq!(id.len(), 32);
        assert!(ReceiptId::parse(id).is_ok());
    }
}
