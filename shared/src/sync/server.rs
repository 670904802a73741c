//! The server's sans-IO sync step: check a phone's changes against the
//! model, merge them, and decide what the phone still lacks. The server crate
//! wraps this in a database transaction; nothing here does I/O.

use std::collections::BTreeSet;

use super::lineage::{LineageIndex, check_lineage_indexed};
use super::protocol::{Changes, RefusalCode};
use super::untrusted::{OpBudget, UntrustedError, decode_untrusted};
use crate::model::{ModelError, Recorder, Shipment, ShipmentDoc, Touched, read_shipment_after};
use crate::roles::{Editor, Forbidden, Role, check_edit};
use automerge::{ActorId, Change, ChangeHash};

/// Who sent an upload: the person and every actor id they sign with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploader {
    pub editor: Editor,
    /// Actor ids of the user's devices. Normally the calling device's alone;
    /// the server adds the user's earlier devices, so a phone that logged in
    /// again after its token expired still uploads what it recorded before.
    pub actors: BTreeSet<ActorId>,
    /// Actors of *other* people's devices that the server knows. Their
    /// changes in an upload are skipped, neither stored nor refused: a phone
    /// carries what it received from others, and after a server restore it
    /// re-sends everything the server no longer has, its colleagues'
    /// changes included. Only a change's signer may store it, so those wait
    /// for their own phones; refusing them would block the sender's own
    /// records. An actor nobody knows is still refused (`wrong_actor`).
    pub relayed: BTreeSet<ActorId>,
}

impl Uploader {
    /// Someone with one device, as a phone that knows only itself sees its
    /// user (and as a test server sees a phone).
    pub fn single_device(who: &Recorder, role: Role, actor: ActorId) -> Uploader {
        Uploader {
            editor: Editor {
                user: who.user.clone(),
                role,
                devices: BTreeSet::from([who.device.clone()]),
            },
            actors: BTreeSet::from([actor]),
            relayed: BTreeSet::new(),
        }
    }
}

