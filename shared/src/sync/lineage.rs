//! Checks that an upload's changes continue the document's history the way
//! automerge itself writes changes, before automerge applies them.
//!
//! automerge trusts every change it is given to be one it wrote, and asserts
//! what that implies deep inside its change graph and op set, panicking when
//! it fails:
//!
//! - an actor's changes form one causal chain: the change with `seq` n + 1
//!   has the one with `seq` n among its ancestors;
//! - a change numbers its ops after every op of the changes it depends on;
//! - every op id a change refers to (the object an op writes into, the list
//!   element it follows, the ops it overwrites) and every actor it names
//!   comes from one of its ancestors or from an earlier op of its own, and
//!   an op writes into an object, not into a plain value.
//!
//! A forged change that breaks these may merge in one order and panic in
//! another. The server stores changes in the order it applied them but
//! reloads a document from a snapshot plus that tail, so such a change,
//! accepted today, made its shipment unloadable (a 500 on every later sync)
//! tomorrow; `aidsync-fuzz` found exactly that. [`check_lineage`] refuses
//! them against the document's history, so every order that respects
//! dependencies applies the upload the same way.
//!
//! Like [`super::untrusted`], this does not judge what the ops mean; the
//! model does that after the merge.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use automerge::legacy::{ElementId, Key, ObjectId, OpId, OpType};
use automerge::{ActorId, Automerge, Change, ChangeHash, ExpandedChange, ObjId, ObjType, ReadDoc};

/// Why an upload's changes do not continue the document's history.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineageError {
    #[error(
        "change {hash} is seq {seq} of its actor, which already has another change with that seq"
    )]
    SeqTaken { hash: ChangeHash, seq: u64 },
    #[error(
        "change {hash} is seq {seq} of its actor but does not directly follow the actor's change {previous}"
    )]
    SeqSkipped {
        hash: ChangeHash,
        seq: u64,
        previous: u64,
    },
    #[error(
        "change {hash} numbers its ops from {start_op}, not after op {dep_max_op} of a change it depends on"
    )]
    OpsOverlap {
        hash: ChangeHash,
        start_op: u64,
        dep_max_op: u64,
    },
    #[error("change {hash} names actor {actor}, which made none of the changes it depends on")]
    UnknownActor { hash: ChangeHash, actor: String },
    #[error("change {hash} refers to op {op}, which none of the changes it depends on made")]
    UnknownOp { hash: ChangeHash, op: String },
    #[error("change {hash} writes into {obj}, which is not an object")]
    NotAnObject { hash: ChangeHash, obj: String },
    #[error(
        "change {hash} has op {op}, whose key does not fit its object (or names an element of another list)"
    )]
    KeyMismatch { hash: ChangeHash, op: String },
    #[error("change {hash} has op {op}, which overwrites op {pred} of another place")]
    PredMismatch {
        hash: ChangeHash,
        op: String,
        pred: String,
    },
    #[error("change {hash} makes a table (op {op}), which automerge cannot apply writes into")]
    Table { hash: ChangeHash, op: String },
}

/// The highest seq of each actor among a change's ancestors. Because every
/// actor's changes form a chain (checked), this says exactly which changes
/// are ancestors: actor A's change n is one iff `clock[A] >= n`.
type Clock = HashMap<ActorId, u64>;

/// Where an op wrote: its object, its key, and whether it inserted a list
/// element (whose id is then the op's own).
#[derive(Debug, Clone, PartialEq)]
struct Place {
    obj: ObjectId,
    key: Key,
    insert: bool,
}

impl Place {
    fn of(op: &automerge::legacy::Op) -> Place {
        Place {
            obj: op.obj.clone(),
            key: op.key.clone(),
            insert: op.insert,
        }
    }
}

/// What the check needs of one change, stored or uploaded.
#[derive(Clone)]
struct Node {
    actor: ActorId,
    seq: u64,
    start_op: u64,
    max_op: u64,
    deps: Vec<ChangeHash>,
}

impl Node {
    fn of(change: &Change) -> Node {
        Node {
            actor: change.actor_id().clone(),
            seq: change.seq(),
            start_op: change.start_op().get(),
            max_op: change.max_op(),
            deps: change.deps().to_vec(),
        }
    }
}

