//! Reading a document into typed values, refusing anything malformed.
//!
//! Reading *is* validation ("parse, don't validate"): a document that reads
//! without error satisfies every rule of the model, so the server can accept a
//! merged document exactly when [`read_shipment`] succeeds on it.
//!
//! That includes what a document must *not* hold: every map is checked
//! against its list of fields in [`keys`](super::keys), so a key the model
//! does not define is refused wherever it appears, and a known key holding
//! the wrong kind of value (a map where text belongs, a number in a list of
//! serials) is refused too.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use automerge::{ObjId, ObjType, Patch, PatchAction, Prop, ROOT, ReadDoc, ScalarValue, Value};

use super::keys as k;
use super::types::*;
use super::units::*;
use crate::ids::IdError;

/// Reads and validates a whole shipment document.
pub fn read_shipment(doc: &impl ReadDoc) -> Result<Shipment, ModelError> {
    let mut r = Reader {
        doc,
        schema: SCHEMA_VERSION,
        conflicts: Vec::new(),
    };
    r.shipment()
}

/// What a set of changes touched in a document, by the model's parts: the
/// header, and lines, receipts, reviews and attachments by id. `root` means something
/// at the top of the document changed (a container replaced, an unknown
/// field): read it whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Touched {
    pub root: bool,
    pub header: bool,
    pub lines: BTreeSet<String>,
    pub receipts: BTreeSet<String>,
    pub reviews: BTreeSet<String>,
    pub attachments: BTreeSet<String>,
    pub deliveries: BTreeSet<String>,
    pub unit_events: BTreeSet<String>,
}

impl Touched {
    /// Everything the patches of a merge (automerge's diff from the heads
    /// before to the heads after) say changed.
    pub fn from_patches(patches: &[Patch]) -> Touched {
        let mut t = Touched::default();
        for patch in patches {
            // The first step below the root names the part; the second,
            // for the three maps of entries, the entry.
            match patch.path.as_slice() {
                [(_, Prop::Map(part))] => t.mark(part, patched_key(&patch.action).as_deref()),
                [(_, Prop::Map(part)), (_, Prop::Map(entry)), ..] => t.mark(part, Some(entry)),
                _ => t.root = true,
            }
        }
        t
    }

    /// Adds where the ops of `changes`, applied to `doc`, wrote, whether
    /// or not their values won: a write that loses to a concurrent one
    /// changes no value, so no patch names it, yet the whole read shows it
    /// as a conflict (and a receiver's losing header write must be seen to
    /// be refused).
    pub fn add_ops(&mut self, doc: &impl ReadDoc, changes: &[automerge::Change]) {
        use automerge::legacy::{Key, ObjectId, OpId};
        for change in changes {
            for op in change.decode().operations {
                let mut path: Vec<String> = Vec::new();
                if let ObjectId::Id(OpId(counter, actor)) = &op.obj {
                    // The actor's index in this document is unknown here;
                    // automerge looks the actor up when it does not match.
                    let obj = ObjId::Id(*counter, actor.clone(), usize::MAX);
                    let Ok(parents) = doc.parents(&obj) else {
                        self.root = true;
                        continue;
                    };
                    let mut props: Vec<Prop> = parents.map(|p| p.prop).collect();
                    props.reverse();
                    for prop in props {
                        match prop {
                            Prop::Map(key) => path.push(key),
                            // Below a list: deep enough already, or not the model's.
                            Prop::Seq(_) => break,
                        }
                    }
                }
                if let (true, Key::Map(key)) = (path.len() < 2, &op.key) {
                    path.push(key.to_string());
                }
                match path.as_slice() {
                    [part, entry, ..] => self.mark(part, Some(entry)),
                    // At the root itself: a container replaced, or a field
                    // the model does not have.
                    _ => self.root = true,
                }
            }
        }
    }

    /// Marks `entry` of `part` touched (the header as a whole); a part the
    /// model does not have, or an entry map touched as a whole, means the
    /// document is read whole.
    fn mark(&mut self, part: &str, entry: Option<&str>) {
        let entries = match part {
            k::SHIPMENT => {
                self.header = true;
                return;
            }
            k::LINES => &mut self.lines,
            k::RECEIPTS => &mut self.receipts,
            k::REVIEWS => &mut self.reviews,
            k::ATTACHMENTS => &mut self.attachments,
            k::DELIVERIES => &mut self.deliveries,
            k::UNIT_EVENTS => &mut self.unit_events,
            _ => {
                self.root = true;
                return;
            }
        };
        match entry {
            Some(key) => {
                entries.insert(key.to_owned());
            }
            None => self.root = true,
        }
    }
}

/// The key a patch on a map changes (`None` for a list patch).
fn patched_key(action: &PatchAction) -> Option<String> {
    match action {
        PatchAction::PutMap { key, .. } | PatchAction::DeleteMap { key } => Some(key.clone()),
        PatchAction::Conflict {
            prop: Prop::Map(key),
        }
        | PatchAction::Increment {
            prop: Prop::Map(key),
            ..
        } => Some(key.clone()),
        _ => None,
    }
}