/// Why a document's upload was refused. Nothing of it may be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{reason}")]
    Corrupt { reason: String },
    #[error("change {hash} is signed by actor {found}, which is not a device of {user}")]
    WrongActor {
        hash: ChangeHash,
        found: String,
        user: String,
    },
    #[error("{0}")]
    Forbidden(#[from] Forbidden),
    #[error("the server lacks {} change(s) these depend on", missing.len())]
    MissingDependencies { missing: Vec<ChangeHash> },
    #[error("{0}")]
    Invalid(#[from] ModelError),
    #[error("{reason}")]
    TooLarge { reason: String },
}

impl Refusal {
    /// The wire code, or `None` for missing dependencies (not a refusal the
    /// phone shows a person: it just re-sends everything).
    pub fn code(&self) -> Option<RefusalCode> {
        match self {
            Refusal::Corrupt { .. } => Some(RefusalCode::Corrupt),
            Refusal::WrongActor { .. } => Some(RefusalCode::WrongActor),
            Refusal::Forbidden(_) => Some(RefusalCode::Forbidden),
            Refusal::MissingDependencies { .. } => None,
            Refusal::Invalid(_) => Some(RefusalCode::Invalid),
            Refusal::TooLarge { .. } => Some(RefusalCode::TooLarge),
        }
    }
}

/// Parses an upload as hostile input, strictly: one bad byte refuses all of
/// it, and so does declaring more operations than `budget` has left.
pub fn parse_changes(changes: &Changes, budget: &mut OpBudget) -> Result<Vec<Change>, Refusal> {
    decode_untrusted(changes, budget).map_err(|e| match e {
        UntrustedError::OverBudget => Refusal::TooLarge {
            reason: e.to_string(),
        },
        UntrustedError::Bundle | UntrustedError::Malformed { .. } => Refusal::Corrupt {
            reason: e.to_string(),
        },
    })
}

/// A successful merge: the new document and the changes it did not have.
#[derive(Debug)]
pub struct Merged {
    pub doc: ShipmentDoc,
    pub shipment: Shipment,
    /// In causal order; empty when the upload was a retry of stored changes.
    pub new_changes: Vec<Change>,
}

/// Checks `changes` from `uploader` and merges them into a copy of
/// `current`: every change must be signed by one of the uploader's actors,
/// the result must be a valid successor of `current`, and the uploader's
/// role must allow every difference ([`check_edit`]). `current` itself is
/// never touched, so a refusal leaves the server exactly as it was.
pub fn merge_upload(
    current: &ShipmentDoc,
    changes: Vec<Change>,
    uploader: &Uploader,
) -> Result<Merged, Refusal> {
    let mut doc = current.clone();
    let before = current.read()?;
    let Accepted {
        shipment,
        new_changes,
    } = merge_into(
        &mut doc,
        &before,
        &mut LineageIndex::default(),
        changes,
        uploader,
    )?;
    Ok(Merged {
        doc,
        shipment,
        new_changes,
    })
}

/// What [`merge_into`] accepted.
#[derive(Debug)]
pub struct Accepted {
    /// The document's model after the merge.
    pub shipment: Shipment,
    /// In causal order; empty when the upload was a retry of stored changes.
    pub new_changes: Vec<Change>,
}

/// [`merge_upload`] without the copy: merges into `doc` itself, whose model
/// is `before` and whose history `lineage` indexes (rebuilt if it does not
/// describe `doc`; extended with what is accepted). For a caller that keeps
/// documents loaded and can afford to throw one away: after a refusal
/// `doc` may hold some of the refused changes and must be dropped, with
/// its index.
pub fn merge_into(
    doc: &mut ShipmentDoc,
    before: &Shipment,
    lineage: &mut LineageIndex,
    changes: Vec<Change>,
    uploader: &Uploader,
) -> Result<Accepted, Refusal> {
    let before_heads = doc.heads();
    let known: BTreeSet<ChangeHash> = changes
        .iter()
        .map(Change::hash)
        .filter(|h| doc.automerge_mut().get_change_by_hash(h).is_some())
        .collect();
    let mut new_changes: Vec<Change> = Vec::new();
    let mut seen = BTreeSet::new();
    for change in changes {
        let hash = change.hash();
        if known.contains(&hash) || !seen.insert(hash) {
            continue;
        }
        if !uploader.actors.contains(change.actor_id()) {
            if uploader.relayed.contains(change.actor_id()) {
                continue;
            }
            return Err(Refusal::WrongActor {
                hash,
                found: change.actor_id().to_hex_string(),
                user: uploader.editor.user.to_string(),
            });
        }
        new_changes.push(change);
    }
    if new_changes.is_empty() {
        return Ok(Accepted {
            shipment: before.clone(),
            new_changes,
        });
    }

    check_lineage_indexed(doc.automerge_mut().document(), lineage, &new_changes).map_err(|e| {
        Refusal::Corrupt {
            reason: e.to_string(),
        }
    })?;
    let am = doc.automerge_mut();
    // automerge records what the changes do as it applies them, so that
    // what they touched is known without comparing whole documents.
    am.update_diff_cursor();
    let applied = am.apply_changes(new_changes.iter().cloned());
    let after_heads = am.get_heads();
    let patches = am.diff(&before_heads, &after_heads);
    am.reset_diff_cursor();
    applied.map_err(|e| Refusal::Corrupt {
        reason: e.to_string(),
    })?;
    // Changes whose dependencies are missing wait in automerge's queue
    // instead of applying; they must not be acknowledged.
    let missing = am.get_missing_deps(&[]);
    if !missing.is_empty() {
        return Err(Refusal::MissingDependencies { missing });
    }
    let mut touched = Touched::from_patches(&patches);
    touched.add_ops(doc.automerge(), &new_changes);
    let shipment = read_shipment_after(doc.automerge(), before, &touched)?;
    shipment.check_transition_from(before)?;
    check_edit(before, &shipment, &uploader.editor)?;
    // Store in the order automerge applied them, so a replay from the
    // changes table always meets dependencies first.
    let order: std::collections::HashMap<ChangeHash, usize> = doc
        .automerge_mut()
        .get_changes(&before_heads)
        .iter()
        .enumerate()
        .map(|(i, c)| (c.hash(), i))
        .collect();
    new_changes.sort_by_key(|c| order.get(&c.hash()).copied());
    lineage.extend(doc.automerge_mut().document(), &new_changes);
    Ok(Accepted {
        shipment,
        new_changes,
    })
}