/// Per actor, `(start_op, max_op, seq, hash)` of its changes, by start op.
type OpsOf = HashMap<ActorId, Vec<(u64, u64, u64, ChangeHash)>>;

/// A document's history, indexed for [`check_lineage_indexed`]: what
/// indexing every stored change's metadata would otherwise cost each
/// upload, kept beside a loaded document and extended with each accepted
/// change. It knows the heads it was built for; used with a document at
/// other heads, it is rebuilt first, so a stale one costs time, never a
/// wrong verdict.
#[derive(Clone, Default)]
pub struct LineageIndex {
    /// The heads of the document described; `None`: none yet.
    heads: Option<Vec<ChangeHash>>,
    nodes: HashMap<ChangeHash, Node>,
    /// Every actor's changes form one chain (automerge asserts it), so by
    /// seq they are also by start op.
    ops_of: OpsOf,
    seqs: HashMap<(ActorId, u64), ChangeHash>,
    max_seq: HashMap<ActorId, u64>,
}

impl LineageIndex {
    /// The index of `doc`'s history as it is.
    pub fn of(doc: &Automerge) -> LineageIndex {
        let mut index = LineageIndex::default();
        let mut metas = doc.get_changes_meta(&[]);
        // Per actor in seq order, so each actor's list is sorted as built.
        metas.sort_by_key(|m| m.seq);
        for meta in metas {
            index.add(
                meta.hash,
                Node {
                    actor: meta.actor.into_owned(),
                    seq: meta.seq,
                    start_op: meta.start_op,
                    max_op: meta.max_op,
                    deps: meta.deps,
                },
            );
        }
        index.heads = Some(doc.get_heads());
        index
    }

    /// Adds changes `doc` has just applied, so that the index describes
    /// `doc` again (if it described `doc` before them; otherwise the next
    /// check rebuilds it).
    pub fn extend(&mut self, doc: &Automerge, applied: &[Change]) {
        if self.heads.is_none() {
            return;
        }
        for change in applied {
            if self.nodes.contains_key(&change.hash()) {
                continue;
            }
            self.add(change.hash(), Node::of(change));
        }
        self.heads = Some(doc.get_heads());
    }

    /// Whether this index describes `doc`.
    fn describes(&self, doc: &Automerge) -> bool {
        self.heads.as_ref().is_some_and(|h| *h == doc.get_heads())
    }

    fn add(&mut self, hash: ChangeHash, node: Node) {
        let ops = self.ops_of.entry(node.actor.clone()).or_default();
        let entry = (node.start_op, node.max_op, node.seq, hash);
        match ops.last() {
            // Out of order (a hand-made history): in place.
            Some(last) if *last > entry => {
                let at = ops.partition_point(|e| *e < entry);
                ops.insert(at, entry);
            }
            _ => ops.push(entry),
        }
        self.seqs.insert((node.actor.clone(), node.seq), hash);
        let max = self.max_seq.entry(node.actor.clone()).or_insert(0);
        *max = (*max).max(node.seq);
        self.nodes.insert(hash, node);
    }
}

/// The document's history (indexed) and the upload's changes, for the check.
struct History<'a> {
    doc: &'a Automerge,
    base: &'a LineageIndex,
    /// The upload's changes.
    nodes: HashMap<ChangeHash, Node>,
    uploaded: HashSet<ChangeHash>,
    /// The upload's changes per actor, as in [`LineageIndex`].
    ops_of: OpsOf,
    /// Objects the upload makes, by `(counter, actor)`.
    made: HashMap<(u64, ActorId), ObjType>,
    /// Where each op of the upload wrote, by `(counter, actor)`.
    placed: HashMap<(u64, ActorId), Place>,
    /// Where the ops of stored changes wrote, decoded when first asked.
    stored_places: RefCell<HashMap<ChangeHash, Vec<Place>>>,
    /// Ancestor clocks: per uploaded change, and per set of stored deps.
    clocks: HashMap<ChangeHash, Option<Clock>>,
    stored_clocks: HashMap<Vec<ChangeHash>, Clock>,
}

/// Checks `changes` (new to `doc`, in any order) against `doc`'s history and
/// each other. Changes with a dependency in neither are not judged: automerge
/// holds them back unapplied and the caller refuses them as missing
/// dependencies.
pub fn check_lineage(doc: &Automerge, changes: &[Change]) -> Result<(), LineageError> {
    check_lineage_indexed(doc, &mut LineageIndex::default(), changes)
}