/// Reads a document again after changes that touched only `touched`,
/// knowing it read as `before` until then: the parts touched are read
/// afresh and every cross-reference (a receipt's line, a void's receipt, a
/// review's receipts) checked again; the rest is taken from `before`. The
/// outcome is [`read_shipment`]'s, error included, at a cost that follows
/// the changes instead of the document (`tests/incremental_read.rs` holds
/// the two to that).
pub fn read_shipment_after(
    doc: &impl ReadDoc,
    before: &Shipment,
    touched: &Touched,
) -> Result<Shipment, ModelError> {
    // In an older document there is no `attachments` or `deliveries` map
    // to write into; whatever a change did there, the whole read says what
    // it is.
    if touched.root
        || (before.schema < 2 && !touched.attachments.is_empty())
        || (before.schema < 3 && !touched.deliveries.is_empty())
        || (before.schema < 4 && !touched.unit_events.is_empty())
    {
        return read_shipment(doc);
    }
    let mut r = Reader {
        doc,
        schema: before.schema,
        conflicts: Vec::new(),
    };
    r.shipment_after(before, touched)
}

/// A touched key of a map container, and its entry if it still has one.
type TouchedEntry<T> = (String, Option<(T, ObjId)>);

struct Reader<'a, D> {
    doc: &'a D,
    /// The document's schema, which decides the fields each map may hold.
    schema: u64,
    conflicts: Vec<Conflict>,
}

/// Whether concurrent values of a field are a normal, visible conflict
/// (editable fields) or a sign that an immutable event was rewritten.
#[derive(Clone, Copy, PartialEq)]
enum Editable {
    Yes,
    No,
}

fn render(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => s.to_string(),
        ScalarValue::Int(i) => i.to_string(),
        ScalarValue::Uint(u) => u.to_string(),
        ScalarValue::Null => "null".into(),
        other => format!("{other:?}"),
    }
}

fn actor_of(id: &ObjId) -> String {
    match id {
        ObjId::Id(_, actor, _) => actor.to_hex_string(),
        ObjId::Root => String::new(),
    }
}

