//! Wire types of `POST /api/v1/sync`, encoded as CBOR.
//!
//! Downloads carry changes as an automerge *bundle* where possible: the
//! document encoding applied to a set of changes, ≈18 bytes per receipt
//! against ≈290 for individual change chunks (≈68 gzipped). Bundles are
//! still marked experimental upstream, so every bundle is decoded again by
//! its sender and must give back exactly the changes it was made from; if
//! not, the sender falls back to plain change chunks, the encoding automerge
//! keeps stable. Uploads are always plain chunks: the server decodes what a
//! phone sends as hostile input ([`super::untrusted`]), and automerge's
//! bundle decoder cannot be made safe against that. Both ends run this same
//! crate, and [`PROTOCOL_VERSION`] guards the rest.

use automerge::{AutoCommit, Bundle, Change, ChangeHash};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::ids::ShipmentId;

/// Bumped when the wire format changes incompatibly; the server refuses
/// other versions with a message telling the phone to update.
pub const PROTOCOL_VERSION: u32 = 1;

/// Content type of request and response bodies.
pub const CONTENT_TYPE: &str = "application/cbor";

/// What a phone sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub protocol: u32,
    /// The `cursor` of the last response the phone applied; 0 if none.
    pub cursor: u64,
    /// Documents with changes the server has not acknowledged.
    pub docs: Vec<DocUpload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocUpload {
    pub id: ShipmentId,
    pub changes: Changes,
}

/// What the server answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    /// To send as `cursor` next time, once this response is applied.
    pub cursor: u64,
    /// The phone's cursor was ahead of the server (a server restored from a
    /// backup): this response holds every document in full, and the phone
    /// should re-send what the server no longer has.
    pub reset: bool,
    pub docs: Vec<DocDownload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocDownload {
    pub id: ShipmentId,
    /// What became of the phone's upload for this document, if it sent one.
    pub upload: Option<UploadResult>,
    /// The whole document, when the phone may not have it yet.
    pub snapshot: Option<ByteBuf>,
    /// Changes committed since the phone's cursor.
    pub changes: Changes,
    /// The server's heads for this document after this sync.
    pub heads: Vec<ByteBuf>,
}

/// The fate of one document's upload. Refusals are per document: one bad
/// document never blocks the others in the same request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum UploadResult {
    /// Stored (`new` of them were not already on the server).
    Accepted { new: u32 },
    /// Nothing of this document was stored; `reason` says why, for a person.
    Refused { code: RefusalCode, reason: String },
    /// The server lacks changes these depend on (e.g. it was restored from a
    /// backup): send every change of this document.
    MissingDependencies,
    /// No such document, or not one this phone may see.
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// Bytes that are not automerge changes.
    Corrupt,
    /// A change signed by an actor that is not one of the caller's devices.
    WrongActor,
    /// The caller's role may not make this change, or a record claims to be
    /// someone else's.
    Forbidden,
    /// The merged document would break the model.
    Invalid,
    /// Too many changes or too large a document.
    TooLarge,
}

/// A set of automerge changes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "format", content = "data", rename_all = "snake_case")]
pub enum Changes {
    /// Raw change chunks, one byte string each.
    Chunks(Vec<ByteBuf>),
    /// One automerge bundle holding every change.
    Bundle(ByteBuf),
}

impl Default for Changes {
    fn default() -> Self {
        Changes::Chunks(Vec::new())
    }
}

impl Changes {
    /// Encodes `changes` (all of them in `doc`) as compactly as is verified
    /// safe: a bundle that round-trips to the same hashes, else raw chunks.
    pub fn encode(doc: &AutoCommit, changes: &[Change]) -> Changes {
        let hashes: Vec<ChangeHash> = changes.iter().map(Change::hash).collect();
        Changes::bundle(doc, &hashes).unwrap_or_else(|| Changes::chunks(changes))
    }

    /// [`Self::encode`] for the changes of `doc` with these hashes. A
    /// bundle is built straight from the document's op set; only if that
    /// fails are the changes themselves rebuilt (which costs automerge far
    /// more than the bundle), for raw chunks.
    pub fn encode_hashes(doc: &AutoCommit, hashes: &[ChangeHash]) -> Changes {
        Changes::bundle(doc, hashes).unwrap_or_else(|| {
            let changes: Vec<Change> = hashes
                .iter()
                .filter_map(|h| automerge::ReadDoc::get_change_by_hash(doc, h))
                .collect();
            Changes::chunks(&changes)
        })
    }

    /// A bundle of these changes of `doc`, if automerge makes one that
    /// decodes back to exactly them (bundles are marked experimental
    /// upstream: trust, but verify).
    fn bundle(doc: &AutoCommit, hashes: &[ChangeHash]) -> Option<Changes> {
        if hashes.is_empty() {
            return Some(Changes::default());
        }
        let bundle = doc.bundle(hashes.iter().copied()).ok()?;
        let bytes = bundle.bytes().to_vec();
        let back = Bundle::try_from(bytes.as_slice()).ok()?.to_changes().ok()?;
        let mut got: Vec<ChangeHash> = back.iter().map(Change::hash).collect();
        let mut want = hashes.to_vec();
        got.sort();
        want.sort();
        (got == want).then(|| Changes::Bundle(ByteBuf::from(bytes)))
    }

    /// Plain change chunks, the one encoding the server accepts in uploads.
    pub fn chunks(changes: &[Change]) -> Changes {
        Changes::Chunks(
            changes
                .iter()
                .map(|c| ByteBuf::from(c.raw_bytes().to_vec()))
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Changes::Chunks(c) => c.is_empty(),
            Changes::Bundle(b) => b.is_empty(),
        }
    }

    /// Decodes strictly: any malformed byte refuses the whole set. For bytes
    /// from a trusted server only; a server decodes uploads with
    /// [`super::untrusted::decode_untrusted`].
    pub fn decode(&self) -> Result<Vec<Change>, DecodeError> {
        match self {
            Changes::Chunks(chunks) => chunks
                .iter()
                .enumerate()
                .map(|(i, bytes)| {
                    Change::from_bytes(bytes.to_vec())
                        .map_err(|e| DecodeError::Change(format!("change {i}: {e}")))
                })
                .collect(),
            Changes::Bundle(bytes) if bytes.is_empty() => Ok(Vec::new()),
            Changes::Bundle(bytes) => Bundle::try_from(bytes.as_slice())
                .map_err(|e| DecodeError::Change(format!("bundle: {e}")))?
                .to_changes()
                .map_err(|e| DecodeError::Change(format!("bundle: {e}"))),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not automerge changes: {0}")]
    Change(String),
    #[error("body is not valid CBOR for this message: {0}")]
    Cbor(String),
    #[error("a change hash must be 32 bytes")]
    BadHash,
}

/// Encodes a message as CBOR.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail, and our types always serialize.
    ciborium::into_writer(msg, &mut out).unwrap_or_else(|e| unreachable!("CBOR encode: {e}"));
    out
}

/// Decodes a CBOR message, refusing anything that does not fit `T`.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, DecodeError> {
    ciborium::from_reader(bytes).map_err(|e| DecodeError::Cbor(e.to_string()))
}

pub fn heads_to_wire(heads: &[ChangeHash]) -> Vec<ByteBuf> {
    heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect()
}

pub fn heads_from_wire(heads: &[ByteBuf]) -> Result<Vec<ChangeHash>, DecodeError> {
    heads
        .iter()
        .map(|h| ChangeHash::try_from(h.as_slice()).map_err(|_| DecodeError::BadHash))
        .collect()
}
