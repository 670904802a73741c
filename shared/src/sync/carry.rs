//! Hand-carried sync, for weeks without a network: the phone writes what it
//! would have sent to `/api/v1/sync` into a file, a courier carries it, and
//! a coordinator uploads it. The server then checks it exactly like a sync
//! from the device that wrote it.
//!
//! The file is signed with HMAC-SHA-256 keyed by the SHA-256 of the
//! device's token: the phone holds the token, the server holds that hash
//! (it stores tokens only hashed), so the server can tell the file came
//! from that device unchanged, and nobody on the way, the courier
//! included, can alter it or write one in that device's name. A file
//! changed by one bit is refused whole.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{DeviceId, UserId};

/// The format's name and version, first in every file.
pub const CARRIED_FORMAT: &str = "aidsync-carried-1";

/// A carried file, as written (CBOR).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarriedFile {
    pub format: String,
    /// The device that wrote it, whose token signed it.
    pub device: DeviceId,
    /// Its user, for people reading the file's name and the import's
    /// answer; the server trusts the device's record, not this.
    pub user: UserId,
    /// When the phone wrote it, ms since the epoch.
    pub created_at: i64,
    /// Records waiting on the phone then.
    pub pending: u64,
    /// The sync request, CBOR, exactly as the phone would have posted it.
    #[serde(with = "serde_bytes")]
    pub request: Vec<u8>,
    /// HMAC-SHA-256 over everything above ([`signed_bytes`]).
    #[serde(with = "serde_bytes")]
    pub tag: Vec<u8>,
}

/// Why a carried file cannot be read or trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CarryError {
    #[error("not an aidsync file of records: {0}")]
    Malformed(String),
    #[error("file format {0:?} is not supported (this server reads {CARRIED_FORMAT})")]
    Format(String),
    #[error("the file was changed after the phone wrote it (its signature does not match)")]
    Tampered,
}

/// The key a device's file is signed with: SHA-256 of its token, which is
/// also all the server keeps of the token.
pub fn signing_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn signed_bytes(f: &CarriedFile) -> Vec<u8> {
    // Length-prefixed fields, so no two different files sign the same bytes.
    let mut out = Vec::with_capacity(f.request.len() + 128);
    for part in [
        f.format.as_bytes(),
        f.device.as_str().as_bytes(),
        f.user.as_str().as_bytes(),
        &f.created_at.to_be_bytes(),
        &f.pending.to_be_bytes(),
        &f.request,
    ] {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    out
}

fn mac(key: &[u8; 32]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

impl CarriedFile {
    /// Signs and writes a file of `request` (CBOR) for `device`, whose
    /// token's [`signing_key`] is `key`.
    pub fn write(
        device: DeviceId,
        user: UserId,
        created_at: i64,
        pending: u64,
        request: Vec<u8>,
        key: &[u8; 32],
    ) -> Vec<u8> {
        let mut file = CarriedFile {
            format: CARRIED_FORMAT.to_owned(),
            device,
            user,
            created_at,
            pending,
            request,
            tag: Vec::new(),
        };
        let mut m = mac(key);
        m.update(&signed_bytes(&file));
        file.tag = m.finalize().into_bytes().to_vec();
        let mut out = Vec::new();
        // Writing CBOR into a Vec cannot fail.
        let _ = ciborium::into_writer(&file, &mut out);
        out
    }

    /// Reads a file without trusting it yet: who claims to have written it.
    pub fn read(bytes: &[u8]) -> Result<CarriedFile, CarryError> {
        let file: CarriedFile =
            ciborium::from_reader(bytes).map_err(|e| CarryError::Malformed(e.to_string()))?;
        if file.format != CARRIED_FORMAT {
            let shown: String = file.format.chars().take(40).collect();
            return Err(CarryError::Format(shown));
        }
        Ok(file)
    }

    /// Checks the signature with the claimed device's key (constant time).
    pub fn verify(&self, key: &[u8; 32]) -> Result<(), CarryError> {
        let mut m = mac(key);
        m.update(&signed_bytes(self));
        m.verify_slice(&self.tag).map_err(|_| CarryError::Tampered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_verifies_with_its_devices_key_only_and_unchanged() {
        let key = signing_key("token-of-annas-phone");
        let bytes = CarriedFile::write(
            DeviceId::parse("anna-phone").unwrap_or_else(|e| panic!("{e}")),
            UserId::parse("anna").unwrap_or_else(|e| panic!("{e}")),
            1_790_000_000_000,
            3,
            b"sync request".to_vec(),
            &key,
        );
        let file = CarriedFile::read(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(file.verify(&key), Ok(()));
        assert_eq!(
            file.verify(&signing_key("another token")),
            Err(CarryError::Tampered)
        );
        let mut changed = file.clone();
        changed.request[0] ^= 1;
        assert_eq!(changed.verify(&key), Err(CarryError::Tampered));
        let mut renamed = file.clone();
        renamed.device = DeviceId::parse("bohdan-phone").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(renamed.verify(&key), Err(CarryError::Tampered));
        assert!(matches!(
            CarriedFile::read(b"not cbor at all"),
            Err(CarryError::Malformed(_))
        ));
    }
}