impl<D: ReadDoc> Reader<'_, D> {
    /// The single value at `obj[key]`, recording a conflict if there are several.
    fn value(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
        editable: Editable,
    ) -> Result<Option<(Value<'_>, ObjId)>, ModelError> {
        let all = self
            .doc
            .get_all(obj, key)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        if all.len() > 1 {
            let is_object = all.iter().any(|(v, _)| v.is_object());
            if editable == Editable::No || is_object {
                // Two competing containers or a rewritten event: either way
                // some replica's data would silently vanish behind the winner.
                return Err(ModelError::Immutable { path: path.into() });
            }
            // automerge's `get` returns the last of `get_all`: list it first.
            let values = all
                .iter()
                .rev()
                .map(|(v, id)| ConflictValue {
                    value: match v {
                        Value::Scalar(s) => render(s),
                        Value::Object(t) => format!("<{t}>"),
                    },
                    actor: actor_of(id),
                })
                .collect();
            self.conflicts.push(Conflict {
                path: path.into(),
                values,
            });
        }
        Ok(all.into_iter().next_back())
    }

    /// Refuses the first key of the map `obj` (at `path`) that `allowed`
    /// does not name. Only key names are read, one pass over the map, so
    /// the check costs next to nothing beside reading the values.
    fn fields(&self, obj: &ObjId, path: &str, allowed: &[&str]) -> Result<(), ModelError> {
        match self
            .doc
            .keys(obj)
            .find(|key| !allowed.contains(&key.as_str()))
        {
            None => Ok(()),
            Some(key) => Err(ModelError::unknown_field(path, &key)),
        }
    }

    fn object(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
        ty: ObjType,
    ) -> Result<ObjId, ModelError> {
        match self.value(obj, key, path, Editable::No)? {
            None => Err(ModelError::Missing { path: path.into() }),
            Some((Value::Object(t), id)) if t == ty => Ok(id),
            Some(_) => Err(ModelError::WrongType {
                path: path.into(),
                expected: match ty {
                    ObjType::List => "a list",
                    _ => "a map",
                },
            }),
        }
    }

    fn opt_string(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
        editable: Editable,
    ) -> Result<Option<String>, ModelError> {
        match self.value(obj, key, path, editable)? {
            None => Ok(None),
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(s) => Ok(Some(s.to_string())),
                ScalarValue::Null => Ok(None),
                _ => Err(ModelError::WrongType {
                    path: path.into(),
                    expected: "text",
                }),
            },
            Some(_) => Err(ModelError::WrongType {
                path: path.into(),
                expected: "text",
            }),
        }
    }

    fn string(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
        editable: Editable,
    ) -> Result<String, ModelError> {
        self.opt_string(obj, key, path, editable)?
            .ok_or_else(|| ModelError::Missing { path: path.into() })
    }

    fn id<T: FromStr<Err = IdError>>(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<T, ModelError> {
        let s = self.string(obj, key, path, Editable::No)?;
        s.parse().map_err(|source| ModelError::BadId {
            path: path.into(),
            source,
        })
    }

    fn int(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
        editable: Editable,
    ) -> Result<i64, ModelError> {
        let wrong = || ModelError::WrongType {
            path: path.into(),
            expected: "an integer",
        };
        match self.value(obj, key, path, editable)? {
            None => Err(ModelError::Missing { path: path.into() }),
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Int(i) => Ok(*i),
                ScalarValue::Uint(u) => i64::try_from(*u).map_err(|_| wrong()),
                ScalarValue::Timestamp(t) => Ok(*t),
                _ => Err(wrong()),
            },
            Some(_) => Err(wrong()),
        }
    }

    fn quantity(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
        editable: Editable,
    ) -> Result<u64, ModelError> {
        let q = self.int(obj, key, path, editable)?;
        u64::try_from(q).map_err(|_| ModelError::QuantityOutOfRange { path: path.into() })
    }

    fn strings(&mut self, obj: &ObjId, key: &str, path: &str) -> Result<Vec<String>, ModelError> {
        let list = self.object(obj, key, path, ObjType::List)?;
        let mut out = Vec::with_capacity(self.doc.length(&list));
        for (i, item) in self.doc.list_range(&list, ..).enumerate() {
            match item.value {
                automerge::ValueRef::Scalar(automerge::ScalarValueRef::Str(s)) => {
                    out.push(s.to_string())
                }
                _ => {
                    return Err(ModelError::WrongType {
                        path: format!("{path}/{i}"),
                        expected: "text",
                    });
                }
            }
        }
        Ok(out)
    }

    fn shipment(&mut self) -> Result<Shipment, ModelError> {
        let schema = match self.int(&ROOT, k::SCHEMA, k::SCHEMA, Editable::No) {
            Ok(v) if (OLDEST_SCHEMA_VERSION as i64..=SCHEMA_VERSION as i64).contains(&v) => {
                v as u64
            }
            Ok(v) => {
                return Err(ModelError::UnsupportedSchema {
                    found: v.to_string(),
                });
            }
            Err(ModelError::Missing { .. }) => {
                return Err(ModelError::Missing {
                    path: k::SCHEMA.into(),
                });
            }
            Err(_) => {
                return Err(ModelError::UnsupportedSchema {
                    found: "not an integer".into(),
                });
            }
        };
        // After the version: a newer document is refused for its version,
        // not for the fields that version may have added.
        self.schema = schema;
        let root_fields = match schema {
            1 => k::ROOT_FIELDS_V1,
            2 => k::ROOT_FIELDS_V2,
            3 => k::ROOT_FIELDS_V3,
            _ => k::ROOT_FIELDS,
        };
        self.fields(&ROOT, "document", root_fields)?;
        let header = self.header()?;
        let lines = self.lines()?;
        let deliveries = self.deliveries()?;
        let receipts = self.receipts(&lines, &deliveries)?;
        let reviews = self.reviews(&receipts)?;
        let attachments = self.attachments(schema, &receipts, &deliveries)?;
        let unit_events = self.unit_events(&lines)?;
        Ok(Shipment {
            schema,
            header,
            lines,
            receipts,
            reviews,
            attachments,
            deliveries,
            unit_events,
            conflicts: std::mem::take(&mut self.conflicts),
        })
    }

    fn header(&mut self) -> Result<Header, ModelError> {
        let h = self.object(&ROOT, k::SHIPMENT, k::SHIPMENT, ObjType::Map)?;
        self.fields(&h, k::SHIPMENT, k::HEADER_FIELDS)?;
        let p = |key: &str| format!("{}/{key}", k::SHIPMENT);
        let header = Header {
            id: self.id(&h, k::ID, &p(k::ID))?,
            donor: self.string(&h, k::DONOR, &p(k::DONOR), Editable::Yes)?,
            programme: self.string(&h, k::PROGRAMME, &p(k::PROGRAMME), Editable::Yes)?,
            reference: self.string(&h, k::REFERENCE, &p(k::REFERENCE), Editable::Yes)?,
            destination_facility: self.id(
                &h,
                k::DESTINATION_FACILITY,
                &p(k::DESTINATION_FACILITY),
            )?,
            expected_on: self.opt_string(&h, k::EXPECTED_ON, &p(k::EXPECTED_ON), Editable::Yes)?,
            created_by: self.id(&h, k::CREATED_BY, &p(k::CREATED_BY))?,
            created_at: self.int(&h, k::CREATED_AT, &p(k::CREATED_AT), Editable::No)?,
            note: self.string(&h, k::NOTE, &p(k::NOTE), Editable::Yes)?,
        };
        header.check()?;
        Ok(header)
    }

    /// Keys of a map container, each parsed as an id, whose entries are
    /// maps holding only `fields`.
    fn entries<T: FromStr<Err = IdError>>(
        &mut self,
        key: &str,
        fields: &[&str],
    ) -> Result<Vec<(T, ObjId)>, ModelError> {
        let map = self.object(&ROOT, key, key, ObjType::Map)?;
        let keys: Vec<String> = self.doc.keys(&map).collect();
        let mut out = Vec::with_capacity(keys.len());
        for key_s in keys {
            if let Some(entry) = self.entry(&map, key, &key_s, fields)? {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// One entry of the map container `map` (at `key`), or `None` if it
    /// has none at `key_s` (any more).
    fn entry<T: FromStr<Err = IdError>>(
        &mut self,
        map: &ObjId,
        key: &str,
        key_s: &str,
        fields: &[&str],
    ) -> Result<Option<(T, ObjId)>, ModelError> {
        let path = format!("{key}/{key_s}");
        let present = self
            .doc
            .get_all(map, key_s)
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        if present.is_empty() {
            return Ok(None);
        }
        let id = key_s.parse().map_err(|source| ModelError::BadId {
            path: path.clone(),
            source,
        })?;
        let obj = self.object(map, key_s, &path, ObjType::Map)?;
        self.fields(&obj, &path, fields)?;
        Ok(Some((id, obj)))
    }

    /// The entries among `keys` (touched ones), in key order, as
    /// [`Self::entries`] reads them; `None` for keys with no entry.
    fn touched_entries<T: FromStr<Err = IdError>>(
        &mut self,
        key: &str,
        fields: &[&str],
        keys: &BTreeSet<String>,
    ) -> Result<Vec<TouchedEntry<T>>, ModelError> {
        let map = self.object(&ROOT, key, key, ObjType::Map)?;
        let mut out = Vec::with_capacity(keys.len());
        for key_s in keys {
            let entry = self.entry(&map, key, key_s, fields)?;
            out.push((key_s.clone(), entry));
        }
        Ok(out)
    }

    fn lines(&mut self) -> Result<BTreeMap<crate::ids::LineId, Line>, ModelError> {
        let mut lines = BTreeMap::new();
        let fields = self.line_fields();
        for (id, obj) in self.entries::<crate::ids::LineId>(k::LINES, fields)? {
            let line = self.line(id.clone(), &obj)?;
            lines.insert(id, line);
        }
        Ok(lines)
    }

    fn line(&mut self, id: crate::ids::LineId, obj: &ObjId) -> Result<Line, ModelError> {
        let p = |key: &str| format!("{}/{id}/{key}", k::LINES);
        let line = Line {
            item: self.string(obj, k::ITEM, &p(k::ITEM), Editable::Yes)?,
            category: self.string(obj, k::CATEGORY, &p(k::CATEGORY), Editable::Yes)?,
            unit: self.string(obj, k::UNIT, &p(k::UNIT), Editable::Yes)?,
            quantity_expected: self.quantity(
                obj,
                k::QUANTITY_EXPECTED,
                &p(k::QUANTITY_EXPECTED),
                Editable::Yes,
            )?,
            serials_expected: self.strings(obj, k::SERIALS_EXPECTED, &p(k::SERIALS_EXPECTED))?,
            accessories: match self.doc.get(obj, k::ACCESSORIES) {
                Ok(None) => Vec::new(),
                _ => self.strings(obj, k::ACCESSORIES, &p(k::ACCESSORIES))?,
            },
            unit_value: self.opt_string(obj, k::UNIT_VALUE, &p(k::UNIT_VALUE), Editable::Yes)?,
            id: id.clone(),
        };
        line.check()?;
        Ok(line)
    }

    /// The fields a line may hold in this document's schema.
    fn line_fields(&self) -> &'static [&'static str] {
        if self.schema < 4 {
            k::LINE_FIELDS_V3
        } else {
            k::LINE_FIELDS
        }
    }

    /// The fields a receipt may hold in this document's schema.
    fn receipt_fields(&self) -> &'static [&'static str] {
        if self.schema < 3 {
            k::RECEIPT_FIELDS_V2
        } else {
            k::RECEIPT_FIELDS
        }
    }

    fn receipts(
        &mut self,
        lines: &BTreeMap<crate::ids::LineId, Line>,
        deliveries: &BTreeMap<crate::ids::DeliveryId, Delivery>,
    ) -> Result<BTreeMap<crate::ids::ReceiptId, Receipt>, ModelError> {
        let mut receipts = BTreeMap::new();
        let fields = self.receipt_fields();
        for (id, obj) in self.entries::<crate::ids::ReceiptId>(k::RECEIPTS, fields)? {
            let receipt = self.receipt(id.clone(), &obj)?;
            receipts.insert(id, receipt);
        }
        check_receipts(lines, &receipts, deliveries)?;
        Ok(receipts)
    }

    /// Every delivery of a schema 3 document (none before), each checked
    /// once all are known: a correction may name one that sorts after it.
    fn deliveries(&mut self) -> Result<BTreeMap<crate::ids::DeliveryId, Delivery>, ModelError> {
        let mut deliveries = BTreeMap::new();
        if self.schema < 3 {
            return Ok(deliveries);
        }
        for (id, obj) in
            self.entries::<crate::ids::DeliveryId>(k::DELIVERIES, k::DELIVERY_FIELDS)?
        {
            let delivery = self.delivery(id.clone(), &obj)?;
            deliveries.insert(id, delivery);
        }
        deliveries.values().try_for_each(|d| d.check(&deliveries))?;
        Ok(deliveries)
    }

    fn delivery(
        &mut self,
        id: crate::ids::DeliveryId,
        obj: &ObjId,
    ) -> Result<Delivery, ModelError> {
        let p = |key: &str| format!("{}/{id}/{key}", k::DELIVERIES);
        let seal_s = self.string(obj, k::SEAL, &p(k::SEAL), Editable::No)?;
        let seal = Seal::parse(&seal_s).ok_or_else(|| {
            ModelError::invalid(
                p(k::SEAL),
                format!(
                    "unknown seal state {:?} (expected intact, broken or none)",
                    short(&seal_s)
                ),
            )
        })?;
        Ok(Delivery {
            waybill: self.string(obj, k::WAYBILL, &p(k::WAYBILL), Editable::No)?,
            transporter: self.string(obj, k::TRANSPORTER, &p(k::TRANSPORTER), Editable::No)?,
            vehicle: self.string(obj, k::VEHICLE, &p(k::VEHICLE), Editable::No)?,
            seal,
            seal_number: self.string(obj, k::SEAL_NUMBER, &p(k::SEAL_NUMBER), Editable::No)?,
            packages_expected: self.opt_quantity(
                obj,
                k::PACKAGES_EXPECTED,
                &p(k::PACKAGES_EXPECTED),
            )?,
            packages_received: self.opt_quantity(
                obj,
                k::PACKAGES_RECEIVED,
                &p(k::PACKAGES_RECEIVED),
            )?,
            arrived_at: self.int(obj, k::ARRIVED_AT, &p(k::ARRIVED_AT), Editable::No)?,
            note: self.string(obj, k::NOTE, &p(k::NOTE), Editable::No)?,
            recorded_by: self.id(obj, k::RECORDED_BY, &p(k::RECORDED_BY))?,
            device_id: self.id(obj, k::DEVICE_ID, &p(k::DEVICE_ID))?,
            recorded_at: self.int(obj, k::RECORDED_AT, &p(k::RECORDED_AT), Editable::No)?,
            replaces: self.opt_id(obj, k::REPLACES, &p(k::REPLACES))?,
            id,
        })
    }

    /// An optional id (absent or null: `None`).
    fn opt_id<T: FromStr<Err = IdError>>(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<T>, ModelError> {
        match self.opt_string(obj, key, path, Editable::No)? {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|source| ModelError::BadId {
                path: path.into(),
                source,
            }),
        }
    }

    fn receipt(&mut self, id: crate::ids::ReceiptId, obj: &ObjId) -> Result<Receipt, ModelError> {
        let p = |key: &str| format!("{}/{id}/{key}", k::RECEIPTS);
        let condition_s = self.string(obj, k::CONDITION, &p(k::CONDITION), Editable::No)?;
        let condition = Condition::parse(&condition_s).ok_or_else(|| {
            ModelError::invalid(
                p(k::CONDITION),
                format!("unknown condition {condition_s:?} (expected good, damaged, missing_parts or wrong_item)"),
            )
        })?;
        let voids = self.opt_id(obj, k::VOIDS, &p(k::VOIDS))?;
        let stage = match self.opt_string(obj, k::STAGE, &p(k::STAGE), Editable::No)? {
            None => None,
            Some(s) => Some(Stage::parse(&s).ok_or_else(|| {
                ModelError::invalid(
                    p(k::STAGE),
                    format!(
                        "unknown stage {:?} (expected provisional, accepted or rejected)",
                        short(&s)
                    ),
                )
            })?),
        };
        let reason = match self.opt_string(obj, k::REASON, &p(k::REASON), Editable::No)? {
            None => None,
            Some(s) => Some(Reason::parse(&s).ok_or_else(|| {
                ModelError::invalid(
                    p(k::REASON),
                    format!(
                        "unknown reason {:?} (expected short, over, damaged_in_transit, missing_parts, wrong_item, expired or other)",
                        short(&s)
                    ),
                )
            })?),
        };
        let delivery_id = self.opt_id(obj, k::DELIVERY_ID, &p(k::DELIVERY_ID))?;
        Ok(Receipt {
            line_id: self.id(obj, k::LINE_ID, &p(k::LINE_ID))?,
            quantity: self.quantity(obj, k::QUANTITY, &p(k::QUANTITY), Editable::No)?,
            condition,
            serials: self.strings(obj, k::SERIALS, &p(k::SERIALS))?,
            note: self.string(obj, k::NOTE, &p(k::NOTE), Editable::No)?,
            recorded_by: self.id(obj, k::RECORDED_BY, &p(k::RECORDED_BY))?,
            device_id: self.id(obj, k::DEVICE_ID, &p(k::DEVICE_ID))?,
            recorded_at: self.int(obj, k::RECORDED_AT, &p(k::RECORDED_AT), Editable::No)?,
            voids,
            stage,
            reason,
            delivery_id,
            id,
        })
    }

    fn reviews(
        &mut self,
        receipts: &BTreeMap<crate::ids::ReceiptId, Receipt>,
    ) -> Result<BTreeMap<crate::ids::ReviewId, Review>, ModelError> {
        let mut reviews = BTreeMap::new();
        for (id, obj) in self.entries::<crate::ids::ReviewId>(k::REVIEWS, k::REVIEW_FIELDS)? {
            let review = self.review(id.clone(), &obj)?;
            review.check(receipts)?;
            reviews.insert(id, review);
        }
        Ok(reviews)
    }

    fn review(&mut self, id: crate::ids::ReviewId, obj: &ObjId) -> Result<Review, ModelError> {
        let p = |key: &str| format!("{}/{id}/{key}", k::REVIEWS);
        let verdict = match self.opt_string(obj, k::VERDICT, &p(k::VERDICT), Editable::No)? {
            None => None,
            Some(s) => Some(Verdict::parse(&s).ok_or_else(|| {
                ModelError::invalid(
                    p(k::VERDICT),
                    format!("unknown verdict {s:?} (expected approved, has_issues or rejected)"),
                )
            })?),
        };
        let resolves = self
            .strings(obj, k::RESOLVES, &p(k::RESOLVES))?
            .into_iter()
            .map(|s| {
                s.parse().map_err(|source| ModelError::BadId {
                    path: p(k::RESOLVES),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Review {
            by: self.id(obj, k::BY, &p(k::BY))?,
            at: self.int(obj, k::AT, &p(k::AT), Editable::No)?,
            note: self.string(obj, k::NOTE, &p(k::NOTE), Editable::No)?,
            verdict,
            resolves,
            id,
        })
    }

    /// Every attachment event of a schema 2 document (none before), each
    /// checked once all are known: a removal may name a file that sorts
    /// after it.
    fn attachments(
        &mut self,
        schema: u64,
        receipts: &BTreeMap<crate::ids::ReceiptId, Receipt>,
        deliveries: &BTreeMap<crate::ids::DeliveryId, Delivery>,
    ) -> Result<BTreeMap<crate::ids::AttachmentId, Attachment>, ModelError> {
        let mut attachments = BTreeMap::new();
        if schema < 2 {
            return Ok(attachments);
        }
        let fields = if schema < 4 {
            k::ATTACHMENT_FIELDS_V3
        } else {
            k::ATTACHMENT_FIELDS
        };
        for (id, obj) in self.entries::<crate::ids::AttachmentId>(k::ATTACHMENTS, fields)? {
            let attachment = self.attachment(id.clone(), &obj)?;
            attachments.insert(id, attachment);
        }
        attachments
            .values()
            .try_for_each(|a| a.check(receipts, deliveries, &attachments))?;
        Ok(attachments)
    }

    fn attachment(
        &mut self,
        id: crate::ids::AttachmentId,
        obj: &ObjId,
    ) -> Result<Attachment, ModelError> {
        let p = |key: &str| format!("{}/{id}/{key}", k::ATTACHMENTS);
        let kind = self.string(obj, k::KIND, &p(k::KIND), Editable::No)?;
        let file_kind = FileKind::parse(&kind);
        // Keys that belong to another kind are refused like unknown ones.
        let foreign: &[&str] = match file_kind {
            None => k::FILE_ONLY_FIELDS,
            Some(FileKind::Signature) => &[k::REMOVES],
            Some(_) => &[k::REMOVES, k::SIGNER_NAME, k::SIGNER_ROLE],
        };
        let signature_keys = if file_kind.is_none() {
            k::SIGNATURE_ONLY_FIELDS
        } else {
            &[]
        };
        if let Some(key) = self
            .doc
            .keys(obj)
            .find(|key| foreign.contains(&key.as_str()) || signature_keys.contains(&key.as_str()))
        {
            return Err(ModelError::unknown_field(
                format!("{}/{id}", k::ATTACHMENTS),
                &key,
            ));
        }
        let event = match file_kind {
            None if kind == REMOVAL_KIND => AttachmentEvent::Removal {
                removes: self.id(obj, k::REMOVES, &p(k::REMOVES))?,
            },
            None => {
                return Err(ModelError::invalid(
                    p(k::KIND),
                    format!(
                        "unknown kind {:?} (expected photo, document, signature or removal)",
                        kind.chars()
                            .take(MAX_REPORTED_KEY_CHARS)
                            .collect::<String>()
                    ),
                ));
            }
            Some(file_kind) => {
                let receipt_id =
                    match self.opt_string(obj, k::RECEIPT_ID, &p(k::RECEIPT_ID), Editable::No)? {
                        None => None,
                        Some(s) => Some(s.parse().map_err(|source| ModelError::BadId {
                            path: p(k::RECEIPT_ID),
                            source,
                        })?),
                    };
                let file = FileRef {
                    sha256: self.string(obj, k::SHA256, &p(k::SHA256), Editable::No)?,
                    media_type: self.string(obj, k::MEDIA_TYPE, &p(k::MEDIA_TYPE), Editable::No)?,
                    size: self.quantity(obj, k::SIZE, &p(k::SIZE), Editable::No)?,
                    width: self.opt_quantity(obj, k::WIDTH, &p(k::WIDTH))?,
                    height: self.opt_quantity(obj, k::HEIGHT, &p(k::HEIGHT))?,
                };
                let signer = match file_kind {
                    FileKind::Signature => Some(Signer {
                        name: self.string(obj, k::SIGNER_NAME, &p(k::SIGNER_NAME), Editable::No)?,
                        role: self.string(obj, k::SIGNER_ROLE, &p(k::SIGNER_ROLE), Editable::No)?,
                    }),
                    _ => None,
                };
                AttachmentEvent::File {
                    file_kind,
                    receipt_id,
                    file,
                    signer,
                    delivery_id: self.opt_id(obj, k::DELIVERY_ID, &p(k::DELIVERY_ID))?,
                }
            }
        };
        Ok(Attachment {
            event,
            note: self.string(obj, k::NOTE, &p(k::NOTE), Editable::No)?,
            recorded_by: self.id(obj, k::RECORDED_BY, &p(k::RECORDED_BY))?,
            device_id: self.id(obj, k::DEVICE_ID, &p(k::DEVICE_ID))?,
            recorded_at: self.int(obj, k::RECORDED_AT, &p(k::RECORDED_AT), Editable::No)?,
            id,
        })
    }

    /// Every unit event of a schema 4 document (none before), each checked
    /// once all are known: one may supersede an event that sorts after it.
    fn unit_events(
        &mut self,
        lines: &BTreeMap<crate::ids::LineId, Line>,
    ) -> Result<BTreeMap<crate::ids::UnitEventId, UnitEvent>, ModelError> {
        let mut events = BTreeMap::new();
        if self.schema < 4 {
            return Ok(events);
        }
        for (id, obj) in
            self.entries::<crate::ids::UnitEventId>(k::UNIT_EVENTS, k::UNIT_EVENT_FIELDS)?
        {
            let event = self.unit_event(id.clone(), &obj)?;
            events.insert(id, event);
        }
        check_unit_events(lines, &events)?;
        Ok(events)
    }

    fn unit_event(
        &mut self,
        id: crate::ids::UnitEventId,
        obj: &ObjId,
    ) -> Result<UnitEvent, ModelError> {
        let p = |key: &str| format!("{}/{id}/{key}", k::UNIT_EVENTS);
        let step_s = self.string(obj, k::STEP, &p(k::STEP), Editable::No)?;
        let kind = StepKind::parse(&step_s).ok_or_else(|| {
            ModelError::invalid(
                p(k::STEP),
                format!(
                    "unknown step {:?} (expected {})",
                    short(&step_s),
                    StepKind::expected()
                ),
            )
        })?;
        // Keys of another step are refused like unknown ones.
        let own = k::unit_step_fields(kind);
        if let Some(key) = self.doc.keys(obj).find(|key| {
            !k::UNIT_EVENT_COMMON_FIELDS.contains(&key.as_str()) && !own.contains(&key.as_str())
        }) {
            return Err(ModelError::unknown_field(
                format!("{}/{id}", k::UNIT_EVENTS),
                &key,
            ));
        }
        let text = |r: &mut Self, key: &str| r.string(obj, key, &p(key), Editable::No);
        let step = match kind {
            StepKind::Checklist => UnitStep::Checklist {
                checked: self.strings(obj, k::CHECKED, &p(k::CHECKED))?,
            },
            StepKind::Installed => UnitStep::Installed {
                on: text(self, k::ON)?,
                installer: text(self, k::INSTALLER)?,
            },
            StepKind::Commissioned => UnitStep::Commissioned {
                on: text(self, k::ON)?,
            },
            StepKind::AcceptanceTest => {
                let s = text(self, k::RESULT)?;
                let result = TestResult::parse(&s).ok_or_else(|| {
                    ModelError::invalid(
                        p(k::RESULT),
                        format!(
                            "unknown result {:?} (expected {})",
                            short(&s),
                            TestResult::expected()
                        ),
                    )
                })?;
                UnitStep::AcceptanceTest {
                    result,
                    on: text(self, k::ON)?,
                }
            }
            StepKind::Training => UnitStep::Training {
                on: text(self, k::ON)?,
                people: self.quantity(obj, k::PEOPLE, &p(k::PEOPLE), Editable::No)?,
                trainer: text(self, k::TRAINER)?,
            },
            StepKind::Warranty => UnitStep::Warranty {
                starts_on: text(self, k::STARTS_ON)?,
                ends_on: text(self, k::ENDS_ON)?,
                service_agent: text(self, k::SERVICE_AGENT)?,
            },
            StepKind::Location => UnitStep::Location {
                department: text(self, k::DEPARTMENT)?,
                room: text(self, k::ROOM)?,
                custodian: text(self, k::CUSTODIAN)?,
            },
            StepKind::Status => {
                let s = text(self, k::STATUS)?;
                let status = UnitStatus::parse(&s).ok_or_else(|| {
                    ModelError::invalid(
                        p(k::STATUS),
                        format!(
                            "unknown status {:?} (expected {})",
                            short(&s),
                            UnitStatus::expected()
                        ),
                    )
                })?;
                UnitStep::Status { status }
            }
            StepKind::HandedOver => UnitStep::HandedOver {
                on: text(self, k::ON)?,
                asset_number: text(self, k::ASSET_NUMBER)?,
            },
        };
        let supersedes = self
            .strings(obj, k::SUPERSEDES, &p(k::SUPERSEDES))?
            .into_iter()
            .map(|s| {
                s.parse().map_err(|source| ModelError::BadId {
                    path: p(k::SUPERSEDES),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(UnitEvent {
            line_id: self.id(obj, k::LINE_ID, &p(k::LINE_ID))?,
            serial: self.string(obj, k::SERIAL, &p(k::SERIAL), Editable::No)?,
            step,
            supersedes,
            note: self.string(obj, k::NOTE, &p(k::NOTE), Editable::No)?,
            recorded_by: self.id(obj, k::RECORDED_BY, &p(k::RECORDED_BY))?,
            device_id: self.id(obj, k::DEVICE_ID, &p(k::DEVICE_ID))?,
            recorded_at: self.int(obj, k::RECORDED_AT, &p(k::RECORDED_AT), Editable::No)?,
            id,
        })
    }

    /// The unit events after changes that touched `touched`, as
    /// [`Self::unit_events`] would find them. An event's check asks only
    /// whether its line and the events it supersedes exist, and how those
    /// read: when only new events arrived (the usual sync), only they are
    /// read and checked, in key order, then the whole set for circles. A
    /// key gone (a line, or an event removed) or an event rewritten means
    /// the whole read's work.
    fn unit_events_after(
        &mut self,
        before: &Shipment,
        touched: &Touched,
        lines: &BTreeMap<crate::ids::LineId, Line>,
        key_gone: bool,
    ) -> Result<BTreeMap<crate::ids::UnitEventId, UnitEvent>, ModelError> {
        if touched.unit_events.is_empty() && !key_gone {
            return Ok(before.unit_events.clone());
        }
        let rewritten = touched
            .unit_events
            .iter()
            .any(|key| before.unit_events.keys().any(|id| id.as_str() == key));
        if key_gone || rewritten {
            return self.unit_events(lines);
        }
        let mut events = before.unit_events.clone();
        let mut fresh = Vec::new();
        for (_, entry) in self.touched_entries::<crate::ids::UnitEventId>(
            k::UNIT_EVENTS,
            k::UNIT_EVENT_FIELDS,
            &touched.unit_events,
        )? {
            if let Some((id, obj)) = entry {
                let event = self.unit_event(id.clone(), &obj)?;
                fresh.push(id.clone());
                events.insert(id, event);
            }
        }
        for id in &fresh {
            if let Some(event) = events.get(id) {
                event.check(lines, &events)?;
            }
        }
        check_no_cycle(&events)?;
        Ok(events)
    }

    /// An optional non-negative integer (absent or null: `None`).
    fn opt_quantity(
        &mut self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<u64>, ModelError> {
        match self.value(obj, key, path, Editable::No)? {
            None => Ok(None),
            Some((Value::Scalar(s), _)) if matches!(s.as_ref(), ScalarValue::Null) => Ok(None),
            Some(_) => self.quantity(obj, key, path, Editable::No).map(Some),
        }
    }

    /// [`Self::shipment`] for a document that read as `before` until
    /// changes that touched only `touched`, in the same order of reading
    /// and checking, so the first error found is the same.
    fn shipment_after(
        &mut self,
        before: &Shipment,
        touched: &Touched,
    ) -> Result<Shipment, ModelError> {
        let header = if touched.header {
            self.header()?
        } else {
            before.header.clone()
        };
        let mut conflicts = std::mem::take(&mut self.conflicts);
        if !touched.header {
            conflicts.extend(conflicts_under(before, &format!("{}/", k::SHIPMENT)));
        }

        let mut lines = before.lines.clone();
        // Whether a key other records may refer to is gone (see below).
        let mut key_gone = false;
        let mut line_conflicts: BTreeMap<crate::ids::LineId, Vec<Conflict>> = BTreeMap::new();
        let fields = self.line_fields();
        for (key_s, entry) in
            self.touched_entries::<crate::ids::LineId>(k::LINES, fields, &touched.lines)?
        {
            match entry {
                Some((id, obj)) => {
                    let line = self.line(id.clone(), &obj)?;
                    line_conflicts.insert(id.clone(), std::mem::take(&mut self.conflicts));
                    lines.insert(id, line);
                }
                None => {
                    lines.retain(|id, _| id.as_str() != key_s);
                    key_gone = true;
                }
            }
        }
        for id in lines.keys() {
            match line_conflicts.remove(id) {
                Some(fresh) => conflicts.extend(fresh),
                None => conflicts.extend(conflicts_under(before, &format!("{}/{id}/", k::LINES))),
            }
        }

        // A shipment has a few deliveries: when any is touched all are read
        // again, as the whole read does. One gone means a receipt naming
        // it must be checked again.
        let deliveries = if touched.deliveries.is_empty() {
            before.deliveries.clone()
        } else {
            let deliveries = self.deliveries()?;
            key_gone |= before
                .deliveries
                .keys()
                .any(|id| !deliveries.contains_key(id));
            deliveries
        };

        let mut receipts = before.receipts.clone();
        let fields = self.receipt_fields();
        let touched_receipts =
            self.touched_entries::<crate::ids::ReceiptId>(k::RECEIPTS, fields, &touched.receipts)?;
        let mut fresh = Vec::with_capacity(touched_receipts.len());
        for (key_s, entry) in touched_receipts {
            match entry {
                Some((id, obj)) => {
                    let receipt = self.receipt(id.clone(), &obj)?;
                    fresh.push(id.clone());
                    receipts.insert(id, receipt);
                }
                None => {
                    receipts.retain(|id, _| id.as_str() != key_s);
                    key_gone = true;
                }
            }
        }
        if key_gone {
            check_receipts(&lines, &receipts, &deliveries)?;
        } else {
            // A receipt's check asks only whether the line and the receipt
            // it names exist. Those of `before` passed, and no key is gone:
            // only the new or rewritten ones can fail, and the first of
            // them in key order is the first the whole check would find.
            fresh.sort();
            for id in &fresh {
                if let Some(receipt) = receipts.get(id) {
                    receipt.check(&lines, &receipts, &deliveries)?;
                }
            }
        }

        let mut touched_reviews: BTreeMap<String, Option<(crate::ids::ReviewId, ObjId)>> = self
            .touched_entries(k::REVIEWS, k::REVIEW_FIELDS, &touched.reviews)?
            .into_iter()
            .collect();
        let mut ids: BTreeSet<crate::ids::ReviewId> = before.reviews.keys().cloned().collect();
        ids.extend(touched_reviews.values().flatten().map(|(id, _)| id.clone()));
        let mut reviews = BTreeMap::new();
        // Like the whole read: each review read, then checked, in order.
        for id in ids {
            let review = match touched_reviews.remove(id.as_str()) {
                Some(Some((id, obj))) => self.review(id, &obj)?,
                Some(None) => continue,
                None => match before.reviews.get(&id) {
                    Some(review) => review.clone(),
                    None => continue,
                },
            };
            review.check(&receipts)?;
            reviews.insert(id, review);
        }

        // A shipment holds tens of attachments, not thousands: when any is
        // touched (or a receipt one may name is gone) all are read again,
        // exactly as the whole read does.
        let attachments = if touched.attachments.is_empty() && !key_gone {
            before.attachments.clone()
        } else {
            self.attachments(before.schema, &receipts, &deliveries)?
        };
        let unit_events = self.unit_events_after(before, touched, &lines, key_gone)?;
        Ok(Shipment {
            schema: before.schema,
            unit_events,
            header,
            lines,
            receipts,
            reviews,
            attachments,
            deliveries,
            conflicts,
        })
    }
}

/// Checks every receipt's references once all are known: a void may name
/// a receipt that sorts after it.
fn check_receipts(
    lines: &BTreeMap<crate::ids::LineId, Line>,
    receipts: &BTreeMap<crate::ids::ReceiptId, Receipt>,
    deliveries: &BTreeMap<crate::ids::DeliveryId, Delivery>,
) -> Result<(), ModelError> {
    receipts
        .values()
        .try_for_each(|r| r.check(lines, receipts, deliveries))
}

/// A value from a document, cut to [`MAX_REPORTED_KEY_CHARS`] for an error
/// message, so a refusal never echoes an attacker's payload.
fn short(s: &str) -> String {
    s.chars().take(MAX_REPORTED_KEY_CHARS).collect()
}

/// `before`'s conflicts on fields under `prefix`, in order.
fn conflicts_under<'a>(
    before: &'a Shipment,
    prefix: &'a str,
) -> impl Iterator<Item = Conflict> + 'a {
    before
        .conflicts
        .iter()
        .filter(move |c| c.path.starts_with(prefix))
        .cloned()
}