/// [`check_lineage`] with the history's index at hand (rebuilt first if it
/// does not describe `doc`). Once `doc` has applied the changes, the
/// caller extends the index with them ([`LineageIndex::extend`]).
pub fn check_lineage_indexed(
    doc: &Automerge,
    index: &mut LineageIndex,
    changes: &[Change],
) -> Result<(), LineageError> {
    if !index.describes(doc) {
        *index = LineageIndex::of(doc);
    }
    let expanded: Vec<ExpandedChange> = changes.iter().map(Change::decode).collect();
    let mut history = History::new(doc, index, changes)?;
    (history.made, history.placed) = index_upload(changes, &expanded);
    for (change, expanded) in changes.iter().zip(&expanded) {
        let Some(clock) = history.clock(change.hash()) else {
            continue;
        };
        history.check(change, expanded, &clock)?;
    }
    Ok(())
}

impl<'a> History<'a> {
    fn new(
        doc: &'a Automerge,
        base: &'a LineageIndex,
        changes: &[Change],
    ) -> Result<History<'a>, LineageError> {
        let mut history = History {
            doc,
            base,
            nodes: HashMap::new(),
            uploaded: HashSet::new(),
            ops_of: HashMap::new(),
            made: HashMap::new(),
            placed: HashMap::new(),
            stored_places: RefCell::new(HashMap::new()),
            clocks: HashMap::new(),
            stored_clocks: HashMap::new(),
        };
        let mut seqs: HashMap<(ActorId, u64), ChangeHash> = HashMap::new();
        for change in changes {
            let hash = change.hash();
            let key = (change.actor_id().clone(), change.seq());
            let taken = base.seqs.get(&key).or_else(|| seqs.get(&key)).copied();
            if taken.is_some_and(|h| h != hash) {
                return Err(LineageError::SeqTaken {
                    hash,
                    seq: change.seq(),
                });
            }
            seqs.insert(key, hash);
            history.uploaded.insert(hash);
            history.add(hash, Node::of(change));
        }
        for ops in history.ops_of.values_mut() {
            ops.sort_unstable();
        }
        Ok(history)
    }

    /// A change of the upload or of the document.
    fn node(&self, hash: &ChangeHash) -> Option<&Node> {
        self.nodes.get(hash).or_else(|| self.base.nodes.get(hash))
    }

    /// The change (of the upload or the document) by `by` whose op
    /// counters start at or before `ctr` latest, as `(start_op, max_op,
    /// seq, hash)`: the one that made op `ctr`, if any did.
    fn change_of_op(&self, ctr: u64, by: &ActorId) -> Option<(u64, u64, u64, ChangeHash)> {
        let find = |ops: Option<&Vec<(u64, u64, u64, ChangeHash)>>| {
            let ops = ops?;
            let i = ops.partition_point(|&(start, ..)| start <= ctr);
            ops.get(i.checked_sub(1)?).copied()
        };
        match (find(self.ops_of.get(by)), find(self.base.ops_of.get(by))) {
            (Some(a), Some(b)) => Some(if a.0 >= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    fn add(&mut self, hash: ChangeHash, node: Node) {
        self.ops_of.entry(node.actor.clone()).or_default().push((
            node.start_op,
            node.max_op,
            node.seq,
            hash,
        ));
        self.nodes.insert(hash, node);
    }

    /// The ancestor clock of an uploaded change, or `None` when one of its
    /// ancestors is missing. Iterative, since an upload may be a long chain.
    fn clock(&mut self, hash: ChangeHash) -> Option<Clock> {
        let mut stack = vec![hash];
        while let Some(&top) = stack.last() {
            if self.clocks.contains_key(&top) {
                stack.pop();
                continue;
            }
            let node = &self.nodes[&top];
            let pending: Vec<ChangeHash> = node
                .deps
                .iter()
                .filter(|d| self.uploaded.contains(d) && !self.clocks.contains_key(d))
                .copied()
                .collect();
            if !pending.is_empty() {
                // A cycle cannot happen: a change's hash covers its deps.
                stack.extend(pending);
                continue;
            }
            stack.pop();
            let clock = self.merge_deps(top);
            self.clocks.insert(top, clock);
        }
        self.clocks[&hash].clone()
    }

    /// Merges the clocks of `hash`'s deps (which are computed already) and
    /// the deps themselves.
    fn merge_deps(&mut self, hash: ChangeHash) -> Option<Clock> {
        let deps = self.nodes[&hash].deps.clone();
        let mut stored: Vec<ChangeHash> = Vec::new();
        let mut clock = Clock::new();
        for dep in &deps {
            let node = self.node(dep)?;
            if self.uploaded.contains(dep) {
                let dep_clock = self.clocks.get(dep)?.as_ref()?;
                merge(&mut clock, dep_clock);
            } else {
                stored.push(*dep);
            }
            raise(&mut clock, &node.actor, node.seq);
        }
        if !stored.is_empty() {
            stored.sort_unstable();
            let stored_clock = self.stored_clock(stored);
            merge(&mut clock, &stored_clock);
        }
        Some(clock)
    }

    /// The clock of everything stored up to and including `deps`: the
    /// document's changes less those automerge says `deps` lack.
    fn stored_clock(&mut self, deps: Vec<ChangeHash>) -> Clock {
        if let Some(clock) = self.stored_clocks.get(&deps) {
            return clock.clone();
        }
        // Each actor's changes form a chain, so those `deps` lack are the
        // last few of each actor's: count them off its latest seq.
        let mut lacking: HashMap<ActorId, u64> = HashMap::new();
        for meta in self.doc.get_changes_meta(&deps) {
            *lacking.entry(meta.actor.into_owned()).or_default() += 1;
        }
        let clock: Clock = self
            .base
            .max_seq
            .iter()
            .filter_map(|(actor, &max)| {
                let seq = max.saturating_sub(lacking.get(actor).copied().unwrap_or(0));
                (seq > 0).then(|| (actor.clone(), seq))
            })
            .collect();
        self.stored_clocks.insert(deps, clock.clone());
        clock
    }

    fn check(
        &self,
        change: &Change,
        expanded: &ExpandedChange,
        ancestors: &Clock,
    ) -> Result<(), LineageError> {
        let hash = change.hash();
        let actor = change.actor_id();
        let previous = ancestors.get(actor).copied().unwrap_or(0);
        if previous + 1 != change.seq() {
            return Err(LineageError::SeqSkipped {
                hash,
                seq: change.seq(),
                previous: change.seq() - 1,
            });
        }
        let start_op = change.start_op().get();
        for dep in change.deps() {
            let dep_max_op = self.node(dep).map_or(0, |n| n.max_op);
            if dep_max_op >= start_op {
                return Err(LineageError::OpsOverlap {
                    hash,
                    start_op,
                    dep_max_op,
                });
            }
        }
        for other in change.other_actor_ids() {
            if !ancestors.contains_key(other) {
                return Err(LineageError::UnknownActor {
                    hash,
                    actor: other.to_hex_string(),
                });
            }
        }
        for (counter, op) in (start_op..).zip(&expanded.operations) {
            let here = start_op..counter;
            let refers = |id: &OpId| self.refers(hash, actor, here.clone(), ancestors, id);
            let op_name = || format!("{counter}@{actor}");
            if matches!(op.action, OpType::Make(ObjType::Table)) {
                return Err(LineageError::Table {
                    hash,
                    op: op_name(),
                });
            }
            let obj_type = match &op.obj {
                ObjectId::Root => ObjType::Map,
                ObjectId::Id(obj) => {
                    refers(obj)?;
                    self.object_type(hash, obj)?
                }
            };
            // automerge places an op by its key's kind, and loses one whose
            // kind its object does not have.
            let fits = match &op.key {
                Key::Map(_) => obj_type == ObjType::Map && !op.insert,
                Key::Seq(ElementId::Head) => obj_type.is_sequence() && op.insert,
                Key::Seq(ElementId::Id(elem)) => {
                    refers(elem)?;
                    // The element is one of this list's: inserted into it.
                    obj_type.is_sequence()
                        && self
                            .place(elem)
                            .is_some_and(|p| p.insert && p.obj == op.obj)
                }
            };
            if !fits {
                return Err(LineageError::KeyMismatch {
                    hash,
                    op: op_name(),
                });
            }
            for pred in op.pred.iter() {
                refers(pred)?;
                // An op overwrites only what is at its own place: the ops
                // at the same key, or for a list element, the insert that
                // made it and the ops since at it. An insert overwrites
                // nothing.
                let overwritten = self.place(pred);
                let same_place = !op.insert
                    && overwritten.is_some_and(|p| {
                        p.obj == op.obj
                            && match &op.key {
                                Key::Seq(ElementId::Id(elem)) if p.insert => elem == pred,
                                key => !p.insert && &p.key == key,
                            }
                    });
                if !same_place {
                    return Err(LineageError::PredMismatch {
                        hash,
                        op: op_name(),
                        pred: format!("{}@{}", pred.0, pred.1),
                    });
                }
            }
        }
        Ok(())
    }

    /// Checks that op `id`, referred to by an op of change `hash` by `actor`,
    /// was made before it: by an ancestor, or by one of the change's own
    /// ops before it (counters `earlier`).
    fn refers(
        &self,
        hash: ChangeHash,
        actor: &ActorId,
        earlier: std::ops::Range<u64>,
        ancestors: &Clock,
        id: &OpId,
    ) -> Result<(), LineageError> {
        let OpId(ctr, by) = id;
        let earlier_here = by == actor && earlier.contains(ctr);
        let by_ancestor = || {
            let (_, max_op, seq, _) = self.change_of_op(*ctr, by)?;
            (*ctr <= max_op && ancestors.get(by).is_some_and(|&a| a >= seq)).then_some(())
        };
        if earlier_here || by_ancestor().is_some() {
            Ok(())
        } else {
            Err(LineageError::UnknownOp {
                hash,
                op: format!("{ctr}@{by}"),
            })
        }
    }

    /// Where op `id` wrote, from the upload or the stored change holding it.
    fn place(&self, id: &OpId) -> Option<Place> {
        let OpId(ctr, by) = id;
        if let Some(place) = self.placed.get(&(*ctr, by.clone())) {
            return Some(place.clone());
        }
        let (start, max_op, _, hash) = self.change_of_op(*ctr, by)?;
        if *ctr > max_op || self.uploaded.contains(&hash) {
            return None;
        }
        let index = usize::try_from(ctr - start).ok()?;
        let mut cache = self.stored_places.borrow_mut();
        if let std::collections::hash_map::Entry::Vacant(entry) = cache.entry(hash) {
            let change = self.doc.get_change_by_hash(&hash)?;
            entry.insert(change.decode().operations.iter().map(Place::of).collect());
        }
        cache.get(&hash)?.get(index).cloned()
    }

    fn object_type(&self, hash: ChangeHash, id: &OpId) -> Result<ObjType, LineageError> {
        let OpId(ctr, by) = id;
        if let Some(&obj_type) = self.made.get(&(*ctr, by.clone())) {
            return Ok(obj_type);
        }
        // The actor's index in the document is not known here; automerge
        // looks the actor up by id when the index does not match.
        let stored = ObjId::Id(*ctr, by.clone(), usize::MAX);
        if let Ok(obj_type) = self.doc.object_type(&stored) {
            return Ok(obj_type);
        }
        Err(LineageError::NotAnObject {
            hash,
            obj: format!("{ctr}@{by}"),
        })
    }
}

/// Raises `clock[actor]` to at least `seq`.
fn raise(clock: &mut Clock, actor: &ActorId, seq: u64) {
    let entry = clock.entry(actor.clone()).or_insert(0);
    *entry = (*entry).max(seq);
}

fn merge(into: &mut Clock, from: &Clock) {
    for (actor, &seq) in from {
        raise(into, actor, seq);
    }
}

/// The objects an upload makes, and where each of its ops wrote, by
/// `(counter, actor)`.
type UploadIndex = (
    HashMap<(u64, ActorId), ObjType>,
    HashMap<(u64, ActorId), Place>,
);

fn index_upload(changes: &[Change], expanded: &[ExpandedChange]) -> UploadIndex {
    let mut made = HashMap::new();
    let mut placed = HashMap::new();
    for (change, expanded) in changes.iter().zip(expanded) {
        let start_op = change.start_op().get();
        for (counter, op) in (start_op..).zip(&expanded.operations) {
            let id = (counter, change.actor_id().clone());
            if let OpType::Make(obj_type) = op.action {
                made.insert(id.clone(), obj_type);
            }
            placed.insert(id, Place::of(op));
        }
    }
    (made, placed)
}
